//! The tokenizer built from the GGUF matches the reference ids on every fixture string
//! (tests/reference/make_tokenizer_fixture.py; llama.cpp agrees with that reference on all of them).

mod common;

#[test]
fn gguf_tokenizer_matches_reference_ids() {
    let model = common::default_model();
    let fixture = common::read_json("tokenizer_smollm2.json");
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 300, "the corpus has {} strings", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let expected: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        let ids = model.tokenizer.encode(text).unwrap();
        if ids != expected {
            failures.push(format!("{text:?}: got {ids:?}, expected {expected:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn decoding_gives_the_text_back() {
    let model = common::default_model();
    let fixture = common::read_json("tokenizer_smollm2.json");
    for case in fixture["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let ids = model.tokenizer.encode(text).unwrap();
        assert_eq!(model.tokenizer.decode(&ids, false).unwrap(), text);
    }
}

#[test]
fn tokenizer_json_path_gives_the_same_ids() {
    // The rebuilt tokenizer.json (the same pipeline, as a Hugging Face file) loads through the
    // tokenizer.json path and agrees with the GGUF-built tokenizer.
    let from_file = tunelab::model::TextTokenizer::from_file(&common::fixture(
        "smollm2_tokenizer_rebuilt/tokenizer.json",
    ))
    .unwrap();
    let model = common::default_model();
    let fixture = common::read_json("tokenizer_smollm2.json");
    for case in fixture["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(
            from_file.encode(text).unwrap(),
            model.tokenizer.encode(text).unwrap(),
            "{text:?}"
        );
    }
}

/// Gemma 3 270M's tokenizer (SentencePiece BPE with byte fallback, merges derived from the
/// vocabulary) built from its GGUF, once per test binary, and how long the build took.
fn gemma3_tokenizer() -> &'static (tunelab::model::TextTokenizer, std::time::Duration) {
    static TOKENIZER: std::sync::OnceLock<(tunelab::model::TextTokenizer, std::time::Duration)> =
        std::sync::OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let path = common::gemma3_gguf();
        let mut file = std::fs::File::open(&path).unwrap();
        let content = candle_core::quantized::gguf_file::Content::read(&mut file).unwrap();
        let start = std::time::Instant::now();
        let tokenizer = tunelab::model::TextTokenizer::from_gguf(&content).unwrap();
        (tokenizer, start.elapsed())
    })
}

#[test]
fn gemma3_gguf_tokenizer_matches_transformers() {
    // tests/reference/make_gemma3_tokenizer_fixture.py: transformers' GGUF conversion
    // (AutoTokenizer.from_pretrained(dir, gguf_file=...)), ids without BOS, and its decoding.
    let (tokenizer, built_in) = gemma3_tokenizer();
    eprintln!("gemma3 tokenizer built from the GGUF in {built_in:.2?}");
    // The merges are derived in one pass over the 262,144 tokens; a quadratic derivation
    // would take hours.
    assert!(built_in.as_secs() < 60, "building took {built_in:?}");
    assert_eq!(tokenizer.vocab_size(), 262_144);
    let fixture = common::read_json("tokenizer_gemma3.json");
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1000);
    let (mut ids_failures, mut decode_failures) = (Vec::new(), Vec::new());
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let expected: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        let ids = tokenizer.encode(text).unwrap();
        if ids != expected {
            ids_failures.push(format!("{text:?}: got {ids:?}, expected {expected:?}"));
        }
        let decoded = tokenizer.decode(&expected, false).unwrap();
        if decoded != case["decoded"].as_str().unwrap() {
            decode_failures.push(format!("{text:?}: decoded {decoded:?}"));
        }
    }
    assert!(
        ids_failures.is_empty() && decode_failures.is_empty(),
        "{} id mismatches, {} decoding mismatches:\n{}\n{}",
        ids_failures.len(),
        decode_failures.len(),
        ids_failures.join("\n"),
        decode_failures.join("\n")
    );
}

#[test]
fn gemma3_chat_prompt_uses_the_turn_format_and_its_special_tokens() {
    use tunelab::model::chat_template::{TemplateOrigin, GEMMA_TEMPLATE};
    let (tokenizer, _) = gemma3_tokenizer();
    let mut file = std::fs::File::open(common::gemma3_gguf()).unwrap();
    let content = candle_core::quantized::gguf_file::Content::read(&mut file).unwrap();
    // The file has no template of its own; its architecture picks Gemma's turn format.
    let (source, origin) = tunelab::model::loaded::gguf_chat_template(&content.metadata).unwrap();
    assert_eq!(origin, TemplateOrigin::Family("Gemma 3"));
    assert_eq!(source, GEMMA_TEMPLATE);
    let template = tunelab::model::ChatTemplate::new(&source, "<bos>", "<eos>").unwrap();
    let text = template
        .render(
            &[
                tunelab::model::ChatMessage::new("system", "Be brief."),
                tunelab::model::ChatMessage::new("user", "Hi"),
            ],
            true,
        )
        .unwrap();
    let ids = tokenizer.encode(&text).unwrap();
    let id = |t: &str| tokenizer.token_to_id(t).unwrap();
    assert_eq!(
        (id("<bos>"), id("<start_of_turn>"), id("<end_of_turn>")),
        (2, 105, 106)
    );
    assert_eq!(ids[..2], [2, 105]);
    assert_eq!(ids.iter().filter(|&&i| i == 105).count(), 2);
    assert_eq!(ids.iter().filter(|&&i| i == 106).count(), 1);
    assert_eq!(template.end_of_turn(), Some("<end_of_turn>"));
    assert_eq!(tokenizer.decode(&ids, false).unwrap(), text);
    // Special tokens are skipped on request.
    assert_eq!(
        tokenizer.decode(&ids, true).unwrap(),
        "user\nBe brief.\n\nHi\nmodel\n"
    );
}

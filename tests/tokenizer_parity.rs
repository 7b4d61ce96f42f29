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

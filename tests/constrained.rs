//! Constrained decoding (llguidance) on the real models: the vocabulary's bytes equal what the
//! tokenizer decodes, constrained replies parse and match their schema, a batch of them equals
//! the replies one at a time, eval reports the masks' cost, and a schema llguidance cannot
//! compile is an error before any generation.

mod common;

use serde_json::{json, Value};
use std::sync::Arc;
use tunelab::eval::cases::load_eval_file;
use tunelab::eval::run::{evaluate, Constrain, EvalSettings, Variant};
use tunelab::model::constrain::{token_bytes, Constraint};
use tunelab::model::generate::StopReason;
use tunelab::model::source::LocalModel;
use tunelab::model::{generate_batch, LoadedModel, SamplingParams};

fn person_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": { "type": "string", "maxLength": 24 },
            "age": { "type": "integer", "minimum": 0, "maximum": 120 },
            "pet": { "enum": ["cat", "dog", "none"] }
        },
        "required": ["name", "age", "pet"],
        "additionalProperties": false
    })
}

fn greedy(constraint: Option<Constraint>) -> SamplingParams {
    SamplingParams {
        max_tokens: 48,
        constraint,
        ..SamplingParams::default()
    }
}

fn prompts(model: &LoadedModel) -> Vec<Vec<u32>> {
    [
        "Describe a person as JSON.",
        "Who lives next door? Answer in JSON.",
        "Tell me about your grandmother.",
    ]
    .iter()
    .map(|p| model.chat_prompt(None, p).unwrap())
    .collect()
}

#[test]
fn every_tokens_bytes_are_what_the_tokenizer_decodes() {
    let gemma = LoadedModel::load_local(
        LocalModel::Gguf(common::gemma3_gguf()),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    for model in [common::default_model(), &gemma] {
        let words = token_bytes(&model.tokenizer).unwrap();
        assert_eq!(words.len(), model.tokenizer.vocab_size());
        let mut compared = 0;
        for (id, bytes) in words.iter().enumerate() {
            let special = bytes.first() == Some(&0xFF);
            let Ok(text) = std::str::from_utf8(bytes) else {
                continue; // a piece of a multi-byte character, or a special token's marker
            };
            assert!(!special);
            assert_eq!(
                model.tokenizer.decode(&[id as u32], false).unwrap(),
                text,
                "token {id}"
            );
            compared += 1;
        }
        assert!(
            compared > words.len() * 9 / 10,
            "{compared} of {}",
            words.len()
        );
    }
}

#[test]
fn constrained_replies_parse_and_match_their_schema_alone_and_batched() {
    let model = common::default_model();
    let schema = person_schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let constraint = Constraint::Schema(Arc::new(schema));
    let prompts = prompts(model);
    let run = |prompts: &[Vec<u32>], c: Option<Constraint>| {
        generate_batch(
            &model.model,
            &model.tokenizer,
            prompts,
            &greedy(c),
            &model.stop_ids,
            |_, _| Ok(true),
        )
        .unwrap()
    };
    let batched = run(&prompts, Some(constraint.clone()));
    for (r, out) in batched.iter().enumerate() {
        let reply: Value =
            serde_json::from_str(&out.text).unwrap_or_else(|e| panic!("{}: {e}", out.text));
        assert!(validator.is_valid(&reply), "{}", out.text);
        assert_eq!(out.stop, StopReason::EndToken, "{}", out.text);
        assert!(out.constraint_secs > 0.0 && out.constraint_secs < out.decode_secs);
        let alone = run(&prompts[r..=r], Some(constraint.clone()));
        assert_eq!(alone[0].text, out.text, "row {r} alone");
    }
    // Free, the same greedy model says something else for at least one prompt.
    let free = run(&prompts, None);
    assert!(free
        .iter()
        .any(|f| serde_json::from_str::<Value>(&f.text).is_err()));
}

#[test]
fn any_json_object_is_an_object() {
    let model = common::default_model();
    let out = generate_batch(
        &model.model,
        &model.tokenizer,
        &prompts(model)[2..],
        &SamplingParams {
            max_tokens: 96,
            ..greedy(Some(Constraint::Json))
        },
        &model.stop_ids,
        |_, _| Ok(true),
    )
    .unwrap();
    let text = &out[0].text;
    assert!(text.starts_with('{'), "{text}");
    if out[0].stop == StopReason::EndToken {
        let v: Value = serde_json::from_str(text).unwrap();
        assert!(v.is_object());
    }
}

#[test]
fn a_schema_llguidance_cannot_compile_is_an_error_naming_the_file() {
    let model = common::default_model();
    let dir = common::scratch_dir("constrained_bad_schema");
    let path = dir.join("bad.json");
    std::fs::write(&path, r#"{"type": "string", "pattern": "["}"#).unwrap();
    let factory = model.tokenizer.grammar_factory(&model.stop_ids).unwrap();
    let e = Constraint::schema_file(&path, &factory).unwrap_err();
    let message = format!("{e:#}");
    assert!(
        message.contains("bad.json") && message.contains("does not compile"),
        "{message}"
    );
}

#[test]
fn eval_constrained_to_each_cases_schema_reports_the_masks_share() {
    let model = common::default_model();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/camara_qod");
    let mut cases = load_eval_file(&root.join("eval.jsonl")).unwrap();
    cases.truncate(2);
    let settings = EvalSettings {
        max_new_tokens: 24,
        batch_size: 2,
        constrain: Constrain::Schema(None),
        ..EvalSettings::default()
    };
    let report = evaluate(model, &settings, &cases, Variant::Base, &mut |_, _| {}).unwrap();
    let share = report
        .mask_share
        .expect("constrained replies report their masks");
    assert!(share > 0.0 && share < 1.0, "{share}");
    for case in &report.per_case {
        assert!(case.reply.starts_with("{\""), "{}", case.reply);
    }
    let free = EvalSettings {
        constrain: Constrain::Free,
        ..settings
    };
    let report = evaluate(model, &free, &cases, Variant::Base, &mut |_, _| {}).unwrap();
    assert_eq!(report.mask_share, None);
}

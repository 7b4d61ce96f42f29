//! Step-0 SFT loss of the default model on a fixed batch equals transformers' (GGUF loaded and
//! dequantized to f32), with ids and completion-only labels equal to TRL's
//! (tests/reference/make_sft_loss_fixture.py).

mod common;

use candle_core::Tensor;
use tunelab::data::batch::collate;
use tunelab::data::sft::{tokenize_record, SftRecord};
use tunelab::train::loss::causal_lm_loss;

/// |ours − transformers| allowed. transformers' own f32 cross-entropy sits 1.4e-5 below the
/// float64 value of the same logits (see the fixture's hand check); ours computes in f32 too.
const MAX_ABS_DIFF: f64 = 2e-4;

#[test]
fn tokens_labels_and_loss_match_transformers() {
    let model = common::default_model();
    let f = common::read_json("sft_loss_smollm2.json");
    let system = f["system_prompt"].as_str().unwrap();
    let expected_ids: Vec<Vec<u32>> = serde_json::from_value(f["input_ids"].clone()).unwrap();
    let expected_labels: Vec<Vec<i64>> = serde_json::from_value(f["labels"].clone()).unwrap();
    let mut examples = Vec::new();
    for (i, r) in f["records"].as_array().unwrap().iter().enumerate() {
        let record = SftRecord::PromptCompletion {
            prompt: r["prompt"].as_str().unwrap().into(),
            completion: r["completion"].as_str().unwrap().into(),
        };
        let ex = tokenize_record(
            &record,
            &model.template,
            &model.tokenizer,
            Some(system),
            4096,
        )
        .unwrap();
        let n = ex.input_ids.len();
        assert_eq!(ex.input_ids, expected_ids[i][..n], "record {i}: ids");
        assert_eq!(ex.labels, expected_labels[i][..n], "record {i}: labels");
        assert!(
            expected_labels[i][n..].iter().all(|&l| l == -100),
            "record {i}: only padding follows"
        );
        examples.push(ex);
    }
    let refs: Vec<_> = examples.iter().collect();
    let batch = collate(
        &refs,
        f["pad_id"].as_u64().unwrap() as u32,
        &common::device(),
    )
    .unwrap();
    assert_eq!(batch.input_ids.to_vec2::<u32>().unwrap(), expected_ids);
    assert_eq!(batch.loss_tokens as u64, f["loss_tokens"].as_u64().unwrap());
    let m = &model.model;
    let hidden = m.forward_hidden(&batch.input_ids, 0, None).unwrap();
    let loss: Tensor = causal_lm_loss(m.lm_head(), &hidden, &batch.labels).unwrap();
    let ours = loss.to_scalar::<f32>().unwrap() as f64;
    let theirs = f["loss"].as_f64().unwrap();
    eprintln!("SFT loss: ours {ours}, transformers {theirs}");
    assert!(
        (ours - theirs).abs() < MAX_ABS_DIFF,
        "ours {ours} vs transformers {theirs}"
    );
}

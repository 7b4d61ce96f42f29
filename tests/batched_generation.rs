//! Batched generation (left padding, per-row positions and masks, rows leaving the batch as
//! they stop) gives each prompt what it gets alone.

mod common;

use candle_core::Tensor;
use std::path::Path;
use tunelab::eval::cases::load_eval_file;
use tunelab::eval::run::{evaluate, EvalSettings, Variant};
use tunelab::model::{generate, generate_batch, ChatMessage, KvCache, LoadedModel, SamplingParams};

/// Both sides compute in f32 on the CPU; padding changes only matmul shapes and so the
/// summation order.
const MAX_ABS_DIFF: f32 = 1e-3;

fn chat_ids(model: &LoadedModel, prompt: &str) -> Vec<u32> {
    let messages = [ChatMessage::new("user", prompt)];
    let text = model.template.render(&messages, true).unwrap();
    model.tokenizer.encode(&text).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn padded_rows_match_each_prompt_alone_at_prefill_and_decode() {
    let model = common::default_model();
    let m = &model.model;
    let prompts: [&[u32]; 3] = [
        &[1, 2, 3, 4, 5],
        &[9, 8, 7, 6, 5, 4, 3, 2, 1, 10, 11, 12],
        &[42; 8],
    ];
    let longest = 12;
    let pads: Vec<usize> = prompts.iter().map(|p| longest - p.len()).collect();
    let ids: Vec<u32> = prompts
        .iter()
        .zip(&pads)
        .flat_map(|(p, &pad)| std::iter::repeat_n(0, pad).chain(p.iter().copied()))
        .collect();
    let input = Tensor::from_vec(ids, (3, longest), m.device()).unwrap();
    let mut cache = KvCache::new(m.config().num_hidden_layers);
    let prefill = m
        .forward_last_padded(&input, 0, &pads, Some(&mut cache))
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let next = Tensor::new(&[[100u32], [200], [300]], m.device()).unwrap();
    let decode = m
        .forward_last_padded(&next, longest, &pads, Some(&mut cache))
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    for (r, prompt) in prompts.iter().enumerate() {
        let mut alone_cache = KvCache::new(m.config().num_hidden_layers);
        let one = Tensor::new(*prompt, m.device())
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let alone = m.forward_last(&one, 0, Some(&mut alone_cache)).unwrap();
        let alone = alone.squeeze(0).unwrap().to_vec1::<f32>().unwrap();
        let d = max_abs_diff(&prefill[r], &alone);
        assert!(d < MAX_ABS_DIFF, "row {r} prefill differs by {d}");
        let token = [100u32, 200, 300][r];
        let one = Tensor::new(&[token], m.device())
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let alone = m
            .forward_last(&one, prompt.len(), Some(&mut alone_cache))
            .unwrap();
        let alone = alone.squeeze(0).unwrap().to_vec1::<f32>().unwrap();
        let d = max_abs_diff(&decode[r], &alone);
        assert!(d < MAX_ABS_DIFF, "row {r} decode step differs by {d}");
    }
}

#[test]
fn batched_greedy_replies_equal_one_at_a_time() {
    let model = common::default_model();
    let prompts: Vec<Vec<u32>> = [
        "What is the capital of France?",
        "Write a haiku about the sea, then explain each of its three lines.",
        "Hi",
    ]
    .iter()
    .map(|p| chat_ids(model, p))
    .collect();
    let params = SamplingParams {
        max_tokens: 20,
        ..SamplingParams::default()
    };
    let mut streamed = vec![String::new(); prompts.len()];
    let batched = generate_batch(
        &model.model,
        &model.tokenizer,
        &prompts,
        &params,
        &model.stop_ids,
        |row, piece| {
            streamed[row].push_str(piece);
            Ok(true)
        },
    )
    .unwrap();
    assert_eq!(batched.len(), prompts.len());
    for (r, prompt) in prompts.iter().enumerate() {
        let alone = generate(
            &model.model,
            &model.tokenizer,
            prompt,
            &params,
            &model.stop_ids,
            |_| Ok(true),
        )
        .unwrap();
        assert!(!alone.tokens.is_empty());
        assert_eq!(batched[r].tokens, alone.tokens, "row {r}");
        assert_eq!(batched[r].stop, alone.stop, "row {r}");
        assert_eq!(batched[r].prompt_tokens, prompt.len());
        assert_eq!(streamed[r], batched[r].text, "row {r}'s stream");
    }
}

#[test]
fn eval_in_batches_gives_the_replies_of_one_at_a_time() {
    let model = common::default_model();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/camara_qod");
    let mut cases = load_eval_file(&root.join("eval.jsonl")).unwrap();
    cases.truncate(4);
    let settings = |batch_size| EvalSettings {
        system_prompt: Some("Answer with JSON only.".into()),
        max_new_tokens: 16,
        batch_size,
        ..EvalSettings::default()
    };
    let mut progress = Vec::new();
    let batched = evaluate(
        model,
        &settings(3),
        &cases,
        Variant::Base,
        &mut |done, total| progress.push((done, total)),
    )
    .unwrap();
    assert_eq!(progress, [(3, 4), (4, 4)]);
    let single = evaluate(model, &settings(1), &cases, Variant::Base, &mut |_, _| {}).unwrap();
    let replies = |r: &tunelab::eval::run::EvalReport| {
        r.per_case
            .iter()
            .map(|c| c.reply.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(replies(&batched), replies(&single));
    assert!(replies(&batched).iter().all(|r| !r.is_empty()));
    assert_eq!(
        batched.metrics.get("json_valid"),
        single.metrics.get("json_valid")
    );
}

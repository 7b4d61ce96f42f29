//! Next-token logits and greedy continuations of the default model match transformers' GGUF
//! loader (weights dequantized to f32) on the same file: tests/reference/make_logits_fixture.py.
//! llama.cpp's logits are in the fixture too; they differ from both by up to ~1.5 because
//! llama.cpp quantizes activations to 8 bits (the same file converted to F32 in llama.cpp agrees
//! with transformers to 6e-5).

mod common;

use candle_core::{Device, Tensor};
use tunelab::model::generate::argmax;
use tunelab::model::{KvCache, LoadedModel};

/// Largest |ours - transformers| over the 49,152 logits allowed. Both sides compute in f32
/// from the same dequantized weights; what is left is summation order over 30 layers.
const MAX_ABS_DIFF: f32 = 2e-3;

fn last_logits(model: &LoadedModel, ids: &[u32]) -> Vec<f32> {
    let input = Tensor::new(ids, model.model.device())
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let logits = model.model.forward_last(&input, 0, None).unwrap();
    logits.squeeze(0).unwrap().to_vec1().unwrap()
}

/// `n` greedy ids after `ids`, through the KV cache, never stopping at EOS.
fn greedy(model: &LoadedModel, ids: &[u32], n: usize) -> Vec<u32> {
    let mut cache = KvCache::new(model.model.config().num_hidden_layers);
    let mut input = ids.to_vec();
    let mut offset = 0;
    let mut out = Vec::new();
    while out.len() < n {
        let t = Tensor::new(input.as_slice(), model.model.device())
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits = model
            .model
            .forward_last(&t, offset, Some(&mut cache))
            .unwrap();
        let next = argmax(&logits.squeeze(0).unwrap().to_vec1::<f32>().unwrap());
        offset += input.len();
        out.push(next);
        input = vec![next];
    }
    out
}

fn top5(logits: &[f32]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..logits.len() as u32).collect();
    order.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
    order.truncate(5);
    order
}

#[test]
fn logits_and_greedy_match_transformers() {
    let model = common::default_model();
    let fixture = common::read_json("logits_smollm2.json");
    let tensors =
        candle_core::safetensors::load(common::fixture("logits_smollm2.safetensors"), &Device::Cpu)
            .unwrap();
    let prompts = fixture["prompts"].as_array().unwrap();
    assert!(prompts.len() >= 3);
    for (i, p) in prompts.iter().enumerate() {
        let ids: Vec<u32> = serde_json::from_value(p["ids"].clone()).unwrap();
        if p["kind"] == "chat" {
            let user = p["user_message"].as_str().unwrap();
            assert_eq!(
                model.chat_prompt(None, user).unwrap(),
                ids,
                "prompt {i} renders differently"
            );
        }
        let reference = &p["reference"]["transformers"];
        let expected: Vec<f32> = tensors[&format!("prompt{i}.transformers")]
            .to_vec1()
            .unwrap();
        let ours = last_logits(model, &ids);
        let max_diff = ours
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        eprintln!("prompt {i}: max |Δlogit| = {max_diff:.2e}");
        assert!(
            max_diff <= MAX_ABS_DIFF,
            "prompt {i}: max abs diff {max_diff}"
        );
        let expected_top5: Vec<u32> =
            serde_json::from_value(reference["top5_ids"].clone()).unwrap();
        assert_eq!(top5(&ours), expected_top5, "prompt {i}: top-5 ids");
        let expected_greedy: Vec<u32> =
            serde_json::from_value(reference["greedy32"].clone()).unwrap();
        assert_eq!(
            greedy(model, &ids, 32),
            expected_greedy,
            "prompt {i}: greedy continuation"
        );
    }
}

//! Every family against transformers + PEFT, on the tiny random models of
//! tests/fixtures/families (tests/reference/make_family_fixtures.py): base and adapted logits,
//! the SFT loss, every LoRA gradient, and greedy tokens through the KV cache.

mod common;

use candle_core::{DType, Tensor, Var};
use std::path::PathBuf;
use tunelab::model::config::ModelConfig;
use tunelab::model::peft::load_adapter;
use tunelab::model::safetensors_weights::SafetensorsStore;
use tunelab::model::{KvCache, Transformer};
use tunelab::train::loss::causal_lm_loss;

fn dir(case: &str) -> PathBuf {
    common::fixture(&format!("families/{case}"))
}

fn reference(case: &str) -> serde_json::Value {
    common::read_json(&format!("families/{case}/reference.json"))
}

fn base_model(case: &str) -> Transformer {
    let base = dir(case).join("base");
    let config = ModelConfig::from_hf_json(&base.join("config.json")).unwrap();
    let store = SafetensorsStore::open_as(&base, &common::device(), DType::F32).unwrap();
    Transformer::load(&store, config, &common::device()).unwrap()
}

fn ids(r: &serde_json::Value, key: &str) -> Tensor {
    let rows: Vec<Vec<i64>> = serde_json::from_value(r["batch"][key].clone()).unwrap();
    let t = Tensor::new(rows, &common::device()).unwrap();
    if key == "input_ids" {
        t.to_dtype(DType::U32).unwrap()
    } else {
        t
    }
}

/// Largest |ours − theirs| over a nested list of floats.
fn max_diff(ours: &Tensor, theirs: &serde_json::Value) -> f32 {
    let theirs: Vec<f32> = flatten(theirs);
    let ours: Vec<f32> = ours.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(ours.len(), theirs.len(), "shapes differ");
    ours.iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn flatten(v: &serde_json::Value) -> Vec<f32> {
    match v {
        serde_json::Value::Array(items) => items.iter().flat_map(flatten).collect(),
        other => vec![other.as_f64().unwrap() as f32],
    }
}

fn check_logits_loss_and_grads(case: &str) {
    let r = reference(case);
    let mut model = base_model(case);
    let input = ids(&r, "input_ids");
    let base = model.forward(&input, 0, None).unwrap().get(0).unwrap();
    let d = max_diff(&base, &r["base_logits_row0"]);
    assert!(d < 1e-4, "{case}: base logits differ by {d}");

    load_adapter(&mut model, &dir(case).join("adapter")).unwrap();
    let tuned = model.forward(&input, 0, None).unwrap();
    let d = max_diff(&tuned, &r["logits"]);
    assert!(d < 1e-4, "{case}: adapted logits differ by {d}");

    model.adapters().set_training(true);
    let hidden = model.forward_hidden(&input, 0, None).unwrap();
    let loss = causal_lm_loss(model.lm_head(), &hidden, &ids(&r, "labels")).unwrap();
    let ours = loss.to_scalar::<f32>().unwrap() as f64;
    let theirs = r["loss"].as_f64().unwrap();
    assert!(
        (ours - theirs).abs() < 1e-5 * theirs.abs(),
        "{case}: loss {ours} vs {theirs}"
    );

    let grads = model.backward(&loss).unwrap();
    let expected =
        candle_core::safetensors::load(dir(case).join("grads.safetensors"), &common::device())
            .unwrap();
    let vars: Vec<(String, Var)> = model
        .lora_layers()
        .into_iter()
        .flat_map(|(m, l)| {
            [
                (format!("base_model.model.{m}.lora_A.weight"), l.a.clone()),
                (format!("base_model.model.{m}.lora_B.weight"), l.b.clone()),
            ]
        })
        .collect();
    assert_eq!(vars.len(), expected.len(), "{case}: adapter tensors");
    for (name, var) in &vars {
        let d = common::rel_diff(grads.get(var).unwrap(), &expected[name]);
        assert!(
            d < 1e-4,
            "{case}: {name} gradient differs by {d} (relative)"
        );
    }
}

/// Greedy decoding one token at a time through the KV cache, as `generate` runs it.
fn check_greedy(case: &str) {
    let r = reference(case);
    let model = base_model(case);
    let prompt: Vec<u32> = serde_json::from_value(r["greedy"]["prompt"].clone()).unwrap();
    let expected: Vec<u32> = serde_json::from_value(r["greedy"]["tokens"].clone()).unwrap();
    let mut cache = KvCache::new(model.layers.len());
    let mut input = prompt.clone();
    let mut got = Vec::new();
    for _ in 0..expected.len() {
        let offset = cache.len();
        let t = Tensor::new(input.as_slice(), &common::device())
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits = model.forward_last(&t, offset, Some(&mut cache)).unwrap();
        let next = logits.argmax(1).unwrap().to_vec1::<u32>().unwrap()[0];
        got.push(next);
        input = vec![next];
    }
    assert_eq!(got, expected, "{case}: greedy tokens");
}

macro_rules! family {
    ($case:ident) => {
        mod $case {
            #[test]
            fn logits_loss_and_lora_gradients_match_peft() {
                super::check_logits_loss_and_grads(stringify!($case));
            }

            #[test]
            fn greedy_tokens_match_transformers() {
                super::check_greedy(stringify!($case));
            }
        }
    };
}

family!(llama3);
family!(mistral);
family!(qwen2);
family!(qwen3);
family!(gemma3);
family!(phi3);

/// The config an export writes reads back to the same config, for every family.
#[test]
fn exported_configs_read_back_the_same() {
    let scratch = common::scratch_dir("family_configs");
    for case in ["llama3", "mistral", "qwen2", "qwen3", "gemma3", "phi3"] {
        let config = base_model(case).config().clone();
        let path = scratch.join(format!("{case}.json"));
        let json = config.to_hf_json().unwrap();
        std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
        assert_eq!(ModelConfig::from_hf_json(&path).unwrap(), config, "{case}");
    }
}

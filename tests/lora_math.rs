//! LoRA's algebra and a tiny model overfitting one batch, on the tiny Llama of
//! tests/fixtures/lora_tiny (no reference numbers needed: the properties are exact).

mod common;

use candle_core::{DType, Tensor, Var};
use tunelab::model::config::ModelConfig;
use tunelab::model::linear::{BaseWeight, Linear};
use tunelab::model::lora::{init_rng, AdapterSwitch, LoraConfig, LoraLayer};
use tunelab::model::safetensors_weights::SafetensorsStore;
use tunelab::model::Transformer;
use tunelab::train::loss::causal_lm_loss;
use tunelab::train::optim::{AdamW, AdamWParams, FlatGrads};

fn tiny() -> Transformer {
    let dir = common::fixture("lora_tiny/base");
    let config = ModelConfig::from_hf_json(&dir.join("config.json")).unwrap();
    let store = SafetensorsStore::open_as(&dir, &common::device(), DType::F32).unwrap();
    Transformer::load(&store, config, &common::device()).unwrap()
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs().unwrap().max_all().unwrap().to_scalar().unwrap()
}

#[test]
fn forward_is_x_times_w_plus_scaled_ba() {
    let dev = common::device();
    let w = Tensor::randn(0f32, 1.0, (24, 32), &dev).unwrap();
    let config = LoraConfig {
        r: 4,
        lora_alpha: 12.0,
        lora_dropout: 0.0,
        target_modules: vec!["q_proj".into()],
        use_rslora: false,
    };
    let switch = AdapterSwitch::default();
    let lora = LoraLayer::init((32, 24), &config, &mut init_rng(3), &dev, &switch, 0).unwrap();
    let mut linear = Linear::new(BaseWeight::Dense(w.clone())).unwrap();
    linear.set_lora(Some(lora.clone()));
    let x = Tensor::randn(0f32, 1.0, (2, 5, 32), &dev).unwrap();
    // B starts at zero: the adapter leaves the base output untouched.
    let base = x.broadcast_matmul(&w.t().unwrap()).unwrap();
    assert_eq!(
        max_abs(&(linear.forward(&x).unwrap() - &base).unwrap()),
        0.0
    );
    // With B ≠ 0: y = x (W + s·BA)ᵀ, s = alpha / r = 3.
    lora.b
        .set(&Tensor::randn(0f32, 1.0, (24, 4), &dev).unwrap())
        .unwrap();
    let merged =
        (&w + (lora.b.as_tensor().matmul(lora.a.as_tensor()).unwrap() * 3.0).unwrap()).unwrap();
    let expected = x.broadcast_matmul(&merged.t().unwrap()).unwrap();
    let diff = max_abs(&(linear.forward(&x).unwrap() - &expected).unwrap());
    assert!(diff < 1e-4, "{diff}");
    assert!(
        max_abs(&(&expected - &base).unwrap()) > 0.1,
        "the adapter should matter"
    );
    // Switched off: the base again, with the same weights in memory.
    switch.set_enabled(false);
    assert_eq!(
        max_abs(&(linear.forward(&x).unwrap() - &base).unwrap()),
        0.0
    );
}

fn batch() -> (Tensor, Tensor) {
    let r = common::read_json("lora_tiny/reference.json");
    let ids: Vec<Vec<u32>> = serde_json::from_value(r["batch"]["input_ids"].clone()).unwrap();
    let labels: Vec<Vec<i64>> = serde_json::from_value(r["batch"]["labels"].clone()).unwrap();
    (
        Tensor::new(ids, &common::device()).unwrap(),
        Tensor::new(labels, &common::device()).unwrap(),
    )
}

#[test]
fn only_adapters_change_and_one_batch_is_overfit() {
    let mut model = tiny();
    let config = LoraConfig {
        r: 8,
        lora_alpha: 16.0,
        lora_dropout: 0.0,
        target_modules: vec!["all-linear".into()],
        use_rslora: false,
    };
    model.attach_lora(&config, 1).unwrap();
    model.adapters().set_training(true);
    let base_before = model.dense_weights(DType::F32).unwrap();
    let vars: Vec<Var> = model.lora_vars();
    let b_before: Vec<Tensor> = model
        .lora_layers()
        .iter()
        .map(|(_, l)| l.b.as_tensor().copy().unwrap())
        .collect();
    let mut adamw = AdamW::new(
        vars.clone(),
        AdamWParams {
            lr: 1e-2,
            ..Default::default()
        },
    )
    .unwrap();
    let (ids, labels) = batch();
    let mut losses = Vec::new();
    for _ in 0..150 {
        let hidden = model.forward_hidden(&ids, 0, None).unwrap();
        let loss = causal_lm_loss(model.lm_head(), &hidden, &labels).unwrap();
        losses.push(loss.to_scalar::<f32>().unwrap());
        let mut grads = FlatGrads::gather(&model.backward(&loss).unwrap(), &vars).unwrap();
        grads.clip(1.0).unwrap();
        adamw.step(&grads).unwrap();
    }
    for ((name, before), (_, after)) in base_before
        .iter()
        .zip(model.dense_weights(DType::F32).unwrap().iter())
    {
        assert_eq!(max_abs(&(before - after).unwrap()), 0.0, "{name} changed");
    }
    for (before, (name, l)) in b_before.iter().zip(model.lora_layers()) {
        assert!(
            max_abs(&(before - l.b.as_tensor()).unwrap()) > 0.0,
            "{name}: B did not move"
        );
    }
    // 13 target tokens over a vocabulary of 96: memorising them drives the loss near zero.
    let last = *losses.last().unwrap();
    assert!(last < 0.05, "loss went {} -> {last}", losses[0]);
}

/// Keeping a layer's activations from the forward instead of recomputing them in the backward
/// (gradient checkpointing off, or on for some layers) changes no gradient: the same dropout
/// masks, the same weights (here a 4-bit base, dequantized again after the forward's copy is
/// dropped), the same products.
#[test]
fn gradient_checkpointing_changes_no_gradient() {
    let mut model = tiny();
    model
        .quantize_linears(candle_core::quantized::GgmlDType::Q4_1)
        .unwrap();
    let config = LoraConfig {
        r: 4,
        lora_alpha: 8.0,
        lora_dropout: 0.25,
        target_modules: vec!["all-linear".into()],
        use_rslora: false,
    };
    model.attach_lora(&config, 7).unwrap();
    for (_, l) in model.lora_layers() {
        let shape = l.b.as_tensor().shape().clone();
        l.b.set(&Tensor::randn(0f32, 0.1, shape, &common::device()).unwrap())
            .unwrap();
    }
    model.adapters().set_training(true);
    model.adapters().set_dropout_seed(11);
    let vars: Vec<Var> = model.lora_vars();
    let (ids, labels) = batch();
    let layers = model.config().num_hidden_layers;
    assert!(layers >= 2);
    let mut grads = |checkpointed: usize| {
        model.set_checkpointed_layers(checkpointed);
        let hidden = model.forward_hidden(&ids, 0, None).unwrap();
        let loss = causal_lm_loss(model.lm_head(), &hidden, &labels).unwrap();
        let store = model.backward(&loss).unwrap();
        vars.iter()
            .map(|v| store.get(v).unwrap().clone())
            .collect::<Vec<_>>()
    };
    let every = grads(layers);
    for checkpointed in [0, 1] {
        let other = grads(checkpointed);
        for (i, (a, b)) in every.iter().zip(&other).enumerate() {
            let scale = max_abs(a);
            assert!(scale > 0.0, "parameter {i}: no gradient");
            let d = max_abs(&(a - b).unwrap()) / scale;
            assert!(
                d < 1e-6,
                "{checkpointed} checkpointed: parameter {i} differs by {d}"
            );
        }
    }
}

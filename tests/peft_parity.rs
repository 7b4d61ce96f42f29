//! LoRA on the tiny Llama of tests/fixtures/lora_tiny against PEFT + torch
//! (tests/reference/make_lora_fixture.py): loss, gradients, clipping, AdamW steps, rsLoRA,
//! adapters switched off, learning-rate schedules; and gradients through a 4-bit base.

mod common;

use candle_core::quantized::GgmlDType;
use candle_core::{Tensor, Var};
use std::collections::HashMap;
use std::path::PathBuf;
use tunelab::model::config::ModelConfig;
use tunelab::model::linear::BaseWeight;
use tunelab::model::peft::load_adapter;
use tunelab::model::safetensors_weights::SafetensorsStore;
use tunelab::model::Transformer;
use tunelab::train::loss::causal_lm_loss;
use tunelab::train::optim::{AdamW, AdamWParams, FlatGrads};
use tunelab::train::schedule::{warmup_steps_from_ratio, LrSchedule, ScheduleKind};

fn dir() -> PathBuf {
    common::fixture("lora_tiny")
}

fn reference() -> serde_json::Value {
    common::read_json("lora_tiny/reference.json")
}

fn base_model() -> Transformer {
    let config = ModelConfig::from_hf_json(&dir().join("base/config.json")).unwrap();
    let store = SafetensorsStore::open_as(
        &dir().join("base"),
        &common::device(),
        candle_core::DType::F32,
    )
    .unwrap();
    Transformer::load(&store, config, &common::device()).unwrap()
}

/// The base with the fixture's adapter, in training mode (its dropout is 0): the forward
/// that gradients are taken through.
fn tuned_model() -> Transformer {
    let mut model = base_model();
    load_adapter(&mut model, &dir().join("adapter")).unwrap();
    model.adapters().set_training(true);
    model
}

fn batch() -> (Tensor, Tensor) {
    let r = reference();
    let ids: Vec<Vec<u32>> = serde_json::from_value(r["batch"]["input_ids"].clone()).unwrap();
    let labels: Vec<Vec<i64>> = serde_json::from_value(r["batch"]["labels"].clone()).unwrap();
    (
        Tensor::new(ids, &common::device()).unwrap(),
        Tensor::new(labels, &common::device()).unwrap(),
    )
}

fn loss(model: &Transformer) -> Tensor {
    let (ids, labels) = batch();
    let hidden = model.forward_hidden(&ids, 0, None).unwrap();
    causal_lm_loss(model.lm_head(), &hidden, &labels).unwrap()
}

fn scalar(t: &Tensor) -> f64 {
    t.to_scalar::<f32>().unwrap() as f64
}

fn assert_close(ours: f64, theirs: f64, rel: f64, what: &str) {
    assert!(
        (ours - theirs).abs() <= rel * theirs.abs().max(1e-6),
        "{what}: {ours} vs {theirs}"
    );
}

/// The adapter's vars under PEFT's key names.
fn lora_vars(model: &Transformer) -> Vec<(String, Var)> {
    model
        .lora_layers()
        .into_iter()
        .flat_map(|(m, l)| {
            [
                (format!("base_model.model.{m}.lora_A.weight"), l.a.clone()),
                (format!("base_model.model.{m}.lora_B.weight"), l.b.clone()),
            ]
        })
        .collect()
}

fn load(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(dir().join(name), &common::device()).unwrap()
}

#[test]
fn loss_and_logits_match_peft() {
    let r = reference();
    let model = tuned_model();
    assert_close(
        scalar(&loss(&model)),
        r["loss"].as_f64().unwrap(),
        1e-5,
        "loss",
    );
    let (ids, _) = batch();
    let logits = model.forward(&ids, 0, None).unwrap();
    let last: Vec<f32> = logits.get(0).unwrap().get(11).unwrap().to_vec1().unwrap();
    let expected: Vec<f32> = serde_json::from_value(r["logits_row0_last"].clone()).unwrap();
    let diff = last
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-4, "last logits differ by {diff}");
}

#[test]
fn switched_off_adapters_and_rslora_match_peft() {
    let r = reference();
    let model = tuned_model();
    model.adapters().set_enabled(false);
    assert_close(
        scalar(&loss(&model)),
        r["loss_base"].as_f64().unwrap(),
        1e-5,
        "base loss",
    );
    model.adapters().set_enabled(true);
    assert_close(
        scalar(&loss(&model)),
        r["loss"].as_f64().unwrap(),
        1e-5,
        "loss after switching back on",
    );

    let rs = common::scratch_dir("rslora_adapter");
    std::fs::copy(
        dir().join("adapter/adapter_model.safetensors"),
        rs.join("adapter_model.safetensors"),
    )
    .unwrap();
    let mut config: serde_json::Value = common::read_json("lora_tiny/adapter/adapter_config.json");
    config["use_rslora"] = serde_json::Value::Bool(true);
    std::fs::write(rs.join("adapter_config.json"), config.to_string()).unwrap();
    let mut model = base_model();
    load_adapter(&mut model, &rs).unwrap();
    assert_close(
        scalar(&loss(&model)),
        r["loss_rslora"].as_f64().unwrap(),
        1e-5,
        "rsLoRA loss",
    );
}

#[test]
fn gradients_clipping_and_adamw_steps_match_torch() {
    let r = reference();
    let model = tuned_model();
    let named = lora_vars(&model);
    assert_eq!(named.len(), 42);
    let vars: Vec<Var> = named.iter().map(|(_, v)| v.clone()).collect();
    let store = model.backward(&loss(&model)).unwrap();
    let expected = load("grads.safetensors");
    for (k, v) in &named {
        let d = common::rel_diff(store.get(v).unwrap(), &expected[k]);
        assert!(d < 1e-4, "{k}: gradient differs by {d} (relative)");
    }
    let mut grads = FlatGrads::gather(&store, &vars).unwrap();
    let norm = grads.clip(1.0).unwrap().to_scalar::<f64>().unwrap();
    assert_close(
        norm,
        r["grad_global_norm"].as_f64().unwrap(),
        1e-5,
        "grad norm",
    );
    let clipped = load("grads_clipped.safetensors");
    for (i, (k, _)) in named.iter().enumerate() {
        assert!(
            common::rel_diff(&grads.part(i).unwrap(), &clipped[k]) < 1e-4,
            "{k}: clipped gradient"
        );
    }

    let o = &r["optimizer"];
    let params = AdamWParams {
        lr: o["lr"].as_f64().unwrap(),
        beta1: o["betas"][0].as_f64().unwrap(),
        beta2: o["betas"][1].as_f64().unwrap(),
        eps: o["eps"].as_f64().unwrap(),
        weight_decay: o["weight_decay"].as_f64().unwrap(),
    };
    let mut adamw = AdamW::new(vars.clone(), params).unwrap();
    adamw.step(&grads).unwrap();
    let after1 = load("after_step1.safetensors");
    for (k, v) in &named {
        assert!(
            common::rel_diff(v.as_tensor(), &after1[k]) < 1e-5,
            "{k}: after step 1"
        );
    }
    let l1 = loss(&model);
    assert_close(
        scalar(&l1),
        r["loss_after_step1"].as_f64().unwrap(),
        1e-5,
        "loss after step 1",
    );
    let mut grads = FlatGrads::gather(&model.backward(&l1).unwrap(), &vars).unwrap();
    let norm2 = grads.clip(1.0).unwrap().to_scalar::<f64>().unwrap();
    assert_close(
        norm2,
        r["grad_global_norm_step2"].as_f64().unwrap(),
        1e-4,
        "grad norm 2",
    );
    adamw.step(&grads).unwrap();
    let after2 = load("after_step2.safetensors");
    for (k, v) in &named {
        assert!(
            common::rel_diff(v.as_tensor(), &after2[k]) < 1e-4,
            "{k}: after step 2"
        );
    }
    assert_close(
        scalar(&loss(&model)),
        r["loss_after_step2"].as_f64().unwrap(),
        1e-4,
        "loss after step 2",
    );
}

#[test]
fn schedules_match_transformers() {
    let s = common::read_json("lora_tiny/schedules.json");
    let total = s["num_training_steps"].as_u64().unwrap() as usize;
    let warmup = warmup_steps_from_ratio(s["warmup_ratio"]["ratio"].as_f64().unwrap(), total);
    assert_eq!(
        warmup as u64,
        s["warmup_ratio"]["warmup_steps"].as_u64().unwrap()
    );
    for (key, kind) in [
        ("constant_with_warmup", ScheduleKind::Constant),
        ("linear", ScheduleKind::Linear),
        ("cosine", ScheduleKind::Cosine),
    ] {
        let schedule = LrSchedule {
            kind,
            base_lr: s["base_lr"].as_f64().unwrap(),
            warmup_steps: s["num_warmup_steps"].as_u64().unwrap() as usize,
            total_steps: total,
        };
        let expected: Vec<f64> = serde_json::from_value(s[key].clone()).unwrap();
        assert_eq!(expected.len(), total);
        for (step, lr) in expected.iter().enumerate() {
            assert!(
                (schedule.lr_at(step) - lr).abs() < 1e-12,
                "{key} step {step}: {} vs {lr}",
                schedule.lr_at(step)
            );
        }
    }
}

/// Gradients of layer-0 adapters flow back through the frozen 4-bit layers above them and
/// equal those through the same weights held dense (both computed here, in f32).
#[test]
fn gradients_through_a_4bit_base_equal_the_dense_ones() {
    let mut quantized = tuned_model();
    quantized.quantize_linears(GgmlDType::Q4_1).unwrap();
    let mut dense = tuned_model();
    for ((_, q), (_, d)) in quantized.named_linears().zip(dense.named_linears_mut()) {
        let w = q.dequantized(candle_core::DType::F32).unwrap();
        assert!(matches!(q.weight(), BaseWeight::Quantized(_)));
        let lora = d.lora().cloned();
        *d = tunelab::model::linear::Linear::new(BaseWeight::Dense(w)).unwrap();
        d.set_lora(lora);
    }
    let gq = quantized.backward(&loss(&quantized)).unwrap();
    let gd = dense.backward(&loss(&dense)).unwrap();
    let mut checked = 0;
    for ((name, vq), (_, vd)) in lora_vars(&quantized).iter().zip(lora_vars(&dense).iter()) {
        if !name.contains(".layers.0.") {
            continue;
        }
        let (a, b) = (gq.get(vq).unwrap(), gd.get(vd).unwrap());
        assert!(
            a.abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                > 1e-3,
            "{name}: no gradient"
        );
        let d = common::rel_diff(a, b);
        assert!(
            d < 1e-4,
            "{name}: 4-bit vs dense gradient differs by {d} (relative)"
        );
        checked += 1;
    }
    assert_eq!(checked, 14);
}

/// The gradients as training computes them on this device: on a GPU in bf16 activations,
/// through the layer nodes and the fused kernels, against PEFT's f32 ones with a bf16
/// tolerance (on the CPU, f32 as above); with every layer checkpointed, none, and one.
#[test]
fn gradients_in_the_training_dtype_match_peft() {
    let mut model = tuned_model();
    let device = common::device();
    let tol = if device.is_cuda() {
        model.set_activation_dtype(candle_core::DType::BF16);
        5e-2
    } else {
        1e-4
    };
    let expected = load("grads.safetensors");
    let layers = model.config().num_hidden_layers;
    for checkpointed in [layers, 0, 1] {
        model.set_checkpointed_layers(checkpointed);
        let grads = model.backward(&loss(&model)).unwrap();
        for (k, v) in &lora_vars(&model) {
            let got = grads
                .get(v)
                .unwrap()
                .to_dtype(candle_core::DType::F32)
                .unwrap();
            let d = common::rel_diff(&got, &expected[k].to_device(&device).unwrap());
            assert!(
                d < tol,
                "{checkpointed} layers checkpointed, {k}: gradient differs by {d} (relative)"
            );
        }
    }
}

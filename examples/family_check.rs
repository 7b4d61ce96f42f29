//! One training forward and backward of a Hugging Face model folder with its PEFT adapter, on
//! the chosen device in the training dtype (bf16 on CUDA), for the GPU parity check of
//! tests/gpu/family_bf16.py: writes the logits of the batch, the loss and every LoRA gradient.
//!
//!   cargo run --release --features cuda --example family_check -- FOLDER BATCH.json OUT.safetensors

use anyhow::{Context, Result};
use candle_core::{DType, Tensor};
use std::collections::HashMap;
use tunelab::device::{open, DeviceChoice};
use tunelab::model::config::ModelConfig;
use tunelab::model::peft::load_adapter;
use tunelab::model::safetensors_weights::SafetensorsStore;
use tunelab::model::Transformer;
use tunelab::train::loss::causal_lm_loss;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [folder, batch, out] = args.as_slice() else {
        anyhow::bail!("usage: family_check FOLDER BATCH.json OUT.safetensors");
    };
    let device = open(DeviceChoice::Auto)?;
    let folder = std::path::Path::new(folder);
    let config = ModelConfig::from_hf_json(&folder.join("config.json"))?;
    let store = SafetensorsStore::open(folder, &device)?;
    let mut model = Transformer::load(&store, config, &device)?;
    load_adapter(&mut model, &folder.join("adapter"))?;
    model.adapters().set_training(true);
    let batch: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(batch)?)?;
    let rows = |key: &str| -> Result<Vec<Vec<i64>>> {
        serde_json::from_value(batch[key].clone()).with_context(|| key.to_string())
    };
    let ids = Tensor::new(rows("input_ids")?, &device)?.to_dtype(DType::U32)?;
    let labels = Tensor::new(rows("labels")?, &device)?;
    let hidden = model.forward_hidden(&ids, 0, None)?;
    let loss = causal_lm_loss(model.lm_head(), &hidden, &labels)?;
    let grads = model.backward(&loss)?;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let logits = model.logits(&hidden)?.to_dtype(DType::F32)?;
    tensors.insert("logits".into(), logits);
    tensors.insert("loss".into(), loss.to_dtype(DType::F32)?.reshape(1)?);
    for (module, lora) in model.lora_layers() {
        for (part, var) in [("A", &lora.a), ("B", &lora.b)] {
            let g = grads.get(var).context("an adapter got no gradient")?;
            let key = format!("base_model.model.{module}.lora_{part}.weight");
            tensors.insert(key, g.to_dtype(DType::F32)?);
        }
    }
    candle_core::safetensors::save(&tensors, out)?;
    println!("loss {}", loss.to_dtype(DType::F32)?.to_scalar::<f32>()?);
    Ok(())
}

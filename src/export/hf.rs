//! The merged model as a Hugging Face folder: config.json (the family's architecture), model.safetensors
//! (sharded with model.safetensors.index.json past `max_shard_bytes`), tokenizer.json,
//! tokenizer_config.json with the chat template, generation_config.json with every stop id.
//! Quantized weights are dequantized. The folder appears whole or not at all.

use super::merge::{merged_weights, AdapterKept, MergedWeight};
use crate::fsutil::{set_default_permissions, write_dir_atomically};
use crate::model::LoadedModel;
use anyhow::{Context, Result};
use candle_core::{DType, Tensor};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Shards of at most 2 GB: larger single files trouble some uploaders and filesystems.
pub const MAX_SHARD_BYTES: u64 = 2_000_000_000;

pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// Writes `loaded` (adapters merged) into `dir`, replacing nothing until it is complete; returns
/// how much of the adapter the rounding to `dtype` kept.
pub fn write_hf_folder(
    loaded: &LoadedModel,
    dir: &Path,
    dtype: DType,
    max_shard_bytes: u64,
    progress: &mut dyn FnMut(&str),
) -> Result<AdapterKept> {
    let mut kept = AdapterKept::default();
    write_dir_atomically(dir, |tmp| {
        write_metadata(loaded, tmp, dtype)?;
        write_weights(loaded, tmp, dtype, max_shard_bytes, &mut kept, progress)
    })?;
    Ok(kept)
}

/// The name llama.cpp and transformers give a float type.
pub fn torch_dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::BF16 => "bfloat16",
        DType::F16 => "float16",
        _ => "float32",
    }
}

fn write_metadata(loaded: &LoadedModel, dir: &Path, dtype: DType) -> Result<()> {
    let c = loaded.model.config();
    let tok = &loaded.tokenizer;
    let (bos, eos) = (loaded.template.bos_token(), loaded.template.eos_token());
    let id = |t: &str| tok.token_to_id(t);
    let eos_id = id(eos).or(loaded.stop_ids.first().copied());
    let mut config = c.to_hf_json()?;
    let extra = json!({
        "initializer_range": 0.02,
        "use_cache": true,
        "torch_dtype": torch_dtype_name(dtype),
        "bos_token_id": id(bos),
        "eos_token_id": eos_id,
        "pad_token_id": eos_id,
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        config[k] = v.clone();
    }
    let eos_text = eos_id.and_then(|i| tok.id_to_token(i)).unwrap_or_default();
    let tokenizer_config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": loaded.template.source(),
        "bos_token": if bos.is_empty() { None } else { Some(bos) },
        "eos_token": eos_text,
        "pad_token": eos_text,
        "add_bos_token": loaded.bos_id.is_some(),
        "add_eos_token": false,
        "model_max_length": c.max_position_embeddings,
        "clean_up_tokenization_spaces": false,
    });
    // transformers stops at any of eos_token_id's ids: the end-of-turn token must be there.
    let generation_config = json!({
        "bos_token_id": id(bos),
        "eos_token_id": loaded.stop_ids,
        "pad_token_id": eos_id,
    });
    for (file, value) in [
        ("config.json", config),
        ("tokenizer_config.json", tokenizer_config),
        ("generation_config.json", generation_config),
    ] {
        write_json(&dir.join(file), &value)?;
    }
    tok.save(&dir.join("tokenizer.json"))
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(value)?)
        .with_context(|| format!("{}: cannot write", path.display()))
}

/// Splits the weights into consecutive shards of at most `max_bytes` each (a weight larger
/// than that gets a shard of its own).
fn plan_shards<'a>(
    weights: Vec<MergedWeight<'a>>,
    dtype: DType,
    max_bytes: u64,
) -> Vec<Vec<MergedWeight<'a>>> {
    let mut shards: Vec<Vec<MergedWeight>> = vec![];
    let mut size = 0u64;
    for w in weights {
        let bytes = (w.shape().iter().product::<usize>() * dtype.size_in_bytes()) as u64;
        match shards.last_mut() {
            Some(shard) if size + bytes <= max_bytes => shard.push(w),
            _ => {
                shards.push(vec![w]);
                size = 0;
            }
        }
        size += bytes;
    }
    shards
}

fn write_weights(
    loaded: &LoadedModel,
    dir: &Path,
    dtype: DType,
    max_shard_bytes: u64,
    kept: &mut AdapterKept,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let shards = plan_shards(merged_weights(&loaded.model), dtype, max_shard_bytes);
    let count = shards.len();
    let mut weight_map = BTreeMap::new();
    let mut total_size = 0u64;
    let format = HashMap::from([("format".to_string(), "pt".to_string())]);
    for (i, shard) in shards.iter().enumerate() {
        let file = if count == 1 {
            "model.safetensors".to_string()
        } else {
            format!("model-{:05}-of-{count:05}.safetensors", i + 1)
        };
        let mut tensors: Vec<(String, Tensor)> = Vec::with_capacity(shard.len());
        for w in shard {
            let (merged, delta) = w.tensor()?;
            let stored = merged.to_dtype(dtype)?;
            if let Some(delta) = delta {
                kept.add(&stored, &merged, &delta)?;
            }
            tensors.push((w.name.clone(), stored));
        }
        for (name, t) in &tensors {
            total_size += (t.elem_count() * dtype.size_in_bytes()) as u64;
            weight_map.insert(name.clone(), file.clone());
        }
        let path = dir.join(&file);
        progress(&format!(
            "writing {file} ({}/{count}, {} tensors)",
            i + 1,
            shard.len()
        ));
        safetensors::serialize_to_file(tensors, Some(format.clone()), &path)
            .with_context(|| format!("{}: cannot write", path.display()))?;
        set_default_permissions(&path)?;
    }
    if count > 1 {
        let index = json!({
            "metadata": { "total_size": total_size },
            "weight_map": weight_map,
        });
        write_json(&dir.join(INDEX_FILE), &index)?;
    }
    Ok(())
}

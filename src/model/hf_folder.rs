//! Writes a loaded model as a Hugging Face folder (config.json, model.safetensors,
//! tokenizer.json, tokenizer_config.json, generation_config.json), quantized weights
//! dequantized. The folder appears whole or not at all: it is written beside its final name
//! and renamed into place.

use super::loaded::LoadedModel;
use crate::fsutil::write_dir_atomically;
use anyhow::{bail, Context, Result};
use candle_core::DType;
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;

pub fn save_hf_folder(loaded: &LoadedModel, dir: &Path, dtype: DType) -> Result<()> {
    if dir.exists() {
        bail!("{}: already exists; choose a new folder", dir.display());
    }
    write_dir_atomically(dir, |tmp| write_files(loaded, tmp, dtype))
}

fn write_files(loaded: &LoadedModel, dir: &Path, dtype: DType) -> Result<()> {
    let c = loaded.model.config();
    let tok = &loaded.tokenizer;
    let token = |t: &str| tok.token_to_id(t);
    let eos_text = loaded
        .stop_ids
        .first()
        .and_then(|&id| tok.id_to_token(id))
        .unwrap_or_default();
    let torch_dtype = match dtype {
        DType::BF16 => "bfloat16",
        DType::F16 => "float16",
        _ => "float32",
    };
    let config = json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_act": "silu",
        "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_hidden_layers,
        "num_attention_heads": c.num_attention_heads,
        "num_key_value_heads": c.num_key_value_heads,
        "head_dim": c.head_dim(),
        "vocab_size": c.vocab_size,
        "max_position_embeddings": c.max_position_embeddings,
        "rope_theta": c.rope_theta,
        "rms_norm_eps": c.rms_norm_eps,
        "tie_word_embeddings": c.tie_word_embeddings,
        "attention_bias": false,
        "mlp_bias": false,
        "torch_dtype": torch_dtype,
        "eos_token_id": loaded.stop_ids.first(),
    });
    let tokenizer_config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": loaded.template.source(),
        "eos_token": eos_text,
        "pad_token": eos_text,
        "add_bos_token": false,
        "model_max_length": c.max_position_embeddings,
        "clean_up_tokenization_spaces": false,
    });
    let generation_config =
        json!({ "eos_token_id": loaded.stop_ids, "pad_token_id": token(&eos_text) });
    for (file, value) in [
        ("config.json", config),
        ("tokenizer_config.json", tokenizer_config),
        ("generation_config.json", generation_config),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, serde_json::to_string_pretty(&value)?)
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    tok.save(&dir.join("tokenizer.json"))?;
    let tensors: HashMap<String, candle_core::Tensor> =
        loaded.model.dense_weights(dtype)?.into_iter().collect();
    let path = dir.join("model.safetensors");
    candle_core::safetensors::save(&tensors, &path)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(())
}

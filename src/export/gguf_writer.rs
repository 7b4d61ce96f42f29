//! The merged model as a GGUF file for llama.cpp: the family's `{arch}.*` keys, the
//! tokenizer (`tokenizer.ggml.*`: vocabulary, merges, token types, pre-tokenizer, special ids,
//! chat template), and every tensor under llama.cpp's name, with the q and k rows permuted back
//! into llama.cpp's RoPE layout (the inverse of what `model::gguf` undoes at load).

use super::merge::{merged_weights, AdapterKept, MergedWeight};
use crate::fsutil::write_file_atomically_with;
use crate::model::gguf::{gguf_bias_name, gguf_name};
use crate::model::linear::ggml_type_name;
use crate::model::rope_scaling::RopeScaling;
use crate::model::LoadedModel;
use crate::model::ModelConfig;
use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Tensor;
use std::path::Path;

/// Writes `loaded` (adapters merged) to `path` with its matrices stored as `target`, atomically.
/// Returns one line per tensor type used ("Q4_K: 150 tensors") and how much of the adapter the
/// rounding kept.
pub fn write_gguf(
    loaded: &LoadedModel,
    path: &Path,
    target: GgmlDType,
    name: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<(Vec<String>, AdapterKept)> {
    let metadata = metadata(loaded, target, name)?;
    let weights = merged_weights(&loaded.model);
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(weights.len());
    let mut kept = AdapterKept::default();
    let mut reported = 0;
    for (i, w) in weights.iter().enumerate() {
        tensors.push(gguf_tensor(loaded, w, target, &mut kept)?);
        let percent = (i + 1) * 100 / weights.len();
        if percent >= reported + 10 || i + 1 == weights.len() {
            reported = percent;
            progress(&format!(
                "merging and quantizing: {}/{} tensors ({percent}%)",
                i + 1,
                weights.len()
            ));
        }
    }
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for (_, t) in &tensors {
        *counts.entry(ggml_type_name(t.dtype())).or_default() += 1;
    }
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    write_file_atomically_with(path, |file| {
        gguf_file::write(file, &md, &ts).context("writing GGUF")?;
        Ok(())
    })?;
    let types = counts
        .into_iter()
        .map(|(t, n)| format!("{t}: {n} tensors"))
        .collect();
    Ok((types, kept))
}

/// llama.cpp's `general.file_type` (its `llama_ftype`) for a target type.
fn file_type(target: GgmlDType) -> u32 {
    match target {
        GgmlDType::F32 => 0,
        GgmlDType::F16 => 1,
        GgmlDType::Q4_1 => 3,
        GgmlDType::Q8_0 => 7,
        GgmlDType::Q5_0 => 8,
        GgmlDType::Q4K => 14, // Q4_K_S: every projection Q4_K where its rows allow
        GgmlDType::BF16 => 32,
        _ => 1024, // "guessed", llama.cpp's value for a mix it does not name
    }
}

/// The storage type of one matrix: the target, or the nearest type whose block size divides
/// the row length (as llama.cpp's quantizer falls back). The embedding and output head keep
/// 8 bits when the target is a 4-bit type, as llama.cpp keeps them at higher precision.
fn matrix_type(gguf: &str, cols: usize, target: GgmlDType) -> GgmlDType {
    let float = matches!(target, GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16);
    let head = gguf == "token_embd.weight" || gguf == "output.weight";
    let first = if head && !float {
        GgmlDType::Q8_0
    } else {
        target
    };
    let fallback = match first {
        GgmlDType::Q4K => Some(GgmlDType::Q5_0),
        _ => None,
    };
    [Some(first), fallback, Some(GgmlDType::F16)]
        .into_iter()
        .flatten()
        .find(|t| cols.is_multiple_of(t.block_size()))
        .unwrap_or(GgmlDType::F32)
}

fn gguf_tensor(
    loaded: &LoadedModel,
    w: &MergedWeight,
    target: GgmlDType,
    kept: &mut AdapterKept,
) -> Result<(String, QTensor)> {
    let hf = w.name.strip_suffix(".weight").unwrap_or(&w.name);
    let c = loaded.model.config();
    let name = match hf.strip_suffix(".bias") {
        Some(stem) => gguf_bias_name(stem, c.family),
        None => gguf_name(hf, c.family),
    }
    .with_context(|| format!("no GGUF name for {}", w.name))?;
    let heads = if !c.family.gguf_permutes_qk() {
        None
    } else if hf.ends_with("self_attn.q_proj") {
        Some(c.num_attention_heads)
    } else if hf.ends_with("self_attn.k_proj") {
        Some(c.num_key_value_heads)
    } else {
        None
    };
    let layout = |t: Tensor| match heads {
        Some(n) => permute_rows(&t, n),
        None => Ok(t),
    };
    let (merged, delta) = w.tensor()?;
    let merged = layout(merged)?;
    let merged = if w.is_norm() && c.family.gguf_stores_shifted_norms() {
        (merged + 1.0)?
    } else {
        merged
    };
    let dtype = if w.is_matrix() {
        matrix_type(&name, *w.shape().last().unwrap_or(&0), target)
    } else {
        GgmlDType::F32
    };
    let q = QTensor::quantize(&merged, dtype).with_context(|| format!("quantizing {name}"))?;
    if let Some(delta) = delta {
        let stored = q.dequantize(&candle_core::Device::Cpu)?;
        kept.add(&stored, &merged, &layout(delta)?)?;
    }
    Ok((name, q))
}

/// llama.cpp's q/k permutation (convert_hf_to_gguf.py's `permute`): Hugging Face row
/// `h*d + j*d/2 + i` becomes row `h*d + 2*i + j`, so RoPE rotates interleaved pairs.
pub fn permute_rows(w: &Tensor, n_head: usize) -> Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    let d = rows / n_head;
    Ok(w.reshape((n_head, 2, d / 2, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, cols))?)
}

/// The metadata written for `loaded`, in file order.
pub fn metadata(
    loaded: &LoadedModel,
    target: GgmlDType,
    name: &str,
) -> Result<Vec<(String, Value)>> {
    let c = loaded.model.config();
    let tok = &loaded.tokenizer;
    let vocab = tok.gguf_vocab(c.vocab_size)?;
    let strings = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
    let mut md = vec![
        (
            "general.architecture",
            Value::String(c.family.gguf_architecture().into()),
        ),
        ("general.name", Value::String(name.into())),
        ("general.file_type", Value::U32(file_type(target))),
        ("general.quantization_version", Value::U32(2)),
        ("tokenizer.ggml.model", Value::String(vocab.model)),
        ("tokenizer.ggml.pre", Value::String(vocab.pre)),
        ("tokenizer.ggml.tokens", strings(vocab.tokens)),
        (
            "tokenizer.ggml.token_type",
            Value::Array(vocab.token_types.into_iter().map(Value::I32).collect()),
        ),
        (
            "tokenizer.ggml.add_bos_token",
            Value::Bool(loaded.bos_id.is_some()),
        ),
        ("tokenizer.ggml.add_eos_token", Value::Bool(false)),
        (
            "tokenizer.chat_template",
            Value::String(loaded.template.source().into()),
        ),
    ];
    let id = |t: &str| tok.token_to_id(t).map(Value::U32);
    let eos = id(loaded.template.eos_token()).or(loaded.stop_ids.first().map(|&i| Value::U32(i)));
    let eot = loaded.template.end_of_turn().and_then(id);
    for (key, value) in [
        (
            "tokenizer.ggml.bos_token_id",
            id(loaded.template.bos_token()),
        ),
        ("tokenizer.ggml.eos_token_id", eos.clone()),
        ("tokenizer.ggml.padding_token_id", eos),
        ("tokenizer.ggml.eot_token_id", eot),
    ] {
        if let Some(v) = value {
            md.push((key, v));
        }
    }
    if !vocab.merges.is_empty() {
        md.push(("tokenizer.ggml.merges", strings(vocab.merges)));
    }
    if let Some(scores) = vocab.scores {
        md.push((
            "tokenizer.ggml.scores",
            Value::Array(scores.into_iter().map(Value::F32).collect()),
        ));
    }
    let mut md: Vec<(String, Value)> = md.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    md.splice(4..4, architecture_keys(c)?);
    Ok(md)
}

/// The `{arch}.*` keys llama.cpp reads for the model's family.
fn architecture_keys(c: &ModelConfig) -> Result<Vec<(String, Value)>> {
    let arch = c.family.gguf_architecture();
    let u32_of = |n: usize| Value::U32(n as u32);
    let mut keys = vec![
        ("context_length", u32_of(c.max_position_embeddings)),
        ("embedding_length", u32_of(c.hidden_size)),
        ("block_count", u32_of(c.num_hidden_layers)),
        ("feed_forward_length", u32_of(c.intermediate_size)),
        ("rope.dimension_count", u32_of(c.head_dim())),
        ("attention.head_count", u32_of(c.num_attention_heads)),
        ("attention.head_count_kv", u32_of(c.num_key_value_heads)),
        (
            "attention.layer_norm_rms_epsilon",
            Value::F32(c.rms_norm_eps as f32),
        ),
        ("rope.freq_base", Value::F32(c.rope_theta as f32)),
        ("vocab_size", u32_of(c.vocab_size)),
    ];
    if c.explicit_head_dim.is_some() {
        keys.push(("attention.key_length", u32_of(c.head_dim())));
        keys.push(("attention.value_length", u32_of(c.head_dim())));
    }
    if let Some(window) = c.sliding_window {
        keys.push(("attention.sliding_window", u32_of(window)));
    }
    match &c.rope_scaling {
        RopeScaling::None => {}
        RopeScaling::Linear { factor } => {
            keys.push(("rope.scaling.type", Value::String("linear".into())));
            keys.push(("rope.scaling.factor", Value::F32(*factor as f32)));
        }
        RopeScaling::Llama3 { .. } | RopeScaling::PerFrequency(_) => bail!(
            "Llama 3 RoPE scaling cannot be written to GGUF yet (llama.cpp keeps it as a \
             rope_freqs tensor); export as hf or peft"
        ),
    }
    Ok(keys
        .into_iter()
        .map(|(k, v)| (format!("{arch}.{k}"), v))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gguf::unpermute_rows;

    #[test]
    fn permute_is_undone_by_the_loader() {
        let (n_head, head_dim, cols) = (3, 4, 2);
        let rows = n_head * head_dim;
        let hf: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let w = Tensor::from_vec(hf.clone(), (rows, cols), &candle_core::Device::Cpu).unwrap();
        let permuted: Vec<f32> = permute_rows(&w, n_head)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_ne!(permuted, hf);
        // Row 1 of head 0 in llama.cpp's layout is Hugging Face row d/2 (the first of the
        // second half), paired with row 0 for RoPE.
        assert_eq!(permuted[cols..2 * cols], hf[2 * cols..3 * cols]);
        let bytes: Vec<u8> = permuted.iter().flat_map(|x| x.to_le_bytes()).collect();
        let back: Vec<f32> = unpermute_rows(&bytes, rows, n_head)
            .unwrap()
            .chunks(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(back, hf);
    }

    #[test]
    fn matrix_types_fall_back_where_rows_do_not_divide() {
        use GgmlDType::*;
        let cases = [
            ("blk.0.ffn_down.weight", 1536, Q4K, Q4K),
            ("blk.0.attn_q.weight", 576, Q4K, Q5_0),
            ("token_embd.weight", 576, Q4_1, Q8_0),
            ("token_embd.weight", 576, BF16, BF16),
            ("blk.0.attn_q.weight", 40, Q8_0, F16),
        ];
        for (name, cols, target, expected) in cases {
            assert_eq!(matrix_type(name, cols, target), expected, "{name} {cols}");
        }
    }
}

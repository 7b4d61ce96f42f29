//! Weights from a GGUF file (llama.cpp's format). Quantized tensors stay quantized.
//!
//! llama.cpp's converter permutes the rows of the q and k projections so that RoPE can rotate
//! interleaved pairs. This store undoes that permutation on the raw blocks while loading (a
//! row of a quantized tensor is a run of whole blocks, so rows move as bytes, never
//! dequantized). The model then runs in the Hugging Face layout whatever the source, and
//! adapters trained here line up with PEFT's.

use super::config::ModelConfig;
use super::family::Family;
use super::gguf_checks::{check_alignment, check_tensor_table};
use super::linear::{BaseWeight, Linear};
use super::rope_scaling::RopeScaling;
use super::weights::WeightStore;
use anyhow::{bail, Context, Result};
use candle_core::quantized::{ggml_file::qtensor_from_ggml, gguf_file, GgmlDType};
use candle_core::{DType, Device, Tensor};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub struct GgufStore {
    path: PathBuf,
    content: gguf_file::Content,
    file: Mutex<File>,
    file_size: u64,
    device: Device,
    /// (num_attention_heads, num_key_value_heads), for undoing the q/k row permutation.
    heads: (usize, usize),
    family: Family,
}

/// Opens a GGUF file and parses its header (metadata and tensor table).
pub fn read_header(path: &Path) -> Result<(gguf_file::Content, File, u64)> {
    let mut file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let file_size = file.metadata()?.len();
    let invalid = |e: String| anyhow::anyhow!("{}: not a valid GGUF file: {e}", path.display());
    check_alignment(&mut file).map_err(|e| invalid(format!("{e:#}")))?;
    let content = gguf_file::Content::read(&mut file).map_err(|e| invalid(e.to_string()))?;
    check_tensor_table(&content, file_size).map_err(|e| invalid(format!("{e:#}")))?;
    Ok((content, file, file_size))
}

/// The model's shape as the header gives it (RoPE frequencies stored as a tensor aside).
pub fn config_of(content: &gguf_file::Content) -> Result<ModelConfig> {
    let tied = !content.tensor_infos.contains_key("output.weight");
    let vocab_len = content
        .metadata
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.to_vec().ok())
        .map_or(0, |v| v.len());
    ModelConfig::from_gguf(content, tied, vocab_len)
}

impl GgufStore {
    pub fn open(path: &Path, device: &Device) -> Result<(Self, ModelConfig)> {
        let (content, file, file_size) = read_header(path)?;
        let mut config = config_of(&content).with_context(|| path.display().to_string())?;
        let store = Self {
            path: path.to_path_buf(),
            content,
            file: Mutex::new(file),
            file_size,
            device: device.clone(),
            heads: (config.num_attention_heads, config.num_key_value_heads),
            family: config.family,
        };
        if store.content.tensor_infos.contains_key("rope_freqs.weight") {
            config.rope_scaling = store.rope_freqs(config.head_dim())?;
        }
        Ok((store, config))
    }

    pub fn content(&self) -> &gguf_file::Content {
        &self.content
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads one tensor's raw blocks, checking every size against the file before allocating.
    fn raw(&self, gguf_name: &str) -> Result<(GgmlDType, Vec<usize>, Vec<u8>)> {
        let info =
            self.content.tensor_infos.get(gguf_name).with_context(|| {
                format!("{}: tensor {gguf_name} is missing", self.path.display())
            })?;
        let dims = info.shape.dims().to_vec();
        let elems = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n > 0)
            .with_context(|| {
                format!(
                    "{}: tensor {gguf_name} has invalid shape {dims:?}",
                    self.path.display()
                )
            })?;
        let block = info.ggml_dtype.block_size();
        if elems % block != 0 || dims.last().is_some_and(|d| d % block != 0) {
            bail!(
                "{}: tensor {gguf_name} of shape {dims:?} does not divide into {}-element blocks",
                self.path.display(),
                block
            );
        }
        let bytes = (elems / block)
            .checked_mul(info.ggml_dtype.type_size())
            .context("tensor size overflows")?;
        let start = self.content.tensor_data_offset.saturating_add(info.offset);
        if start.saturating_add(bytes as u64) > self.file_size {
            bail!(
                "{}: tensor {gguf_name} needs {bytes} bytes at offset {start} but the file has {} (truncated?)",
                self.path.display(),
                self.file_size
            );
        }
        let mut data = vec![0u8; bytes];
        let mut file = self
            .file
            .lock()
            .map_err(|_| anyhow::anyhow!("file lock poisoned"))?;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut data)
            .with_context(|| format!("{}: reading tensor {gguf_name}", self.path.display()))?;
        Ok((info.ggml_dtype, dims, data))
    }

    fn qtensor(&self, gguf_name: &str, unpermute_heads: Option<usize>) -> Result<BaseWeight> {
        let (dtype, dims, mut data) = self.raw(gguf_name)?;
        if let Some(n_head) = unpermute_heads {
            data = unpermute_rows(&data, dims[0], n_head)
                .with_context(|| format!("{}: tensor {gguf_name}", self.path.display()))?;
        }
        let q = qtensor_from_ggml(dtype, &data, dims, &self.device)?;
        Ok(BaseWeight::Quantized(Arc::new(q)))
    }
}

impl GgufStore {
    /// llama.cpp's Llama 3 RoPE scaling: one divisor per frequency.
    fn rope_freqs(&self, head_dim: usize) -> Result<RopeScaling> {
        let factors: Vec<f32> = self.dense_vector("rope_freqs.weight")?.to_vec1()?;
        let scaling = RopeScaling::PerFrequency(factors.iter().map(|&f| f as f64).collect());
        if factors.len() != head_dim / 2 || scaling.validate().is_err() {
            bail!(
                "{}: tensor rope_freqs has {} factors, expected {} positive ones",
                self.path.display(),
                factors.len(),
                head_dim / 2
            );
        }
        Ok(scaling)
    }

    fn name_of(&self, hf: &str) -> Result<String> {
        gguf_name(hf, self.family).with_context(|| format!("no GGUF name for {hf}"))
    }

    /// A 1-D tensor (norm scale, bias, RoPE factors) as f32 on the device.
    fn dense_vector(&self, gguf_name: &str) -> Result<Tensor> {
        let (dtype, dims, data) = self.raw(gguf_name)?;
        let q = qtensor_from_ggml(dtype, &data, dims, &Device::Cpu)?;
        Ok(q.dequantize(&Device::Cpu)?
            .to_dtype(DType::F32)?
            .to_device(&self.device)?)
    }
}

/// Maps a Hugging Face tensor name (without `.weight`) to llama.cpp's, for `family` (whose
/// norms sit in different places: Llama's post_attention_layernorm is the MLP's input norm,
/// Gemma's is on the attention's output).
pub fn gguf_name(hf: &str, family: Family) -> Option<String> {
    gguf_stem(hf, family).map(|n| format!("{n}.weight"))
}

/// The llama.cpp name of a projection's bias (`model.layers.0.self_attn.q_proj`).
pub fn gguf_bias_name(hf: &str, family: Family) -> Option<String> {
    gguf_stem(hf, family).map(|n| format!("{n}.bias"))
}

fn gguf_stem(hf: &str, family: Family) -> Option<String> {
    let fixed = match hf {
        "model.embed_tokens" => Some("token_embd"),
        "model.norm" => Some("output_norm"),
        "lm_head" => Some("output"),
        "rope_freqs" => Some("rope_freqs"),
        _ => None,
    };
    if let Some(n) = fixed {
        return Some(n.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let sandwich = family.block().sandwich_norms;
    let part = match part {
        "self_attn.qkv_proj" => "attn_qkv",
        "mlp.gate_up_proj" => "ffn_up",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" if sandwich => "post_attention_norm",
        "post_attention_layernorm" => "ffn_norm",
        "pre_feedforward_layernorm" if sandwich => "ffn_norm",
        "post_feedforward_layernorm" if sandwich => "post_ffw_norm",
        _ => return None,
    };
    Some(format!("blk.{layer}.{part}"))
}

/// Undoes llama.cpp's q/k permutation: Hugging Face row `h*d + j*d/2 + i` is GGUF row
/// `h*d + 2*i + j` (d = head_dim, j ∈ {0, 1}). Rows are moved as whole byte runs.
pub fn unpermute_rows(data: &[u8], rows: usize, n_head: usize) -> Result<Vec<u8>> {
    if n_head == 0 || !rows.is_multiple_of(n_head) || !data.len().is_multiple_of(rows) {
        bail!("cannot split {rows} rows into {n_head} heads");
    }
    let head_dim = rows / n_head;
    if !head_dim.is_multiple_of(2) {
        bail!("head dimension {head_dim} is odd");
    }
    let row_bytes = data.len() / rows;
    let half = head_dim / 2;
    let mut out = vec![0u8; data.len()];
    for h in 0..n_head {
        for j in 0..2 {
            for i in 0..half {
                let dst = h * head_dim + j * half + i;
                let src = h * head_dim + 2 * i + j;
                out[dst * row_bytes..(dst + 1) * row_bytes]
                    .copy_from_slice(&data[src * row_bytes..(src + 1) * row_bytes]);
            }
        }
    }
    Ok(out)
}

impl WeightStore for GgufStore {
    fn linear(&self, name: &str) -> Result<Linear> {
        let g = self.name_of(name)?;
        let permuted = self.family.gguf_permutes_qk();
        let heads = if !permuted {
            None
        } else if name.ends_with("self_attn.q_proj") {
            Some(self.heads.0)
        } else if name.ends_with("self_attn.k_proj") {
            Some(self.heads.1)
        } else {
            None
        };
        Linear::new(self.qtensor(&g, heads)?)
    }

    fn vector(&self, name: &str) -> Result<Tensor> {
        self.dense_vector(&self.name_of(name)?)
    }

    fn bias(&self, name: &str) -> Result<Tensor> {
        let g = gguf_bias_name(name, self.family)
            .with_context(|| format!("no GGUF name for {name}.bias"))?;
        self.dense_vector(&g)
    }

    fn norms_applied_form(&self) -> bool {
        self.family.gguf_stores_shifted_norms()
    }

    fn embedding(&self, name: &str) -> Result<BaseWeight> {
        self.qtensor(&self.name_of(name)?, None)
    }

    fn contains(&self, name: &str) -> bool {
        gguf_name(name, self.family).is_some_and(|g| self.content.tensor_infos.contains_key(&g))
    }

    fn activation_dtype(&self, _device: &Device) -> DType {
        // candle's quantized matmul takes f32 activations on every backend.
        DType::F32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        // llama.cpp: w.reshape(n_head, 2, d/2, cols).swapaxes(1, 2).reshape(rows, cols)
        let (n_head, head_dim) = (3, 4);
        let rows = n_head * head_dim;
        let hf: Vec<u8> = (0..rows as u8).collect();
        let mut gguf = vec![0u8; rows];
        for h in 0..n_head {
            for j in 0..2 {
                for i in 0..head_dim / 2 {
                    gguf[h * head_dim + i * 2 + j] = hf[h * head_dim + j * head_dim / 2 + i];
                }
            }
        }
        assert_ne!(gguf, hf);
        assert_eq!(unpermute_rows(&gguf, rows, n_head).unwrap(), hf);
    }

    #[test]
    fn names_map_to_llama_cpp() {
        assert_eq!(
            gguf_name("model.layers.3.mlp.down_proj", Family::Llama).unwrap(),
            "blk.3.ffn_down.weight"
        );
        assert_eq!(
            gguf_name("model.embed_tokens", Family::Llama).unwrap(),
            "token_embd.weight"
        );
        assert!(gguf_name("model.layers.x.mlp.down_proj", Family::Llama).is_none());
        let norm = "model.layers.2.post_attention_layernorm";
        assert_eq!(
            gguf_name(norm, Family::Llama).unwrap(),
            "blk.2.ffn_norm.weight"
        );
        assert_eq!(
            gguf_name(norm, Family::Gemma3).unwrap(),
            "blk.2.post_attention_norm.weight"
        );
        assert_eq!(
            gguf_name("model.layers.2.pre_feedforward_layernorm", Family::Gemma3).unwrap(),
            "blk.2.ffn_norm.weight"
        );
    }
}

//! The hyper-parameters of a Llama-family decoder, read from GGUF metadata or a `config.json`.

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The architectures this engine runs, as GGUF's `general.architecture` names them.
pub const SUPPORTED_GGUF_ARCHITECTURES: &[&str] = &["llama"];
/// The same, as a Hugging Face `config.json` names them in `architectures`.
pub const SUPPORTED_HF_ARCHITECTURES: &[&str] = &["LlamaForCausalLM"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
}

impl LlamaConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Checks the shape rules the forward pass relies on, so a bad header fails here with a
    /// message rather than later inside a matmul.
    pub fn validate(&self) -> Result<()> {
        let c = self;
        for (name, v) in [
            ("vocab_size", c.vocab_size),
            ("hidden_size", c.hidden_size),
            ("intermediate_size", c.intermediate_size),
            ("num_hidden_layers", c.num_hidden_layers),
            ("num_attention_heads", c.num_attention_heads),
            ("num_key_value_heads", c.num_key_value_heads),
            ("max_position_embeddings", c.max_position_embeddings),
        ] {
            if v == 0 || v > 1 << 24 {
                bail!("{name} = {v} is out of range");
            }
        }
        if !c.hidden_size.is_multiple_of(c.num_attention_heads) {
            bail!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                c.hidden_size,
                c.num_attention_heads
            );
        }
        if !c.num_attention_heads.is_multiple_of(c.num_key_value_heads) {
            bail!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                c.num_attention_heads,
                c.num_key_value_heads
            );
        }
        if !c.head_dim().is_multiple_of(2) {
            bail!("head dimension {} is odd; RoPE needs pairs", c.head_dim());
        }
        if !(c.rope_theta > 0.0 && c.rms_norm_eps > 0.0) {
            bail!("rope_theta and rms_norm_eps must be positive");
        }
        Ok(())
    }

    /// Reads the `llama.*` keys of a GGUF header. `tied` says whether the file has no
    /// separate `output.weight`.
    pub fn from_gguf(content: &gguf_file::Content, tied: bool, vocab_len: usize) -> Result<Self> {
        let arch = gguf_string(content, "general.architecture")?;
        if !SUPPORTED_GGUF_ARCHITECTURES.contains(&arch.as_str()) {
            bail!(
                "architecture '{arch}' is not supported (supported: {})",
                SUPPORTED_GGUF_ARCHITECTURES.join(", ")
            );
        }
        let int = |key: &str| -> Result<usize> {
            let v = content
                .metadata
                .get(&format!("{arch}.{key}"))
                .with_context(|| format!("metadata key {arch}.{key} is missing"))?;
            Ok(v.to_u64()
                .or_else(|_| v.to_u32().map(u64::from))
                .or_else(|_| v.to_i32().map(|x| x.max(0) as u64))
                .with_context(|| format!("metadata key {arch}.{key} is not an integer"))?
                as usize)
        };
        let float = |key: &str, default: f64| -> Result<f64> {
            match content.metadata.get(&format!("{arch}.{key}")) {
                None => Ok(default),
                Some(v) => v
                    .to_f32()
                    .map(f64::from)
                    .or_else(|_| v.to_f64())
                    .with_context(|| format!("metadata key {arch}.{key} is not a number")),
            }
        };
        let num_attention_heads = int("attention.head_count")?;
        let config = Self {
            vocab_size: int("vocab_size").unwrap_or(vocab_len),
            hidden_size: int("embedding_length")?,
            intermediate_size: int("feed_forward_length")?,
            num_hidden_layers: int("block_count")?,
            num_attention_heads,
            num_key_value_heads: int("attention.head_count_kv").unwrap_or(num_attention_heads),
            rope_theta: float("rope.freq_base", 10_000.0)?,
            rms_norm_eps: float("attention.layer_norm_rms_epsilon", 1e-5)?,
            max_position_embeddings: int("context_length")?,
            tie_word_embeddings: tied,
        };
        config.validate()?;
        Ok(config)
    }

    /// Reads a Hugging Face `config.json`.
    pub fn from_hf_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let raw: HfConfig = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a valid Llama config.json", path.display()))?;
        let archs = raw.architectures.clone().unwrap_or_default();
        if let Some(a) = archs
            .iter()
            .find(|a| !SUPPORTED_HF_ARCHITECTURES.contains(&a.as_str()))
        {
            bail!(
                "{}: architecture '{a}' is not supported (supported: {})",
                path.display(),
                SUPPORTED_HF_ARCHITECTURES.join(", ")
            );
        }
        let scaling = [&raw.rope_parameters, &raw.rope_scaling]
            .into_iter()
            .flatten()
            .find_map(|r| r.rope_type.clone().or(r.kind.clone()))
            .filter(|t| t != "default");
        if let Some(t) = scaling {
            bail!(
                "{}: RoPE scaling '{t}' is not supported yet (supported: default)",
                path.display()
            );
        }
        let config = Self {
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: raw.num_attention_heads,
            num_key_value_heads: raw.num_key_value_heads.unwrap_or(raw.num_attention_heads),
            rope_theta: raw
                .rope_theta
                .or(raw.rope_parameters.as_ref().and_then(|r| r.rope_theta))
                .unwrap_or(10_000.0),
            rms_norm_eps: raw.rms_norm_eps.unwrap_or(1e-5),
            max_position_embeddings: raw.max_position_embeddings.unwrap_or(2048),
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
        };
        config
            .validate()
            .with_context(|| format!("{}: invalid model shape", path.display()))?;
        Ok(config)
    }
}

/// The fields of a Hugging Face Llama `config.json` that the engine uses.
#[derive(Debug, Deserialize)]
struct HfConfig {
    architectures: Option<Vec<String>>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    rope_theta: Option<f64>,
    /// transformers ≥ 5 writes `rope_parameters: {rope_theta, rope_type}` instead.
    rope_parameters: Option<RopeParameters>,
    rope_scaling: Option<RopeParameters>,
    rms_norm_eps: Option<f64>,
    max_position_embeddings: Option<usize>,
    tie_word_embeddings: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct RopeParameters {
    rope_theta: Option<f64>,
    rope_type: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

pub(crate) fn gguf_string(content: &gguf_file::Content, key: &str) -> Result<String> {
    content
        .metadata
        .get(key)
        .with_context(|| format!("metadata key {key} is missing"))?
        .to_string()
        .cloned()
        .with_context(|| format!("metadata key {key} is not a string"))
}

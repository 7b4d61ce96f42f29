//! The hyper-parameters of a decoder, read from GGUF metadata or a `config.json`, for every
//! family in `family.rs`.

use super::family::{supported_gguf_architectures, Family, SUPPORTED_HF_ARCHITECTURES};
use super::rope_scaling::RopeScaling;
use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    #[serde(default)]
    pub family: Family,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    /// Set when a head is not hidden_size / num_attention_heads wide (Qwen3, Gemma 3).
    #[serde(default)]
    pub explicit_head_dim: Option<usize>,
    pub rope_theta: f64,
    #[serde(default)]
    pub rope_scaling: RopeScaling,
    /// The RoPE base of sliding-window layers, when it differs (Gemma 3's local layers).
    #[serde(default)]
    pub rope_local_theta: Option<f64>,
    /// How many keys a sliding-window layer sees, itself included.
    #[serde(default)]
    pub sliding_window: Option<usize>,
    #[serde(default)]
    pub sliding_layers: SlidingLayers,
    /// Gemma's attention scale is query_pre_attn_scalar^-½ rather than head_dim^-½.
    #[serde(default)]
    pub query_pre_attn_scalar: Option<f64>,
    pub rms_norm_eps: f64,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
}

/// Which layers attend through the sliding window (when the config has one).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SlidingLayers {
    /// Every layer (Mistral).
    #[default]
    All,
    /// Every layer but each n-th, which is global (Gemma 3: n = 6).
    AllButEvery(usize),
    /// As `config.json`'s `layer_types` lists them.
    Listed(Vec<bool>),
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            family: Family::Llama,
            vocab_size: 0,
            hidden_size: 0,
            intermediate_size: 0,
            num_hidden_layers: 0,
            num_attention_heads: 0,
            num_key_value_heads: 0,
            explicit_head_dim: None,
            rope_theta: 10_000.0,
            rope_scaling: RopeScaling::None,
            rope_local_theta: None,
            sliding_window: None,
            sliding_layers: SlidingLayers::All,
            query_pre_attn_scalar: None,
            rms_norm_eps: 1e-5,
            max_position_embeddings: 2048,
            tie_word_embeddings: true,
        }
    }
}

impl ModelConfig {
    pub fn head_dim(&self) -> usize {
        self.explicit_head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// The softmax scale of the attention scores.
    pub fn attention_scale(&self) -> f64 {
        1.0 / self
            .query_pre_attn_scalar
            .unwrap_or(self.head_dim() as f64)
            .sqrt()
    }

    /// The window layer `layer` attends through, if it has one.
    pub fn window_of(&self, layer: usize) -> Option<usize> {
        let window = self.sliding_window?;
        let sliding = match &self.sliding_layers {
            SlidingLayers::All => true,
            SlidingLayers::AllButEvery(n) => !(layer + 1).is_multiple_of((*n).max(1)),
            SlidingLayers::Listed(kinds) => kinds.get(layer).copied().unwrap_or(false),
        };
        sliding.then_some(window)
    }

    /// The RoPE base of layer `layer`, and whether the config's scaling applies to it.
    pub fn rope_theta_of(&self, layer: usize) -> (f64, bool) {
        match (self.rope_local_theta, self.window_of(layer)) {
            (Some(local), Some(_)) => (local, false),
            _ => (self.rope_theta, true),
        }
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
            ("head_dim", c.head_dim()),
            ("sliding_window", c.sliding_window.unwrap_or(1)),
        ] {
            if v == 0 || v > 1 << 24 {
                bail!("{name} = {v} is out of range");
            }
        }
        if c.explicit_head_dim.is_none() && !c.hidden_size.is_multiple_of(c.num_attention_heads) {
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
        let positive = |x: f64| x > 0.0 && x.is_finite();
        if !(positive(c.rope_theta)
            && positive(c.rms_norm_eps)
            && c.rope_local_theta.is_none_or(positive)
            && c.query_pre_attn_scalar.is_none_or(positive))
        {
            bail!("rope_theta, rms_norm_eps and query_pre_attn_scalar must be positive");
        }
        if let SlidingLayers::Listed(kinds) = &c.sliding_layers {
            if kinds.len() != c.num_hidden_layers {
                bail!(
                    "layer_types lists {} layers, the model has {}",
                    kinds.len(),
                    c.num_hidden_layers
                );
            }
        }
        c.rope_scaling.validate()
    }

    /// Reads the `{arch}.*` keys of a GGUF header. `tied` says whether the file has no
    /// separate `output.weight`.
    pub fn from_gguf(content: &gguf_file::Content, tied: bool, vocab_len: usize) -> Result<Self> {
        let arch = gguf_string(content, "general.architecture")?;
        let Some(family) = Family::from_gguf_architecture(&arch) else {
            bail!(
                "architecture '{arch}' is not supported (supported: {})",
                supported_gguf_architectures()
            );
        };
        let md = GgufKeys {
            content,
            arch: &arch,
        };
        let num_attention_heads = md.int("attention.head_count")?;
        let hidden_size = md.int("embedding_length")?;
        let num_hidden_layers = md.int("block_count")?;
        let gemma = family == Family::Gemma3;
        let config = Self {
            family,
            vocab_size: md.int("vocab_size").unwrap_or(vocab_len),
            hidden_size,
            intermediate_size: md.int("feed_forward_length")?,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads: md
                .int("attention.head_count_kv")
                .unwrap_or(num_attention_heads),
            explicit_head_dim: unless_implied(
                md.int("attention.key_length").ok(),
                hidden_size,
                num_attention_heads,
            ),
            rope_theta: md.float("rope.freq_base", 10_000.0)?,
            rope_scaling: RopeScaling::from_gguf(
                md.string("rope.scaling.type").as_deref(),
                md.float("rope.scaling.factor", 1.0).ok(),
            )?,
            // llama.cpp's own Gemma 3 constants: local layers at base 10000, every 6th global.
            rope_local_theta: gemma.then_some(10_000.0),
            sliding_window: md.int("attention.sliding_window").ok().filter(|_| gemma),
            sliding_layers: if gemma {
                SlidingLayers::AllButEvery(6)
            } else {
                SlidingLayers::All
            },
            // llama.cpp scales Gemma 3 27B (62 layers) by hidden/heads, the rest by head_dim.
            query_pre_attn_scalar: (gemma && num_hidden_layers == 62)
                .then(|| (hidden_size / num_attention_heads.max(1)) as f64),
            rms_norm_eps: md.float("attention.layer_norm_rms_epsilon", 1e-5)?,
            max_position_embeddings: md.int("context_length")?,
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
            .with_context(|| format!("{}: not a valid model config.json", path.display()))?;
        raw.into_config()
            .with_context(|| format!("{}: invalid model config", path.display()))
    }
}

impl ModelConfig {
    /// The `config.json` keys transformers reads for this family (the shape, RoPE, windows);
    /// `from_hf_json` reads them back to the same config.
    pub fn to_hf_json(&self) -> Result<serde_json::Value> {
        let (arch, model_type) = match (self.family, self.sliding_window) {
            // transformers' Llama ignores sliding_window; its Mistral applies it to every layer.
            (Family::Llama, Some(_)) => ("MistralForCausalLM", "mistral"),
            (family, _) => family.hf_architecture(),
        };
        let block = self.family.block();
        let mut v = serde_json::json!({
            "architectures": [arch],
            "model_type": model_type,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim(),
            "vocab_size": self.vocab_size,
            "max_position_embeddings": self.max_position_embeddings,
            "rope_theta": self.rope_theta,
            "rope_scaling": self.rope_scaling.to_hf()?,
            "rms_norm_eps": self.rms_norm_eps,
            "tie_word_embeddings": self.tie_word_embeddings,
            "attention_bias": block.qkv_bias,
            "attention_dropout": 0.0,
        });
        let o = v.as_object_mut().expect("an object");
        if block.gelu_gate {
            o.insert("hidden_activation".into(), "gelu_pytorch_tanh".into());
        } else {
            o.insert("hidden_act".into(), "silu".into());
        }
        if let Some(window) = self.sliding_window {
            o.insert("sliding_window".into(), window.into());
            let kinds: Vec<&str> = (0..self.num_hidden_layers)
                .map(|i| match self.window_of(i) {
                    Some(_) => "sliding_attention",
                    None => "full_attention",
                })
                .collect();
            o.insert("layer_types".into(), kinds.into());
            o.insert("use_sliding_window".into(), true.into());
        } else {
            o.insert("sliding_window".into(), serde_json::Value::Null);
            o.insert("use_sliding_window".into(), false.into());
        }
        if self.family == Family::Gemma3 {
            let scalar = self.query_pre_attn_scalar.unwrap_or(self.head_dim() as f64);
            o.insert("query_pre_attn_scalar".into(), scalar.into());
            let local = self.rope_local_theta.unwrap_or(self.rope_theta);
            o.insert("rope_local_base_freq".into(), local.into());
            o.insert("final_logit_softcapping".into(), serde_json::Value::Null);
            o.insert("attn_logit_softcapping".into(), serde_json::Value::Null);
        }
        Ok(v)
    }
}

/// Typed reads of one architecture's GGUF metadata keys.
struct GgufKeys<'a> {
    content: &'a gguf_file::Content,
    arch: &'a str,
}

impl GgufKeys<'_> {
    fn get(&self, key: &str) -> Option<&gguf_file::Value> {
        self.content.metadata.get(&format!("{}.{key}", self.arch))
    }

    fn int(&self, key: &str) -> Result<usize> {
        let arch = self.arch;
        let v = self
            .get(key)
            .with_context(|| format!("metadata key {arch}.{key} is missing"))?;
        Ok(v.to_u64()
            .or_else(|_| v.to_u32().map(u64::from))
            .or_else(|_| v.to_i32().map(|x| x.max(0) as u64))
            .with_context(|| format!("metadata key {arch}.{key} is not an integer"))?
            as usize)
    }

    fn float(&self, key: &str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .to_f32()
                .map(f64::from)
                .or_else(|_| v.to_f64())
                .with_context(|| format!("metadata key {}.{key} is not a number", self.arch)),
        }
    }

    fn string(&self, key: &str) -> Option<String> {
        self.get(key)?.to_string().ok().cloned()
    }
}

/// The fields of a Hugging Face `config.json` that the engine uses, in transformers 4's and
/// 5's spellings.
#[derive(Debug, Deserialize)]
struct HfConfig {
    architectures: Option<Vec<String>>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rope_theta: Option<f64>,
    rope_local_base_freq: Option<f64>,
    /// transformers ≥ 5: `{rope_theta, rope_type, …}`, or one such per layer type.
    rope_parameters: Option<serde_json::Value>,
    rope_scaling: Option<serde_json::Value>,
    rms_norm_eps: Option<f64>,
    max_position_embeddings: Option<usize>,
    tie_word_embeddings: Option<bool>,
    sliding_window: Option<usize>,
    use_sliding_window: Option<bool>,
    layer_types: Option<Vec<String>>,
    sliding_window_pattern: Option<usize>,
    #[serde(rename = "_sliding_window_pattern")]
    sliding_window_pattern_private: Option<usize>,
    query_pre_attn_scalar: Option<f64>,
    hidden_act: Option<String>,
    hidden_activation: Option<String>,
    attention_bias: Option<bool>,
    use_bidirectional_attention: Option<bool>,
    final_logit_softcapping: Option<f64>,
    attn_logit_softcapping: Option<f64>,
    partial_rotary_factor: Option<f64>,
}

impl HfConfig {
    fn family(&self) -> Result<Family> {
        let archs = self.architectures.clone().unwrap_or_default();
        let Some(first) = archs.first() else {
            return Ok(Family::Llama);
        };
        Family::from_hf_architecture(first).with_context(|| {
            format!(
                "architecture '{first}' is not supported (supported: {})",
                SUPPORTED_HF_ARCHITECTURES.join(", ")
            )
        })
    }

    /// Refuses the variations the block does not run, naming the key.
    fn check_supported(&self, family: Family) -> Result<()> {
        let act = self.hidden_activation.as_ref().or(self.hidden_act.as_ref());
        let expected = if family.block().gelu_gate {
            "gelu_pytorch_tanh"
        } else {
            "silu"
        };
        if let Some(act) = act.filter(|a| *a != expected) {
            bail!(
                "activation '{act}' is not supported for {} (expected {expected})",
                family.name()
            );
        }
        if self.attention_bias == Some(true) && !family.block().qkv_bias {
            bail!(
                "attention_bias = true is not supported for {}",
                family.name()
            );
        }
        for (key, v) in [
            ("final_logit_softcapping", self.final_logit_softcapping),
            ("attn_logit_softcapping", self.attn_logit_softcapping),
        ] {
            if v.is_some() {
                bail!("{key} is not supported yet");
            }
        }
        if self.use_bidirectional_attention == Some(true) {
            bail!("use_bidirectional_attention = true (an embedding model) is not supported");
        }
        if self.partial_rotary_factor.is_some_and(|f| f != 1.0) {
            bail!("partial_rotary_factor != 1 is not supported yet");
        }
        Ok(())
    }

    /// The sliding window and the layers it applies to.
    fn sliding(&self, family: Family) -> Result<(Option<usize>, SlidingLayers)> {
        let window = match family {
            Family::Qwen2 | Family::Qwen3 if self.use_sliding_window != Some(true) => None,
            _ => self.sliding_window,
        };
        let layers = if window.is_none() {
            SlidingLayers::All
        } else if let Some(types) = &self.layer_types {
            let kinds = types
                .iter()
                .map(|t| match t.as_str() {
                    "sliding_attention" => Ok(true),
                    "full_attention" => Ok(false),
                    other => bail!("layer_types: '{other}' is not a known layer type"),
                })
                .collect::<Result<Vec<bool>>>()?;
            if kinds.iter().all(|&k| k) {
                SlidingLayers::All
            } else {
                SlidingLayers::Listed(kinds)
            }
        } else if family == Family::Gemma3 {
            let n = self
                .sliding_window_pattern
                .or(self.sliding_window_pattern_private);
            SlidingLayers::AllButEvery(n.unwrap_or(6))
        } else if matches!(family, Family::Qwen2 | Family::Qwen3) && window.is_some() {
            bail!("use_sliding_window without layer_types is not supported yet");
        } else {
            SlidingLayers::All
        };
        Ok((window, layers))
    }

    /// The RoPE bases (global, local) and the global scaling, from whichever keys are set.
    fn rope(&self) -> Result<(f64, Option<f64>, RopeScaling)> {
        let params = self.rope_parameters.as_ref();
        let per_type = |kind: &str| params.and_then(|p| p.get(kind));
        let global = per_type("full_attention").or(params);
        let theta_in = |v: Option<&serde_json::Value>| {
            v.and_then(|p| p.get("rope_theta")).and_then(|t| t.as_f64())
        };
        let partial = global.and_then(|g| g.get("partial_rotary_factor")?.as_f64());
        if partial.is_some_and(|f| f != 1.0) {
            bail!("partial_rotary_factor != 1 is not supported yet");
        }
        let theta = self.rope_theta.or(theta_in(global)).unwrap_or(10_000.0);
        let local = self
            .rope_local_base_freq
            .or(theta_in(per_type("sliding_attention")));
        let scaling = match (&self.rope_scaling, global) {
            (Some(s), _) if !s.is_null() => RopeScaling::from_hf(s)?,
            (_, Some(g)) => RopeScaling::from_hf(g)?,
            _ => RopeScaling::None,
        };
        Ok((theta, local, scaling))
    }

    fn into_config(self) -> Result<ModelConfig> {
        if self.use_sliding_window == Some(true) && self.sliding_window.is_none() {
            bail!("use_sliding_window = true but sliding_window is not set");
        }
        let family = self.family()?;
        self.check_supported(family)?;
        let (sliding_window, sliding_layers) = self.sliding(family)?;
        let (rope_theta, rope_local_theta, rope_scaling) = self.rope()?;
        let gemma = family == Family::Gemma3;
        let config = ModelConfig {
            family,
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads.unwrap_or(self.num_attention_heads),
            explicit_head_dim: unless_implied(
                self.head_dim,
                self.hidden_size,
                self.num_attention_heads,
            ),
            rope_theta,
            rope_scaling,
            rope_local_theta: rope_local_theta.filter(|_| gemma),
            sliding_window,
            sliding_layers,
            query_pre_attn_scalar: self.query_pre_attn_scalar.filter(|_| gemma),
            rms_norm_eps: self.rms_norm_eps.unwrap_or(1e-5),
            max_position_embeddings: self.max_position_embeddings.unwrap_or(2048),
            // transformers leaves the key out when it equals its base default, true; the
            // loader settles it from whether the weights hold an lm_head.
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(true),
        };
        config.validate().context("invalid model shape")?;
        Ok(config)
    }
}

/// A head width, unless it is the hidden_size / heads every config implies.
fn unless_implied(head_dim: Option<usize>, hidden: usize, heads: usize) -> Option<usize> {
    head_dim.filter(|&d| heads == 0 || d * heads != hidden)
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

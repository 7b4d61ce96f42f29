//! Models people fine-tune, by short name: what `--model` calls them and their shapes. The
//! benchmarks build random weights of these shapes; the workbench's model picker judges their
//! memory before anything is downloaded.

use super::config::{ModelConfig, SlidingLayers};
use super::family::Family;
use super::rope_scaling::RopeScaling;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownModel {
    pub short: &'static str,
    /// What `--model` takes for it: a bundled model's name or a Hub repo id.
    pub model: &'static str,
}

/// Smallest first.
pub const KNOWN: &[KnownModel] = &[
    known("smollm2-135m", "smollm2-135m"),
    known("gemma3-270m", "gemma3-270m"),
    known("smollm2-360m", "HuggingFaceTB/SmolLM2-360M-Instruct"),
    known("qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B-Instruct"),
    known("qwen3-0.6b", "Qwen/Qwen3-0.6B"),
    known("gemma3-1b", "google/gemma-3-1b-it"),
    known("llama-1b", "meta-llama/Llama-3.2-1B-Instruct"),
    known("qwen2.5-1.5b", "Qwen/Qwen2.5-1.5B-Instruct"),
    known("phi3-mini", "microsoft/Phi-3-mini-4k-instruct"),
    known("mistral-7b", "mistralai/Mistral-7B-Instruct-v0.3"),
    known("llama-8b", "meta-llama/Llama-3.1-8B-Instruct"),
];

const fn known(short: &'static str, model: &'static str) -> KnownModel {
    KnownModel { short, model }
}

pub fn by_short(short: &str) -> Option<&'static KnownModel> {
    KNOWN.iter().find(|k| k.short == short)
}

/// The known model `--model` names this way (a bundled name or a repo id, any case).
pub fn by_model(model: &str) -> Option<&'static KnownModel> {
    KNOWN.iter().find(|k| k.model.eq_ignore_ascii_case(model))
}

impl KnownModel {
    /// The shape as its config.json gives it.
    pub fn config(&self) -> ModelConfig {
        match self.short {
            "smollm2-135m" => ModelConfig {
                vocab_size: 49152,
                hidden_size: 576,
                intermediate_size: 1536,
                num_hidden_layers: 30,
                num_attention_heads: 9,
                num_key_value_heads: 3,
                rope_theta: 100_000.0,
                rms_norm_eps: 1e-5,
                max_position_embeddings: 8192,
                tie_word_embeddings: true,
                ..ModelConfig::default()
            },
            // Llama 3.2 1B's shape.
            "llama-1b" => ModelConfig {
                vocab_size: 128_256,
                hidden_size: 2048,
                intermediate_size: 8192,
                num_hidden_layers: 16,
                num_attention_heads: 32,
                num_key_value_heads: 8,
                rope_theta: 500_000.0,
                rms_norm_eps: 1e-5,
                max_position_embeddings: 8192,
                tie_word_embeddings: true,
                ..ModelConfig::default()
            },
            "qwen2.5-0.5b" => ModelConfig {
                family: Family::Qwen2,
                vocab_size: 151_936,
                hidden_size: 896,
                intermediate_size: 4864,
                num_hidden_layers: 24,
                num_attention_heads: 14,
                num_key_value_heads: 2,
                rope_theta: 1_000_000.0,
                rms_norm_eps: 1e-6,
                max_position_embeddings: 32_768,
                tie_word_embeddings: true,
                ..ModelConfig::default()
            },
            "qwen3-0.6b" => ModelConfig {
                family: Family::Qwen3,
                vocab_size: 151_936,
                hidden_size: 1024,
                intermediate_size: 3072,
                num_hidden_layers: 28,
                num_attention_heads: 16,
                num_key_value_heads: 8,
                explicit_head_dim: Some(128),
                rope_theta: 1_000_000.0,
                rms_norm_eps: 1e-6,
                max_position_embeddings: 40_960,
                tie_word_embeddings: true,
                ..ModelConfig::default()
            },
            "gemma3-1b" => ModelConfig {
                family: Family::Gemma3,
                vocab_size: 262_144,
                hidden_size: 1152,
                intermediate_size: 6912,
                num_hidden_layers: 26,
                num_attention_heads: 4,
                num_key_value_heads: 1,
                explicit_head_dim: Some(256),
                rope_theta: 1_000_000.0,
                rope_local_theta: Some(10_000.0),
                sliding_window: Some(512),
                sliding_layers: SlidingLayers::AllButEvery(6),
                query_pre_attn_scalar: Some(256.0),
                rms_norm_eps: 1e-6,
                max_position_embeddings: 32_768,
                tie_word_embeddings: true,
                ..ModelConfig::default()
            },
            // Llama 3.1 8B's shape (its own untied head, RoPE scaled as it ships).
            "llama-8b" => ModelConfig {
                vocab_size: 128_256,
                hidden_size: 4096,
                intermediate_size: 14_336,
                num_hidden_layers: 32,
                num_attention_heads: 32,
                num_key_value_heads: 8,
                rope_theta: 500_000.0,
                rope_scaling: RopeScaling::Llama3 {
                    factor: 8.0,
                    low_freq_factor: 1.0,
                    high_freq_factor: 4.0,
                    original_max_position_embeddings: 8192.0,
                },
                rms_norm_eps: 1e-5,
                max_position_embeddings: 131_072,
                tie_word_embeddings: false,
                ..ModelConfig::default()
            },
            "gemma3-270m" => ModelConfig {
                family: Family::Gemma3,
                vocab_size: 262_144,
                hidden_size: 640,
                intermediate_size: 2048,
                num_hidden_layers: 18,
                num_attention_heads: 4,
                num_key_value_heads: 1,
                explicit_head_dim: Some(256),
                rope_theta: 1_000_000.0,
                rope_local_theta: Some(10_000.0),
                sliding_window: Some(512),
                sliding_layers: SlidingLayers::AllButEvery(6),
                rms_norm_eps: 1e-6,
                max_position_embeddings: 32_768,
                tie_word_embeddings: true,
                ..ModelConfig::default()
            },
            "smollm2-360m" => ModelConfig {
                vocab_size: 49152,
                hidden_size: 960,
                intermediate_size: 2560,
                num_hidden_layers: 32,
                num_attention_heads: 15,
                num_key_value_heads: 5,
                rope_theta: 100_000.0,
                rms_norm_eps: 1e-5,
                max_position_embeddings: 8192,
                tie_word_embeddings: true,
                ..ModelConfig::default()
            },
            "qwen2.5-1.5b" => ModelConfig {
                family: Family::Qwen2,
                vocab_size: 151_936,
                hidden_size: 1536,
                intermediate_size: 8960,
                num_hidden_layers: 28,
                num_attention_heads: 12,
                num_key_value_heads: 2,
                rope_theta: 1_000_000.0,
                rms_norm_eps: 1e-6,
                max_position_embeddings: 32_768,
                tie_word_embeddings: true,
                ..ModelConfig::default()
            },
            "phi3-mini" => ModelConfig {
                family: Family::Phi3,
                vocab_size: 32_064,
                hidden_size: 3072,
                intermediate_size: 8192,
                num_hidden_layers: 32,
                num_attention_heads: 32,
                num_key_value_heads: 32,
                rope_theta: 10_000.0,
                rms_norm_eps: 1e-5,
                max_position_embeddings: 4096,
                tie_word_embeddings: false,
                ..ModelConfig::default()
            },
            "mistral-7b" => ModelConfig {
                vocab_size: 32_768,
                hidden_size: 4096,
                intermediate_size: 14_336,
                num_hidden_layers: 32,
                num_attention_heads: 32,
                num_key_value_heads: 8,
                rope_theta: 1_000_000.0,
                rms_norm_eps: 1e-5,
                max_position_embeddings: 32_768,
                tie_word_embeddings: false,
                ..ModelConfig::default()
            },
            other => unreachable!("{other} is in KNOWN without a shape"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_model_has_a_valid_shape() {
        for k in KNOWN {
            k.config()
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e:#}", k.short));
        }
    }
}

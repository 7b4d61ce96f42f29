//! Model families: the few things in which Llama, Qwen2, Qwen3, Gemma 3 and Phi-3 differ. Everything
//! else (loading, the layer's forward and backward, LoRA, generation) is written once in
//! `transformer.rs` and `layer_pass.rs` and reads these switches.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Llama 1–3, Mistral, TinyLlama, SmolLM: the plain layout.
    #[default]
    Llama,
    /// Qwen2 / Qwen2.5: biases on the q, k and v projections.
    Qwen2,
    /// Qwen3: RMSNorm on each head's queries and keys, no biases.
    Qwen3,
    /// Gemma 3 text models: see `Block` for the list.
    Gemma3,
    /// Phi-3 / Phi-3.5 mini: q, k, v fused into qkv_proj, gate and up into gate_up_proj.
    Phi3,
}

/// The variations of the decoder block a family turns on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Biases on q_proj, k_proj and v_proj.
    pub qkv_bias: bool,
    /// RMSNorm over head_dim on queries and keys before RoPE.
    pub qk_norm: bool,
    /// Norms on the attention's and the MLP's outputs, before each residual add.
    pub sandwich_norms: bool,
    /// GELU (tanh approximation) gating in the MLP instead of SiLU.
    pub gelu_gate: bool,
    /// Norm weights are stored as w and applied as (1 + w).
    pub norm_plus_one: bool,
    /// Embeddings multiplied by √hidden_size.
    pub scaled_embeddings: bool,
    /// q, k, v as one product and gate, up as another (Phi-3).
    pub fused_projections: bool,
}

/// The Hugging Face names of a layer's norms, by their place in the block.
#[derive(Debug, Clone, Copy)]
pub struct NormNames {
    pub attn_in: &'static str,
    pub mlp_in: &'static str,
    pub attn_out: Option<&'static str>,
    pub mlp_out: Option<&'static str>,
}

impl Family {
    pub const ALL: [Family; 5] = [
        Self::Llama,
        Self::Qwen2,
        Self::Qwen3,
        Self::Gemma3,
        Self::Phi3,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Qwen2 => "qwen2",
            Self::Qwen3 => "qwen3",
            Self::Gemma3 => "gemma3",
            Self::Phi3 => "phi3",
        }
    }

    pub fn block(self) -> Block {
        let plain = Block {
            qkv_bias: false,
            qk_norm: false,
            sandwich_norms: false,
            gelu_gate: false,
            norm_plus_one: false,
            scaled_embeddings: false,
            fused_projections: false,
        };
        match self {
            Self::Llama => plain,
            Self::Qwen2 => Block {
                qkv_bias: true,
                ..plain
            },
            Self::Qwen3 => Block {
                qk_norm: true,
                ..plain
            },
            Self::Gemma3 => Block {
                qk_norm: true,
                sandwich_norms: true,
                gelu_gate: true,
                norm_plus_one: true,
                scaled_embeddings: true,
                ..plain
            },
            Self::Phi3 => Block {
                fused_projections: true,
                ..plain
            },
        }
    }

    /// The family of a GGUF `general.architecture`.
    pub fn from_gguf_architecture(arch: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.gguf_architecture() == arch)
    }

    /// llama.cpp's architecture name, the prefix of its metadata keys.
    pub fn gguf_architecture(self) -> &'static str {
        self.name()
    }

    /// The family of a `config.json` `architectures` entry.
    pub fn from_hf_architecture(arch: &str) -> Option<Self> {
        match arch {
            "LlamaForCausalLM" | "MistralForCausalLM" => Some(Self::Llama),
            "Qwen2ForCausalLM" => Some(Self::Qwen2),
            "Qwen3ForCausalLM" => Some(Self::Qwen3),
            "Gemma3ForCausalLM" => Some(Self::Gemma3),
            "Phi3ForCausalLM" => Some(Self::Phi3),
            _ => None,
        }
    }

    /// The `architectures` entry and `model_type` an exported `config.json` carries.
    pub fn hf_architecture(self) -> (&'static str, &'static str) {
        match self {
            Self::Llama => ("LlamaForCausalLM", "llama"),
            Self::Qwen2 => ("Qwen2ForCausalLM", "qwen2"),
            Self::Qwen3 => ("Qwen3ForCausalLM", "qwen3"),
            Self::Gemma3 => ("Gemma3ForCausalLM", "gemma3_text"),
            Self::Phi3 => ("Phi3ForCausalLM", "phi3"),
        }
    }

    /// llama.cpp's converter permutes q and k rows only for the families whose RoPE it runs
    /// on interleaved pairs; the others it runs in the Hugging Face (NeoX) layout.
    pub fn gguf_permutes_qk(self) -> bool {
        self == Self::Llama
    }

    /// llama.cpp's converter stores Gemma's norm weights as 1 + w.
    pub fn gguf_stores_shifted_norms(self) -> bool {
        self.block().norm_plus_one
    }

    pub fn norm_names(self) -> NormNames {
        if self.block().sandwich_norms {
            NormNames {
                attn_in: "input_layernorm",
                mlp_in: "pre_feedforward_layernorm",
                attn_out: Some("post_attention_layernorm"),
                mlp_out: Some("post_feedforward_layernorm"),
            }
        } else {
            NormNames {
                attn_in: "input_layernorm",
                mlp_in: "post_attention_layernorm",
                attn_out: None,
                mlp_out: None,
            }
        }
    }
}

/// Every family's `config.json` architecture names, for messages.
pub const SUPPORTED_HF_ARCHITECTURES: &[&str] = &[
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
    "Gemma3ForCausalLM",
    "Phi3ForCausalLM",
];

/// Every family's GGUF architecture names, for messages.
pub fn supported_gguf_architectures() -> String {
    Family::ALL.map(Family::gguf_architecture).join(", ")
}

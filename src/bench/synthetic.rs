//! Models of a named shape with random weights, made on the device: benchmarks of shapes
//! whose files are not at hand. Speed does not depend on the weights' values.

use crate::model::linear::{BaseWeight, Linear};
use crate::model::weights::WeightStore;
use crate::model::{Llama, LlamaConfig};
use anyhow::{bail, Result};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use std::sync::Arc;

/// The shapes `--synthetic` knows.
pub const SHAPES: [&str; 2] = ["smollm2-135m", "llama-1b"];

pub fn shape(name: &str) -> Result<LlamaConfig> {
    Ok(match name {
        "smollm2-135m" => LlamaConfig {
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
        },
        // Llama 3.2 1B's shape.
        "llama-1b" => LlamaConfig {
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
        },
        other => bail!(
            "--synthetic {other}: unknown shape (known: {})",
            SHAPES.join(", ")
        ),
    })
}

/// Weights drawn from N(0, 0.02²) as bf16, or quantized to `quant` (embedding included, as
/// in a GGUF file); norm scales are 1.
struct RandomStore<'a> {
    config: &'a LlamaConfig,
    device: &'a Device,
    quant: Option<GgmlDType>,
}

impl RandomStore<'_> {
    fn weight(&self, rows: usize, cols: usize) -> Result<BaseWeight> {
        let w = (Tensor::randn(0f32, 1f32, (rows, cols), self.device)? * 0.02)?;
        Ok(match self.quant {
            Some(q) => BaseWeight::Quantized(Arc::new(QTensor::quantize(&w, q)?)),
            None => BaseWeight::Dense(w.to_dtype(DType::BF16)?),
        })
    }
}

impl WeightStore for RandomStore<'_> {
    fn linear(&self, name: &str) -> Result<Linear> {
        let c = self.config;
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let kv = c.num_key_value_heads * c.head_dim();
        let (rows, cols) = match name.rsplit('.').next().unwrap_or(name) {
            "q_proj" | "o_proj" => (h, h),
            "k_proj" | "v_proj" => (kv, h),
            "gate_proj" | "up_proj" => (i, h),
            "down_proj" => (h, i),
            _ => bail!("no synthetic weight named {name}"),
        };
        Linear::new(self.weight(rows, cols)?)
    }

    fn vector(&self, _name: &str) -> Result<Tensor> {
        Ok(Tensor::ones(
            self.config.hidden_size,
            DType::F32,
            self.device,
        )?)
    }

    fn embedding(&self, _name: &str) -> Result<BaseWeight> {
        self.weight(self.config.vocab_size, self.config.hidden_size)
    }

    fn contains(&self, name: &str) -> bool {
        name != "lm_head"
    }

    fn activation_dtype(&self, device: &Device) -> DType {
        if device.is_cuda() {
            DType::BF16
        } else {
            DType::F32
        }
    }
}

/// A model of shape `name` with random weights on `device`, quantized to `quant` if given.
pub fn model(name: &str, quant: Option<GgmlDType>, device: &Device) -> Result<Llama> {
    let config = shape(name)?;
    let store = RandomStore {
        config: &config,
        device,
        quant,
    };
    Llama::load(&store, config.clone(), device)
}

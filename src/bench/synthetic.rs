//! Models of a named shape with random weights, made on the device: benchmarks of shapes
//! whose files are not at hand. Speed does not depend on the weights' values.

use crate::model::linear::{BaseWeight, Linear};
use crate::model::weights::WeightStore;
use crate::model::{ModelConfig, Transformer};
use anyhow::{bail, Result};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use std::sync::Arc;

/// The shapes `--synthetic` knows: the well-known models' short names.
pub const SHAPES: [&str; 6] = [
    "smollm2-135m",
    "llama-1b",
    "qwen2.5-0.5b",
    "qwen3-0.6b",
    "gemma3-1b",
    "llama-8b",
];

pub fn shape(name: &str) -> Result<ModelConfig> {
    match crate::model::known::by_short(name) {
        Some(known) if SHAPES.contains(&name) => Ok(known.config()),
        _ => bail!(
            "--synthetic {name}: unknown shape (known: {})",
            SHAPES.join(", ")
        ),
    }
}

/// Weights drawn from N(0, 0.02²) as bf16, or quantized to `quant` (embedding included, as
/// in a GGUF file); norm scales are 1.
struct RandomStore<'a> {
    config: &'a ModelConfig,
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

impl RandomStore<'_> {
    /// The output widths of q_proj and of k_proj / v_proj.
    fn projection_widths(&self) -> (usize, usize) {
        let c = self.config;
        let hd = c.head_dim();
        (c.num_attention_heads * hd, c.num_key_value_heads * hd)
    }
}

impl WeightStore for RandomStore<'_> {
    fn linear(&self, name: &str) -> Result<Linear> {
        let c = self.config;
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let (q, kv) = self.projection_widths();
        let (rows, cols) = match name.rsplit('.').next().unwrap_or(name) {
            "q_proj" => (q, h),
            "o_proj" => (h, q),
            "k_proj" | "v_proj" => (kv, h),
            "lm_head" => (c.vocab_size, h),
            "gate_proj" | "up_proj" => (i, h),
            "down_proj" => (h, i),
            _ => bail!("no synthetic weight named {name}"),
        };
        Linear::new(self.weight(rows, cols)?)
    }

    fn vector(&self, name: &str) -> Result<Tensor> {
        let c = self.config;
        let width = if name.ends_with("q_norm") || name.ends_with("k_norm") {
            c.head_dim()
        } else {
            c.hidden_size
        };
        // Gemma applies 1 + w: zeros give the same unit scale as the others' ones.
        let value = if c.family.block().norm_plus_one {
            0.0
        } else {
            1.0
        };
        Ok((Tensor::ones(width, DType::F32, self.device)? * value)?)
    }

    fn bias(&self, name: &str) -> Result<Tensor> {
        let (q, kv) = self.projection_widths();
        let width = if name.ends_with("q_proj") { q } else { kv };
        Ok(Tensor::zeros(width, DType::F32, self.device)?)
    }

    fn embedding(&self, _name: &str) -> Result<BaseWeight> {
        self.weight(self.config.vocab_size, self.config.hidden_size)
    }

    fn contains(&self, name: &str) -> bool {
        name != "lm_head" || !self.config.tie_word_embeddings
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
pub fn model(name: &str, quant: Option<GgmlDType>, device: &Device) -> Result<Transformer> {
    let config = shape(name)?;
    let store = RandomStore {
        config: &config,
        device,
        quant,
    };
    Transformer::load(&store, config.clone(), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape is a valid config whose every tensor the random store can make: one layer
    /// of each, with a small vocabulary, built on the CPU.
    #[test]
    fn every_shape_builds() {
        for name in SHAPES {
            let mut config = shape(name).unwrap();
            config.validate().unwrap();
            config.num_hidden_layers = 1;
            config.vocab_size = 64;
            let store = RandomStore {
                config: &config,
                device: &Device::Cpu,
                quant: None,
            };
            let model = Transformer::load(&store, config.clone(), &Device::Cpu)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
            let ids = Tensor::new(&[[1u32, 2, 3]], &Device::Cpu).unwrap();
            let logits = model.forward(&ids, 0, None).unwrap();
            assert_eq!(logits.dims(), [1, 3, 64], "{name}");
        }
    }
}

//! The merged model: every weight of the base with its adapter folded in, W' = W + s · B A,
//! computed one tensor at a time (in f32, the base dequantized) so that an export never holds
//! more than one merged matrix beyond what it is writing.

use crate::model::llama::WeightRef;
use crate::model::Llama;
use anyhow::{Context, Result};
use candle_core::{DType, Tensor};

/// One weight of the merged model, computed when asked for.
pub struct MergedWeight<'a> {
    /// The Hugging Face name, `model.layers.0.self_attn.q_proj.weight`.
    pub name: String,
    weight: WeightRef<'a>,
}

impl MergedWeight<'_> {
    pub fn shape(&self) -> Vec<usize> {
        self.weight.shape()
    }

    /// Whether this is a matrix (a projection or the embedding), the tensors that quantize.
    pub fn is_matrix(&self) -> bool {
        !matches!(self.weight, WeightRef::Vector(_))
    }

    /// The weight in f32, with s · B A added where the projection has an adapter.
    pub fn tensor(&self) -> Result<Tensor> {
        let base = self.weight.dense(DType::F32)?;
        let merged = match self.weight {
            WeightRef::Linear(linear) => match linear.lora() {
                Some(lora) => (base + lora.merged_delta()?)?,
                None => base,
            },
            _ => base,
        };
        merged
            .to_device(&candle_core::Device::Cpu)
            .with_context(|| format!("merging {}", self.name))
    }
}

/// The model's weights in Hugging Face order, each with its adapter (if any) merged.
pub fn merged_weights(model: &Llama) -> Vec<MergedWeight<'_>> {
    model
        .weights()
        .into_iter()
        .map(|(name, weight)| MergedWeight { name, weight })
        .collect()
}

//! The merged model: every weight of the base with its adapter folded in, W' = W + s · B A,
//! computed one tensor at a time (in f32, the base dequantized) so that an export never holds
//! more than one merged matrix beyond what it is writing.

use crate::model::transformer::WeightRef;
use crate::model::Transformer;
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};

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
        !matches!(self.weight, WeightRef::Vector(_) | WeightRef::Norm(_))
    }

    /// Whether this is a norm's scale (stored as 1 + w in a Gemma GGUF).
    pub fn is_norm(&self) -> bool {
        matches!(self.weight, WeightRef::Norm(_))
    }

    /// The weight in f32 on the CPU, W + s · B A where the projection has an adapter, and that
    /// s · B A.
    pub fn tensor(&self) -> Result<(Tensor, Option<Tensor>)> {
        let merge = || -> Result<(Tensor, Option<Tensor>)> {
            let base = self.weight.dense(DType::F32)?.to_device(&Device::Cpu)?;
            let delta = match self.weight {
                WeightRef::Linear(linear) => linear
                    .lora()
                    .map(|lora| {
                        Ok::<_, anyhow::Error>(lora.merged_delta()?.to_device(&Device::Cpu)?)
                    })
                    .transpose()?,
                _ => None,
            };
            Ok(match delta {
                Some(d) => ((base + &d)?, Some(d)),
                None => (base, None),
            })
        };
        merge().with_context(|| format!("merging {}", self.name))
    }
}

/// The model's weights in Hugging Face order, each with its adapter (if any) merged.
pub fn merged_weights(model: &Transformer) -> Vec<MergedWeight<'_>> {
    model
        .weights()
        .into_iter()
        .map(|(name, weight)| MergedWeight { name, weight })
        .collect()
}

/// How much of the adapters' weight change survives storing the merged weights in a coarser
/// type: the change actually stored, projected on the intended one, summed over every adapted
/// matrix. A 4-bit grid can round a small change away entirely.
#[derive(Debug, Default, Clone, Copy)]
pub struct AdapterKept {
    dot: f64,
    norm2: f64,
}

impl AdapterKept {
    /// Adds one matrix: `stored` as written (rounded, back in f32), `merged` = W + `delta`.
    pub fn add(&mut self, stored: &Tensor, merged: &Tensor, delta: &Tensor) -> Result<()> {
        let sum = |t: Tensor| -> Result<f64> {
            Ok(t.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?)
        };
        let change = (stored.to_dtype(DType::F32)? - (merged - delta)?)?;
        self.dot += sum((change * delta)?)?;
        self.norm2 += sum(delta.sqr()?)?;
        Ok(())
    }

    /// The kept fraction (1 = all of it), or None without adapters.
    pub fn fraction(&self) -> Option<f64> {
        (self.norm2 > 0.0).then(|| self.dot / self.norm2)
    }

    /// A line for the export's summary, with a warning when most of the adapter is lost.
    pub fn note(&self, storage: &str) -> Option<String> {
        let kept = self.fraction()?;
        let mut line = format!(
            "adapter kept through {storage} rounding: {:.0}% of its weight change",
            kept * 100.0
        );
        if kept < 0.5 {
            line.push_str(
                "; warning: most of the adapter is rounded away, export with --quant q8_0 or --dtype f16",
            );
        }
        Some(line)
    }
}

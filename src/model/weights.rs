//! Where the model's tensors come from. The model asks for tensors by their Hugging Face
//! names (`model.layers.0.self_attn.q_proj`); each store maps those to its own file layout.

use super::linear::{BaseWeight, Linear};
use anyhow::Result;
use candle_core::{DType, Device, Tensor};

pub trait WeightStore {
    /// A linear layer's weight, `name` without the `.weight` suffix.
    fn linear(&self, name: &str) -> Result<Linear>;
    /// A 1-D tensor (norm scales), as f32.
    fn vector(&self, name: &str) -> Result<Tensor>;
    /// The token embedding table as a weight of shape (vocab, hidden).
    fn embedding(&self, name: &str) -> Result<BaseWeight>;
    /// A projection's bias, `name` without the `.bias` suffix, as f32.
    fn bias(&self, name: &str) -> Result<Tensor> {
        anyhow::bail!("tensor {name}.bias is missing")
    }
    /// Whether norm scales are stored as applied, 1 + w for Gemma (as llama.cpp writes them),
    /// rather than as Hugging Face's w.
    fn norms_applied_form(&self) -> bool {
        false
    }
    /// Whether a tensor of that name (without `.weight`) exists.
    fn contains(&self, name: &str) -> bool;
    /// The dtype activations run in for this store on `device`.
    fn activation_dtype(&self, device: &Device) -> DType;
}

/// Looks up rows of an embedding table: quantized tables are dequantized row by row.
pub fn embed(table: &BaseWeight, ids: &Tensor, dtype: DType) -> Result<Tensor> {
    Ok(match table {
        BaseWeight::Quantized(q) => q.embedding(ids)?.to_dtype(dtype)?,
        BaseWeight::Dense(t) => {
            let (b, s) = ids.dims2()?;
            let hidden = t.dim(1)?;
            t.index_select(&ids.flatten_all()?, 0)?
                .reshape((b, s, hidden))?
                .to_dtype(dtype)?
        }
    })
}

/// The tied output head reuses the embedding table without a copy.
pub fn tied_head(table: &BaseWeight) -> Result<Linear> {
    Linear::new(table.clone())
}

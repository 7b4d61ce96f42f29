//! Rotary embeddings as one node: candle's rope kernel forward; backward is the inverse
//! rotation (sin negated), so nothing but the tables is kept.

use super::Fused;
use candle_core::{Result, Tensor};

pub struct Rope {
    /// (seq, head_dim/2), or (batch, seq, head_dim/2) for per-row positions; f32.
    pub cos: Tensor,
    pub sin: Tensor,
}

fn rotate(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let dtype = x.dtype();
    candle_nn::rotary_emb::rope(
        &x.contiguous()?,
        &cos.to_dtype(dtype)?.contiguous()?,
        &sin.to_dtype(dtype)?.contiguous()?,
    )
}

impl Fused for Rope {
    fn name(&self) -> &'static str {
        "rope"
    }

    fn forward(&self, args: &[Tensor]) -> Result<Tensor> {
        rotate(&args[0], &self.cos, &self.sin)
    }

    fn backward(
        &self,
        _args: &[Tensor],
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(rotate(grad, &self.cos, &self.sin.neg()?)?)])
    }
}

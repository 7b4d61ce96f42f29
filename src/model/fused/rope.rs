//! Rotary embeddings as one node: candle's rope kernel forward; backward is the inverse
//! rotation (sin negated), so nothing but the tables is kept.

use super::kernels::{self, Arg, Kernel};
use super::Fused;
use candle_core::{DType, Result, Tensor};

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

/// (batch, seq, heads·head_dim) → (batch, heads, seq, head_dim), contiguous.
pub fn split(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, s, width) = x.dims3()?;
    let d = width / heads;
    match kernels::heads_transpose(x, (b, s, heads, d), true)? {
        Some(t) => Ok(t),
        None => x.reshape((b, s, heads, d))?.transpose(1, 2)?.contiguous(),
    }
}

/// (batch, heads, seq, head_dim) → (batch, seq, heads·head_dim), contiguous.
pub fn merge(x: &Tensor) -> Result<Tensor> {
    let (b, h, s, d) = x.dims4()?;
    match kernels::heads_transpose(x, (b, s, h, d), false)? {
        Some(t) => t.reshape((b, s, h * d)),
        None => x.transpose(1, 2)?.contiguous()?.reshape((b, s, h * d)),
    }
}

impl Rope {
    /// A projection's output (batch, seq, heads·head_dim) split into heads and rotated:
    /// (batch, heads, seq, head_dim). On the GPU one kernel does both.
    pub fn split_heads(&self, x: &Tensor, heads: usize) -> Result<Tensor> {
        if !kernels::usable(x) {
            return self.forward(&[split(x, heads)?]);
        }
        let (b, s, width) = x.dims3()?;
        let d = width / heads;
        let out = (b, heads, s, d);
        self.kernel("rope_split_bf16", x, (b, s, heads, d), out)
    }

    /// The gradient of `split_heads`' input from its output's `g` (batch, heads, seq,
    /// head_dim): (batch, seq, heads·head_dim).
    pub fn merge_heads_backward(&self, g: &Tensor) -> Result<Tensor> {
        if !kernels::usable(g) {
            return merge(&rotate(g, &self.cos, &self.sin.neg()?)?);
        }
        let (b, h, s, d) = g.dims4()?;
        self.kernel("rope_merge_bwd_bf16", g, (b, s, h, d), (b, s, h * d))
    }

    fn kernel(
        &self,
        name: &'static str,
        x: &Tensor,
        (b, s, h, d): (usize, usize, usize, usize),
        out: impl Into<candle_core::Shape>,
    ) -> Result<Tensor> {
        let cs_batch = if self.cos.rank() == 3 { s * d / 2 } else { 0 };
        let dims = [b, s, h, d, cs_batch].map(|v| Arg::I32(v as i32));
        let (cos, sin) = (
            self.cos.to_dtype(DType::F32)?,
            self.sin.to_dtype(DType::F32)?,
        );
        Kernel::elementwise(name, b * s * h * d / 2, (out, x.dtype()), dims.to_vec())
            .run(&[x, &cos, &sin])
    }
}

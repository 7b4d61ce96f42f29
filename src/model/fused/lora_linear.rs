//! A projection with its LoRA adapter: y = x Wᵀ + s·(dropout(x) Aᵀ) Bᵀ as one node. The
//! composed form keeps an f32 copy of x, the dropout mask, the masked copy and three f32
//! outputs per projection; this one keeps only the 0/1 mask (in x's dtype) and recomputes the
//! rank-r product in backward.

use super::Fused;
use crate::model::linear::BaseWeight;
use candle_core::{DType, Result, Tensor};

pub struct LoraLinear {
    pub weight: BaseWeight,
    /// 0/1 in x's dtype (exact in bf16), or None without dropout.
    pub mask: Option<Tensor>,
    /// 1 / (1 − p): inverted dropout's rescale, applied in f32.
    pub keep_scale: f64,
    /// LoRA's alpha / r (or alpha / √r).
    pub scale: f64,
}

impl LoraLinear {
    /// The base weight as a dense (out, in) matrix in `dtype`.
    fn dense(&self, dtype: DType, device: &candle_core::Device) -> Result<Tensor> {
        match &self.weight {
            BaseWeight::Quantized(q) => q.dequantize(device)?.to_dtype(dtype),
            BaseWeight::Dense(w) => w.to_dtype(dtype),
        }
    }

    /// dropout(x) as f32 rows (rows, in), without the rescale.
    fn kept_rows(&self, x: &Tensor) -> Result<Tensor> {
        let k = x.dim(candle_core::D::Minus1)?;
        let kept = match &self.mask {
            Some(m) => (x * m)?,
            None => x.clone(),
        };
        kept.reshape(((), k))?.to_dtype(DType::F32)
    }
}

impl Fused for LoraLinear {
    fn name(&self) -> &'static str {
        "lora-linear"
    }

    fn forward(&self, args: &[Tensor]) -> Result<Tensor> {
        let (x, a, b) = (&args[0], &args[1], &args[2]);
        let dims = x.dims().to_vec();
        let k = *dims.last().unwrap_or(&0);
        let w = self.dense(x.dtype(), x.device())?;
        let rows = x.reshape(((), k))?;
        let base = rows.matmul(&w.t()?)?;
        let h = (self.kept_rows(x)?.matmul(&a.t()?)? * self.keep_scale)?;
        let delta = (h.matmul(&b.t()?)? * self.scale)?.to_dtype(x.dtype())?;
        let mut out_dims = dims;
        *out_dims.last_mut().expect("x has dims") = w.dim(0)?;
        (base + delta)?.reshape(out_dims)
    }

    fn backward(
        &self,
        args: &[Tensor],
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        let (x, a, b) = (&args[0], &args[1], &args[2]);
        let n = grad.dim(candle_core::D::Minus1)?;
        let g = grad.contiguous()?.reshape(((), n))?;
        let gf = g.to_dtype(DType::F32)?;
        let kept = self.kept_rows(x)?;
        let h = (kept.matmul(&a.t()?)? * self.keep_scale)?;
        let grad_b = (gf.t()?.matmul(&h)? * self.scale)?;
        let gh = (gf.matmul(b.as_ref())? * self.scale)?;
        let grad_a = (gh.t()?.matmul(&kept)? * self.keep_scale)?;
        let mut gx_lora = (gh.matmul(a.as_ref())? * self.keep_scale)?.to_dtype(x.dtype())?;
        if let Some(m) = &self.mask {
            let shape = gx_lora.shape().clone();
            gx_lora = (gx_lora * m.reshape(shape)?)?;
        }
        let gx_base = g.matmul(&self.dense(x.dtype(), x.device())?)?;
        let grad_x = (gx_base + gx_lora)?.reshape(x.shape())?;
        Ok(vec![Some(grad_x), Some(grad_a), Some(grad_b)])
    }
}

//! A projection with its LoRA adapter: y = x Wᵀ + s·(dropout(x) Aᵀ) Bᵀ as one node. Nothing
//! but x is kept: the dropout mask is a function of a seed (recomputed in backward), and so is
//! the rank-r product. The adapter's matmuls run in x's dtype (bf16 on the GPU, as autocast
//! runs them) with A and B cast from their f32 masters; their gradients come back as f32.

use super::kernels::drop_inputs;
use super::Fused;
use crate::model::linear::BaseWeight;
use candle_core::{DType, Result, Tensor};

/// Inverted dropout on the adapter's input.
#[derive(Debug, Clone, Copy)]
pub struct Dropout {
    /// The probability of keeping an input.
    pub keep: f32,
    /// Draws the mask (the same on the CPU and the GPU; see kernels::keeps).
    pub seed: u64,
}

pub struct LoraLinear {
    weight: BaseWeight,
    dropout: Option<Dropout>,
    /// LoRA's alpha / r (or alpha / √r).
    scale: f64,
    /// The base weight dequantized by the first call, for the calls after it: a checkpointed
    /// layer's recomputed forward and its backward share one copy.
    dense: std::sync::OnceLock<Tensor>,
}

impl LoraLinear {
    pub fn new(weight: BaseWeight, dropout: Option<Dropout>, scale: f64) -> Self {
        Self {
            weight,
            dropout,
            scale,
            dense: std::sync::OnceLock::new(),
        }
    }

    /// The base weight as a dense (out, in) matrix in `dtype`.
    fn dense(&self, dtype: DType, device: &candle_core::Device) -> Result<Tensor> {
        if let Some(w) = self.dense.get().filter(|w| w.dtype() == dtype) {
            return Ok(w.clone());
        }
        let w = self.weight.dense(dtype, device)?;
        Ok(self.dense.get_or_init(|| w).clone())
    }

    /// dropout(x) as rows (rows, in), without the rescale.
    fn kept_rows(&self, x: &Tensor) -> Result<Tensor> {
        let k = x.dim(candle_core::D::Minus1)?;
        let kept = match &self.dropout {
            Some(d) => drop_inputs(x, d.seed, d.keep)?,
            None => x.clone(),
        };
        kept.reshape(((), k))
    }

    /// The adapter's whole factor: scale, and 1/keep for inverted dropout.
    fn factor(&self) -> f64 {
        self.scale / self.dropout.map_or(1.0, |d| f64::from(d.keep))
    }
}

impl Fused for LoraLinear {
    fn name(&self) -> &'static str {
        "lora-linear"
    }

    fn forward(&self, args: &[Tensor]) -> Result<Tensor> {
        let (x, a, b) = (&args[0], &args[1], &args[2]);
        let dtype = x.dtype();
        let dims = x.dims().to_vec();
        let k = *dims.last().unwrap_or(&0);
        let w = self.dense(dtype, x.device())?;
        let base = x.reshape(((), k))?.matmul(&w.t()?)?;
        let h = self.kept_rows(x)?.matmul(&a.to_dtype(dtype)?.t()?)?;
        let b = (b * self.factor())?.to_dtype(dtype)?;
        let delta = h.matmul(&b.t()?)?;
        let mut out_dims = dims;
        *out_dims.last_mut().expect("x has dims") = w.dim(0)?;
        (base + delta)?.reshape(out_dims)
    }

    /// With σ the factor, h = kept·Aᵀ and gh = g·(σB): dB = σ·gᵀh, dA = ghᵀ·kept,
    /// dx = g·W + mask ⊙ (gh·A).
    fn backward(
        &self,
        args: &[Tensor],
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        let (x, a, b) = (&args[0], &args[1], &args[2]);
        let dtype = x.dtype();
        let n = grad.dim(candle_core::D::Minus1)?;
        let g = grad.contiguous()?.reshape(((), n))?;
        let kept = self.kept_rows(x)?;
        let a = a.to_dtype(dtype)?;
        let h = kept.matmul(&a.t()?)?;
        let grad_b = (g.t()?.matmul(&h)?.to_dtype(DType::F32)? * self.factor())?;
        let gh = g.matmul(&(b * self.factor())?.to_dtype(dtype)?)?;
        let grad_a = gh.t()?.matmul(&kept)?.to_dtype(DType::F32)?;
        let mut gx_lora = gh.matmul(&a)?;
        if let Some(d) = &self.dropout {
            gx_lora = drop_inputs(&gx_lora, d.seed, d.keep)?;
        }
        let gx_base = g.matmul(&self.dense(dtype, x.device())?)?;
        let grad_x = (gx_base + gx_lora)?.reshape(x.shape())?;
        Ok(vec![Some(grad_x), Some(grad_a), Some(grad_b)])
    }
}

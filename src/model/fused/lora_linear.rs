//! A projection with its LoRA adapter: y = x Wᵀ + s·(dropout(x) Aᵀ) Bᵀ. The dropout mask is a
//! function of a seed, so nothing is stored for it. The op lives for one pass of a layer: the
//! forward's dequantized weight, dropout(x) and rank-r product serve the backward of the
//! same pass. The adapter's matmuls run in x's dtype (bf16 on the GPU, as autocast runs them)
//! with A and B cast from their f32 masters; their gradients come back as f32. On the GPU
//! the update is accumulated into the base product in place.

use super::kernels::{add_kept, bf16_pair, drop_inputs};
use super::low_rank::{add_product, product_plus, transposed_product_f32};
use super::Fused;
use crate::model::linear::BaseWeight;
use candle_core::{DType, Result, Tensor};
use std::sync::OnceLock;

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
    dense: OnceLock<Tensor>,
    /// A and σ·B (σ the factor) in the activations' dtype, cast once for forward and backward.
    factors: OnceLock<(Tensor, Tensor)>,
    /// dropout(x) and dropout(x)·Aᵀ, as rows, from the forward, for the backward of the same
    /// pass.
    down: OnceLock<(Tensor, Tensor)>,
}

impl LoraLinear {
    pub fn new(weight: BaseWeight, dropout: Option<Dropout>, scale: f64) -> Self {
        Self {
            weight,
            dropout,
            scale,
            dense: OnceLock::new(),
            factors: OnceLock::new(),
            down: OnceLock::new(),
        }
    }

    /// The base weight as a dense (out, in) matrix in the dtype of the activation `x`.
    fn dense(&self, x: &Tensor) -> Result<Tensor> {
        cached(
            &self.dense,
            |w| w.dtype() == x.dtype(),
            || self.weight.dense_for(x),
        )
    }

    /// A and σ·B in `dtype` (bf16 on the GPU: one launch for both).
    fn factors(&self, a: &Tensor, b: &Tensor, dtype: DType) -> Result<(Tensor, Tensor)> {
        let make = || {
            let pair = match dtype {
                DType::BF16 => bf16_pair(a, b, self.factor())?,
                _ => None,
            };
            match pair {
                Some(pair) => Ok(pair),
                None => Ok((a.to_dtype(dtype)?, (b * self.factor())?.to_dtype(dtype)?)),
            }
        };
        cached(&self.factors, |(a, _)| a.dtype() == dtype, make)
    }

    /// dropout(x) (no rescale) and its product with Aᵀ, for x as rows (rows, in). The cached
    /// pair is the forward's: the op serves one pass, so the backward's x is the forward's.
    fn down(&self, x: &Tensor, a: &Tensor) -> Result<(Tensor, Tensor)> {
        if let Some(d) = self.down.get().filter(|(kept, _)| kept.dims() == x.dims()) {
            return Ok(d.clone());
        }
        let kept = match &self.dropout {
            Some(d) => drop_inputs(x, d.seed, d.keep)?,
            None => x.clone(),
        };
        let h = kept.matmul(&a.t()?)?;
        let _ = self.down.set((kept.clone(), h.clone()));
        Ok((kept, h))
    }

    /// Drops the dequantized weight and dropout(x) with its product: a pass that keeps this op
    /// from its forward to a later backward makes them again rather than hold them.
    pub fn forget_pass_caches(&mut self) {
        self.dense.take();
        self.down.take();
    }

    /// The adapter's whole factor: scale, and 1/keep for inverted dropout.
    fn factor(&self) -> f64 {
        self.scale / self.dropout.map_or(1.0, |d| f64::from(d.keep))
    }
}

/// The value in `cell` when `fits` it, else a fresh one from `make` (kept when the cell is
/// empty; one that does not fit is returned, never swapped for the cached one).
fn cached<T: Clone>(
    cell: &OnceLock<T>,
    fits: impl Fn(&T) -> bool,
    make: impl FnOnce() -> Result<T>,
) -> Result<T> {
    if let Some(v) = cell.get().filter(|v| fits(v)) {
        return Ok(v.clone());
    }
    let v = make()?;
    let _ = cell.set(v.clone());
    Ok(v)
}

impl Fused for LoraLinear {
    fn name(&self) -> &'static str {
        "lora-linear"
    }

    fn forward(&self, args: &[Tensor]) -> Result<Tensor> {
        let (x, a, b) = (&args[0], &args[1], &args[2]);
        let dtype = x.dtype();
        let mut dims = x.dims().to_vec();
        let k = *dims.last().unwrap_or(&0);
        let x = x.reshape(((), k))?;
        let (a, b) = self.factors(a, b, dtype)?;
        let (_, h) = self.down(&x, &a)?;
        let w = self.dense(&x)?;
        let y = add_product(x.matmul(&w.t()?)?, &h, &b)?;
        *dims.last_mut().expect("x has dims") = w.dim(0)?;
        y.reshape(dims)
    }

    fn backward(
        &self,
        args: &[Tensor],
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        self.backward_into(args, grad, None)
    }
}

impl LoraLinear {
    /// The gradients of x, A and B from the output's `grad`, x's plus `acc` when given (a
    /// sibling projection's gradient of the same input, which no one else holds: on the GPU
    /// x's is accumulated into it). With h = kept·Aᵀ and gh = g·(σB): dB = σ·gᵀh,
    /// dA = ghᵀ·kept, dx = g·W + mask ⊙ (gh·A).
    pub fn backward_into(
        &self,
        args: &[Tensor],
        grad: &Tensor,
        acc: Option<Tensor>,
    ) -> Result<Vec<Option<Tensor>>> {
        let (x, a, b) = (&args[0], &args[1], &args[2]);
        let dtype = x.dtype();
        let n = grad.dim(candle_core::D::Minus1)?;
        let k = x.dim(candle_core::D::Minus1)?;
        let g = grad.contiguous()?.reshape(((), n))?;
        let (a, b) = self.factors(a, b, dtype)?;
        let (kept, h) = self.down(&x.reshape(((), k))?, &a)?;
        let grad_b = transposed_product_f32(&g, &h, self.factor())?;
        let gh = g.matmul(&b)?;
        let grad_a = transposed_product_f32(&gh, &kept, 1.0)?;
        let w = self.dense(&g)?;
        let gx = product_plus(&g, &w, acc)?;
        let gx_lora = gh.matmul(&a)?;
        let grad_x = match &self.dropout {
            Some(d) => add_kept(&gx, &gx_lora, d.seed, d.keep)?,
            None => (gx + gx_lora)?,
        };
        Ok(vec![
            Some(grad_x.reshape(x.shape())?),
            Some(grad_a),
            Some(grad_b),
        ])
    }
}

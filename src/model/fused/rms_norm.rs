//! RMSNorm as one node: candle's fused kernel forward, and a backward recomputing the
//! normalised rows from x, instead of the composed form's f32 copies of every step.

use super::kernels::{self, Arg, Kernel};
use super::Fused;
use candle_core::{DType, Result, Tensor, D};

/// Threads per row of the backward kernel.
const THREADS: u32 = 256;

pub struct RmsNorm {
    /// The scale, f32 (hidden,); not trained.
    pub weight: Tensor,
    pub eps: f64,
}

impl Fused for RmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm"
    }

    fn forward(&self, args: &[Tensor]) -> Result<Tensor> {
        let x = args[0].contiguous()?;
        candle_nn::ops::rms_norm(&x, &self.weight.to_dtype(x.dtype())?, self.eps as f32)
    }

    /// With r = 1/√(mean(x²) + eps) and x̂ = x·r: dx = r·(g·w − x̂·mean(g·w·x̂)).
    fn backward(
        &self,
        args: &[Tensor],
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        if kernels::usable(&args[0]) && grad.dtype() == args[0].dtype() {
            let cols = args[0].dim(D::Minus1)?;
            let rows = args[0].elem_count() / cols.max(1);
            let out = (args[0].shape(), args[0].dtype());
            let params = vec![Arg::I32(cols as i32), Arg::F32(self.eps as f32)];
            let weight = self.weight.to_dtype(DType::F32)?;
            let dx = Kernel::rows("rms_norm_bwd_bf16", rows, THREADS, out, params)?
                .run(&[&args[0], grad, &weight])?;
            return Ok(vec![Some(dx)]);
        }
        let x = args[0].to_dtype(DType::F32)?;
        let r = (x.sqr()?.mean_keepdim(D::Minus1)? + self.eps)?
            .sqrt()?
            .recip()?;
        let xhat = x.broadcast_mul(&r)?;
        let gw = grad.to_dtype(DType::F32)?.broadcast_mul(&self.weight)?;
        let dot = (&gw * &xhat)?.mean_keepdim(D::Minus1)?;
        let dx = (gw - xhat.broadcast_mul(&dot)?)?.broadcast_mul(&r)?;
        Ok(vec![Some(dx.to_dtype(args[0].dtype())?)])
    }
}

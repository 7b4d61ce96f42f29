//! Gradient clipping over all trainable parameters, before the AdamW step (candle_nn's AdamW,
//! whose update is torch.optim.AdamW's).

use anyhow::Result;
use candle_core::backprop::GradStore;
use candle_core::Var;

/// Scales the gradients of `vars` so their global L2 norm is at most `max_norm` (as
/// torch.nn.utils.clip_grad_norm_: factor max_norm / (norm + 1e-6) when the norm exceeds
/// it). Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    let mut total = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v) {
            total += g
                .sqr()?
                .sum_all()?
                .to_dtype(candle_core::DType::F64)?
                .to_scalar::<f64>()?;
        }
    }
    let norm = total.sqrt();
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        for v in vars {
            if let Some(g) = grads.remove(v) {
                grads.insert(v, (g * factor)?);
            }
        }
    }
    Ok(norm)
}

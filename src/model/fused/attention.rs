//! Scaled dot-product attention with grouped key/value heads as one node:
//! softmax(q kᵀ·scale + mask) v. Nothing of size seq² is kept: backward recomputes the
//! probabilities from q and k (as flash attention does), so the graph holds q, k, v and the
//! output only.

use super::Fused;
use candle_core::{DType, Result, Tensor, D};

pub struct Attention {
    /// Additive f32 mask broadcastable to (batch, heads, seq, total), or None.
    pub mask: Option<Tensor>,
    pub scale: f64,
    /// Query heads per key/value head.
    pub groups: usize,
}

/// (b, kv, t, d) → (b, kv·groups, t, d), each kv head repeated.
fn repeat(x: &Tensor, groups: usize) -> Result<Tensor> {
    if groups == 1 {
        return Ok(x.clone());
    }
    let (b, kv, t, d) = x.dims4()?;
    x.unsqueeze(2)?
        .expand((b, kv, groups, t, d))?
        .reshape((b, kv * groups, t, d))
}

/// (b, kv·groups, t, d) → (b, kv, t, d): the gradients of a repeated head summed.
fn fold(x: &Tensor, groups: usize) -> Result<Tensor> {
    if groups == 1 {
        return Ok(x.clone());
    }
    let (b, h, t, d) = x.dims4()?;
    x.reshape((b, h / groups, groups, t, d))?.sum(2)
}

impl Attention {
    /// Probabilities in f32, from q and the repeated k.
    fn probs(&self, q: &Tensor, k: &Tensor) -> Result<Tensor> {
        let scores = (q.matmul(&k.t()?)?.to_dtype(DType::F32)? * self.scale)?;
        let scores = match &self.mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores,
        };
        candle_nn::ops::softmax_last_dim(&scores.contiguous()?)
    }
}

impl Fused for Attention {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn forward(&self, args: &[Tensor]) -> Result<Tensor> {
        let (q, k, v) = (&args[0], &args[1], &args[2]);
        let k = repeat(k, self.groups)?;
        let v = repeat(v, self.groups)?;
        self.probs(q, &k)?.to_dtype(v.dtype())?.matmul(&v)
    }

    /// dV = Pᵀ g; dP = g Vᵀ; dS = P ⊙ (dP − rowsum(dP ⊙ P))·scale; dQ = dS K; dK = dSᵀ Q.
    fn backward(
        &self,
        args: &[Tensor],
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        let (q, k, v) = (&args[0], &args[1], &args[2]);
        let dtype = q.dtype();
        let kr = repeat(k, self.groups)?;
        let vr = repeat(v, self.groups)?;
        let p = self.probs(q, &kr)?;
        let g = grad.contiguous()?;
        let grad_v = p.to_dtype(dtype)?.t()?.matmul(&g)?;
        let dp = g.matmul(&vr.t()?)?.to_dtype(DType::F32)?;
        let row = (&dp * &p)?.sum_keepdim(D::Minus1)?;
        let ds = ((p * dp.broadcast_sub(&row)?)? * self.scale)?.to_dtype(dtype)?;
        let grad_q = ds.matmul(&kr.contiguous()?)?;
        let grad_k = ds.t()?.matmul(q)?;
        Ok(vec![
            Some(grad_q),
            Some(fold(&grad_k, self.groups)?),
            Some(fold(&grad_v, self.groups)?),
        ])
    }
}

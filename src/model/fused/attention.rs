//! Scaled dot-product attention with grouped key/value heads as one node:
//! softmax(q kᵀ·scale + mask) v. Nothing of size seq² is kept: backward recomputes the
//! probabilities from q and k (as flash attention does), so the graph holds q, k, v and the
//! output only.

use super::kernels::{self, Arg, Kernel};
use super::Fused;
use candle_core::{DType, Result, Tensor, D};

/// Threads per row of the softmax kernels (rows are at most a context long).
const SOFTMAX_THREADS: u32 = 256;

pub struct Attention {
    /// Additive f32 mask broadcastable to (batch, heads, seq, total), or None.
    pub mask: Option<Tensor>,
    /// Some(offset) when the mask is plain causal, query i seeing keys up to offset + i (no
    /// padding): then the GPU's fused softmax kernels apply it without reading `mask`.
    pub causal_offset: Option<usize>,
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
    /// The causal offset when the kernels can take these scores.
    fn kernel_offset(&self, scores: &Tensor) -> Option<usize> {
        self.causal_offset.filter(|_| kernels::usable(scores))
    }

    /// Scores (…, seq, total) → probabilities, one kernel launch (or its backward).
    fn softmax_kernel(
        &self,
        name: &'static str,
        inputs: &[&Tensor],
        offset: usize,
    ) -> Result<Tensor> {
        let scores = inputs[0];
        let (_, _, seq, total) = scores.dims4()?;
        let args = vec![
            Arg::I32(total as i32),
            Arg::I32(seq as i32),
            Arg::I32(offset as i32),
            Arg::F32(self.scale as f32),
        ];
        let rows = scores.elem_count() / total.max(1);
        Kernel::rows(
            name,
            rows,
            SOFTMAX_THREADS,
            (scores.shape(), scores.dtype()),
            args,
        )?
        .run(inputs)
    }

    /// Probabilities in q's dtype, from q and the repeated k.
    fn probs_like_q(&self, q: &Tensor, k: &Tensor) -> Result<Tensor> {
        let scores = q.matmul(&k.t()?)?;
        match self.kernel_offset(&scores) {
            Some(offset) => self.softmax_kernel("causal_softmax_bf16", &[&scores], offset),
            None => self.probs(q, k)?.to_dtype(q.dtype()),
        }
    }

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
        self.probs_like_q(q, &k)?.matmul(&v)
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
        let grad_v;
        let kr = repeat(k, self.groups)?;
        let vr = repeat(v, self.groups)?;
        let g = grad.contiguous()?;
        let scores = q.matmul(&kr.t()?)?;
        let ds = match self.kernel_offset(&scores) {
            Some(offset) => {
                let p = self.softmax_kernel("causal_softmax_bf16", &[&scores], offset)?;
                grad_v = p.t()?.matmul(&g)?;
                let dp = g.matmul(&vr.t()?)?;
                self.softmax_kernel("causal_softmax_bwd_bf16", &[&scores, &dp], offset)?
            }
            None => {
                let p = self.probs(q, &kr)?;
                grad_v = p.to_dtype(dtype)?.t()?.matmul(&g)?;
                let dp = g.matmul(&vr.t()?)?.to_dtype(DType::F32)?;
                let row = (&dp * &p)?.sum_keepdim(D::Minus1)?;
                ((p * dp.broadcast_sub(&row)?)? * self.scale)?.to_dtype(dtype)?
            }
        };
        let grad_q = ds.matmul(&kr.contiguous()?)?;
        let grad_k = ds.t()?.matmul(q)?;
        Ok(vec![
            Some(grad_q),
            Some(fold(&grad_k, self.groups)?),
            Some(fold(&grad_v, self.groups)?),
        ])
    }
}

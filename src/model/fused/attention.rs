//! Scaled dot-product attention with grouped key/value heads as one node:
//! softmax(q kᵀ·scale + mask) v. Nothing of size seq² is kept: backward recomputes the
//! probabilities from q and k (as flash attention does), so the graph holds q, k, v and the
//! output only.

use super::kernels::{self, Arg, Kernel};
use super::Fused;
use candle_core::{DType, Result, Tensor, D};

/// Threads per block of the softmax kernels: a warp per row.
const SOFTMAX_THREADS: u32 = 256;

pub struct Attention {
    /// Additive f32 mask broadcastable to (batch, heads, seq, total), or None.
    pub mask: Option<Tensor>,
    /// Some(offset) when the mask is plain causal, query i seeing keys up to offset + i (no
    /// padding): then the GPU's fused softmax kernels apply it without reading `mask`.
    pub causal_offset: Option<usize>,
    pub scale: f64,
}

/// Query heads are grouped by the key/value head they share (head h reads kv head h / groups,
/// as Hugging Face's repeat_kv orders them), so (b, heads, s, d) viewed as
/// (b, kv, groups·s, d) multiplies each kv head once: keys and values are never repeated,
/// and their gradients come out summed over the group.
fn grouped(x: &Tensor, kv: usize) -> Result<Tensor> {
    let (b, h, s, d) = x.dims4()?;
    x.contiguous()?.reshape((b, kv, h / kv * s, d))
}

impl Attention {
    /// The causal offset when the kernels can take the scores of these queries.
    fn kernel_offset(&self, q: &Tensor) -> Option<usize> {
        self.causal_offset.filter(|_| kernels::usable(q))
    }

    /// Scores (…, rows of `seq` queries, total) → probabilities, one kernel launch (or its
    /// backward).
    fn softmax_kernel(
        &self,
        name: &'static str,
        inputs: &[&Tensor],
        seq: usize,
        offset: usize,
    ) -> Result<Tensor> {
        let scores = inputs[0];
        let total = scores.dim(D::Minus1)?;
        let rows = scores.elem_count() / total.max(1);
        let args = vec![
            Arg::I32(rows as i32),
            Arg::I32(total as i32),
            Arg::I32(seq as i32),
            Arg::I32(offset as i32),
            Arg::F32(self.scale as f32),
        ];
        Kernel::rows(
            name,
            rows.div_ceil(SOFTMAX_THREADS as usize / 32),
            SOFTMAX_THREADS,
            (scores.shape(), scores.dtype()),
            args,
        )?
        .run(inputs)
    }

    /// Probabilities in q's dtype, (b, kv, groups·seq, total), from grouped q.
    fn probs_like_q(&self, q: &Tensor, k: &Tensor, seq: usize) -> Result<Tensor> {
        match self.kernel_offset(q) {
            Some(offset) => {
                let scores = q.matmul(&k.t()?)?;
                self.softmax_kernel("causal_softmax_bf16", &[&scores], seq, offset)
            }
            None => self.probs(q, k, seq)?.to_dtype(q.dtype()),
        }
    }

    /// Probabilities in f32, (b, kv, groups·seq, total), from grouped q: the mask applies to
    /// the scores viewed as (b, heads, seq, total).
    fn probs(&self, q: &Tensor, k: &Tensor, seq: usize) -> Result<Tensor> {
        let scores = (q.matmul(&k.t()?)?.to_dtype(DType::F32)? * self.scale)?;
        let (b, kv, rows, total) = scores.dims4()?;
        let scores = scores.reshape((b, kv * rows / seq, seq, total))?;
        let scores = match &self.mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores,
        };
        candle_nn::ops::softmax_last_dim(&scores.contiguous()?)?.reshape((b, kv, rows, total))
    }
}

impl Fused for Attention {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn forward(&self, args: &[Tensor]) -> Result<Tensor> {
        let (q, k, v) = (&args[0], &args[1], &args[2]);
        let (b, heads, seq, d) = q.dims4()?;
        let q = grouped(q, k.dim(1)?)?;
        self.probs_like_q(&q, k, seq)?
            .matmul(v)?
            .reshape((b, heads, seq, d))
    }

    /// dV = Pᵀ g; dP = g Vᵀ; dS = P ⊙ (dP − rowsum(dP ⊙ P))·scale; dQ = dS K; dK = dSᵀ Q
    /// (all per kv head, over its group's query rows).
    fn backward(
        &self,
        args: &[Tensor],
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        let (q, k, v) = (&args[0], &args[1], &args[2]);
        let dtype = q.dtype();
        let kv = k.dim(1)?;
        let seq = q.dim(2)?;
        let grad_v;
        let qg = grouped(q, kv)?;
        let g = grouped(grad, kv)?;
        let ds = match self.kernel_offset(&qg) {
            Some(offset) => {
                let scores = qg.matmul(&k.t()?)?;
                let p = self.softmax_kernel("causal_softmax_bf16", &[&scores], seq, offset)?;
                grad_v = p.t()?.matmul(&g)?;
                let dp = g.matmul(&v.t()?)?;
                self.softmax_kernel("causal_softmax_bwd_bf16", &[&scores, &dp], seq, offset)?
            }
            None => {
                let p = self.probs(&qg, k, seq)?;
                grad_v = p.to_dtype(dtype)?.t()?.matmul(&g)?;
                let dp = g.matmul(&v.t()?)?.to_dtype(DType::F32)?;
                let row = (&dp * &p)?.sum_keepdim(D::Minus1)?;
                ((p * dp.broadcast_sub(&row)?)? * self.scale)?.to_dtype(dtype)?
            }
        };
        let grad_q = ds.matmul(&k.contiguous()?)?.reshape(q.shape())?;
        let grad_k = ds.t()?.matmul(&qg)?;
        Ok(vec![Some(grad_q), Some(grad_k), Some(grad_v)])
    }
}

//! The log-probability each row of logits gives its target, as one node: log-softmax in f32
//! a chunk of rows at a time, so neither full f32 logits nor the composed log-softmax's
//! intermediates are kept; backward recomputes the softmax chunk by chunk.

use super::kernels::{self, Arg, Kernel};
use super::{Fused, Handoff};
use candle_core::{DType, Result, Tensor, D};

/// Threads per row of the GPU kernels (a row is a whole vocabulary).
const THREADS: u32 = 1024;

/// Rows of logits turned to f32 at once: bounds the transient f32 copy.
const CHUNK_ROWS: usize = 1024;

pub struct LabelLogps {
    /// (rows,) u32 target ids, each < vocab.
    pub targets: Tensor,
}

fn log_softmax(rows: &Tensor) -> Result<Tensor> {
    let x = rows.to_dtype(DType::F32)?;
    let max = x.max_keepdim(D::Minus1)?;
    let shifted = x.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&lse)
}

impl LabelLogps {
    /// Per row (label log-prob, log Σ exp) in f32, (rows, 2): one kernel on the GPU.
    fn kernel_stats(&self, logits: &Tensor) -> Result<Tensor> {
        let rows = logits.dim(0)?;
        let vocab = vec![Arg::I32(logits.dim(1)? as i32)];
        Kernel::rows(
            "label_logp_bf16",
            rows,
            THREADS,
            ((rows, 2), DType::F32),
            vocab,
        )?
        .run(&[logits, &self.targets])
    }

    /// d logits = g·(onehot(target) − softmax(logits)) from the rows' `stats`.
    fn kernel_backward(&self, logits: &Tensor, stats: &Tensor, grad: &Tensor) -> Result<Tensor> {
        let lse = stats.narrow(1, 1, 1)?;
        let gl = Tensor::cat(&[&grad.to_dtype(DType::F32)?.unsqueeze(1)?, &lse], 1)?;
        let out = (logits.shape(), logits.dtype());
        let vocab = vec![Arg::I32(logits.dim(1)? as i32)];
        Kernel::rows("label_logp_bwd_bf16", logits.dim(0)?, THREADS, out, vocab)?.run(&[
            logits,
            &self.targets,
            &gl,
        ])
    }

    /// The label log-probs and the logits' gradient for upstream gradient `grad`: on the GPU
    /// one read of the logits serves both.
    pub fn forward_and_backward(&self, logits: &Tensor, grad: &Tensor) -> Result<(Tensor, Tensor)> {
        if kernels::usable(logits) {
            let stats = self.kernel_stats(logits)?;
            let d = self.kernel_backward(logits, &stats, grad)?;
            return Ok((stats.narrow(1, 0, 1)?.squeeze(1)?, d));
        }
        let args = std::slice::from_ref(logits);
        let logp = self.forward(args)?;
        let d = self
            .backward(args, &logp, grad)?
            .into_iter()
            .next()
            .flatten();
        let d = d.ok_or_else(|| candle_core::Error::msg("label log-probs gave no gradient"))?;
        Ok((logp, d))
    }
}

impl Fused for LabelLogps {
    fn name(&self) -> &'static str {
        "label-logps"
    }

    /// (rows, vocab) logits of any float dtype → (rows,) f32.
    fn forward(&self, args: &[Tensor]) -> Result<Tensor> {
        let logits = &args[0];
        let rows = logits.dim(0)?;
        if kernels::usable(logits) {
            // All rows at once: the kernel reads bf16 and keeps nothing but the result.
            return self.kernel_stats(logits)?.narrow(1, 0, 1)?.squeeze(1);
        }
        let mut parts = Vec::new();
        for start in (0..rows).step_by(CHUNK_ROWS) {
            let n = CHUNK_ROWS.min(rows - start);
            let lp = log_softmax(&logits.narrow(0, start, n)?)?;
            let t = self.targets.narrow(0, start, n)?.unsqueeze(1)?;
            parts.push(lp.gather(&t.contiguous()?, 1)?.squeeze(1)?);
        }
        Tensor::cat(&parts, 0)
    }

    /// d logits = g·(onehot(target) − softmax(logits)), row by row.
    fn backward(
        &self,
        args: &[Tensor],
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        let logits = &args[0];
        let (rows, vocab) = logits.dims2()?;
        let grad = grad.to_dtype(DType::F32)?;
        if kernels::usable(logits) {
            let stats = self.kernel_stats(logits)?;
            return Ok(vec![Some(self.kernel_backward(logits, &stats, &grad)?)]);
        }
        let mut parts = Vec::new();
        for start in (0..rows).step_by(CHUNK_ROWS) {
            let n = CHUNK_ROWS.min(rows - start);
            let g = grad.narrow(0, start, n)?;
            let p = log_softmax(&logits.narrow(0, start, n)?)?.exp()?;
            let minus = p.broadcast_mul(&g.unsqueeze(1)?)?.neg()?.flatten_all()?;
            // + g at each row's target: flat index row·vocab + target.
            let offsets =
                Tensor::arange_step(0u32, (n * vocab) as u32, vocab as u32, logits.device())?;
            let index = (offsets + self.targets.narrow(0, start, n)?)?;
            let d = minus.index_add(&index, &g.contiguous()?, 0)?;
            parts.push(d.reshape((n, vocab))?.to_dtype(logits.dtype())?);
        }
        Ok(vec![Some(Tensor::cat(&parts, 0)?)])
    }
}

/// Logits held at once by [`HeadLabelLogps`] (elements): bounds the chunk of rows.
pub const HEAD_CHUNK_LOGITS: usize = 64 << 20;

/// The label log-probs straight from hidden states, with the output head inside: logits are
/// made a chunk of rows at a time, so the whole batch's logits and their gradient never exist
/// at once: for a 128k vocabulary they are the largest tensors of a step.
///
/// Row r's log-prob depends on hidden row r alone, so its gradient is that row's own
/// d logp / d hidden times the upstream gradient of r. When the hidden states need a
/// gradient, the forward makes those rows (rows, hidden) from the logits it has in hand, and
/// the backward only scales them: the logits are made once a step, not again in backward.
pub struct HeadLabelLogps {
    /// The output head's weight (vocab, hidden).
    pub head: crate::model::linear::BaseWeight,
    /// (rows,) u32 target ids, each < vocab.
    pub targets: Tensor,
    /// Logits made at once (elements).
    pub chunk_logits: usize,
    /// Whether the forward makes d logp / d hidden for the backward (see above).
    pub gradient_in_forward: bool,
    /// d logp / d hidden from the forward, until the backward takes it.
    row_gradients: Handoff<Tensor>,
}

impl HeadLabelLogps {
    pub fn new(
        head: crate::model::linear::BaseWeight,
        targets: Tensor,
        gradient_in_forward: bool,
    ) -> Self {
        Self {
            head,
            targets,
            chunk_logits: HEAD_CHUNK_LOGITS,
            gradient_in_forward,
            row_gradients: Handoff::default(),
        }
    }

    /// The head as a dense matrix in the hidden states' dtype, and the rows per chunk.
    fn setup(&self, hidden: &Tensor) -> Result<(Tensor, usize)> {
        let w = self.head.dense_for(hidden)?;
        let rows = (self.chunk_logits / w.dim(0)?.max(1)).max(1);
        Ok((w, rows))
    }

    fn chunks(&self, rows: usize, per: usize) -> impl Iterator<Item = (usize, usize)> {
        (0..rows).step_by(per).map(move |s| (s, per.min(rows - s)))
    }

    fn label_op(&self, start: usize, n: usize) -> Result<LabelLogps> {
        Ok(LabelLogps {
            targets: self.targets.narrow(0, start, n)?,
        })
    }
}

impl Fused for HeadLabelLogps {
    fn name(&self) -> &'static str {
        "head-label-logps"
    }

    /// (rows, hidden) → (rows,) f32.
    fn forward(&self, args: &[Tensor]) -> Result<Tensor> {
        let hidden = &args[0];
        let (w, per) = self.setup(hidden)?;
        let mut parts = Vec::new();
        let mut row_gradients = Vec::new();
        for (start, n) in self.chunks(hidden.dim(0)?, per) {
            let logits = hidden.narrow(0, start, n)?.matmul(&w.t()?)?;
            let label = self.label_op(start, n)?;
            if self.gradient_in_forward {
                let ones = Tensor::ones(n, DType::F32, hidden.device())?;
                let (logp, d_logits) = label.forward_and_backward(&logits, &ones)?;
                parts.push(logp);
                row_gradients.push(d_logits.matmul(&w)?);
            } else {
                parts.push(label.forward(std::slice::from_ref(&logits))?);
            }
        }
        if self.gradient_in_forward {
            self.row_gradients.put(Tensor::cat(&row_gradients, 0)?)?;
        }
        Tensor::cat(&parts, 0)
    }

    /// d hidden: the forward's rows scaled by `grad`, or (d logits)·W chunk by chunk with
    /// the logits made again.
    fn backward(
        &self,
        args: &[Tensor],
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        let hidden = &args[0];
        let grad = grad.to_dtype(DType::F32)?;
        if let Some(rows) = self.row_gradients.take()? {
            let scaled = rows
                .to_dtype(DType::F32)?
                .broadcast_mul(&grad.unsqueeze(1)?)?;
            return Ok(vec![Some(scaled.to_dtype(rows.dtype())?)]);
        }
        let (w, per) = self.setup(hidden)?;
        let mut parts = Vec::new();
        for (start, n) in self.chunks(hidden.dim(0)?, per) {
            let logits = hidden.narrow(0, start, n)?.matmul(&w.t()?)?;
            let g = grad.narrow(0, start, n)?;
            let (_, d_logits) = self.label_op(start, n)?.forward_and_backward(&logits, &g)?;
            parts.push(d_logits.matmul(&w)?);
        }
        Ok(vec![Some(Tensor::cat(&parts, 0)?)])
    }
}

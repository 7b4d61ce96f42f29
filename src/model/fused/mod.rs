//! Fused training ops: each one node of the autograd graph with a backward of its own, so the
//! graph keeps only what that backward needs instead of every intermediate of a composed
//! forward (candle keeps all of them alive until backward). Forward and backward are written
//! with tensor ops on detached tensors, so the same code runs on the CPU and on CUDA, and each
//! op is checked against its composed form (tests/fused_ops.rs, on CUDA too).

pub mod attention;
pub mod geglu;
pub mod kernels;
pub mod label_logps;
pub mod lora_linear;
pub mod low_rank;
mod node;
pub mod rms_norm;
pub mod rope;
pub mod swiglu;

use candle_core::{CpuStorage, Layout, Result, Shape, Tensor};
use node::{Body, Node};
use std::sync::{Arc, Mutex};

/// An op with a hand-written backward.
pub trait Fused: Send + Sync {
    fn name(&self) -> &'static str;
    /// The result, from detached arguments (no graph is built).
    fn forward(&self, args: &[Tensor]) -> Result<Tensor>;
    /// The gradient of each argument (None: it needs none), given the result's gradient.
    fn backward(&self, args: &[Tensor], out: &Tensor, grad: &Tensor)
        -> Result<Vec<Option<Tensor>>>;
}

/// Applies `op` to `args` (one to three tensors) as one node of the graph.
pub fn apply<F: Fused + 'static>(op: F, args: &[&Tensor]) -> Result<Tensor> {
    let detached = args.iter().map(|t| t.detach()).collect();
    let node = Node(Wrap { op, args: detached });
    match args {
        [a] => a.apply_op1_arc(Arc::new(Box::new(node))),
        [a, b] => a.apply_op2_arc(b, Arc::new(Box::new(node))),
        [a, b, c] => a.apply_op3_arc(b, c, Arc::new(Box::new(node))),
        _ => candle_core::bail!("a fused op takes one to three tensors"),
    }
}

/// What an op's forward leaves for its backward (which takes it), in a slot both can reach
/// through `&self`.
pub struct Handoff<T>(Mutex<Option<T>>);

impl<T> Default for Handoff<T> {
    fn default() -> Self {
        Self(Mutex::new(None))
    }
}

impl<T> Handoff<T> {
    pub fn put(&self, value: T) -> Result<()> {
        *self.0.lock().map_err(|_| poisoned())? = Some(value);
        Ok(())
    }

    /// The value put, once; None when nothing was put or it was taken.
    pub fn take(&self) -> Result<Option<T>> {
        Ok(self.0.lock().map_err(|_| poisoned())?.take())
    }
}

fn poisoned() -> candle_core::Error {
    candle_core::Error::msg("a fused op's forward-to-backward slot was poisoned by a panic")
}

struct Wrap<F> {
    op: F,
    /// The arguments, detached: what forward and backward compute from.
    args: Vec<Tensor>,
}

impl<F: Fused> Wrap<F> {
    fn run(&self) -> Result<Tensor> {
        self.op.forward(&self.args)?.contiguous()
    }
}

/// The op's own tensors stand for its inputs, so the storages candle passes go unread.
impl<F: Fused> Body for Wrap<F> {
    fn name(&self) -> &'static str {
        self.op.name()
    }

    fn cpu(&self, _: &[(&CpuStorage, &Layout)]) -> Result<(CpuStorage, Shape)> {
        let out = self.run()?;
        let shape = out.shape().clone();
        let flat = out.flatten_all()?;
        let storage = match out.dtype() {
            candle_core::DType::F32 => CpuStorage::F32(flat.to_vec1()?),
            candle_core::DType::F64 => CpuStorage::F64(flat.to_vec1()?),
            candle_core::DType::BF16 => CpuStorage::BF16(flat.to_vec1()?),
            candle_core::DType::F16 => CpuStorage::F16(flat.to_vec1()?),
            candle_core::DType::U32 => CpuStorage::U32(flat.to_vec1()?),
            other => candle_core::bail!("{}: no CPU output of {other:?}", self.op.name()),
        };
        Ok((storage, shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda(
        &self,
        _: &[(&candle_core::CudaStorage, &Layout)],
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        let mut out = self.run()?;
        if out.layout().start_offset() != 0 {
            out = out.copy()?;
        }
        let shape = out.shape().clone();
        let (storage, layout) = out.storage_and_layout();
        match &*storage {
            candle_core::Storage::Cuda(s) => Ok((s.try_clone(layout)?, shape)),
            _ => candle_core::bail!("{}: the result is not on the GPU", self.op.name()),
        }
    }

    fn grads(&self, res: &Tensor, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        self.op.backward(&self.args, &res.detach(), grad)
    }
}

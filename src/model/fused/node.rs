//! candle's custom-op traits (one per input count) for anything that computes a node from
//! its inputs' storages: the fused ops (which also have a backward) and the raw kernel
//! launches (which have none).

#[cfg(feature = "cuda")]
use candle_core::CudaStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

/// What a node computes, with however many inputs it has.
pub trait Body: Send + Sync {
    fn name(&self) -> &'static str;
    fn cpu(&self, inputs: &[(&CpuStorage, &Layout)]) -> Result<(CpuStorage, Shape)>;
    #[cfg(feature = "cuda")]
    fn cuda(&self, inputs: &[(&CudaStorage, &Layout)]) -> Result<(CudaStorage, Shape)>;
    /// Each input's gradient from the result's; a node without a backward has none.
    fn grads(&self, _res: &Tensor, _grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(Vec::new())
    }
}

/// A [`Body`] as a custom op of one, two or three inputs.
pub struct Node<B>(pub B);

impl<B: Body> Node<B> {
    fn grads(&self, res: &Tensor, grad: &Tensor, inputs: usize) -> Result<Vec<Option<Tensor>>> {
        let mut grads = self.0.grads(res, grad)?;
        grads.resize(inputs, None);
        Ok(grads)
    }
}

impl<B: Body> CustomOp1 for Node<B> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        self.0.cpu(&[(s, l)])
    }
    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
        self.0.cuda(&[(s, l)])
    }
    fn bwd(&self, _: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(self.grads(res, grad, 1)?.remove(0))
    }
}

impl<B: Body> CustomOp2 for Node<B> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.0.cpu(&[(s1, l1), (s2, l2)])
    }
    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        self.0.cuda(&[(s1, l1), (s2, l2)])
    }
    fn bwd(
        &self,
        _: &Tensor,
        _: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let mut g = self.grads(res, grad, 2)?.into_iter();
        Ok((g.next().flatten(), g.next().flatten()))
    }
}

impl<B: Body> CustomOp3 for Node<B> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.0.cpu(&[(s1, l1), (s2, l2), (s3, l3)])
    }
    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        self.0.cuda(&[(s1, l1), (s2, l2), (s3, l3)])
    }
    fn bwd(
        &self,
        _: &Tensor,
        _: &Tensor,
        _: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let mut g = self.grads(res, grad, 3)?.into_iter();
        Ok((g.next().flatten(), g.next().flatten(), g.next().flatten()))
    }
}

//! c + h·mᵀ for a rank-r update: on the GPU cuBLAS accumulates into c in place (beta = 1),
//! so the update is neither written out on its own nor added in a second pass.

use candle_core::{CpuStorage, InplaceOp3, Layout, Result, Tensor};

/// `c` (rows, n) plus `h` (rows, r) times `m` (n, r) transposed. `c` must be a tensor no one
/// else holds (a fresh product): on the GPU it is overwritten with the sum.
pub fn add_product(c: Tensor, h: &Tensor, m: &Tensor) -> Result<Tensor> {
    let in_place = super::kernels::usable(&c)
        && h.dtype() == c.dtype()
        && m.dtype() == c.dtype()
        && c.is_contiguous()
        && h.is_contiguous()
        && m.is_contiguous();
    if in_place {
        c.inplace_op3(h, m, &AddProduct)?;
        return Ok(c);
    }
    c + h.matmul(&m.t()?)?
}

struct AddProduct;

impl InplaceOp3 for AddProduct {
    fn name(&self) -> &'static str {
        "add-product"
    }

    fn cpu_fwd(
        &self,
        _: &mut CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<()> {
        candle_core::bail!("add-product runs in place on the GPU only")
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        c: &mut candle_core::CudaStorage,
        lc: &Layout,
        h: &candle_core::CudaStorage,
        lh: &Layout,
        m: &candle_core::CudaStorage,
        lm: &Layout,
    ) -> Result<()> {
        use candle_core::backend::BackendStorage;
        use candle_core::cuda_backend::cudarc::cublas::{sys::cublasOperation_t, Gemm, GemmConfig};
        use candle_core::cuda_backend::WrapErr;
        use half::bf16;
        let (rows, n) = lc.shape().dims2()?;
        let (h_rows, r) = lh.shape().dims2()?;
        let (m_rows, m_r) = lm.shape().dims2()?;
        if h_rows != rows || m_rows != n || m_r != r {
            candle_core::bail!("add-product: ({rows}, {n}) + ({h_rows}, {r})·({m_rows}, {m_r})ᵀ");
        }
        let offset = |l: &Layout| {
            l.contiguous_offsets()
                .map(|(start, _)| start)
                .ok_or_else(|| candle_core::Error::msg("add-product: an operand is not contiguous"))
        };
        let (oc, oh, om) = (offset(lc)?, offset(lh)?, offset(lm)?);
        let blas = c.device().cublas_handle();
        let h = h.as_cuda_slice::<bf16>()?.slice(oh..);
        let m = m.as_cuda_slice::<bf16>()?.slice(om..);
        let mut c = c.as_cuda_slice_mut::<bf16>()?.slice_mut(oc..);
        // Row-major c = h·mᵀ is column-major cᵀ = m·hᵀ: m read transposed, h as it is.
        let config = GemmConfig {
            transa: cublasOperation_t::CUBLAS_OP_T,
            transb: cublasOperation_t::CUBLAS_OP_N,
            m: n as i32,
            n: rows as i32,
            k: r as i32,
            alpha: bf16::ONE,
            lda: r as i32,
            ldb: r as i32,
            beta: bf16::ONE,
            ldc: n as i32,
        };
        // SAFETY: the shapes were checked above; the three views cover their tensors.
        unsafe { blas.gemm(config, &m, &h, &mut c) }.w()?;
        Ok(())
    }
}

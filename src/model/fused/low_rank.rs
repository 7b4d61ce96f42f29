//! c + h·mᵀ (a LoRA update) or c + h·m (a gradient added to its sibling's): on the GPU
//! cuBLAS accumulates into c in place (beta = 1), so the product is neither written out on
//! its own nor added in a second pass.

use candle_core::{CpuStorage, InplaceOp3, Layout, Result, Tensor};

/// `c` (rows, n) plus `h` (rows, r) times `m` (n, r) transposed. `c` must be a tensor no one
/// else holds (a fresh product): on the GPU it is overwritten with the sum.
pub fn add_product(c: Tensor, h: &Tensor, m: &Tensor) -> Result<Tensor> {
    add(c, h, m, true)
}

/// `h` (rows, k) times `m` (k, n), plus `acc` when given (rows × n elements in any shape;
/// as `c` for [`add_product`], no one else may hold it).
pub fn product_plus(h: &Tensor, m: &Tensor, acc: Option<Tensor>) -> Result<Tensor> {
    match acc {
        Some(c) => add(c.reshape(((), m.dim(1)?))?, h, m, false),
        None => h.matmul(m),
    }
}

fn add(c: Tensor, h: &Tensor, m: &Tensor, transposed: bool) -> Result<Tensor> {
    // In place only off the autograd graph: a tracked c would keep the op that made it, and
    // its gradient would miss the added product.
    let in_place = super::kernels::usable(&c)
        && !c.track_op()
        && h.dtype() == c.dtype()
        && m.dtype() == c.dtype()
        && c.is_contiguous()
        && h.is_contiguous()
        && m.is_contiguous();
    if in_place {
        c.inplace_op3(h, m, &AddProduct { transposed })?;
        return Ok(c);
    }
    let product = if transposed {
        h.matmul(&m.t()?)?
    } else {
        h.matmul(m)?
    };
    c + product
}

/// c += h·mᵀ, or h·m when not `transposed`.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
struct AddProduct {
    transposed: bool,
}

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
        let (m_n, m_r) = match (lm.shape().dims2()?, self.transposed) {
            ((n, r), true) => (n, r),
            ((r, n), false) => (n, r),
        };
        if h_rows != rows || m_n != n || m_r != r {
            candle_core::bail!("add-product: ({rows}, {n}) + ({h_rows}, {r}) times {lm:?}");
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
        // Row-major c = h·mᵀ is column-major cᵀ = m·hᵀ: m (n, r) is column-major (r, n),
        // read transposed; for c = h·m, m (r, n) is column-major (n, r), read as it is.
        let (transa, lda) = if self.transposed {
            (cublasOperation_t::CUBLAS_OP_T, r)
        } else {
            (cublasOperation_t::CUBLAS_OP_N, n)
        };
        let config = GemmConfig {
            transa,
            transb: cublasOperation_t::CUBLAS_OP_N,
            m: n as i32,
            n: rows as i32,
            k: r as i32,
            alpha: bf16::ONE,
            lda: lda as i32,
            ldb: r as i32,
            beta: bf16::ONE,
            ldc: n as i32,
        };
        // SAFETY: the shapes were checked above; the three views cover their tensors.
        unsafe { blas.gemm(config, &m, &h, &mut c) }.w()?;
        Ok(())
    }
}

/// alpha · xᵀ·y in f32 for x (rows, p) and y (rows, q): the adapters' gradients, written by
/// cuBLAS in f32 straight from the bf16 activations (no bf16 result, cast and scale after).
pub fn transposed_product_f32(x: &Tensor, y: &Tensor, alpha: f64) -> Result<Tensor> {
    let direct = super::kernels::usable(x) && y.dtype() == x.dtype();
    if direct {
        return x
            .contiguous()?
            .apply_op2_no_bwd(&y.contiguous()?, &TransposedProduct { alpha });
    }
    x.t()?.matmul(y)?.to_dtype(candle_core::DType::F32)? * alpha
}

#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
struct TransposedProduct {
    alpha: f64,
}

impl candle_core::CustomOp2 for TransposedProduct {
    fn name(&self) -> &'static str {
        "transposed-product-f32"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, candle_core::Shape)> {
        candle_core::bail!("transposed-product-f32 runs on the GPU only")
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        lx: &Layout,
        y: &candle_core::CudaStorage,
        ly: &Layout,
    ) -> Result<(candle_core::CudaStorage, candle_core::Shape)> {
        use candle_core::backend::BackendStorage;
        use candle_core::cuda_backend::cudarc::cublas::{result, sys};
        use candle_core::cuda_backend::cudarc::driver::{DevicePtr, DevicePtrMut};
        use candle_core::cuda_backend::WrapErr;
        use half::bf16;
        let (rows, p) = lx.shape().dims2()?;
        let (y_rows, q) = ly.shape().dims2()?;
        if y_rows != rows {
            candle_core::bail!("transposed-product-f32: ({rows}, {p})ᵀ·({y_rows}, {q})");
        }
        let dev = x.device().clone();
        let stream = dev.cuda_stream();
        let xs = x.as_cuda_slice::<bf16>()?.slice(lx.start_offset()..);
        let ys = y.as_cuda_slice::<bf16>()?.slice(ly.start_offset()..);
        // SAFETY: every element is written by the product below (beta = 0).
        let mut out = unsafe { dev.alloc::<f32>(p * q)? };
        {
            let (xp, _x) = xs.device_ptr(&stream);
            let (yp, _y) = ys.device_ptr(&stream);
            let (op, _o) = out.device_ptr_mut(&stream);
            let (alpha, beta) = (self.alpha as f32, 0f32);
            let blas = dev.cublas_handle();
            // Row-major out (p, q) = xᵀ·y is column-major outᵀ (q, p) = yᵀ·x: y (rows, q) is
            // column-major (q, rows), read as it is; x (rows, p) is column-major (p, rows),
            // read transposed.
            // SAFETY: the pointers cover (rows, p), (rows, q) and (p, q) elements of the
            // types named, all on the blas handle's stream.
            unsafe {
                result::gemm_ex(
                    *blas.handle(),
                    sys::cublasOperation_t::CUBLAS_OP_N,
                    sys::cublasOperation_t::CUBLAS_OP_T,
                    q as i32,
                    p as i32,
                    rows as i32,
                    (&alpha) as *const f32 as *const _,
                    yp as *const _,
                    sys::cudaDataType_t::CUDA_R_16BF,
                    q as i32,
                    xp as *const _,
                    sys::cudaDataType_t::CUDA_R_16BF,
                    p as i32,
                    (&beta) as *const f32 as *const _,
                    op as *mut _,
                    sys::cudaDataType_t::CUDA_R_32F,
                    q as i32,
                    sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                    sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
                )
            }
            .w()?;
        }
        Ok((
            candle_core::CudaStorage::wrap_cuda_slice(out, dev),
            candle_core::Shape::from((p, q)),
        ))
    }
}

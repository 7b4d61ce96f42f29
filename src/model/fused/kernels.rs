//! Launching the hand-written kernels of kernels.cu (compiled to PTX by build.rs with the
//! `cuda` feature) on candle tensors. A launch is a graph node without a backward: the fused
//! ops call these from their own forward and backward, and keep their composed tensor-op form
//! for the CPU and for dtypes the kernels do not take (tests/fused_ops.rs checks one against
//! the other on the GPU).

use super::node::{Body, Node};
use candle_core::{CpuStorage, DType, Layout, Result, Shape};
use candle_core::{Device, Tensor};

/// Threads per block of the elementwise kernels.
const THREADS: u32 = 256;

/// A scalar argument, passed after the tensors' pointers.
#[derive(Debug, Clone, Copy)]
pub enum Arg {
    I32(i32),
    U32(u32),
    U64(u64),
    F32(f32),
}

/// One launch of a kernel: its arguments are the inputs' pointers, the output's pointer,
/// then `args`.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub struct Kernel {
    name: &'static str,
    out_shape: Shape,
    out_dtype: DType,
    /// The grid's x and y extents.
    blocks: (u32, u32),
    threads: u32,
    args: Vec<Arg>,
    /// The one input is only the launch's anchor (see `run_unread`).
    unread: bool,
}

/// Whether the kernels can run on `t`: a CUDA build, a CUDA tensor, bf16.
pub fn usable(t: &Tensor) -> bool {
    cfg!(feature = "cuda") && t.device().is_cuda() && t.dtype() == DType::BF16
}

impl Kernel {
    /// One block per row of the output's leading dimensions.
    pub fn rows(
        name: &'static str,
        rows: usize,
        threads: u32,
        out: (impl Into<Shape>, DType),
        args: Vec<Arg>,
    ) -> Result<Self> {
        Self::grid(name, (rows, 1), threads, out, args)
    }

    /// A grid of `blocks.0` × `blocks.1` blocks.
    pub fn grid(
        name: &'static str,
        blocks: (usize, usize),
        threads: u32,
        out: (impl Into<Shape>, DType),
        args: Vec<Arg>,
    ) -> Result<Self> {
        let extent = |n: usize| {
            u32::try_from(n.max(1))
                .map_err(|_| candle_core::Error::msg(format!("{name}: a grid of {n} blocks")))
        };
        Ok(Self {
            name,
            out_shape: out.0.into(),
            out_dtype: out.1,
            blocks: (extent(blocks.0)?, extent(blocks.1)?),
            threads,
            args,
            unread: false,
        })
    }

    /// A grid-stride loop over `n` items (elements, or groups of them: the kernel says).
    pub fn elementwise(
        name: &'static str,
        n: usize,
        out: (impl Into<Shape>, DType),
        args: Vec<Arg>,
    ) -> Self {
        let blocks = n.div_ceil(THREADS as usize).clamp(1, 65_535) as u32;
        Self {
            name,
            out_shape: out.0.into(),
            out_dtype: out.1,
            blocks: (blocks, 1),
            threads: THREADS,
            args,
            unread: false,
        }
    }

    /// Runs with `anchor` as its one input, which the kernel does not read (it reaches its
    /// data through a pointer argument): no contiguous copy is made of it.
    pub fn run_unread(self, anchor: &Tensor) -> Result<Tensor> {
        anchor.apply_op1_no_bwd(&Node(Self {
            unread: true,
            ..self
        }))
    }

    /// Runs on `inputs` (one to three, made contiguous) and returns the output.
    pub fn run(self, inputs: &[&Tensor]) -> Result<Tensor> {
        let inputs = inputs
            .iter()
            .map(|t| t.contiguous())
            .collect::<Result<Vec<_>>>()?;
        let node = Node(self);
        match inputs.as_slice() {
            [a] => a.apply_op1_no_bwd(&node),
            [a, b] => a.apply_op2_no_bwd(b, &node),
            [a, b, c] => a.apply_op3_no_bwd(b, c, &node),
            _ => candle_core::bail!("{}: a kernel takes one to three tensors", node.0.name),
        }
    }

    #[cfg(feature = "cuda")]
    fn launch(
        &self,
        inputs: &[(&candle_core::CudaStorage, &Layout)],
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        use candle_core::cuda_backend::cudarc::driver::{DevicePtr, LaunchConfig, PushKernelArg};
        use candle_core::cuda_backend::WrapErr;
        use candle_core::CudaStorage;
        const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/kernels.ptx"));

        let dev = inputs[0].0.device().clone();
        let stream = dev.cuda_stream();
        let mut pointers = Vec::with_capacity(inputs.len() + 1);
        for (storage, layout) in inputs {
            if !self.unread && !layout.is_contiguous() {
                candle_core::bail!("{}: an input is not contiguous", self.name);
            }
            let start = layout.start_offset();
            let base = match storage.dtype() {
                DType::BF16 => storage.as_cuda_slice::<half::bf16>()?.device_ptr(&stream).0,
                DType::F32 => storage.as_cuda_slice::<f32>()?.device_ptr(&stream).0,
                DType::U32 => storage.as_cuda_slice::<u32>()?.device_ptr(&stream).0,
                DType::I64 => storage.as_cuda_slice::<i64>()?.device_ptr(&stream).0,
                other => candle_core::bail!("{}: no {other:?} inputs", self.name),
            };
            pointers.push(base + (start * storage.dtype().size_in_bytes()) as u64);
        }
        let n = self.out_shape.elem_count();
        // SAFETY: every kernel writes each element of its output.
        let out = match self.out_dtype {
            DType::BF16 => {
                let slice = unsafe { dev.alloc::<half::bf16>(n)? };
                pointers.push(slice.device_ptr(&stream).0);
                CudaStorage::wrap_cuda_slice(slice, dev.clone())
            }
            DType::F32 => {
                let slice = unsafe { dev.alloc::<f32>(n)? };
                pointers.push(slice.device_ptr(&stream).0);
                CudaStorage::wrap_cuda_slice(slice, dev.clone())
            }
            other => candle_core::bail!("{}: no {other:?} output", self.name),
        };
        let func = dev.get_or_load_custom_func(self.name, "tunelab_fused", PTX)?;
        let mut builder = func.builder();
        for p in &pointers {
            builder.arg(p);
        }
        for a in &self.args {
            match a {
                Arg::I32(v) => builder.arg(v),
                Arg::U32(v) => builder.arg(v),
                Arg::U64(v) => builder.arg(v),
                Arg::F32(v) => builder.arg(v),
            };
        }
        let config = LaunchConfig {
            grid_dim: (self.blocks.0, self.blocks.1, 1),
            block_dim: (self.threads, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the pointers cover the elements the kernel reads and writes (the callers
        // pass shapes that match kernels.cu's signatures), and live until it has run: the
        // inputs are borrowed by this call and the output is returned.
        unsafe { builder.launch(config) }.w()?;
        Ok((out, self.out_shape.clone()))
    }
}

impl Body for Kernel {
    fn name(&self) -> &'static str {
        self.name
    }
    fn cpu(&self, _: &[(&CpuStorage, &Layout)]) -> Result<(CpuStorage, Shape)> {
        candle_core::bail!("{}: a CUDA kernel, called on the CPU", self.name)
    }
    #[cfg(feature = "cuda")]
    fn cuda(
        &self,
        inputs: &[(&candle_core::CudaStorage, &Layout)],
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        self.launch(inputs)
    }
}

/// Dropout's 16-bit threshold for keeping an input with probability `keep`.
fn threshold(keep: f32) -> u32 {
    (f64::from(keep.clamp(0.0, 1.0)) * 65536.0).round() as u32
}

/// Dropout's keep decision for element `i` of a mask drawn with `seed`: the bits kernels.cu's
/// `dropout_bits` and `kept` compute, so a mask is the same on the CPU and on the GPU.
pub fn keeps(seed: u64, i: u64, keep: f32) -> bool {
    let group = i / 4;
    let mut z = seed.wrapping_add((group + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let bits = ((z >> (16 * (i % 4))) & 0xffff) as u32;
    bits < threshold(keep)
}

/// The mask of `x`'s shape, 1 where dropout keeps, as `x`'s dtype on its device.
fn mask_like(x: &Tensor, seed: u64, keep: f32) -> Result<Tensor> {
    let mask: Vec<f32> = (0..x.elem_count() as u64)
        .map(|i| f32::from(u8::from(keeps(seed, i, keep))))
        .collect();
    Tensor::from_vec(mask, x.shape(), &Device::Cpu)?
        .to_device(x.device())?
        .to_dtype(x.dtype())
}

/// The kernels' dropout arguments after the element count.
fn dropout_args(n: usize, seed: u64, keep: f32) -> Vec<Arg> {
    vec![
        Arg::U64(n as u64),
        Arg::U64(seed),
        Arg::U32(threshold(keep)),
    ]
}

/// `x` with the inputs that dropout drops (seeded by `seed`) set to 0, not rescaled.
pub fn drop_inputs(x: &Tensor, seed: u64, keep: f32) -> Result<Tensor> {
    let n = x.elem_count();
    if usable(x) {
        let args = dropout_args(n, seed, keep);
        let out = (x.shape(), x.dtype());
        return Kernel::elementwise("dropout_bf16", n.div_ceil(8), out, args).run(&[x]);
    }
    x * mask_like(x, seed, keep)?
}

/// base + `t` where dropout (seeded by `seed`) keeps, not rescaled: one pass on the GPU.
pub fn add_kept(base: &Tensor, t: &Tensor, seed: u64, keep: f32) -> Result<Tensor> {
    let n = base.elem_count();
    if usable(base) && t.dtype() == base.dtype() {
        let args = dropout_args(n, seed, keep);
        let out = (base.shape(), base.dtype());
        return Kernel::elementwise("dropout_add_bf16", n.div_ceil(8), out, args).run(&[base, t]);
    }
    base + drop_inputs(t, seed, keep)?
}

/// a + b (same shape): one pass of 16-byte accesses on the GPU.
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if usable(a) && b.dtype() == a.dtype() && a.shape() == b.shape() {
        let n = a.elem_count();
        let out = (a.shape(), a.dtype());
        let args = vec![Arg::U64(n as u64)];
        return Kernel::elementwise("add_bf16", n.div_ceil(8), out, args).run(&[a, b]);
    }
    a + b
}

/// f32 `a` and `scale`·`b` in bf16, cast by one launch into one buffer (two views of it);
/// None when the kernel cannot take them (the caller casts with tensor ops).
pub fn bf16_pair(a: &Tensor, b: &Tensor, scale: f64) -> Result<Option<(Tensor, Tensor)>> {
    let takes =
        |t: &Tensor| cfg!(feature = "cuda") && t.device().is_cuda() && t.dtype() == DType::F32;
    if !takes(a) || !takes(b) {
        return Ok(None);
    }
    let (na, nb) = (a.elem_count(), b.elem_count());
    let args = vec![
        Arg::U64(na as u64),
        Arg::U64(nb as u64),
        Arg::F32(scale as f32),
    ];
    let out = (na + nb, DType::BF16);
    let both = Kernel::elementwise("cast_pair_bf16", na + nb, out, args).run(&[a, b])?;
    let a_bf16 = both.narrow(0, 0, na)?.reshape(a.shape())?;
    Ok(Some((a_bf16, both.narrow(0, na, nb)?.reshape(b.shape())?)))
}

/// (b, s, h, d) → (b, h, s, d) with `to_heads`, else the reverse, as one kernel of 16-byte
/// moves; None when the kernel cannot take `x` (the caller transposes with tensor ops).
pub fn heads_transpose(
    x: &Tensor,
    (b, s, h, d): (usize, usize, usize, usize),
    to_heads: bool,
) -> Result<Option<Tensor>> {
    let x = x.contiguous()?;
    let aligned = x.layout().start_offset() % 8 == 0;
    if !usable(&x) || d % 8 != 0 || !aligned || x.elem_count() != b * s * h * d {
        return Ok(None);
    }
    let out = if to_heads { (b, h, s, d) } else { (b, s, h, d) };
    let dims = [b, s, h, d, usize::from(to_heads)].map(|v| Arg::I32(v as i32));
    let n = x.elem_count() / 8;
    Kernel::elementwise("heads_transpose_bf16", n, (out, x.dtype()), dims.to_vec())
        .run(&[&x])
        .map(Some)
}

/// A quantized weight on the GPU as a bf16 matrix of its shape, dequantized straight from
/// its blocks (candle's kernels go through f16 or f32 first); None for a CPU weight, a CPU
/// build, or a block type without a kernel here.
/// `anchor`, any tensor on that GPU, is the input a launch needs (the kernel reads nothing of
/// it); without one a 1-element tensor is made.
pub fn dequantize_bf16(
    q: &candle_core::quantized::QTensor,
    anchor: Option<&Tensor>,
) -> Result<Option<Tensor>> {
    use candle_core::quantized::GgmlDType;
    let name = match q.dtype() {
        GgmlDType::Q4_0 => "dequantize_q4_0_bf16",
        GgmlDType::Q4_1 => "dequantize_q4_1_bf16",
        GgmlDType::Q8_0 => "dequantize_q8_0_bf16",
        _ => return Ok(None),
    };
    let device = q.device();
    if !cfg!(feature = "cuda") || !device.is_cuda() {
        return Ok(None);
    }
    let blocks = q.shape().elem_count() / 32;
    let pointer = q.device_ptr()? as u64;
    let anchor = match anchor {
        Some(a) if a.device().same_device(&device) => a.clone(),
        _ => Tensor::zeros(1, DType::BF16, &device)?,
    };
    let args = vec![Arg::U64(pointer), Arg::U64(blocks as u64)];
    let kernel = Kernel::elementwise(name, blocks * 4, (q.shape(), DType::BF16), args);
    Ok(Some(kernel.run_unread(&anchor)?))
}

/// Threads per block and blocks per tensor of the tensor-list kernels.
const LIST_THREADS: u32 = 256;
const LIST_BLOCKS: usize = 8;

/// A list of f32 tensors for the tensor-list kernels (kernels.cu, `gather_f32`): their device
/// addresses and their offsets in a flat vector, uploaded as one table; None on the CPU, in
/// a CPU build, or when a tensor is not a contiguous f32 GPU tensor. A missing tensor (None)
/// stands for zeros of its length.
pub struct TensorList {
    table: Tensor,
    count: usize,
    total: usize,
}

impl TensorList {
    pub fn new(tensors: &[(Option<&Tensor>, usize)], device: &Device) -> Result<Option<Self>> {
        if !cfg!(feature = "cuda") || !device.is_cuda() || tensors.is_empty() {
            return Ok(None);
        }
        let mut addresses = Vec::with_capacity(tensors.len());
        let mut offsets = vec![0i64];
        for (t, len) in tensors {
            let address = match t {
                Some(t) => match f32_address(t, *len)? {
                    Some(a) => a as i64,
                    None => return Ok(None),
                },
                None => 0,
            };
            addresses.push(address);
            offsets.push(offsets[offsets.len() - 1] + *len as i64);
        }
        let total = *offsets.last().unwrap_or(&0) as usize;
        addresses.extend(offsets);
        let count = tensors.len();
        let table = Tensor::from_vec(addresses, 2 * count + 1, device)?;
        Ok(Some(Self {
            table,
            count,
            total,
        }))
    }

    fn kernel(&self, name: &'static str, out: usize, mut args: Vec<Arg>) -> Result<Kernel> {
        args.insert(0, Arg::I32(self.count as i32));
        let blocks = (LIST_BLOCKS, self.count);
        Kernel::grid(name, blocks, LIST_THREADS, (out, DType::F32), args)
    }

    /// The tensors laid end to end in one flat f32 vector.
    pub fn gather(&self) -> Result<Tensor> {
        self.kernel("gather_f32", self.total, vec![])?
            .run(&[&self.table])
    }

    /// One AdamW step on the tensors in place, from the flat gradient `g` and the flat
    /// moments `m` and `v` (updated in place); `hyper` is (lr, beta1, beta2, eps, weight
    /// decay, bias correction 1, bias correction 2).
    pub fn adamw(&self, g: &Tensor, m: &Tensor, v: &Tensor, hyper: [f32; 7]) -> Result<()> {
        let (Some(m_at), Some(v_at)) = (f32_address(m, self.total)?, f32_address(v, self.total)?)
        else {
            candle_core::bail!("adamw: the moments are not flat f32 GPU tensors");
        };
        let mut args = vec![Arg::U64(m_at), Arg::U64(v_at)];
        args.extend(hyper.map(Arg::F32));
        self.kernel("adamw_f32", 1, args)?.run(&[&self.table, g])?;
        Ok(())
    }
}

/// The device address of a contiguous f32 GPU tensor of `len` elements.
fn f32_address(t: &Tensor, len: usize) -> Result<Option<u64>> {
    if t.dtype() != DType::F32 || !t.is_contiguous() || t.elem_count() != len {
        return Ok(None);
    }
    #[cfg(feature = "cuda")]
    {
        use candle_core::backend::BackendStorage;
        use candle_core::cuda_backend::cudarc::driver::DevicePtr;
        let (storage, layout) = t.storage_and_layout();
        if let candle_core::Storage::Cuda(s) = &*storage {
            let stream = s.device().cuda_stream();
            let base = s.as_cuda_slice::<f32>()?.device_ptr(&stream).0;
            return Ok(Some(base + (layout.start_offset() * 4) as u64));
        }
    }
    Ok(None)
}

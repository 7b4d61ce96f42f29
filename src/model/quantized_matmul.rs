//! y = x Wᵀ for a frozen quantized W, with a backward pass.
//!
//! candle's own quantized matmul has no backward (gradients stop silently at every frozen
//! quantized layer) and quantizes the activations to 8 bits. This op keeps x in full precision:
//! the forward either dots x against the blocks directly (few rows, CPU) or dequantizes W
//! transiently and runs a dense matmul; the backward gives grad_x = grad_y · W with W
//! dequantized again inside the backward. No dense copy of W outlives a call.

use super::linear::BaseWeight;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{bail, CpuStorage, CustomOp1, Device, Layout, Result, Shape, Tensor};
use half::f16;
use rayon::prelude::*;
use std::sync::Arc;

/// Up to this many rows of x the CPU forward reads the blocks directly instead of dequantizing.
const DIRECT_MAX_ROWS: usize = 16;

pub struct QuantizedMatmul {
    weight: Arc<QTensor>,
}

/// x (…, in) · Wᵀ -> (…, out).
pub fn quantized_matmul(weight: &Arc<QTensor>, x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(QuantizedMatmul {
        weight: weight.clone(),
    })
}

impl QuantizedMatmul {
    /// (n, k) of W and the output shape for an input of `shape`.
    fn shapes(&self, layout: &Layout) -> Result<(usize, usize, usize, Shape)> {
        let (n, k) = self.weight.shape().dims2()?;
        if !layout.is_contiguous() {
            bail!("quantized matmul: input is not contiguous");
        }
        let dims = layout.shape().dims();
        if dims.last() != Some(&k) {
            bail!("quantized matmul: input {dims:?} does not end in {k}");
        }
        let mut out = dims.to_vec();
        *out.last_mut().unwrap() = n;
        Ok((n, k, layout.shape().elem_count() / k, Shape::from(out)))
    }
}

impl CustomOp1 for QuantizedMatmul {
    fn name(&self) -> &'static str {
        "quantized-matmul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, k, m, out_shape) = self.shapes(layout)?;
        let x = match storage {
            CpuStorage::F32(v) => &v[layout.start_offset()..layout.start_offset() + m * k],
            _ => bail!("quantized matmul on the CPU takes f32 input"),
        };
        let direct = block_dot(self.weight.dtype()).filter(|_| m <= DIRECT_MAX_ROWS);
        let out = match direct {
            Some(dot) => {
                let data = self.weight.data()?;
                let row_bytes = data.len() / n;
                // Each weight row is read once and dotted with every row of x (out is n × m,
                // transposed at the end), so a few rows cost little more than one.
                let mut out_t = vec![0f32; n * m];
                out_t
                    .par_chunks_mut(64 * m)
                    .enumerate()
                    .for_each(|(c, chunk)| {
                        for (j, ys) in chunk.chunks_mut(m).enumerate() {
                            let row = c * 64 + j;
                            let w = &data[row * row_bytes..(row + 1) * row_bytes];
                            for (y, xr) in ys.iter_mut().zip(x.chunks(k)) {
                                *y = dot(w, xr);
                            }
                        }
                    });
                let mut out = vec![0f32; m * n];
                for (row, ys) in out_t.chunks(m).enumerate() {
                    for (r, y) in ys.iter().enumerate() {
                        out[r * n + row] = *y;
                    }
                }
                out
            }
            None => {
                let w = self.weight.dequantize(&Device::Cpu)?;
                let xt = Tensor::from_slice(x, (m, k), &Device::Cpu)?;
                xt.matmul(&w.t()?)?.flatten_all()?.to_vec1::<f32>()?
            }
        };
        Ok((CpuStorage::F32(out), out_shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        let (n, k, m, out_shape) = self.shapes(layout)?;
        let device = Device::Cuda(storage.device().clone());
        let w = BaseWeight::Quantized(self.weight.clone()).dense(storage.dtype(), &device)?;
        let (w_storage, w_layout) = w.storage_and_layout();
        let candle_core::Storage::Cuda(w_storage) = &*w_storage else {
            bail!("quantized matmul: weight is not on the GPU")
        };
        let lhs = Layout::contiguous_with_offset((m, k), layout.start_offset());
        let rhs = w_layout.transpose(0, 1)?;
        let out = storage.matmul(w_storage, (1, m, n, k), &lhs, &rhs)?;
        Ok((out, out_shape))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let grad_x = BaseWeight::Quantized(self.weight.clone()).input_grad(grad_res)?;
        Ok(Some(grad_x.reshape(arg.shape())?))
    }
}

type BlockDot = fn(&[u8], &[f32]) -> f32;

/// A direct dot product over one row of blocks, for the types the default models use.
fn block_dot(dtype: GgmlDType) -> Option<BlockDot> {
    match dtype {
        GgmlDType::Q4_0 => Some(dot_q4_0),
        GgmlDType::Q4_1 => Some(dot_q4_1),
        GgmlDType::Q8_0 => Some(dot_q8_0),
        _ => None,
    }
}

fn half_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

// The dot products keep 8 independent partial sums so the compiler can use SIMD lanes (a
// single running float sum must stay sequential and does not vectorize).
const LANES: usize = 8;

/// Σ over one 32-element block of a(j)·x[j], in LANES partial sums.
#[inline(always)]
fn block_sums(x: &[f32], a: impl Fn(usize) -> f32) -> [f32; LANES] {
    let mut s = [0f32; LANES];
    for c in 0..32 / LANES {
        for (l, acc) in s.iter_mut().enumerate() {
            let j = c * LANES + l;
            *acc += a(j) * x[j];
        }
    }
    s
}

fn finish(acc: [f32; LANES]) -> f32 {
    acc.iter().sum()
}

/// ggml block_q4_0: f16 d, 16 bytes of nibbles; element j < 16 is the low nibble of byte j,
/// element j ≥ 16 the high nibble of byte j − 16; value = d·(q − 8).
fn dot_q4_0(row: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    for (b, xb) in row.chunks_exact(18).zip(x.chunks_exact(32)) {
        let (d, qs) = (half_at(b, 0), &b[2..18]);
        let s = block_sums(xb, |j| {
            (if j < 16 { qs[j] & 15 } else { qs[j - 16] >> 4 }) as f32 - 8.0
        });
        for (a, v) in acc.iter_mut().zip(s) {
            *a += d * v;
        }
    }
    finish(acc)
}

/// ggml block_q4_1: f16 d, f16 m, 16 bytes of nibbles; value = d·q + m.
fn dot_q4_1(row: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    for (b, xb) in row.chunks_exact(20).zip(x.chunks_exact(32)) {
        let (d, m, qs) = (half_at(b, 0), half_at(b, 2), &b[4..20]);
        let s = block_sums(xb, |j| {
            d * (if j < 16 { qs[j] & 15 } else { qs[j - 16] >> 4 }) as f32 + m
        });
        for (a, v) in acc.iter_mut().zip(s) {
            *a += v;
        }
    }
    finish(acc)
}

/// ggml block_q8_0: f16 d, 32 signed bytes; value = d·q.
fn dot_q8_0(row: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    for (b, xb) in row.chunks_exact(34).zip(x.chunks_exact(32)) {
        let (d, qs) = (half_at(b, 0), &b[2..34]);
        let s = block_sums(xb, |j| qs[j] as i8 as f32);
        for (a, v) in acc.iter_mut().zip(s) {
            *a += d * v;
        }
    }
    finish(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Var};

    fn max_rel_diff(a: &Tensor, b: &Tensor) -> f32 {
        let scale = b
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let d = (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        d / scale
    }

    #[test]
    fn forward_and_backward_match_the_dequantized_weight() {
        let dev = Device::Cpu;
        for dtype in [
            GgmlDType::Q4_0,
            GgmlDType::Q4_1,
            GgmlDType::Q8_0,
            GgmlDType::Q4K,
        ] {
            let w = Tensor::randn(0f32, 1.0, (96, 256), &dev).unwrap();
            let q = Arc::new(QTensor::quantize(&w, dtype).unwrap());
            let dense = q.dequantize(&dev).unwrap();
            // 3 rows takes the direct path, 40 rows the dequantize-and-multiply path.
            for rows in [3, 40] {
                let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, rows, 256), &dev).unwrap())
                    .unwrap();
                let ours = quantized_matmul(&q, x.as_tensor()).unwrap();
                let reference = x.as_tensor().broadcast_matmul(&dense.t().unwrap()).unwrap();
                assert!(
                    max_rel_diff(&ours, &reference) < 1e-5,
                    "{dtype:?} rows {rows}"
                );
                let g = Tensor::randn(0f32, 1.0, (2, rows, 96), &dev).unwrap();
                let grad_ours = (ours * &g).unwrap().sum_all().unwrap().backward().unwrap();
                let grad_ref = (reference * &g)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                let (a, b) = (grad_ours.get(&x).unwrap(), grad_ref.get(&x).unwrap());
                assert_eq!(a.dtype(), DType::F32);
                assert!(max_rel_diff(a, b) < 1e-5, "{dtype:?} rows {rows}: gradient");
            }
        }
    }
}

//! Each fused op against its composed form (plain candle ops with autograd): the result and
//! the gradient of every input. On the CPU in f32; on a GPU machine (TUNELAB_TEST_DEVICE=cuda,
//! built with --features cuda) in bf16 as training runs there, with tolerances for bf16.

mod common;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor, Var, D};
use std::sync::Arc;
use tunelab::model::fused::{self, Fused};
use tunelab::model::linear::BaseWeight;

/// The dtype activations have on this device in training.
fn act_dtype(device: &Device) -> DType {
    if device.is_cuda() {
        DType::BF16
    } else {
        DType::F32
    }
}

/// Largest |a − b| relative to the largest |b|.
fn rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.to_dtype(DType::F32).unwrap().flatten_all().unwrap();
    let b = b.to_dtype(DType::F32).unwrap().flatten_all().unwrap();
    let diff = (&a - &b).unwrap().abs().unwrap().max(0).unwrap();
    let scale = b.abs().unwrap().max(0).unwrap();
    diff.to_scalar::<f32>().unwrap() / scale.to_scalar::<f32>().unwrap().max(1e-12)
}

fn tolerance(device: &Device) -> f32 {
    if device.is_cuda() {
        2e-2
    } else {
        1e-5
    }
}

fn randn(shape: &[usize], dtype: DType, device: &Device) -> Tensor {
    Tensor::randn(0f32, 1f32, shape, device)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// Runs `fused` and `composed` on the same inputs (made Vars) and compares the outputs and
/// the gradients of a random projection of them.
fn check(
    name: &str,
    inputs: &[Tensor],
    fused_op: impl Fused + 'static,
    composed: impl Fn(&[Tensor]) -> Tensor,
) {
    let device = inputs[0].device().clone();
    let tol = tolerance(&device);
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let refs: Vec<&Tensor> = tensors.iter().collect();
    let ours = fused::apply(fused_op, &refs).unwrap();
    let theirs = composed(&tensors);
    assert_eq!(ours.dims(), theirs.dims(), "{name}: shape");
    let d = rel_diff(&ours, &theirs);
    assert!(d < tol, "{name}: outputs differ by {d}");
    let probe = randn(ours.dims(), DType::F32, &device);
    let loss = |t: &Tensor| {
        (t.to_dtype(DType::F32).unwrap() * &probe)
            .unwrap()
            .sum_all()
            .unwrap()
    };
    let g_ours = loss(&ours).backward().unwrap();
    let g_theirs = loss(&theirs).backward().unwrap();
    for (i, v) in vars.iter().enumerate() {
        if let (Some(a), Some(b)) = (g_ours.get(v), g_theirs.get(v)) {
            let d = rel_diff(a, b);
            assert!(d < tol, "{name}: gradient of input {i} differs by {d}");
        } else {
            assert!(
                g_theirs.get(v).is_none(),
                "{name}: input {i} got no gradient"
            );
        }
    }
}

#[test]
fn lora_linear_matches_the_composed_projection() {
    let device = common::device();
    // Small, and large enough that the GPU kernels take several tiles of rows, columns and
    // inner chunks, none of them full (k stays a multiple of the 4-bit block of 32).
    for (batch, seq, k, n, r) in [(2, 5, 64, 48, 8), (3, 17, 224, 300, 16)] {
        lora_linear_case(&device, (batch, seq), k, n, r);
    }
}

fn lora_linear_case(device: &Device, (batch, seq): (usize, usize), k: usize, n: usize, r: usize) {
    let dtype = act_dtype(device);
    let rows = batch * seq;
    let w = randn(&[n, k], DType::F32, device);
    let x = randn(&[batch, seq, k], dtype, device);
    let a = (randn(&[r, k], DType::F32, device) * 0.1).unwrap();
    let b = (randn(&[n, r], DType::F32, device) * 0.1).unwrap();
    // The mask the op draws from its seed, drawn here on the host: a GPU kernel that drew
    // other bits would fail the comparison.
    let (seed, keep) = (7, 0.9f32);
    let mask: Vec<f32> = (0..(rows * k) as u64)
        .map(|i| f32::from(u8::from(fused::kernels::keeps(seed, i, keep))))
        .collect();
    let mask = Tensor::from_vec(mask, (batch, seq, k), device).unwrap();
    let (keep_scale, scale) = (1.0 / f64::from(keep), 2.0);
    for quantized in [false, true] {
        let (weight, dense) = if quantized {
            let q = QTensor::quantize(&w, GgmlDType::Q4_1).unwrap();
            let dense = q.dequantize(device).unwrap();
            (BaseWeight::Quantized(Arc::new(q)), dense)
        } else {
            (BaseWeight::Dense(w.to_dtype(dtype).unwrap()), w.clone())
        };
        let dropout = Some(fused::lora_linear::Dropout { keep, seed });
        let op = fused::lora_linear::LoraLinear::new(weight, dropout, scale);
        let mask = mask.clone();
        check("lora-linear", &[x.clone(), a.clone(), b.clone()], op, |t| {
            let (x, a, b) = (&t[0], &t[1], &t[2]);
            let base = x
                .reshape((rows, k))
                .unwrap()
                .matmul(&dense.to_dtype(dtype).unwrap().t().unwrap())
                .unwrap();
            let h = ((x.to_dtype(DType::F32).unwrap() * mask.to_dtype(DType::F32).unwrap())
                .unwrap()
                * keep_scale)
                .unwrap()
                .reshape((rows, k))
                .unwrap();
            let delta = (h
                .matmul(&a.t().unwrap())
                .unwrap()
                .matmul(&b.t().unwrap())
                .unwrap()
                * scale)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            (base + delta).unwrap().reshape((batch, seq, n)).unwrap()
        });
    }
}

#[test]
fn rms_norm_matches_the_composed_norm() {
    let device = common::device();
    let dtype = act_dtype(&device);
    let weight = (randn(&[32], DType::F32, &device) + 1.0).unwrap();
    let x = randn(&[3, 7, 32], dtype, &device);
    let op = fused::rms_norm::RmsNorm {
        weight: weight.clone(),
        eps: 1e-5,
    };
    check("rms-norm", &[x], op, |t| {
        let x = t[0].to_dtype(DType::F32).unwrap();
        let var = x.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        let normed = x
            .broadcast_div(&(var + 1e-5).unwrap().sqrt().unwrap())
            .unwrap();
        normed
            .broadcast_mul(&weight)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    });
}

/// The rotate-half form Hugging Face writes.
fn rope_composed(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
    let half = x.dim(D::Minus1).unwrap() / 2;
    let (cos, sin) = (
        cos.to_dtype(x.dtype()).unwrap(),
        sin.to_dtype(x.dtype()).unwrap(),
    );
    let x1 = x.narrow(D::Minus1, 0, half).unwrap();
    let x2 = x.narrow(D::Minus1, half, half).unwrap();
    let r1 = (x1.broadcast_mul(&cos).unwrap() - x2.broadcast_mul(&sin).unwrap()).unwrap();
    let r2 = (x2.broadcast_mul(&cos).unwrap() + x1.broadcast_mul(&sin).unwrap()).unwrap();
    Tensor::cat(&[r1, r2], D::Minus1).unwrap()
}

#[test]
fn rope_matches_the_rotate_half_form_with_shared_and_per_row_positions() {
    let device = common::device();
    let dtype = act_dtype(&device);
    let x = randn(&[2, 3, 5, 16], dtype, &device);
    let angles = randn(&[5, 8], DType::F32, &device);
    let (cos, sin) = (angles.cos().unwrap(), angles.sin().unwrap());
    let op = fused::rope::Rope {
        cos: cos.clone(),
        sin: sin.clone(),
    };
    check("rope", std::slice::from_ref(&x), op, |t| {
        rope_composed(&t[0], &cos, &sin)
    });
    // Per-row tables (left-padded generation): (batch, seq, half).
    let angles = randn(&[2, 5, 8], DType::F32, &device);
    let (cos, sin) = (angles.cos().unwrap(), angles.sin().unwrap());
    let op = fused::rope::Rope {
        cos: cos.clone(),
        sin: sin.clone(),
    };
    check("rope per row", &[x], op, |t| {
        rope_composed(
            &t[0],
            &cos.unsqueeze(1).unwrap(),
            &sin.unsqueeze(1).unwrap(),
        )
    });
}

/// Rope::split_heads as a graph node, for `check`.
struct SplitRope {
    rope: fused::rope::Rope,
    heads: usize,
}

impl Fused for SplitRope {
    fn name(&self) -> &'static str {
        "split-rope"
    }
    fn forward(&self, args: &[Tensor]) -> candle_core::Result<Tensor> {
        self.rope.split_heads(&args[0], self.heads)
    }
    fn backward(
        &self,
        _: &[Tensor],
        _: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(self.rope.merge_heads_backward(grad)?)])
    }
}

#[test]
fn rope_with_the_head_split_matches_split_then_rotate() {
    let device = common::device();
    let dtype = act_dtype(&device);
    let (b, s, heads, d) = (2, 5, 3, 16);
    let x = randn(&[b, s, heads * d], dtype, &device);
    for per_row in [false, true] {
        let angles = if per_row {
            randn(&[b, s, d / 2], DType::F32, &device)
        } else {
            randn(&[s, d / 2], DType::F32, &device)
        };
        let (cos, sin) = (angles.cos().unwrap(), angles.sin().unwrap());
        let rope = fused::rope::Rope {
            cos: cos.clone(),
            sin: sin.clone(),
        };
        let (cos, sin) = if per_row {
            (cos.unsqueeze(1).unwrap(), sin.unsqueeze(1).unwrap())
        } else {
            (cos, sin)
        };
        check(
            "split-rope",
            std::slice::from_ref(&x),
            SplitRope { rope, heads },
            |t| {
                let split = t[0]
                    .reshape((b, s, heads, d))
                    .unwrap()
                    .transpose(1, 2)
                    .unwrap();
                rope_composed(&split, &cos, &sin)
            },
        );
    }
}

#[test]
fn attention_matches_the_composed_softmax_with_grouped_heads_and_a_mask() {
    let device = common::device();
    let dtype = act_dtype(&device);
    let (b, heads, kv, d) = (2, 6, 2, 16);
    // Queries from the start (training), and the last 3 after a cache; each through the mask
    // and as plain causal (the GPU's softmax kernels: rows of 16 keys take their path for
    // short rows, rows of 7 the general one).
    let cases = [7, 16].map(|total| [(total, total, 0), (total, 3, total - 3)]);
    for (total, s, offset) in cases.into_iter().flatten() {
        for kernel in [false, true] {
            let q = randn(&[b, heads, s, d], dtype, &device);
            let k = randn(&[b, kv, total, d], dtype, &device);
            let v = randn(&[b, kv, total, d], dtype, &device);
            let causal: Vec<f32> = (0..s)
                .flat_map(|i| {
                    (0..total).map(move |j| {
                        if j > i + offset {
                            f32::NEG_INFINITY
                        } else {
                            0.0
                        }
                    })
                })
                .collect();
            let mask = Tensor::from_vec(causal, (s, total), &device).unwrap();
            let scale = 1.0 / (d as f64).sqrt();
            let op = fused::attention::Attention {
                mask: Some(mask.clone()),
                causal_offset: kernel.then_some(offset),
                scale,
            };
            check("attention", &[q, k, v], op, |t| {
                let repeat = |x: &Tensor| {
                    x.unsqueeze(2)
                        .unwrap()
                        .expand((b, kv, heads / kv, total, d))
                        .unwrap()
                        .reshape((b, heads, total, d))
                        .unwrap()
                };
                let (k, v) = (repeat(&t[1]), repeat(&t[2]));
                let scores = (t[0].matmul(&k.t().unwrap()).unwrap() * scale)
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap()
                    .broadcast_add(&mask)
                    .unwrap();
                let probs = candle_nn::ops::softmax(&scores, D::Minus1)
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap();
                probs.matmul(&v).unwrap()
            });
        }
    }
}

#[test]
fn swiglu_matches_silu_times_up() {
    let device = common::device();
    let dtype = act_dtype(&device);
    // 360 elements go 8 at a time on the GPU, 357 one at a time.
    for width in [24, 17] {
        let gate = (randn(&[3, 7, width], dtype, &device) * 3.0).unwrap();
        let up = randn(&[3, 7, width], dtype, &device);
        check("swiglu", &[gate, up], fused::swiglu::SwiGlu, |t| {
            (t[0].silu().unwrap() * &t[1]).unwrap()
        });
    }
}

#[test]
fn dropout_keeps_the_seeded_mask_and_adds_what_it_keeps() {
    let device = common::device();
    let dtype = act_dtype(&device);
    let (seed, keep) = (11, 0.8f32);
    // Whole groups of 8 (the GPU's 16-byte path) and a ragged tail.
    for n in [64, 37] {
        let x = randn(&[n], dtype, &device);
        let base = randn(&[n], dtype, &device);
        let mask: Vec<f32> = (0..n as u64)
            .map(|i| f32::from(u8::from(fused::kernels::keeps(seed, i, keep))))
            .collect();
        let kept = mask.iter().sum::<f32>() / n as f32;
        assert!((kept - keep).abs() < 0.25, "n {n}: kept {kept}");
        let mask = Tensor::from_vec(mask, n, &device)
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let dropped = fused::kernels::drop_inputs(&x, seed, keep).unwrap();
        assert!(
            rel_diff(&dropped, &(&x * &mask).unwrap()) == 0.0,
            "n {n}: dropout"
        );
        let added = fused::kernels::add_kept(&base, &x, seed, keep).unwrap();
        let expected = (&base + (&x * &mask).unwrap()).unwrap();
        assert!(rel_diff(&added, &expected) < 1e-2, "n {n}: masked add");
    }
}

#[test]
fn label_logps_match_log_softmax_and_gather_across_chunks() {
    let device = common::device();
    let dtype = act_dtype(&device);
    // More rows than one chunk, so the chunk boundary is crossed.
    let (rows, vocab) = (1100, 40);
    let logits = (randn(&[rows, vocab], dtype, &device) * 3.0).unwrap();
    let targets: Vec<u32> = (0..rows as u32).map(|i| (i * 7) % vocab as u32).collect();
    let targets = Tensor::from_vec(targets, rows, &device).unwrap();
    let op = fused::label_logps::LabelLogps {
        targets: targets.clone(),
    };
    check("label-logps", &[logits], op, |t| {
        let lp =
            candle_nn::ops::log_softmax(&t[0].to_dtype(DType::F32).unwrap(), D::Minus1).unwrap();
        lp.gather(&targets.unsqueeze(1).unwrap(), 1)
            .unwrap()
            .squeeze(1)
            .unwrap()
    });
}

#[test]
fn head_label_logps_match_the_head_then_log_softmax_across_chunks() {
    let device = common::device();
    let dtype = act_dtype(&device);
    let (rows, hidden, vocab) = (50, 16, 40);
    let h = randn(&[rows, hidden], dtype, &device);
    let w = randn(&[vocab, hidden], DType::F32, &device);
    let targets: Vec<u32> = (0..rows as u32).map(|i| (i * 7) % vocab as u32).collect();
    let targets = Tensor::from_vec(targets, rows, &device).unwrap();
    // The gradient made in the forward, and made in the backward.
    for in_forward in [true, false] {
        let mut op = fused::label_logps::HeadLabelLogps::new(
            BaseWeight::Dense(w.clone()),
            targets.clone(),
            in_forward,
        );
        // 12 rows a chunk: four full chunks and a short one.
        op.chunk_logits = 12 * vocab;
        check("head-label-logps", std::slice::from_ref(&h), op, |t| {
            let logits = t[0]
                .matmul(&w.to_dtype(dtype).unwrap().t().unwrap())
                .unwrap();
            let lp = candle_nn::ops::log_softmax(&logits.to_dtype(DType::F32).unwrap(), D::Minus1)
                .unwrap();
            lp.gather(&targets.unsqueeze(1).unwrap(), 1)
                .unwrap()
                .squeeze(1)
                .unwrap()
        });
    }
}

#[test]
fn bf16_dequantize_matches_the_f32_one_for_every_block_type() {
    let device = common::device();
    let w = randn(&[48, 256], DType::F32, &device);
    for dtype in [
        GgmlDType::Q4_0,
        GgmlDType::Q4_1,
        GgmlDType::Q8_0,
        GgmlDType::Q4K,
    ] {
        let q = Arc::new(QTensor::quantize(&w, dtype).unwrap());
        let reference = q.dequantize(&device).unwrap();
        let ours = BaseWeight::Quantized(q)
            .dense(DType::BF16, &device)
            .unwrap();
        assert_eq!(ours.dtype(), DType::BF16);
        assert_eq!(ours.dims(), reference.dims());
        // One rounding to bf16 is at most half of its 2⁻⁷ relative step.
        let d = rel_diff(&ours, &reference);
        assert!(d < 8e-3, "{dtype:?}: differs by {d}");
    }
}

#[test]
fn products_accumulate_into_their_sum_in_both_orientations() {
    let device = common::device();
    let dtype = act_dtype(&device);
    let (rows, k, n) = (19, 40, 24);
    let f32_of = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
    let h = randn(&[rows, k], dtype, &device);
    let m = randn(&[n, k], dtype, &device);
    let mt = m.t().unwrap().contiguous().unwrap();
    let product = f32_of(&h).matmul(&f32_of(&mt)).unwrap();
    // Each call gets a c of its own: the GPU overwrites it.
    let c = randn(&[rows, n], dtype, &device);
    let want = (f32_of(&c) + &product).unwrap();
    let got = fused::low_rank::add_product(c, &h, &m).unwrap();
    assert!(rel_diff(&got, &want) < tolerance(&device), "c + h·mᵀ");
    let c = randn(&[rows, n], dtype, &device);
    let want = (f32_of(&c) + &product).unwrap();
    let got = fused::low_rank::product_plus(&h, &mt, Some(c)).unwrap();
    assert!(rel_diff(&got, &want) < tolerance(&device), "c + h·m");
    // The adapters' gradient form: α·xᵀ·y straight to f32.
    let y = randn(&[rows, n], dtype, &device);
    let got = fused::low_rank::transposed_product_f32(&h, &y, 0.5).unwrap();
    assert_eq!(got.dtype(), DType::F32);
    let want = (f32_of(&h).t().unwrap().matmul(&f32_of(&y)).unwrap() * 0.5).unwrap();
    assert!(rel_diff(&got, &want) < tolerance(&device), "α·xᵀ·y");
}

/// The head split and merge (one 16-byte-move kernel on the GPU) against reshape and
/// transpose, with a head size the kernel takes (16) and one it leaves to tensor ops (6);
/// the residual add against candle's, for whole and ragged groups of 8; and the adapter's
/// paired bf16 cast against two casts (on the CPU there is no kernel for it).
#[test]
fn small_kernels_match_the_tensor_ops() {
    let device = common::device();
    let dtype = act_dtype(&device);
    for d in [16, 6] {
        let (b, s, h) = (2, 5, 3);
        let x = randn(&[b, s, h * d], dtype, &device);
        let split = fused::rope::split(&x, h).unwrap();
        let expected = x
            .reshape((b, s, h, d))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap();
        assert_eq!(split.dims(), &[b, h, s, d]);
        assert!(rel_diff(&split, &expected) == 0.0, "d {d}: split");
        let merged = fused::rope::merge(&split).unwrap();
        assert!(rel_diff(&merged, &x) == 0.0, "d {d}: merge");
    }
    for n in [64, 37] {
        let (a, b) = (randn(&[n], dtype, &device), randn(&[n], dtype, &device));
        let sum = fused::kernels::add(&a, &b).unwrap();
        let expected = (&a + &b).unwrap();
        assert!(rel_diff(&sum, &expected) == 0.0, "n {n}: add");
    }
    let a = randn(&[4, 24], DType::F32, &device);
    let b = randn(&[40, 4], DType::F32, &device);
    let pair = fused::kernels::bf16_pair(&a, &b, 2.5).unwrap();
    assert_eq!(pair.is_some(), device.is_cuda());
    if let Some((a16, b16)) = pair {
        assert_eq!((a16.dims(), b16.dims()), (a.dims(), b.dims()));
        let expected_b = (&b * 2.5).unwrap().to_dtype(DType::BF16).unwrap();
        assert!(
            rel_diff(&a16, &a.to_dtype(DType::BF16).unwrap()) == 0.0,
            "A"
        );
        assert!(rel_diff(&b16, &expected_b) == 0.0, "B");
    }
}

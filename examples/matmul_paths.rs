//! Benchmark: the two ways to multiply by a quantized weight, on the default model's layer-0
//! projections and output head. `exact` is tunelab's (f32 activations; blocks read directly for
//! few rows, else dequantize + dense matmul); `kernel` is candle's quantized matmul (activations
//! quantized to 8 bits on the fly). Prints one JSON line per (projection, rows) with the time
//! of each and its error against the dequantized-weight product in f64-free f32.
//!
//!   cargo run --release --example matmul_paths -- [cpu|cuda] [iters]

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use std::time::Instant;
use tunelab::model::source::LocalModel;
use tunelab::model::{fetch, LoadedModel};

fn rel_err(a: &Tensor, b: &Tensor) -> Result<f32> {
    let scale = b.abs()?.max_all()?.to_scalar::<f32>()?;
    Ok((a - b)?.abs()?.max_all()?.to_scalar::<f32>()? / scale)
}

fn time(device: &Device, iters: usize, mut f: impl FnMut() -> Result<Tensor>) -> Result<f64> {
    f()?; // warm-up
    device.synchronize()?;
    let start = Instant::now();
    for _ in 0..iters {
        f()?;
    }
    device.synchronize()?;
    Ok(start.elapsed().as_secs_f64() * 1e3 / iters as f64)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let device = match args.get(1).map(String::as_str) {
        Some("cuda") => Device::new_cuda(0)?,
        _ => Device::Cpu,
    };
    let iters: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let path = fetch::ensure_default_model(&mut |l| eprintln!("{l}"))?;
    let loaded = LoadedModel::load_local(LocalModel::Gguf(path), &device)?;
    let model = &loaded.model;
    let mut linears: Vec<(String, &tunelab::model::linear::Linear)> = model
        .named_linears()
        .filter(|(n, _)| n.starts_with("model.layers.0."))
        .collect();
    linears.push(("lm_head".into(), model.lm_head()));
    for rows in [1usize, 16, 512, 2048] {
        for (name, linear) in &linears {
            let x = Tensor::randn(0f32, 1.0, (rows, linear.in_features()), &device)?;
            let reference = x.matmul(&linear.dequantized(DType::F32)?.t()?)?;
            let exact_err = rel_err(&linear.forward(&x)?, &reference)?;
            let kernel_err = rel_err(&linear.forward_quantized_kernel(&x)?, &reference)?;
            let exact_ms = time(&device, iters, || linear.forward(&x))?;
            let kernel_ms = time(&device, iters, || linear.forward_quantized_kernel(&x))?;
            println!(
                "{}",
                serde_json::json!({
                    "device": tunelab::device::describe(&device), "weight": name,
                    "type": linear.storage_type(), "rows": rows,
                    "exact_ms": exact_ms, "kernel_ms": kernel_ms, "exact_over_kernel": exact_ms / kernel_ms,
                    "exact_rel_err": exact_err, "kernel_rel_err": kernel_err,
                })
            );
        }
    }
    Ok(())
}

//! With the `cuda` feature, compiles the fused ops' kernels (src/model/fused/kernels.cu) to PTX
//! with nvcc, as candle builds its own; the binary embeds it. Without the feature, nothing.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "src/model/fused/kernels.cu";
    println!("cargo::rerun-if-changed={source}");
    println!("cargo::rerun-if-env-changed=CUDA_COMPUTE_CAP");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("kernels.ptx");
    let nvcc = std::env::var("CUDA_ROOT")
        .map(|root| format!("{root}/bin/nvcc"))
        .unwrap_or_else(|_| "nvcc".into());
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "80".into());
    let status = Command::new(&nvcc)
        .args(["-ptx", "-O3", &format!("-arch=compute_{cap}"), source, "-o"])
        .arg(&out)
        .status()
        .unwrap_or_else(|e| {
            panic!("running {nvcc}: {e} (the cuda feature needs the CUDA toolkit)")
        });
    assert!(status.success(), "{nvcc} failed on {source}");
}

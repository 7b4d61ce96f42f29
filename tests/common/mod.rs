//! Shared by the integration tests: the default model, fetched once per test binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tunelab::model::source::LocalModel;
use tunelab::model::{fetch, LoadedModel};

/// The device tests run on: the CPU, or CUDA when TUNELAB_TEST_DEVICE=cuda (on a GPU machine,
/// with a binary built with `--features cuda`).
pub fn device() -> candle_core::Device {
    match std::env::var("TUNELAB_TEST_DEVICE").as_deref() {
        Ok("cuda") => {
            candle_core::Device::new_cuda(0).expect("TUNELAB_TEST_DEVICE=cuda but no CUDA device")
        }
        _ => candle_core::Device::Cpu,
    }
}

/// The default GGUF, fetched into the cache if this machine lacks it.
pub fn default_gguf() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        fetch::ensure_default_model(&mut |line| eprintln!("{line}"))
            .expect("fetching the default model")
    })
    .clone()
}

/// The bundled Gemma 3 270M GGUF (`gemma3-270m`), fetched into the cache if this machine
/// lacks it.
pub fn gemma3_gguf() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        fetch::ensure_model(&fetch::GEMMA3_270M, &mut |line| eprintln!("{line}"))
            .expect("fetching gemma3-270m")
    })
    .clone()
}

/// The default model loaded on the CPU, shared by the tests of one binary.
pub fn default_model() -> &'static LoadedModel {
    static MODEL: OnceLock<LoadedModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        LoadedModel::load_local(LocalModel::Gguf(default_gguf()), &device())
            .expect("loading the default model")
    })
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn read_json(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture(name)).expect("reading fixture");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// A fresh empty folder under the target dir, removed and recreated on each call.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The tiny Llama of tests/fixtures/lora_tiny as a complete Hugging Face folder (weights and
/// tokenizer) at `dir/tiny-llama`.
pub fn tiny_hf_folder(dir: &Path) -> PathBuf {
    let out = dir.join("tiny-llama");
    std::fs::create_dir_all(&out).unwrap();
    for part in ["base", "tokenizer"] {
        for f in std::fs::read_dir(fixture(&format!("lora_tiny/{part}"))).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, out.join(f.file_name().unwrap())).unwrap();
        }
    }
    out
}

/// Largest |t| of a tensor, as f32.
pub fn max_abs(t: &candle_core::Tensor) -> f32 {
    t.abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_dtype(candle_core::DType::F32)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Largest |a − b| relative to max |b|.
pub fn rel_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    max_abs(&(a - b).unwrap()) / max_abs(b).max(1e-12)
}

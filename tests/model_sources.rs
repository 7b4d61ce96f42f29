//! Every way to name a model, and every way a model file can be wrong.

mod common;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tunelab::export::hf::{write_hf_folder, MAX_SHARD_BYTES};
use tunelab::model::source::LocalModel;
use tunelab::model::LoadedModel;

fn tunelab(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tunelab"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running tunelab")
}

/// Asserts a failed run ended with one line starting "error:" that holds every `needles`
/// (progress lines may come before it).
fn assert_one_line_error(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {stderr}");
    let line = stderr.trim().lines().last().unwrap_or_default();
    assert!(line.starts_with("error:"), "no error line last: {stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "one error line only: {stderr}"
    );
    assert!(!line.contains("panicked"), "{stderr}");
    for n in needles {
        assert!(line.contains(n), "{line:?} should mention {n:?}");
    }
}

/// The default model written as a Hugging Face folder (f32), made once per test binary.
fn hf_folder() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = common::scratch_dir("hf_export").join("smollm2-hf");
        write_hf_folder(
            common::default_model(),
            &dir,
            DType::F32,
            MAX_SHARD_BYTES,
            &mut |_| {},
        )
        .expect("writing the HF folder");
        dir
    })
    .clone()
}

#[test]
fn hf_folder_loads_and_matches_the_gguf() {
    let gguf = common::default_model();
    let hf = LoadedModel::load_local(LocalModel::HfFolder(hf_folder()), &Device::Cpu).unwrap();
    assert_eq!(hf.model.config(), gguf.model.config());
    assert_eq!(hf.template.source(), gguf.template.source());
    assert_eq!(hf.stop_ids, gguf.stop_ids);
    let ids = gguf
        .chat_prompt(None, "Name three offshore vessels.")
        .unwrap();
    assert_eq!(
        hf.chat_prompt(None, "Name three offshore vessels.")
            .unwrap(),
        ids
    );
    let input = Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let a: Vec<f32> = gguf
        .model
        .forward_last(&input, 0, None)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let b: Vec<f32> = hf
        .model
        .forward_last(&input, 0, None)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    // Same f32 weights, same ops: only the dequantize-then-multiply order differs.
    assert!(diff < 1e-3, "max abs diff {diff}");
}

#[test]
fn hub_repo_is_found_in_the_cache_offline() {
    let home = common::scratch_dir("hf_home");
    let repo = home.join("hub/models--tunelab-test--smollm2");
    let snapshot = repo.join("snapshots/0123456789abcdef");
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123456789abcdef").unwrap();
    for f in std::fs::read_dir(hf_folder()).unwrap() {
        let f = f.unwrap().path();
        std::os::unix::fs::symlink(&f, snapshot.join(f.file_name().unwrap())).unwrap();
    }
    let out = tunelab(
        &["model", "info", "tunelab-test/smollm2", "--json"],
        &[("HF_HOME", &home), ("HF_HUB_OFFLINE", Path::new("1"))],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["layers"], 30);
    assert_eq!(info["tensor_types"]["F32"], 272);

    let out = tunelab(
        &["model", "info", "tunelab-test/absent"],
        &[("HF_HOME", &home), ("HF_HUB_OFFLINE", Path::new("1"))],
    );
    assert_one_line_error(&out, &["tunelab-test/absent", "HF_HUB_OFFLINE"]);
}

#[test]
fn unreachable_hub_fails_fast_and_says_so() {
    let home = common::scratch_dir("hf_home_empty");
    let started = Instant::now();
    let out = tunelab(
        &["model", "info", "tunelab-test/absent"],
        &[
            ("HF_HOME", &home),
            ("HF_ENDPOINT", Path::new("http://127.0.0.1:9")),
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert_one_line_error(&out, &["tunelab-test/absent", "offline?"]);
}

#[test]
fn missing_truncated_and_corrupt_files_are_named() {
    let dir = common::scratch_dir("bad_files");
    let missing = dir.join("missing.gguf");
    assert_one_line_error(
        &tunelab(&["model", "info", missing.to_str().unwrap()], &[]),
        &["missing.gguf", "no such"],
    );

    let corrupt = dir.join("corrupt.gguf");
    std::fs::write(
        &corrupt,
        b"this is not a model file at all, just text".repeat(30),
    )
    .unwrap();
    assert_one_line_error(
        &tunelab(&["model", "info", corrupt.to_str().unwrap()], &[]),
        &["corrupt.gguf", "not a valid GGUF"],
    );

    let truncated = dir.join("truncated.gguf");
    let bytes = std::fs::read(common::default_gguf()).unwrap();
    std::fs::write(&truncated, &bytes[..3 << 20]).unwrap();
    assert_one_line_error(
        &tunelab(&["model", "info", truncated.to_str().unwrap()], &[]),
        &["truncated.gguf", "truncated"],
    );

    let folder = dir.join("broken-hf");
    std::fs::create_dir_all(&folder).unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(hf_folder().join(f), folder.join(f)).unwrap();
    }
    let weights = std::fs::read(hf_folder().join("model.safetensors")).unwrap();
    std::fs::write(
        folder.join("model.safetensors"),
        &weights[..weights.len() / 2],
    )
    .unwrap();
    assert_one_line_error(
        &tunelab(&["model", "info", folder.to_str().unwrap()], &[]),
        &["broken-hf", "safetensors"],
    );
}

fn write_gguf(path: &Path, metadata: &[(&str, Value)]) {
    let t = QTensor::quantize(
        &Tensor::zeros((4, 32), DType::F32, &Device::Cpu).unwrap(),
        GgmlDType::F32,
    )
    .unwrap();
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let mut f = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut f, &md, &[("token_embd.weight", &t)]).unwrap();
}

#[test]
fn other_architectures_and_mismatched_tokenizers_are_refused() {
    let dir = common::scratch_dir("bad_gguf");
    let qwen = dir.join("qwen.gguf");
    write_gguf(
        &qwen,
        &[("general.architecture", Value::String("qwen2".into()))],
    );
    assert_one_line_error(
        &tunelab(&["model", "info", qwen.to_str().unwrap()], &[]),
        &[
            "qwen.gguf",
            "architecture 'qwen2' is not supported",
            "llama",
        ],
    );

    let small_vocab = dir.join("mismatch.gguf");
    let u = |v: u32| Value::U32(v);
    let tokens = Value::Array(
        ["a", "b", "c"]
            .iter()
            .map(|t| Value::String(t.to_string()))
            .collect(),
    );
    write_gguf(
        &small_vocab,
        &[
            ("general.architecture", Value::String("llama".into())),
            ("llama.vocab_size", u(100)),
            ("llama.embedding_length", u(32)),
            ("llama.feed_forward_length", u(64)),
            ("llama.block_count", u(1)),
            ("llama.attention.head_count", u(2)),
            ("llama.context_length", u(64)),
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.tokens", tokens),
            ("tokenizer.ggml.merges", Value::Array(vec![])),
        ],
    );
    assert_one_line_error(
        &tunelab(&["model", "info", small_vocab.to_str().unwrap()], &[]),
        &["mismatch.gguf", "3 tokens", "vocabulary is 100"],
    );
}

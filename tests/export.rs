//! `tunelab export` on the tiny Llama of tests/fixtures/lora_tiny (base + PEFT adapter, with the
//! 96-token tokenizer of tests/reference/make_tiny_tokenizer.py): each format written, read
//! back by tunelab with the logits of base + adapter, file headers checked, and adapters for
//! another base refused before anything is written. One test runs the default model.

mod common;

use candle_core::quantized::gguf_file;
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::process::Command;
use tunelab::export::gguf_writer::metadata;
use tunelab::export::hf::{write_hf_folder, INDEX_FILE};
use tunelab::export::{export, ExportFormat, ExportRequest, FloatType, QuantType};
use tunelab::model::peft::{load_adapter, save_adapter};
use tunelab::model::source::LocalModel;
use tunelab::model::LoadedModel;

/// The tiny base as a complete Hugging Face folder (weights + tokenizer), in a scratch folder.
fn tiny_base(name: &str) -> PathBuf {
    common::tiny_hf_folder(&common::scratch_dir(name))
}

fn tiny_adapter() -> PathBuf {
    common::fixture("lora_tiny/adapter")
}

fn request(base: &Path, format: ExportFormat, out: &Path) -> ExportRequest {
    ExportRequest {
        adapter: Some(tiny_adapter()),
        model: Some(base.display().to_string()),
        format,
        out: out.to_path_buf(),
        dtype: None,
        quant: None,
    }
}

fn run(req: &ExportRequest) -> tunelab::export::ExportSummary {
    export(req, &mut |_| {}).unwrap_or_else(|e| panic!("export failed: {e:#}"))
}

fn load(local: LocalModel) -> LoadedModel {
    LoadedModel::load_local(local, &Device::Cpu).unwrap()
}

/// Base + adapter as tunelab runs them before any export.
fn tuned(base: &Path) -> LoadedModel {
    let mut m = load(LocalModel::HfFolder(base.to_path_buf()));
    load_adapter(&mut m.model, &tiny_adapter()).unwrap();
    m
}

/// The fixture's token batch (2 × 12), the one PEFT's reference logits were taken on.
fn batch() -> Tensor {
    let r = common::read_json("lora_tiny/reference.json");
    let ids: Vec<Vec<u32>> = serde_json::from_value(r["batch"]["input_ids"].clone()).unwrap();
    Tensor::new(ids, &Device::Cpu).unwrap()
}

fn logits(m: &LoadedModel) -> Tensor {
    m.model.forward(&batch(), 0, None).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A safetensors file's JSON header.
fn safetensors_header(path: &Path) -> (serde_json::Value, u64, u64) {
    let bytes = std::fs::read(path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    let header = serde_json::from_slice(&bytes[8..8 + len as usize]).unwrap();
    (header, len, bytes.len() as u64)
}

#[test]
fn hf_export_merges_the_adapter_and_reads_back() {
    let base = tiny_base("export_hf");
    let weights_before = std::fs::read(base.join("model.safetensors")).unwrap();
    let out = base.with_file_name("merged");
    let mut req = request(&base, ExportFormat::Hf, &out);
    req.dtype = Some(FloatType::F32);
    run(&req);
    assert_eq!(
        std::fs::read(base.join("model.safetensors")).unwrap(),
        weights_before,
        "the base file must not change"
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("model.safetensors"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "others may read an exported model");
    }
    let (header, header_len, file_len) = safetensors_header(&out.join("model.safetensors"));
    let header = header.as_object().unwrap();
    assert_eq!(header["__metadata__"]["format"], "pt");
    let tensors: Vec<_> = header
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .collect();
    // embedding + 3 layers × (7 projections + 2 norms) + final norm; the tied head is left out.
    assert_eq!(tensors.len(), 1 + 3 * 9 + 1);
    assert!(!header.contains_key("lm_head.weight"));
    let mut end = 0;
    for (name, t) in &tensors {
        assert_eq!(t["dtype"], "F32", "{name}");
        let shape: Vec<u64> = serde_json::from_value(t["shape"].clone()).unwrap();
        let offsets: Vec<u64> = serde_json::from_value(t["data_offsets"].clone()).unwrap();
        assert_eq!(
            offsets[1] - offsets[0],
            shape.iter().product::<u64>() * 4,
            "{name}"
        );
        end = end.max(offsets[1]);
    }
    assert_eq!(8 + header_len + end, file_len);
    assert_eq!(
        header["model.layers.2.self_attn.k_proj.weight"]["shape"],
        serde_json::json!([32, 64])
    );

    let config = read_json(&out.join("config.json"));
    let source = read_json(&base.join("config.json"));
    for key in [
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "vocab_size",
        "max_position_embeddings",
        "rms_norm_eps",
        "tie_word_embeddings",
        "architectures",
    ] {
        assert_eq!(config[key], source[key], "config.json {key}");
    }
    assert_eq!(
        config["rope_theta"],
        source["rope_parameters"]["rope_theta"]
    );
    assert_eq!(config["torch_dtype"], "float32");
    assert_eq!(config["eos_token_id"], 2);
    let generation = read_json(&out.join("generation_config.json"));
    assert_eq!(generation["eos_token_id"], serde_json::json!([2]));
    let tok_config = read_json(&out.join("tokenizer_config.json"));
    let source_tok = read_json(&base.join("tokenizer_config.json"));
    assert_eq!(tok_config["chat_template"], source_tok["chat_template"]);
    assert_eq!(tok_config["eos_token"], "<|im_end|>");

    let tuned = tuned(&base);
    let merged = load(LocalModel::HfFolder(out.clone()));
    assert!(merged.model.lora_layers().is_empty());
    assert_eq!(merged.stop_ids, tuned.stop_ids);
    let diff = max_abs_diff(&logits(&merged), &logits(&tuned));
    // W + s·BA summed once instead of per token: f32 rounding only.
    assert!(diff < 1e-4, "merged vs base+adapter: max |dlogit| {diff}");
    // And against PEFT's own logits for the same batch (row 0, last position).
    let peft: Vec<f32> = serde_json::from_value(
        common::read_json("lora_tiny/reference.json")["logits_row0_last"].clone(),
    )
    .unwrap();
    let ours: Vec<f32> = logits(&merged)
        .get(0)
        .unwrap()
        .get(11)
        .unwrap()
        .to_vec1()
        .unwrap();
    let peft_diff = ours
        .iter()
        .zip(&peft)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(peft_diff < 1e-4, "merged vs PEFT: max |dlogit| {peft_diff}");
}

#[test]
fn hf_export_shards_past_the_limit_with_an_index() {
    let base = tiny_base("export_shards");
    let tuned = tuned(&base);
    let out = base.with_file_name("sharded");
    // 40 kB shards: the 24 kB embedding, then the layers spread over several files.
    write_hf_folder(&tuned, &out, DType::F32, 40_000, &mut |_| {}).unwrap();
    let index = read_json(&out.join(INDEX_FILE));
    let map = index["weight_map"].as_object().unwrap();
    assert_eq!(map.len(), 29);
    let mut files: Vec<&str> = map.values().map(|v| v.as_str().unwrap()).collect();
    files.sort();
    files.dedup();
    assert!(files.len() > 2, "{files:?}");
    assert!(!out.join("model.safetensors").exists());
    let mut total = 0;
    for (i, file) in files.iter().enumerate() {
        assert_eq!(
            *file,
            format!("model-{:05}-of-{:05}.safetensors", i + 1, files.len())
        );
        let (header, _, _) = safetensors_header(&out.join(file));
        for (name, t) in header.as_object().unwrap() {
            if name != "__metadata__" {
                assert_eq!(map[name], *file, "{name}");
                let offsets: Vec<u64> = serde_json::from_value(t["data_offsets"].clone()).unwrap();
                total += offsets[1] - offsets[0];
            }
        }
    }
    assert_eq!(index["metadata"]["total_size"], total);
    let merged = load(LocalModel::HfFolder(out));
    let diff = max_abs_diff(&logits(&merged), &logits(&tuned));
    assert!(diff < 1e-4, "sharded vs base+adapter: max |dlogit| {diff}");
}

#[test]
fn gguf_export_reads_back_with_identical_metadata_and_logits() {
    let base = tiny_base("export_gguf");
    let out = base.with_file_name("merged-f32.gguf");
    let mut req = request(&base, ExportFormat::Gguf, &out);
    req.dtype = Some(FloatType::F32);
    run(&req);
    let tuned = tuned(&base);

    let mut file = std::fs::File::open(&out).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let expected = metadata(&tuned, GgmlDType::F32, "merged-f32").unwrap();
    assert_eq!(content.metadata.len(), expected.len());
    for (key, value) in &expected {
        let read = content.metadata.get(key).unwrap_or_else(|| panic!("{key}"));
        assert_eq!(format!("{read:?}"), format!("{value:?}"), "{key}");
    }
    assert_eq!(content.tensor_infos.len(), 29);
    assert!(content.tensor_infos.contains_key("blk.2.attn_k.weight"));
    let types: Vec<GgmlDType> = content
        .tensor_infos
        .values()
        .map(|t| t.ggml_dtype)
        .collect();
    assert!(types.iter().all(|&t| t == GgmlDType::F32));

    let back = load(LocalModel::Gguf(out));
    // GGUF stores rms_norm_eps as f32, as llama.cpp's converter does.
    let (mut read, source) = (back.model.config().clone(), tuned.model.config());
    assert!((read.rms_norm_eps - source.rms_norm_eps).abs() < 1e-12);
    read.rms_norm_eps = source.rms_norm_eps;
    assert_eq!(&read, source);
    assert_eq!(back.stop_ids, tuned.stop_ids);
    assert_eq!(back.template.source(), tuned.template.source());
    let text = "<|im_start|>user\nthe tin? 42 (yes)<|im_end|>\n";
    assert_eq!(
        back.tokenizer.encode(text).unwrap(),
        tuned.tokenizer.encode(text).unwrap()
    );
    // f32 all the way: a wrong q/k permutation would move these by whole units.
    let diff = max_abs_diff(&logits(&back), &logits(&tuned));
    assert!(diff < 1e-4, "gguf f32 vs base+adapter: max |dlogit| {diff}");
}

#[test]
fn quantized_gguf_exports_stay_within_their_error() {
    let base = tiny_base("export_gguf_quant");
    let reference = logits(&tuned(&base));
    // (storage, the projections' type, stated max |dlogit| on this random model, whose logits
    // reach ±20; measured: F16 0.008, BF16 0.07, Q8_0 0.23, Q4_1 2.4, Q5_0 1.2). Q4_K needs rows
    // of 256: the tiny model's 64/128 fall back to Q5_0, as llama.cpp does.
    let cases = [
        (None, Some(FloatType::F16), GgmlDType::F16, 0.02),
        (None, Some(FloatType::Bf16), GgmlDType::BF16, 0.2),
        (Some(QuantType::Q8_0), None, GgmlDType::Q8_0, 0.5),
        (Some(QuantType::Q4_1), None, GgmlDType::Q4_1, 5.0),
        (Some(QuantType::Q4K), None, GgmlDType::Q5_0, 3.0),
    ];
    for (quant, dtype, projection_type, bound) in cases {
        let out = base.with_file_name(format!("{projection_type:?}.gguf"));
        let mut req = request(&base, ExportFormat::Gguf, &out);
        req.quant = quant;
        req.dtype = dtype;
        run(&req);
        let mut file = std::fs::File::open(&out).unwrap();
        let content = gguf_file::Content::read(&mut file).unwrap();
        assert_eq!(
            content.tensor_infos["blk.0.ffn_down.weight"].ggml_dtype,
            projection_type
        );
        assert_eq!(
            content.tensor_infos["blk.0.attn_norm.weight"].ggml_dtype,
            GgmlDType::F32
        );
        let diff = max_abs_diff(&logits(&load(LocalModel::Gguf(out))), &reference);
        eprintln!("{projection_type:?}: max |dlogit| {diff}");
        assert!(
            diff < bound,
            "{projection_type:?}: max |dlogit| {diff} ≥ {bound}"
        );
        assert!(diff > 0.0, "{projection_type:?} cannot be exact");
    }
}

#[test]
fn peft_export_copies_the_adapter_and_records_the_base() {
    let base = tiny_base("export_peft");
    let out = base.with_file_name("adapter");
    run(&request(&base, ExportFormat::Peft, &out));
    let config = read_json(&out.join("adapter_config.json"));
    assert_eq!(
        config["base_model_name_or_path"],
        base.display().to_string()
    );
    // PEFT's own fields survive.
    assert_eq!(config["peft_version"], "0.21.2");
    assert_eq!(
        std::fs::read(out.join("adapter_model.safetensors")).unwrap(),
        std::fs::read(tiny_adapter().join("adapter_model.safetensors")).unwrap()
    );
    // The exported adapter names its base: no --model needed, and it still fits.
    let merged = base.with_file_name("merged");
    run(&ExportRequest {
        adapter: Some(out),
        model: None,
        format: ExportFormat::Hf,
        out: merged.clone(),
        dtype: Some(FloatType::F32),
        quant: None,
    });
    let diff = max_abs_diff(
        &logits(&load(LocalModel::HfFolder(merged))),
        &logits(&tuned(&base)),
    );
    assert!(diff < 1e-4, "{diff}");
}

fn tunelab_export(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .arg("export")
        .args(args)
        .output()
        .unwrap()
}

fn assert_refused(out: &std::process::Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let line = stderr.trim().lines().last().unwrap_or_default();
    assert!(line.starts_with("error:"), "{stderr}");
    for n in needles {
        assert!(line.contains(n), "{line:?} should mention {n:?}");
    }
}

/// Nothing was written: no output and no temporary sibling.
fn assert_nothing_written(out: &Path) {
    assert!(!out.exists(), "{} was written", out.display());
    let parent = out.parent().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_adapter_for_another_base_is_refused_before_writing() {
    let base = tiny_base("export_refused");
    let scratch = base.parent().unwrap().to_path_buf();
    let out = scratch.join("out.gguf");
    let (base_arg, out_arg) = (base.to_str().unwrap(), out.to_str().unwrap());

    // The adapter names another base.
    let adapter = scratch.join("other-adapter");
    std::fs::create_dir_all(&adapter).unwrap();
    let mut config = read_json(&tiny_adapter().join("adapter_config.json"));
    config["base_model_name_or_path"] = "HuggingFaceTB/SmolLM2-360M-Instruct".into();
    std::fs::write(
        adapter.join("adapter_config.json"),
        serde_json::to_string(&config).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        tiny_adapter().join("adapter_model.safetensors"),
        adapter.join("adapter_model.safetensors"),
    )
    .unwrap();
    let adapter_arg = adapter.to_str().unwrap();
    let result = tunelab_export(&[
        "--adapter",
        adapter_arg,
        "--model",
        base_arg,
        "--to",
        "gguf",
        "--out",
        out_arg,
    ]);
    assert_refused(
        &result,
        &[
            "adapter_config.json",
            "base_model_name_or_path",
            "SmolLM2-360M-Instruct",
        ],
    );
    assert_nothing_written(&out);

    // The adapter's shapes do not fit (the tiny adapter on the default model; it names no base).
    let gguf = common::default_gguf();
    let result = tunelab_export(&[
        "--adapter",
        tiny_adapter().to_str().unwrap(),
        "--model",
        gguf.to_str().unwrap(),
        "--to",
        "gguf",
        "--out",
        out_arg,
    ]);
    assert_refused(&result, &["does not fit", "shape"]);
    assert_nothing_written(&out);

    // Flags that cannot work.
    let hf_out = scratch.join("hf");
    let hf_arg = hf_out.to_str().unwrap();
    for (args, needle) in [
        (vec!["--to", "peft", "--out", hf_arg], "needs --adapter"),
        (
            vec!["--to", "hf", "--quant", "q8_0", "--out", hf_arg],
            "--quant applies to gguf",
        ),
        (
            vec!["--model", base_arg, "--to", "gguf", "--out", hf_arg],
            "NAME.gguf",
        ),
        (
            vec!["--model", base_arg, "--to", "hf", "--out", base_arg],
            "already exists",
        ),
    ] {
        assert_refused(&tunelab_export(&args), &[needle]);
        assert_nothing_written(&hf_out);
    }
}

/// The default model with a random adapter (B non-zero, so the merge matters), exported to a
/// Q8_0 GGUF and read back: the quantization error on a real model, stated.
#[test]
fn default_model_q8_0_export_stays_close_to_base_plus_adapter() {
    let scratch = common::scratch_dir("export_default");
    let mut tuned = load(LocalModel::Gguf(common::default_gguf()));
    let config = tunelab::model::lora::LoraConfig {
        r: 8,
        lora_alpha: 16.0,
        lora_dropout: 0.0,
        ..Default::default()
    };
    tuned.model.attach_lora(&config, 7).unwrap();
    // B uniform in ±0.08 from a seeded generator (candle's CPU generator cannot be seeded).
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for (_, lora) in tuned.model.lora_layers() {
        let b = lora.b.as_tensor();
        let values: Vec<f32> = (0..b.elem_count())
            .map(|_| rng.random_range(-0.08..0.08))
            .collect();
        lora.b
            .set(&Tensor::from_vec(values, b.shape(), b.device()).unwrap())
            .unwrap();
    }
    let adapter = scratch.join("adapter");
    save_adapter(
        &tuned.model,
        &config,
        Some("SmolLM2-135M-Instruct.Q4_1.gguf"),
        &adapter,
    )
    .unwrap();
    let export_to = |quant| {
        let out = scratch.join(format!("merged-{quant:?}.gguf"));
        let summary = run(&ExportRequest {
            adapter: Some(adapter.clone()),
            model: None,
            format: ExportFormat::Gguf,
            out: out.clone(),
            dtype: None,
            quant: Some(quant),
        });
        (out, summary.adapter_kept.unwrap(), summary.notes.join("\n"))
    };
    // Re-quantizing W + s·BA to the base's own 4-bit grid rounds a small change back to W: the
    // export says so (this adapter's change is below half a Q4_1 step for most weights).
    let (_, kept_q4_1, notes) = export_to(QuantType::Q4_1);
    assert!(kept_q4_1 < 0.5, "Q4_1 kept {kept_q4_1}");
    assert!(
        notes.contains("warning: most of the adapter is rounded away"),
        "{notes}"
    );
    let (out, kept, notes) = export_to(QuantType::Q8_0);
    assert!(kept > 0.95, "Q8_0 kept {kept}");
    assert!(!notes.contains("warning"), "{notes}");
    let back = load(LocalModel::Gguf(out));
    let ids = tuned
        .chat_prompt(
            None,
            "Set QoS profile QOS_E for +46701234567 for 10 minutes.",
        )
        .unwrap();
    let input = Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let a = tuned.model.forward_last(&input, 0, None).unwrap();
    let b = back.model.forward_last(&input, 0, None).unwrap();
    let base_diff = {
        tuned.model.adapters().set_enabled(false);
        let base = tuned.model.forward_last(&input, 0, None).unwrap();
        tuned.model.adapters().set_enabled(true);
        max_abs_diff(&base, &a)
    };
    let diff = max_abs_diff(&a, &b);
    eprintln!(
        "q8_0 export: max |dlogit| {diff}; the adapter itself moves them {base_diff}; \
         adapter kept: Q8_0 {kept}, Q4_1 {kept_q4_1}"
    );
    // Q8_0 on top of the dequantized Q4_1 base, a step of max/127 per block of 32 weights;
    // measured 0.41 where the adapter moves the logits by 2.5 (kept: Q8_0 100%, Q4_1 16%).
    assert!(diff < 1.0, "max |dlogit| {diff}");
    assert!(
        base_diff > 2.0 * diff,
        "the adapter should matter more than the rounding"
    );
}

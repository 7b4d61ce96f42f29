//! Bad input through the real binary: every hostile GGUF of tests/hostile (through model info,
//! generate, train, export and logits), broken configs and data files, an adapter of another
//! base or with NaN weights. Each must end in one clear `error:` line and a non-zero exit,
//! never a panic, and must leave nothing half-written.

mod common;
mod hostile;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn tunelab(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("running tunelab")
}

/// The command failed with an error line containing every one of `wanted`, and no panic.
fn assert_clear_failure(out: &Output, what: &str, wanted: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: exit 0\n{stderr}");
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: a panic\n{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{what}: no error line\n{stderr}"));
    for w in wanted {
        assert!(line.contains(w), "{what}: {w:?} not in {line:?}");
    }
}

fn sft_data(dir: &Path) -> PathBuf {
    let path = dir.join("sft.jsonl");
    let rows = [
        r#"{"prompt": "what is dp", "completion": "dynamic positioning"}"#,
        r#"{"prompt": "what is a bop", "completion": "a blowout preventer"}"#,
    ];
    std::fs::write(&path, rows.join("\n")).unwrap();
    path
}

fn hostile_set(dir: &Path) -> Vec<hostile::Hostile> {
    let mut set = hostile::write_small_set(&dir.join("models"));
    set.push(hostile::write_empty_template(
        &common::default_gguf(),
        &dir.join("models"),
    ));
    set
}

#[test]
fn every_hostile_gguf_is_a_clear_error_in_every_command() {
    let dir = common::scratch_dir("hostile_gguf");
    sft_data(&dir);
    for file in hostile_set(&dir) {
        let model = file.path.to_str().unwrap();
        let what = |cmd: &str| format!("{cmd} {}", file.name);
        let info = tunelab(&dir, &["model", "info", model]);
        assert_clear_failure(&info, &what("model info"), &[file.name, file.reason]);
        let generate = [
            "generate",
            "--model",
            model,
            "--prompt",
            "hi",
            "--max-tokens",
            "2",
        ];
        let out = tunelab(&dir, &[&generate[..], &["--device", "cpu"]].concat());
        assert_clear_failure(&out, &what("generate"), &[file.name, file.reason]);
        let export_dir = dir.join(format!("export-{}", file.name));
        let export = [
            "export",
            "--model",
            model,
            "--to",
            "hf",
            "--out",
            export_dir.to_str().unwrap(),
        ];
        assert_clear_failure(&tunelab(&dir, &export), &what("export"), &[file.reason]);
        assert!(!export_dir.exists(), "{}: export left a folder", file.name);
        let logits = ["logits", "--model", model, "--prompt", "hi"];
        assert_clear_failure(&tunelab(&dir, &logits), &what("logits"), &[file.reason]);

        let config = dir.join(format!("{}.toml", file.name));
        let output_dir = dir.join(format!("runs/{}", file.name));
        std::fs::write(
            &config,
            format!(
                "model_name = {model:?}\ntrain_file = \"sft.jsonl\"\noutput_dir = {:?}\n\
                 max_steps = 1\nmax_seq_length = 64\n",
                output_dir.display()
            ),
        )
        .unwrap();
        let train = [
            "train",
            "--config",
            config.to_str().unwrap(),
            "--device",
            "cpu",
        ];
        let out = tunelab(&dir, &train);
        assert_clear_failure(&out, &what("train"), &[file.reason]);
        let events = std::fs::read_to_string(output_dir.join("events.jsonl")).unwrap();
        let last: serde_json::Value =
            serde_json::from_str(events.lines().last().expect("an event")).unwrap();
        assert_eq!(last["event"], "finished", "{events}");
        assert_eq!(last["ok"], false, "{events}");
        assert!(
            last["message"].as_str().unwrap().contains(file.reason),
            "{events}"
        );
    }
}

#[test]
fn config_mistakes_name_the_key_through_the_cli() {
    let dir = common::scratch_dir("hostile_config");
    sft_data(&dir);
    let cases = [
        (
            "type.toml",
            "train_file = \"sft.jsonl\"\nlearning_rate = \"abc\"\n",
            "'learning_rate': invalid type: string",
        ),
        (
            "nan.toml",
            "train_file = \"sft.jsonl\"\nlearning_rate = nan\n",
            "'learning_rate' is nan or inf",
        ),
        (
            "dup.toml",
            "train_file = \"sft.jsonl\"\nseed = 1\nseed = 2\n",
            "line 3: duplicate key",
        ),
        ("empty.toml", "", "the config is empty"),
        ("no_train.toml", "seed = 1\n", "train_file is required"),
    ];
    for (name, text, wanted) in cases {
        std::fs::write(dir.join(name), text).unwrap();
        let out = tunelab(&dir, &["train", "--config", name, "--device", "cpu"]);
        assert_clear_failure(&out, name, &[wanted]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.matches(name).count(), 1, "the path once: {stderr}");
    }
    std::fs::write(dir.join("ok.toml"), "train_file = \"sft.jsonl\"\n").unwrap();
    let zero = [
        "train",
        "--config",
        "ok.toml",
        "--max-steps",
        "0",
        "--device",
        "cpu",
    ];
    let out = tunelab(&dir, &zero);
    assert_clear_failure(&out, "--max-steps 0", &["max_steps must be at least 1"]);
    assert!(!dir.join("runs/run/adapter").exists());
}

#[test]
fn data_files_report_the_line_of_what_is_wrong() {
    let dir = common::scratch_dir("hostile_data");
    let mut bytes = br#"{"prompt": "a", "completion": "b"}"#.to_vec();
    bytes.extend(b"\n{\"prompt\": \"caf\xe9\", \"completion\": \"x\"}\n");
    let utf8 = dir.join("latin1.jsonl");
    std::fs::write(&utf8, bytes).unwrap();
    let problems = tunelab::data::sft::validate_sft_file(&utf8);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("latin1.jsonl:2: not valid UTF-8 (column 16)"),
        "{problems:?}"
    );
    let array = dir.join("array.jsonl");
    std::fs::write(&array, r#"[{"prompt": "a", "completion": "b"}]"#).unwrap();
    let err = format!(
        "{:#}",
        tunelab::data::sft::load_sft_file(&array).unwrap_err()
    );
    assert!(
        err.contains("array.jsonl:1: a .jsonl file holds one JSON object per line"),
        "{err}"
    );
    // The same array in a .json file is read as records.
    let json = dir.join("array.json");
    std::fs::copy(&array, &json).unwrap();
    assert_eq!(
        tunelab::data::sft::load_sft_file(&json)
            .unwrap()
            .records
            .len(),
        1
    );
}

#[test]
fn without_a_terminal_the_workbench_says_so() {
    let dir = common::scratch_dir("hostile_tty");
    for args in [&[][..], &["watch", "runs/x"][..]] {
        let out = tunelab(&dir, args);
        assert_clear_failure(&out, "no terminal", &["the workbench needs a terminal"]);
    }
}

/// A copy of the tiny fixture adapter recording `base`, its first tensor NaN when `poisoned`.
fn adapter_copy(dir: &Path, base: &str, poisoned: bool) -> PathBuf {
    let src = common::fixture("lora_tiny/adapter");
    std::fs::create_dir_all(dir).unwrap();
    let text = std::fs::read_to_string(src.join("adapter_config.json")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
    config["base_model_name_or_path"] = base.into();
    std::fs::write(dir.join("adapter_config.json"), config.to_string()).unwrap();
    let weights = src.join("adapter_model.safetensors");
    let mut tensors = candle_core::safetensors::load(&weights, &candle_core::Device::Cpu).unwrap();
    if poisoned {
        let key = tensors.keys().min().unwrap().clone();
        let t = &tensors[&key];
        let nan = (t.ones_like().unwrap() * f64::NAN).unwrap();
        tensors.insert(key, nan);
    }
    candle_core::safetensors::save(&tensors, dir.join("adapter_model.safetensors")).unwrap();
    dir.to_path_buf()
}

#[test]
fn an_adapter_of_another_base_or_with_nan_weights_is_refused() {
    let dir = common::scratch_dir("hostile_adapter");
    let tiny = common::tiny_hf_folder(&dir);
    let other = adapter_copy(&dir.join("other"), "someone/Other-Model-7B", false);
    let eval = dir.join("eval.jsonl");
    std::fs::write(&eval, r#"{"prompt": "hi", "must_contain": ["x"]}"#).unwrap();
    std::fs::write(
        dir.join("c.toml"),
        format!(
            "model_name = {:?}\ntrain_file = \"eval.jsonl\"\neval_file = \"eval.jsonl\"\n",
            tiny.display()
        ),
    )
    .unwrap();
    for cmd in ["eval", "compare"] {
        let args = [
            cmd,
            "--config",
            "c.toml",
            "--adapter",
            other.to_str().unwrap(),
            "--device",
            "cpu",
        ];
        let out = tunelab(&dir, &args);
        assert_clear_failure(
            &out,
            cmd,
            &["Other-Model-7B", "only fits the base it was trained on"],
        );
    }
    let poisoned = adapter_copy(&dir.join("nan"), tiny.to_str().unwrap(), true);
    let args = [
        "eval",
        "--config",
        "c.toml",
        "--adapter",
        poisoned.to_str().unwrap(),
        "--device",
        "cpu",
    ];
    let out = tunelab(&dir, &args);
    assert_clear_failure(&out, "NaN adapter", &["holds NaN or infinite values"]);
}

#[test]
fn an_empty_chat_template_in_a_folder_is_refused() {
    let dir = common::scratch_dir("hostile_template");
    let tiny = common::tiny_hf_folder(&dir);
    let path = tiny.join("tokenizer_config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["chat_template"] = "".into();
    std::fs::write(&path, config.to_string()).unwrap();
    let out = tunelab(
        &dir,
        &[
            "generate",
            "--model",
            tiny.to_str().unwrap(),
            "--prompt",
            "hi",
        ],
    );
    assert_clear_failure(&out, "empty template", &["chat template is empty"]);
}

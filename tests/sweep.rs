//! `tunelab sweep` on the CPU with the default model: trials run two at a time, a failing
//! trial is recorded with its reason and the sweep goes on, the best adapter is copied, a
//! second start skips what sweep.jsonl holds and reruns what it lacks, and settings that
//! change the plan are refused.

mod common;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn sweep(config: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args(["sweep", "--device", "cpu", "--json", "--config"])
        .arg(config)
        .args(extra)
        .output()
        .unwrap()
}

fn started(out: &Output) -> usize {
    String::from_utf8_lossy(&out.stderr)
        .matches(" started (")
        .count()
}

fn records(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("sweep.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn summary(out: &Output) -> Value {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v.get("summary").cloned())
        .expect("a summary line")
}

/// A config of two-step SFT trials scored on two CAMARA cases, in `dir`.
fn tiny_config(dir: &Path) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/camara_qod");
    let eval = std::fs::read_to_string(root.join("eval.jsonl")).unwrap();
    let two: Vec<&str> = eval.lines().take(2).collect();
    std::fs::write(dir.join("eval.jsonl"), two.join("\n")).unwrap();
    std::fs::copy(root.join("schema.json"), dir.join("schema.json")).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "model_name = \"{}\"\ntrain_file = \"{}\"\neval_file = \"eval.jsonl\"\n\
             output_dir = \"runs/tiny\"\nmax_steps = 2\nlogging_steps = 1\nper_device_train_batch_size = 2\n\
             max_seq_length = 256\neval_max_new_tokens = 8\nlora_r = 4\n\n\
             [sweep]\nobjective = \"mean_reply_tokens\"\ndirection = \"minimize\"\n\
             parallel = 2\n\n[sweep.grid]\nlearning_rate = [1e-4, 1e-3]\n",
            common::default_gguf().display(),
            root.join("sft.jsonl").display()
        ),
    )
    .unwrap();
    config
}

/// The Sweeps screen's reading of the folder: every trial ended, the best marked, the finished
/// trials' loss at each of their two steps, the failed ones' reasons.
fn workbench_reads_the_sweep_back(root: &Path, best: Option<u64>) {
    use tunelab::sweep::progress::TrialState;
    use tunelab::sweep::trial::Status;
    let found = tunelab::tui::discover::scan(root);
    let [progress] = found.sweeps.as_slice() else {
        panic!("{:?}", found.sweeps)
    };
    assert_eq!(progress.dir, Path::new("runs/tiny-sweep"));
    assert_eq!(progress.objective, "mean_reply_tokens");
    assert_eq!(progress.trials.len(), 4);
    let best_trial = progress.best.map(|i| progress.trials[i].trial as u64);
    assert_eq!(best_trial, best);
    for t in &progress.trials {
        match t.state {
            TrialState::Ended(Status::Finished) => {
                let steps: Vec<f64> = t.losses.iter().map(|p| p.0).collect();
                assert_eq!(steps, vec![1.0, 2.0], "trial {}", t.trial);
                assert!(t.adapter.is_some() && t.objective.is_some());
            }
            TrialState::Ended(Status::Failed) => {
                assert!(t.reason.as_deref().unwrap().contains("missing.jsonl"));
            }
            other => panic!("trial {}: {other:?}", t.trial),
        }
    }
}

#[test]
fn a_sweep_runs_records_resumes_and_keeps_the_best() {
    let dir = common::scratch_dir("sweep_cli");
    let config = tiny_config(&dir);
    let train = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/camara_qod/sft.jsonl");
    let files = format!("train_file=[\"{}\", \"missing.jsonl\"]", train.display());
    let out = sweep(&config, &["--grid", &files]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(started(&out), 4);
    let sweep_dir = dir.join("runs/tiny-sweep");
    let recs = records(&sweep_dir);
    assert_eq!(recs.len(), 4);
    let status = |r: &Value| r["status"].as_str().unwrap().to_string();
    assert_eq!(recs.iter().filter(|r| status(r) == "finished").count(), 2);
    let failed: Vec<&Value> = recs.iter().filter(|r| status(r) == "failed").collect();
    assert_eq!(failed.len(), 2);
    for r in &failed {
        assert!(
            r["reason"].as_str().unwrap().contains("missing.jsonl"),
            "{r}"
        );
        assert!(r["objective"].is_null());
    }
    // The best is the finished trial with the lowest objective, its adapter copied whole.
    let best = summary(&out)["best_trial"].clone();
    let best_record = recs.iter().find(|r| r["trial"] == best).unwrap();
    let lowest = recs
        .iter()
        .filter_map(|r| r["objective"].as_f64())
        .fold(f64::INFINITY, f64::min);
    assert_eq!(best_record["objective"].as_f64(), Some(lowest));
    for file in [
        "adapter_model.safetensors",
        "adapter_config.json",
        "trial.json",
    ] {
        assert!(sweep_dir.join("best").join(file).is_file(), "best/{file}");
    }
    workbench_reads_the_sweep_back(&dir, best.as_u64());

    // Started again: nothing to run. Without a failed trial's line: that trial runs again.
    let again = sweep(&config, &["--grid", &files]);
    assert!(again.status.success());
    assert_eq!(started(&again), 0);
    assert_eq!(summary(&again)["ran"], 0);
    let dropped = failed[0]["trial"].clone();
    let kept: Vec<String> = recs
        .iter()
        .filter(|r| r["trial"] != dropped)
        .map(Value::to_string)
        .collect();
    std::fs::write(sweep_dir.join("sweep.jsonl"), kept.join("\n") + "\n").unwrap();
    let resumed = sweep(&config, &["--grid", &files]);
    assert!(resumed.status.success());
    assert_eq!(started(&resumed), 1);
    assert_eq!(records(&sweep_dir).len(), 4);

    // A relative --output-dir is the same folder from the trials' configs.
    let rel = Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .current_dir(&dir)
        .args(["sweep", "--device", "cpu", "--config", "config.toml"])
        .args(["--output-dir", "runs/tiny-sweep", "--grid", &files])
        .output()
        .unwrap();
    assert!(
        rel.status.success(),
        "{}",
        String::from_utf8_lossy(&rel.stderr)
    );
    assert_eq!(started(&rel), 0, "the same folder, nothing left to run");
    let trial: Value = serde_json::from_str(
        &std::fs::read_to_string(sweep_dir.join("trial-001/config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        trial["output_dir"].as_str().map(Path::new),
        Some(sweep_dir.join("trial-001/run").as_path())
    );

    // Other settings would mix two plans in one folder.
    let other = sweep(&config, &["--grid", "learning_rate=[5e-4]"]);
    assert!(!other.status.success());
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(stderr.contains("planned with other settings"), "{stderr}");
}

#[test]
fn an_objective_the_eval_file_cannot_give_is_refused_before_any_trial() {
    let dir = common::scratch_dir("sweep_objective");
    let config = tiny_config(&dir);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "objective = \"mean_reply_tokens\"",
        "objective = \"text_pass\"",
    );
    std::fs::write(&config, text).unwrap();
    let out = sweep(&config, &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("objective 'text_pass'") && stderr.contains("schema_valid"),
        "{stderr}"
    );
    assert_eq!(started(&out), 0);
}

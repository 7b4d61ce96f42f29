//! The trainer thread on the default model, on the CPU: a few real SFT steps, events,
//! checkpoints in PEFT format, and resume giving the same losses as an uninterrupted run.

mod common;

use std::path::{Path, PathBuf};
use tunelab::config::RunConfig;
use tunelab::device::DeviceChoice;
use tunelab::train::events::{read_events, TrainCommand, TrainEvent};
use tunelab::train::schedule::ScheduleKind;
use tunelab::train::trainer::{explain_failure, spawn, Start};

const RECORDS: [(&str, &str); 6] = [
    (
        "Gaming session for +4915112345678 to 203.0.113.9 for 20 minutes",
        r#"{"device":{"phoneNumber":"+4915112345678"},"applicationServer":{"ipv4Address":"203.0.113.9"},"qosProfile":"QOS_E","duration":1200}"#,
    ),
    (
        "What does BOP stand for?",
        "BOP stands for Blowout Preventer.",
    ),
    (
        "Video call boost for +447700900123 to 198.51.100.7, one hour",
        r#"{"device":{"phoneNumber":"+447700900123"},"applicationServer":{"ipv4Address":"198.51.100.7"},"qosProfile":"QOS_L","duration":3600}"#,
    ),
    (
        "What is an ROV?",
        "A Remotely Operated Vehicle used for subsea work.",
    ),
    (
        "Sensor telemetry for +33612345678 to 192.0.2.44 for 90 seconds",
        r#"{"device":{"phoneNumber":"+33612345678"},"applicationServer":{"ipv4Address":"192.0.2.44"},"qosProfile":"QOS_M","duration":90}"#,
    ),
    ("Expand DP on a drillship.", "Dynamic Positioning."),
];

fn config(dir: &Path) -> RunConfig {
    let train = dir.join("train.jsonl");
    let lines: Vec<String> = RECORDS
        .iter()
        .map(|(p, c)| serde_json::json!({"prompt": p, "completion": c}).to_string())
        .collect();
    std::fs::write(&train, lines.join("\n")).unwrap();
    RunConfig {
        model_name: common::default_gguf().display().to_string(),
        train_file: train,
        output_dir: dir.join("run"),
        system_prompt: Some("Answer briefly.".into()),
        max_steps: Some(4),
        per_device_train_batch_size: 2,
        learning_rate: 1e-3,
        warmup_steps: Some(1),
        lr_scheduler_type: ScheduleKind::Cosine,
        lora_r: 4,
        lora_alpha: 8.0,
        lora_dropout: 0.1,
        logging_steps: 1,
        save_steps: 2,
        max_seq_length: 64,
        seed: 7,
        ..RunConfig::default()
    }
}

/// Runs to the end, sending `commands` at once (the trainer reads them after its first step);
/// returns every event.
fn run_with(start: Start, commands: &[TrainCommand]) -> Vec<TrainEvent> {
    let handle = spawn(start, DeviceChoice::Cpu).unwrap();
    for c in commands {
        handle.send(*c);
    }
    let events: Vec<TrainEvent> = handle.events.iter().collect();
    handle.join();
    events
}

/// Runs to the end; returns (step, loss) pairs and the final event.
fn run(start: Start) -> (Vec<(usize, f64)>, TrainEvent) {
    let events = run_with(start, &[]);
    let losses = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Step { step, loss, .. } => Some((*step, *loss)),
            _ => None,
        })
        .collect();
    (losses, events.last().cloned().expect("no events"))
}

fn steps_of(events: &[TrainEvent], want_checkpoints: bool) -> Vec<usize> {
    events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Step { step, .. } if !want_checkpoints => Some(*step),
            TrainEvent::Checkpoint { step, .. } if want_checkpoints => Some(*step),
            _ => None,
        })
        .collect()
}

fn finished_ok(event: &TrainEvent) -> PathBuf {
    match event {
        TrainEvent::Finished {
            ok: true,
            adapter: Some(a),
            ..
        } => PathBuf::from(a),
        other => panic!("run failed: {other:?}"),
    }
}

#[test]
fn trains_checkpoints_and_resumes_to_the_same_losses() {
    let dir = common::scratch_dir("trainer_resume");
    let config = config(&dir);
    let (losses, last) = run(Start::Fresh(Box::new(config.clone())));
    let adapter = finished_ok(&last);
    assert_eq!(
        losses.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert!(
        losses.iter().all(|(_, l)| l.is_finite() && *l > 0.0),
        "{losses:?}"
    );
    assert!(
        losses[3].1 < losses[0].1,
        "the loss did not fall: {losses:?}"
    );
    for file in ["adapter_config.json", "adapter_model.safetensors"] {
        assert!(adapter.join(file).is_file(), "{file} missing");
    }
    let tensors = candle_core::safetensors::load(
        adapter.join("adapter_model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    assert_eq!(tensors.len(), 30 * 7 * 2);
    assert!(tensors.contains_key("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));

    let events = read_events(&config.output_dir.join("events.jsonl")).unwrap();
    assert!(matches!(
        events.first(),
        Some(TrainEvent::Started { total_steps: 4, .. })
    ));
    let checkpoints: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Checkpoint { step, .. } => Some(*step),
            _ => None,
        })
        .collect();
    assert_eq!(checkpoints, vec![2, 4]);

    // Resume from step 2: steps 3 and 4 must repeat exactly (data order, dropout masks,
    // optimiser moments and schedule all restored).
    let (resumed, last) = run(Start::Resume(config.output_dir.join("checkpoint-2"), None));
    finished_ok(&last);
    assert_eq!(
        resumed.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![3, 4]
    );
    for ((s, a), (_, b)) in resumed.iter().zip(&losses[2..]) {
        assert!(
            (a - b).abs() < 1e-6,
            "step {s}: resumed loss {a} vs uninterrupted {b}"
        );
    }
}

fn failure_of(event: &TrainEvent) -> String {
    match event {
        TrainEvent::Finished {
            ok: false, message, ..
        } => message.clone(),
        other => panic!("expected a failed finish, got {other:?}"),
    }
}

fn output_dir_of(event: &TrainEvent) -> PathBuf {
    match event {
        TrainEvent::Finished {
            ok: true,
            output_dir,
            ..
        } => PathBuf::from(output_dir),
        other => panic!("run failed: {other:?}"),
    }
}

/// A finished run's adapter, checkpoints and events stay as they were whatever comes after:
/// a resume below or at its step is refused, a resume from its checkpoint and a re-run of its
/// config each get a new run folder beside it.
#[test]
fn finished_work_is_never_overwritten() {
    let dir = common::scratch_dir("trainer_no_overwrite");
    let config = config(&dir);
    let first = output_dir_of(&run(Start::Fresh(Box::new(config.clone()))).1);
    assert_eq!(first, config.output_dir);
    let snapshot = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        for sub in ["adapter", "checkpoint-2", "checkpoint-4"] {
            for f in std::fs::read_dir(dir.join(sub)).unwrap() {
                let f = f.unwrap().path();
                files.push((f.display().to_string(), std::fs::read(&f).unwrap()));
            }
        }
        files.push((
            "events".into(),
            std::fs::read(dir.join("events.jsonl")).unwrap(),
        ));
        files.sort();
        files
    };
    let before = snapshot(&first);

    let checkpoint = first.join("checkpoint-4");
    for max in [Some(2), Some(4), None] {
        let (_, last) = run(Start::Resume(checkpoint.clone(), max));
        let message = failure_of(&last);
        let wanted = format!(
            "max_steps is {}: nothing is left to train",
            max.unwrap_or(4)
        );
        assert!(message.contains(&wanted), "{message}");
    }
    assert!(
        !dir.join("run-2").exists(),
        "a refused resume made a folder"
    );

    let (steps, last) = run(Start::Resume(first.join("checkpoint-2"), None));
    assert_eq!(
        steps.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![3, 4]
    );
    let resumed = output_dir_of(&last);
    assert_eq!(resumed, dir.join("run-2"));
    assert!(resumed.join("adapter/adapter_model.safetensors").is_file());

    let again = output_dir_of(&run(Start::Fresh(Box::new(config.clone()))).1);
    assert_eq!(again, dir.join("run-3"));
    assert_eq!(snapshot(&first), before, "the first run's files changed");
}

/// A run killed mid-way (no final adapter) resumes beside its checkpoint, from any working
/// directory, and what its interrupted writes left is cleaned up.
#[test]
fn an_interrupted_run_resumes_in_its_own_folder() {
    let dir = common::scratch_dir("trainer_interrupted");
    let mut config = config(&dir);
    config.save_steps = 100;
    let events = run_with(
        Start::Fresh(Box::new(config.clone())),
        &[TrainCommand::SaveNow, TrainCommand::Stop],
    );
    assert_eq!(steps_of(&events, true), vec![1]);
    let run_dir = config.output_dir.clone();
    std::fs::remove_dir_all(run_dir.join("adapter")).unwrap();
    std::fs::create_dir_all(run_dir.join(".checkpoint-2.partial")).unwrap();
    let (steps, last) = run(Start::Resume(run_dir.join("checkpoint-1"), None));
    assert_eq!(
        steps.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    assert_eq!(output_dir_of(&last), run_dir);
    assert!(!run_dir.join(".checkpoint-2.partial").exists());
    assert!(run_dir.join("adapter/adapter_config.json").is_file());
}

#[test]
fn adapter_files_follow_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = common::scratch_dir("trainer_umask");
    let mut config = config(&dir);
    config.max_steps = Some(1);
    let adapter = finished_ok(&run(Start::Fresh(Box::new(config.clone()))).1);
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // What any newly created file gets under this process's umask.
    let fresh = dir.join("fresh");
    std::fs::write(&fresh, b"").unwrap();
    let expected = mode(fresh);
    assert_ne!(
        expected, 0o600,
        "the umask itself is 077; the test cannot tell"
    );
    assert_eq!(mode(adapter.join("adapter_model.safetensors")), expected);
    let checkpoint = config.output_dir.join("checkpoint-1");
    assert_eq!(mode(checkpoint.join("optimizer.safetensors")), expected);
    assert_eq!(mode(checkpoint.join("adapter_model.safetensors")), expected);
}

#[test]
fn a_missing_train_file_finishes_with_a_clear_error() {
    let dir = common::scratch_dir("trainer_missing");
    let mut config = config(&dir);
    config.train_file = dir.join("nope.jsonl");
    let (_, last) = run(Start::Fresh(Box::new(config)));
    match last {
        TrainEvent::Finished {
            ok: false, message, ..
        } => assert!(message.contains("nope.jsonl"), "{message}"),
        other => panic!("expected a failed finish, got {other:?}"),
    }
}

#[test]
fn save_now_and_stop_take_effect_between_steps() {
    let dir = common::scratch_dir("trainer_stop");
    let mut config = config(&dir);
    config.save_steps = 100;
    let events = run_with(
        Start::Fresh(Box::new(config.clone())),
        &[TrainCommand::SaveNow, TrainCommand::Stop],
    );
    assert_eq!(steps_of(&events, false), vec![1]);
    assert_eq!(
        steps_of(&events, true),
        vec![1],
        "one checkpoint, at step 1"
    );
    assert!(config
        .output_dir
        .join("checkpoint-1/optimizer.safetensors")
        .is_file());
    match events.last() {
        Some(TrainEvent::Finished {
            ok: true, message, ..
        }) => assert!(message.contains("stopped at step 1"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn pause_then_resume_runs_to_the_end_and_eval_loss_is_reported() {
    let dir = common::scratch_dir("trainer_pause");
    let mut config = config(&dir);
    config.eval_file = Some(config.train_file.clone());
    config.eval_steps = Some(2);
    let events = run_with(
        Start::Fresh(Box::new(config)),
        &[TrainCommand::Pause, TrainCommand::Resume],
    );
    assert_eq!(steps_of(&events, false), vec![1, 2, 3, 4]);
    let evals: Vec<(usize, f64)> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Eval { step, metrics } => Some((*step, metrics["eval_loss"])),
            _ => None,
        })
        .collect();
    assert_eq!(
        evals.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![2, 4]
    );
    assert!(
        evals.iter().all(|(_, l)| l.is_finite() && *l > 0.0),
        "{evals:?}"
    );
}

#[test]
fn a_diverging_run_stops_naming_the_step_and_keeps_the_last_checkpoint() {
    let dir = common::scratch_dir("trainer_nan");
    let mut config = config(&dir);
    config.learning_rate = 1e30;
    config.warmup_steps = Some(0);
    config.save_steps = 1;
    let events = run_with(Start::Fresh(Box::new(config.clone())), &[]);
    let Some(TrainEvent::Finished {
        ok: false, message, ..
    }) = events.last()
    else {
        panic!("expected a failed finish: {:?}", events.last());
    };
    assert!(
        message.contains("the loss became") && message.contains("last good checkpoint"),
        "{message}"
    );
    let saved = steps_of(&events, true);
    let last = *saved.last().expect("a checkpoint before the divergence");
    assert!(
        message.contains(&format!("at step {}", last + 1)),
        "{message}"
    );
    assert!(config
        .output_dir
        .join(format!("checkpoint-{last}/adapter_model.safetensors"))
        .is_file());
}

#[test]
fn out_of_memory_becomes_advice() {
    let msg = explain_failure("DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")");
    assert!(
        msg.contains("lower per_device_train_batch_size or max_seq_length"),
        "{msg}"
    );
    assert_eq!(explain_failure("file missing"), "file missing");
}

/// Two micro-batches of one example accumulated make the same step as one batch of two: the
/// loss is token-weighted over the accumulation window, as in transformers, so the step's loss
/// and gradient norm agree. (The adapters after AdamW's first step are not compared: it moves
/// each weight by about lr·sign(g), which summation-order noise can flip where g ≈ 0.)
#[test]
fn gradient_accumulation_equals_the_larger_batch() {
    let first_step = |name: &str, batch: usize, accumulation: usize| {
        let dir = common::scratch_dir(name);
        let mut config = config(&dir);
        config.max_steps = Some(1);
        config.lora_dropout = 0.0;
        config.warmup_steps = Some(0);
        config.per_device_train_batch_size = batch;
        config.gradient_accumulation_steps = accumulation;
        let events = run_with(Start::Fresh(Box::new(config)), &[]);
        events
            .iter()
            .find_map(|e| match e {
                TrainEvent::Step {
                    loss, grad_norm, ..
                } => Some((*loss, *grad_norm)),
                _ => None,
            })
            .expect("one step")
    };
    let (loss_a, norm_a) = first_step("accum_batch2", 2, 1);
    let (loss_b, norm_b) = first_step("accum_micro1x2", 1, 2);
    assert!((loss_a - loss_b).abs() < 1e-5, "loss {loss_a} vs {loss_b}");
    assert!(
        (norm_a - norm_b).abs() < 1e-4 * norm_a,
        "grad norm {norm_a} vs {norm_b}"
    );
    // And not by accident: a different batch gives a different gradient.
    let (_, norm_c) = first_step("accum_batch1", 1, 1);
    assert!(
        (norm_a - norm_c).abs() > 1e-3 * norm_a,
        "{norm_a} vs {norm_c}"
    );
}

/// `train --train-file` trains on that file instead of the config's (a grown data set beside
/// a preset's own), and the run says so.
#[test]
fn train_file_flag_replaces_the_configs_file() {
    let dir = common::scratch_dir("trainer_train_file");
    let config = config(&dir);
    let other = dir.join("grown.jsonl");
    std::fs::write(
        &other,
        "{\"prompt\": \"What is a BOP?\", \"completion\": \"A blowout preventer.\"}\n\
         {\"prompt\": \"What is an ROV?\", \"completion\": \"A remotely operated vehicle.\"}\n",
    )
    .unwrap();
    let toml = format!(
        "model_name = {:?}\ntrain_file = \"train.jsonl\"\noutput_dir = \"run\"\nmax_steps = 1\n\
         per_device_train_batch_size = 2\nmax_seq_length = 64\nlora_r = 4\n",
        config.model_name
    );
    std::fs::write(dir.join("config.toml"), toml).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args(["train", "--config", "config.toml", "--device", "cpu"])
        .args(["--train-file", "grown.jsonl"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let log =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(": 2 examples"),
        "the run did not train on grown.jsonl:\n{log}"
    );
}

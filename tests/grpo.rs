//! GRPO: TRL's advantages, losses and metrics on fixed rewards and log-probs, and real GRPO
//! training on the default model on the CPU: rewards from the prompts' checks, checkpoints
//! and a resume that repeats the uninterrupted run, and the errors bad input gets.

mod common;

use candle_core::{Device, Tensor};
use std::path::Path;
use tunelab::config::{LossType, RewardFunc, RunConfig, ScaleRewards, Stage};
use tunelab::device::DeviceChoice;
use tunelab::train::events::TrainEvent;
use tunelab::train::grpo::{grpo_loss, score, GrpoParams, TokenInputs};
use tunelab::train::trainer::{spawn, Start};

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-5 * want.abs().max(1.0),
        "{what}: {got} vs TRL {want}"
    );
}

fn matrix(v: &serde_json::Value) -> Tensor {
    let rows: Vec<Vec<f32>> = serde_json::from_value(v.clone()).unwrap();
    Tensor::new(rows, &Device::Cpu).unwrap()
}

/// tests/fixtures/grpo_loss.json from tests/reference/make_grpo_loss_fixture.py.
#[test]
fn advantages_and_rewards_equal_trl() {
    let f = common::read_json("grpo_loss.json");
    let per_func: Vec<Vec<f64>> = f["rewards_per_func"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let row = row.as_array().unwrap();
            row.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()
        })
        .collect();
    let weights: Vec<f64> = serde_json::from_value(f["reward_weights"].clone()).unwrap();
    let g = f["num_generations"].as_u64().unwrap() as usize;
    let names = ["r0".to_string(), "r1".to_string()];
    for case in f["advantage_cases"].as_array().unwrap() {
        let scale: ScaleRewards = serde_json::from_value(case["scale_rewards"].clone()).unwrap();
        let scored = score(&per_func, &names, &weights, g, scale).unwrap();
        let want: Vec<f64> = serde_json::from_value(case["advantages"].clone()).unwrap();
        for (i, (got, want)) in scored.advantages.iter().zip(&want).enumerate() {
            close(*got, *want, &format!("{scale:?} advantage {i}"));
        }
        let expected = case["metrics"].as_object().unwrap();
        assert_eq!(scored.metrics.len(), expected.len(), "{:?}", scored.metrics);
        for (key, want) in expected {
            close(scored.metrics[key], want.as_f64().unwrap(), key);
        }
    }
}

#[test]
fn every_loss_type_and_metric_equals_trl() {
    let f = common::read_json("grpo_loss.json");
    let logps = matrix(&f["logps"]);
    let old = matrix(&f["old"]);
    let reference = matrix(&f["ref"]);
    let mask = matrix(&f["mask"]);
    let advantages: Vec<f32> = serde_json::from_value(f["advantages"].clone()).unwrap();
    let advantages = Tensor::new(advantages, &Device::Cpu).unwrap();
    for case in f["loss_cases"].as_array().unwrap() {
        let loss_type: LossType = serde_json::from_value(case["loss_type"].clone()).unwrap();
        let params = GrpoParams {
            beta: case["beta"].as_f64().unwrap(),
            epsilon_low: case["epsilon"].as_f64().unwrap(),
            epsilon_high: case["epsilon_high"].as_f64().unwrap(),
            loss_type,
            max_completion_length: f["max_completion_length"].as_u64().unwrap() as usize,
        };
        let use_old = case["use_old"].as_bool().unwrap();
        let inputs = TokenInputs {
            logps: &logps,
            old: use_old.then_some(&old),
            reference: Some(&reference),
            mask: &mask,
            advantages: &advantages,
        };
        let (loss, metrics) = grpo_loss(&params, &inputs).unwrap();
        let what = format!("{loss_type:?} beta {} old {use_old}", params.beta);
        let loss = f64::from(loss.to_scalar::<f32>().unwrap());
        close(
            loss,
            case["loss"].as_f64().unwrap(),
            &format!("{what} loss"),
        );
        let metrics = metrics.read().unwrap();
        let expected = case["metrics"].as_object().unwrap();
        assert_eq!(metrics.len(), expected.len(), "{what}: {metrics:?}");
        for (key, want) in expected {
            close(
                metrics[key],
                want.as_f64().unwrap(),
                &format!("{what} {key}"),
            );
        }
    }
}

#[test]
fn the_loss_has_the_policy_gradient_of_the_advantages() {
    // At the sampling policy (ratio 1, no clip) the gradient of a completion token's log-prob
    // is −A / tokens: a positive advantage pushes the completion up.
    let logps = candle_core::Var::new(&[[-1.0f32, -2.0], [-0.5, -0.7]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1.0f32, 1.0], [1.0, 0.0]], &Device::Cpu).unwrap();
    let advantages = Tensor::new(&[2.0f32, -1.0], &Device::Cpu).unwrap();
    let params = GrpoParams {
        beta: 0.0,
        epsilon_low: 0.2,
        epsilon_high: 0.2,
        loss_type: LossType::Dapo,
        max_completion_length: 2,
    };
    let inputs = TokenInputs {
        logps: logps.as_tensor(),
        old: None,
        reference: None,
        mask: &mask,
        advantages: &advantages,
    };
    let (loss, _) = grpo_loss(&params, &inputs).unwrap();
    let grads = loss.backward().unwrap();
    let g = grads.get(&logps).unwrap().to_vec2::<f32>().unwrap();
    let want = [[-2.0f32 / 3.0, -2.0 / 3.0], [1.0 / 3.0, 0.0]];
    for (row, want_row) in g.iter().zip(want) {
        for (got, want) in row.iter().zip(want_row) {
            assert!((got - want).abs() < 1e-6, "{g:?}");
        }
    }
}

/// Prompts the default model can be scored on: a JSON answer and two text answers.
fn write_prompts(path: &Path) {
    std::fs::write(
        path,
        concat!(
            r#"{"prompt": "Reply with the JSON object {\"ok\": true} and nothing else.", "expect_json": {"ok": true}}"#,
            "\n",
            r#"{"prompt": "In offshore drilling, what does DP stand for?", "must_contain": ["dynamic positioning"]}"#,
            "\n",
            r#"{"prompt": "Name the colour of a clear daytime sky in one word.", "any_of": ["blue"]}"#,
            "\n",
        ),
    )
    .unwrap();
}

fn grpo_config(dir: &Path, prompts: &Path) -> RunConfig {
    RunConfig {
        stage: Stage::Grpo,
        model_name: common::default_gguf().display().to_string(),
        prompt_file: Some(prompts.to_path_buf()),
        output_dir: dir.join("run"),
        max_steps: Some(4),
        per_device_train_batch_size: 2,
        gradient_accumulation_steps: 2,
        num_generations: 2,
        num_iterations: 2,
        max_completion_length: 6,
        beta: Some(0.04),
        learning_rate: 1e-3,
        lr_scheduler_type: tunelab::train::schedule::ScheduleKind::Constant,
        lora_r: 8,
        lora_alpha: 16.0,
        lora_dropout: 0.0,
        logging_steps: 1,
        save_steps: 2,
        reward_funcs: vec![
            RewardFunc::JsonValid,
            RewardFunc::ExpectJsonFields,
            RewardFunc::TextPass,
            RewardFunc::LengthPenalty,
        ],
        // Six tokens rarely finish an answer: a reward that varies with the text (its JSON
        // line's length) gives every group a signal.
        reward_command: Some("awk '{ print length($0) % 7 }'".into()),
        seed: 5,
        ..RunConfig::default()
    }
}

fn events_of(start: Start) -> Vec<TrainEvent> {
    let handle = spawn(start, DeviceChoice::Cpu).unwrap();
    let events: Vec<TrainEvent> = handle.events.iter().collect();
    handle.join();
    events
}

fn run(start: Start) -> Vec<TrainEvent> {
    let events = events_of(start);
    match events.last() {
        Some(TrainEvent::Finished { ok: true, .. }) => events,
        other => panic!("run failed: {other:?}"),
    }
}

fn failure(start: Start) -> String {
    match events_of(start).pop() {
        Some(TrainEvent::Finished {
            ok: false, message, ..
        }) => message,
        other => panic!("the run should fail: {other:?}"),
    }
}

fn steps(events: &[TrainEvent]) -> Vec<(usize, f64, std::collections::BTreeMap<String, f64>)> {
    events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Step {
                step,
                loss,
                metrics,
                ..
            } => Some((*step, *loss, metrics.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn grpo_trains_on_the_cpu_checkpoints_and_resumes_exactly() {
    let dir = common::scratch_dir("grpo_training");
    let prompts = dir.join("prompts.jsonl");
    write_prompts(&prompts);
    let config = grpo_config(&dir, &prompts);
    let events = run(Start::Fresh(Box::new(config.clone())));
    let steps_seen = steps(&events);
    assert_eq!(steps_seen.len(), 4);
    // A reward no prompt of a step has is left out of that step's metrics, never NaN.
    for (step, _, metrics) in &steps_seen {
        assert!(
            metrics.values().all(|v| v.is_finite()),
            "step {step}: {metrics:?}"
        );
    }
    for key in ["rewards/json_valid/mean", "rewards/text_pass/mean"] {
        assert!(
            steps_seen.iter().any(|(_, _, m)| m.contains_key(key)),
            "no {key}"
        );
    }
    for key in [
        "reward",
        "rewards/length_penalty/mean",
        "rewards/command/mean",
        "frac_reward_zero_std",
        "kl",
        "clip_ratio/region_mean",
        "completions/mean_length",
        "completions/clipped_ratio",
        "rollout/tokens_per_s",
    ] {
        for (step, loss, metrics) in &steps_seen {
            assert!(loss.is_finite(), "step {step}: loss {loss}");
            let v = metrics
                .get(key)
                .unwrap_or_else(|| panic!("no {key}: {metrics:?}"));
            assert!(v.is_finite(), "step {step}: {key} = {v}");
        }
    }
    // Completions have at most max_completion_length tokens and the end token.
    assert!(steps_seen
        .iter()
        .all(|(_, _, m)| m["completions/max_length"] <= 7.0));
    // num_iterations = 2: completions are sampled before steps 1 and 3 only, one group shown.
    let sampled: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Completions { step, samples, .. } => {
                assert_eq!(samples.len(), 2);
                Some(*step)
            }
            _ => None,
        })
        .collect();
    assert_eq!(sampled, vec![1, 3]);
    // After one update the policy has left the reference (the base: a fresh adapter is 0).
    assert!(steps_seen[1].2["kl"] > 0.0, "{:?}", steps_seen[1].2);
    let run_dir = dir.join("run");
    assert!(run_dir.join("checkpoint-2").is_dir());
    assert!(run_dir.join("adapter/adapter_model.safetensors").is_file());

    // Resuming at step 2 samples the same completions and repeats the last two losses.
    let resumed = run(Start::Resume(run_dir.join("checkpoint-2"), None));
    let again = steps(&resumed);
    assert_eq!(again.iter().map(|s| s.0).collect::<Vec<_>>(), vec![3, 4]);
    for ((step, a, ma), (_, b, mb)) in steps_seen[2..].iter().zip(&again) {
        assert!((a - b).abs() < 1e-5, "step {step}: {a} vs resumed {b}");
        assert_eq!(ma["reward"], mb["reward"], "step {step}");
    }
}

#[test]
fn bad_grpo_input_gets_a_clear_error_and_keeps_the_checkpoint() {
    let dir = common::scratch_dir("grpo_errors");
    let prompts = dir.join("prompts.jsonl");
    write_prompts(&prompts);
    let base = RunConfig {
        reward_command: None,
        ..grpo_config(&dir, &prompts)
    };

    let single = RunConfig {
        num_generations: 1,
        output_dir: dir.join("g1"),
        ..base.clone()
    };
    let message = failure(Start::Fresh(Box::new(single)));
    assert!(
        message.contains("num_generations must be at least 2"),
        "{message}"
    );

    let unchecked = dir.join("unchecked.jsonl");
    std::fs::write(
        &unchecked,
        "{\"prompt\": \"a\", \"must_contain\": [\"x\"]}\n{\"prompt\": \"b\", \"expect_json\": {}}\n",
    )
    .unwrap();
    let no_checks = RunConfig {
        prompt_file: Some(unchecked.clone()),
        reward_funcs: vec![RewardFunc::TextPass],
        output_dir: dir.join("unchecked"),
        ..base.clone()
    };
    let message = failure(Start::Fresh(Box::new(no_checks)));
    assert!(
        message.contains("unchecked.jsonl")
            && message.contains("1 of 2 prompts")
            && message.contains("(text_pass)")
            && message.contains("lines 2"),
        "{message}"
    );
    // A prompt without any check is refused where the file is read, by line.
    std::fs::write(&unchecked, "{\"prompt\": \"a\"}\n").unwrap();
    let no_checks = RunConfig {
        prompt_file: Some(unchecked.clone()),
        output_dir: dir.join("unchecked-2"),
        ..base.clone()
    };
    let message = failure(Start::Fresh(Box::new(no_checks)));
    assert!(
        message.contains("unchecked.jsonl:1: the case has no check"),
        "{message}"
    );

    // A reward command that works once, then crashes: the run fails, naming it, and the
    // checkpoint of the step before stays.
    let marker = dir.join("called-once");
    let command = format!(
        "if [ -e '{m}' ]; then echo 'reward server down' >&2; exit 3; fi; touch '{m}'; \
         while read -r line; do echo 0.5; done",
        m = marker.display()
    );
    let crashing = RunConfig {
        reward_funcs: vec![RewardFunc::TextPass, RewardFunc::JsonValid],
        reward_command: Some(command),
        num_iterations: 1,
        save_steps: 1,
        output_dir: dir.join("crash"),
        ..base
    };
    let message = failure(Start::Fresh(Box::new(crashing)));
    assert!(
        message.contains("reward_command") && message.contains("reward server down"),
        "{message}"
    );
    assert!(dir.join("crash/checkpoint-1/trainer_state.json").is_file());
}

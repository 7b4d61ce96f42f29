//! DPO: TRL's losses and metrics on fixed log-probs, the reference pass, preference files, and
//! real DPO training on the default model on the CPU with its reference cache.

mod common;

use candle_core::{Device, Tensor};
use std::path::Path;
use tunelab::config::LossType;
use tunelab::config::{RunConfig, Stage};
use tunelab::data::preference::{load_preference_file, tokenize_pairs, PairLimits};
use tunelab::device::DeviceChoice;
use tunelab::model::lora::LoraConfig;
use tunelab::model::source::LocalModel;
use tunelab::model::LoadedModel;
use tunelab::train::dpo::{dpo_loss, DpoParams, PairLogps};
use tunelab::train::events::TrainEvent;
use tunelab::train::reference;
use tunelab::train::trainer::{spawn, Start};

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn counts(v: &serde_json::Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// tests/fixtures/dpo_loss.json from tests/reference/make_dpo_loss_fixture.py (TRL's formulas).
#[test]
fn every_loss_type_and_metric_equals_trl() {
    let f = common::read_json("dpo_loss.json");
    let dev = Device::Cpu;
    let n = f["policy_chosen"].as_array().unwrap().len();
    for case in f["cases"].as_array().unwrap() {
        let loss_type: LossType = serde_json::from_value(case["loss_type"].clone()).unwrap();
        let params = DpoParams {
            beta: case["beta"].as_f64().unwrap(),
            loss_type,
            label_smoothing: case["label_smoothing"].as_f64().unwrap(),
            rpo_alpha: case["rpo_alpha"].as_f64(),
        };
        let logps = PairLogps {
            policy_chosen: Tensor::from_vec(floats(&f["policy_chosen"]), n, &dev).unwrap(),
            policy_rejected: Tensor::from_vec(floats(&f["policy_rejected"]), n, &dev).unwrap(),
            reference_chosen: floats(&f["reference_chosen"]),
            reference_rejected: floats(&f["reference_rejected"]),
            chosen_tokens: counts(&f["chosen_tokens"]),
            rejected_tokens: counts(&f["rejected_tokens"]),
        };
        let (loss, metrics) = dpo_loss(&params, &logps).unwrap();
        let metrics = metrics.read().unwrap();
        let expected = case["metrics"].as_object().unwrap();
        // Compared as sets: the fixture's key order is the file's, ours is sorted.
        let mut want_keys = expected.keys().collect::<Vec<_>>();
        want_keys.sort();
        assert_eq!(metrics.keys().collect::<Vec<_>>(), want_keys, "{case}");
        for (key, want) in expected {
            let got = metrics[key];
            let want = want.as_f64().unwrap();
            assert!(
                (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                "{loss_type:?} β={} {key}: {got} vs TRL {want}",
                params.beta
            );
        }
        let scalar = loss.to_scalar::<f32>().unwrap() as f64;
        assert!((scalar - metrics["loss"]).abs() < 1e-6);
    }
}

const PAIRS: [(&str, &str, &str); 4] = [
    (
        "Expand DP on a drillship.",
        "Dynamic Positioning.",
        "Demographic Parity.",
    ),
    (
        "What does DP mean for an offshore vessel?",
        "Dynamic Positioning: thrusters hold the vessel on station.",
        "Demographic Parity: a fairness measure.",
    ),
    (
        "In a rig's DP log, what is DP?",
        "Dynamic Positioning.",
        "Data Protection.",
    ),
    (
        "DP class 2 means what?",
        "A Dynamic Positioning class with redundancy against single failures.",
        "A Demographic Parity level for hiring models.",
    ),
];

/// Writes the pairs (with `tag` in each prompt, so each test's data hashes to its own cache key).
fn write_pairs(path: &Path, tag: &str) {
    let lines: Vec<String> = PAIRS
        .iter()
        .map(|(p, c, r)| {
            serde_json::json!({"prompt": format!("{p} ({tag})"), "chosen": c, "rejected": r})
                .to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n")).unwrap();
}

fn load_fresh() -> LoadedModel {
    LoadedModel::load_local(LocalModel::Gguf(common::default_gguf()), &Device::Cpu).unwrap()
}

#[test]
fn the_reference_pass_with_adapters_off_is_the_base_model() {
    let dir = common::scratch_dir("dpo_reference_pass");
    let path = dir.join("pairs.jsonl");
    write_pairs(&path, "reference pass");
    let mut loaded = load_fresh();
    let ds = load_preference_file(&path).unwrap();
    let limits = PairLimits {
        max_length: 96,
        max_prompt_length: None,
    };
    let pairs = tokenize_pairs(&ds, &loaded.template, &loaded.tokenizer, None, limits).unwrap();
    let pad = loaded.stop_ids[0];
    let mut progress = |_, _| Ok(());
    let base = reference::compute(
        &loaded.model,
        &pairs.pairs,
        2,
        pad,
        &Device::Cpu,
        &mut progress,
    )
    .unwrap();
    assert!(base.chosen.iter().chain(&base.rejected).all(|l| *l < 0.0));

    // Adapters with a non-zero B change the model, unless switched off.
    loaded.model.attach_lora(&LoraConfig::default(), 3).unwrap();
    for (_, layer) in loaded.model.lora_layers() {
        let b = layer.b.as_tensor();
        layer
            .b
            .set(&(Tensor::randn(0f32, 0.05, b.dims(), &Device::Cpu).unwrap()))
            .unwrap();
    }
    let tuned = reference::compute(
        &loaded.model,
        &pairs.pairs,
        2,
        pad,
        &Device::Cpu,
        &mut progress,
    )
    .unwrap();
    assert!(
        tuned
            .chosen
            .iter()
            .zip(&base.chosen)
            .any(|(a, b)| (a - b).abs() > 1e-3),
        "the adapters should move the log-probs"
    );
    loaded.model.adapters().set_enabled(false);
    let off = reference::compute(
        &loaded.model,
        &pairs.pairs,
        2,
        pad,
        &Device::Cpu,
        &mut progress,
    )
    .unwrap();
    assert_eq!(off, base);

    // With the policy equal to the reference, the sigmoid loss is ln 2 and the rewards are 0.
    let (logps, counts) = reference::pair_logps(
        &loaded.model,
        &pairs.pairs.iter().collect::<Vec<_>>(),
        pad,
        &Device::Cpu,
    )
    .unwrap();
    let n = pairs.pairs.len();
    let (loss, metrics) = dpo_loss(
        &DpoParams {
            beta: 0.1,
            loss_type: LossType::Sigmoid,
            label_smoothing: 0.0,
            rpo_alpha: None,
        },
        &PairLogps {
            policy_chosen: logps.narrow(0, 0, n).unwrap(),
            policy_rejected: logps.narrow(0, n, n).unwrap(),
            reference_chosen: base.chosen.clone(),
            reference_rejected: base.rejected.clone(),
            chosen_tokens: counts[..n].to_vec(),
            rejected_tokens: counts[n..].to_vec(),
        },
    )
    .unwrap();
    let metrics = metrics.read().unwrap();
    let loss = loss.to_scalar::<f32>().unwrap() as f64;
    assert!((loss - std::f64::consts::LN_2).abs() < 1e-6, "{loss}");
    for key in ["rewards/chosen", "rewards/rejected", "rewards/margins"] {
        assert_eq!(metrics[key], 0.0, "{key}");
    }
}

#[test]
fn preference_errors_name_the_line_and_field() {
    let dir = common::scratch_dir("dpo_errors");
    let cases = [
        (
            r#"{"prompt": "p", "chosen": "a"}"#,
            "missing field \"rejected\"",
        ),
        (
            r#"{"chosen": "a", "rejected": "b"}"#,
            "missing field \"prompt\"",
        ),
        (
            r#"{"prompt": "p", "chosen": "same", "rejected": "same"}"#,
            "are the same",
        ),
        (
            r#"{"prompt": "p", "chosen": "  ", "rejected": "b"}"#,
            "field \"chosen\" is empty",
        ),
        (
            r#"{"prompt": "p", "chosen": 3, "rejected": "b"}"#,
            "field \"chosen\" must be a string",
        ),
        (
            r#"{"prompt": [{"role": "user", "content": "p"}], "chosen": [{"role": "user", "content": "a"}], "rejected": "b"}"#,
            "field \"chosen\"[0].role is \"user\"",
        ),
        (
            r#"{"prompt": "p", "chosen": "a", "rejected": "b", "score": 1}"#,
            "unexpected field \"score\"",
        ),
    ];
    for (i, (bad, expected)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad{i}.jsonl"));
        let good = r#"{"instruction": "q", "input": "ctx", "chosen": "a", "rejected": "b"}"#;
        std::fs::write(&path, format!("{good}\n\n{bad}\n")).unwrap();
        let err = format!("{:#}", load_preference_file(&path).unwrap_err());
        let at = format!("{}:3: ", path.display());
        assert!(err.starts_with(&at) && err.contains(expected), "{err}");
    }
    // Both shapes read, rendered with the chat template; only completion tokens carry labels.
    let path = dir.join("good.jsonl");
    std::fs::write(
        &path,
        concat!(
            r#"{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Expand DP."}], "chosen": [{"role": "assistant", "content": "Dynamic Positioning."}], "rejected": [{"role": "assistant", "content": "Demographic Parity."}]}"#,
            "\n",
            r#"{"prompt": "Expand DP.", "system": "Be brief.", "chosen": "Dynamic Positioning.", "rejected": "Demographic Parity."}"#
        ),
    )
    .unwrap();
    let ds = load_preference_file(&path).unwrap();
    assert_eq!(ds.pairs[0], ds.pairs[1]);
    let model = common::default_model();
    let limits = PairLimits {
        max_length: 512,
        max_prompt_length: None,
    };
    let pairs = tokenize_pairs(&ds, &model.template, &model.tokenizer, None, limits).unwrap();
    let chosen = &pairs.pairs[0].chosen;
    let labelled: Vec<u32> = chosen
        .input_ids
        .iter()
        .zip(&chosen.labels)
        .filter(|(_, l)| **l >= 0)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        model.tokenizer.decode(&labelled, false).unwrap(),
        "Dynamic Positioning.<|im_end|>\n"
    );
    // max_prompt_length keeps the end of the prompt, next to the reply.
    let cut = tokenize_pairs(
        &ds,
        &model.template,
        &model.tokenizer,
        None,
        PairLimits {
            max_length: 512,
            max_prompt_length: Some(4),
        },
    )
    .unwrap();
    let prompt_len = cut.pairs[0]
        .chosen
        .labels
        .iter()
        .take_while(|l| **l < 0)
        .count();
    assert_eq!(prompt_len, 4);
    assert_eq!(cut.truncated, 2);
    assert!(cut.warnings(&path, limits).is_empty());

    // Replies that differ only past the cut are the same tokens once cut: left out, by line,
    // with a warning of their own (they would train at loss ln 2).
    let same_start = dir.join("same_start.jsonl");
    std::fs::write(
        &same_start,
        concat!(
            r#"{"prompt": "Expand DP.", "chosen": "Dynamic Positioning.", "rejected": "Demographic Parity."}"#,
            "\n",
            r#"{"prompt": "Expand DP.", "chosen": "The answer is Dynamic Positioning.", "rejected": "The answer is Demographic Parity."}"#
        ),
    )
    .unwrap();
    let ds = load_preference_file(&same_start).unwrap();
    let full = tokenize_pairs(&ds, &model.template, &model.tokenizer, None, limits).unwrap();
    let prompt_len = full.pairs[1]
        .chosen
        .labels
        .iter()
        .take_while(|l| **l < 0)
        .count();
    let short = PairLimits {
        max_length: prompt_len + 3,
        max_prompt_length: None,
    };
    let cut = tokenize_pairs(&ds, &model.template, &model.tokenizer, None, short).unwrap();
    assert_eq!(cut.pairs.len(), 1);
    assert_eq!(cut.identical, vec![2]);
    let warnings = cut.warnings(&same_start, short);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("1 pairs have the same chosen and rejected tokens")
            && warnings[0].contains("(lines 2)"),
        "{warnings:?}"
    );
}

fn dpo_config(dir: &Path, data: &Path) -> RunConfig {
    RunConfig {
        stage: Stage::Dpo,
        model_name: common::default_gguf().display().to_string(),
        train_file: data.to_path_buf(),
        output_dir: dir.join("run"),
        max_steps: Some(8),
        per_device_train_batch_size: 2,
        learning_rate: 2e-3,
        lr_scheduler_type: tunelab::train::schedule::ScheduleKind::Constant,
        lora_r: 8,
        lora_alpha: 16.0,
        lora_dropout: 0.0,
        logging_steps: 1,
        save_steps: 4,
        max_seq_length: 64,
        beta: Some(0.1),
        seed: 11,
        ..RunConfig::default()
    }
}

fn run(start: Start) -> Vec<TrainEvent> {
    let handle = spawn(start, DeviceChoice::Cpu).unwrap();
    let events: Vec<TrainEvent> = handle.events.iter().collect();
    handle.join();
    match events.last() {
        Some(TrainEvent::Finished { ok: true, .. }) => events,
        other => panic!("run failed: {other:?}"),
    }
}

fn phases(events: &[TrainEvent]) -> Vec<String> {
    let mut names: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Phase { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    names.dedup();
    names
}

fn step_metric(events: &[TrainEvent], key: &str) -> Vec<f64> {
    events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Step { metrics, .. } => Some(metrics[key]),
            _ => None,
        })
        .collect()
}

#[test]
fn dpo_training_separates_the_pairs_and_reuses_its_reference() {
    let dir = common::scratch_dir("dpo_training");
    let data = dir.join("pairs.jsonl");
    let tag = format!("run {}", std::process::id());
    write_pairs(&data, &tag);
    let config = dpo_config(&dir, &data);
    let events = run(Start::Fresh(Box::new(config.clone())));
    assert_eq!(phases(&events), vec!["reference log-probs"]);
    assert!(matches!(
        events.iter().find(|e| matches!(e, TrainEvent::Started { .. })),
        Some(TrainEvent::Started { stage, examples: 4, .. }) if stage == "dpo"
    ));
    let accuracies = step_metric(&events, "rewards/accuracies");
    let margins = step_metric(&events, "rewards/margins");
    assert_eq!(accuracies.len(), 8);
    assert_eq!(accuracies[6..], [1.0, 1.0], "{accuracies:?}");
    assert!(
        margins[7] > margins[0] && margins[7] > 0.5,
        "margins did not grow: {margins:?}"
    );
    let chosen_rewards = step_metric(&events, "rewards/chosen");
    let rejected_rewards = step_metric(&events, "rewards/rejected");
    // The metrics are f32 means on the device, as TRL's are.
    for i in 0..8 {
        let diff = chosen_rewards[i] - rejected_rewards[i] - margins[i];
        assert!(diff.abs() < 1e-6 * margins[i].abs().max(1.0), "{diff}");
    }

    // A resume reads the reference from the cache.
    let resumed = run(Start::Resume(config.output_dir.join("checkpoint-4"), None));
    assert_eq!(phases(&resumed), vec!["reference log-probs: cached"]);
    assert_eq!(step_metric(&resumed, "rewards/margins").len(), 4);

    // A rerun too; changing the data recomputes it.
    let mut rerun = config.clone();
    rerun.max_steps = Some(1);
    rerun.output_dir = dir.join("rerun");
    assert_eq!(
        phases(&run(Start::Fresh(Box::new(rerun.clone())))),
        vec!["reference log-probs: cached"]
    );
    write_pairs(&data, &format!("{tag}, changed"));
    assert_eq!(
        phases(&run(Start::Fresh(Box::new(rerun)))),
        vec!["reference log-probs"]
    );
}

//! Eval: each check on hand-made replies, metrics, eval-file and schema errors, and a real
//! `tunelab eval --base` run on the CPU producing its JSON report.

mod common;

use std::path::{Path, PathBuf};
use tunelab::eval::cases::{load_eval_file, load_schema, EvalCase};
use tunelab::eval::checks::check_reply;
use tunelab::eval::metrics::{aggregate, ReplyStats};

const EXPECTED: &str = r#"{"device":{"phoneNumber":"+4915112345678"},"applicationServer":{"ipv4Address":"203.0.113.9"},"qosProfile":"QOS_E","duration":1200}"#;

fn camara_schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/camara_qod/schema.json")
}

/// One CAMARA case (expect_json + the sample schema) and one text case, from a file.
fn cases(dir: &Path) -> Vec<EvalCase> {
    let path = dir.join("cases.jsonl");
    let json_case = serde_json::json!({
        "prompt": "Gaming for +4915112345678 to 203.0.113.9, 20 minutes",
        "expect_json": serde_json::from_str::<serde_json::Value>(EXPECTED).unwrap(),
        "schema": camara_schema().display().to_string(),
    });
    let text_case = serde_json::json!({
        "prompt": "What is DP on a drillship?",
        "must_contain": ["dynamic positioning"],
        "any_of": ["thruster", "station"],
        "must_not_contain": ["Demographic Parity"],
    });
    std::fs::write(&path, format!("{json_case}\n{text_case}\n")).unwrap();
    load_eval_file(&path).unwrap()
}

#[test]
fn each_check_on_hand_made_replies() {
    let dir = common::scratch_dir("eval_checks");
    let cases = cases(&dir);
    let (json, text) = (&cases[0], &cases[1]);

    let exact = check_reply(json, &format!("  {EXPECTED}\n"), false);
    assert_eq!(exact.json_valid, Some(true));
    assert_eq!(exact.schema_valid, Some(true));
    assert_eq!(exact.expect_json_exact, Some(true));
    assert_eq!(exact.expect_json_fields, Some(1.0));
    assert_eq!(exact.hallucinated_fields, Some(false));
    assert_eq!(exact.text_pass, None, "no text checks on this case");
    assert!(exact.field_matches.values().all(|same| *same));

    let invalid = check_reply(json, r#"{"device": {"phoneNumber": "+49"}"#, false);
    assert_eq!(invalid.json_valid, Some(false));
    assert_eq!(invalid.schema_valid, Some(false));
    assert_eq!(invalid.expect_json_exact, Some(false));
    assert_eq!(invalid.expect_json_fields, Some(0.0));
    assert_eq!(invalid.hallucinated_fields, None);

    // An invented field: valid JSON, fails the schema (additionalProperties: false).
    let extra = EXPECTED.replace(
        r#""duration":1200"#,
        r#""duration":1200,"bandwidth_mbps":50"#,
    );
    let extra = check_reply(json, &extra, false);
    assert_eq!(extra.json_valid, Some(true));
    assert_eq!(extra.schema_valid, Some(false));
    assert_eq!(extra.expect_json_exact, Some(false));
    assert_eq!(
        extra.expect_json_fields,
        Some(1.0),
        "every expected leaf is still there"
    );
    assert_eq!(extra.hallucinated_fields, Some(true));
    assert_eq!(extra.extra_paths, vec!["bandwidth_mbps"]);

    // A flat ipv4Address string for the device and the duration in minutes: 2 of 4 leaves right.
    let wrong_shape = r#"{"device":{"ipv4Address":"+4915112345678"},"applicationServer":{"ipv4Address":"203.0.113.9"},"qosProfile":"QOS_E","duration":20}"#;
    let wrong = check_reply(json, wrong_shape, false);
    assert_eq!(
        wrong.schema_valid,
        Some(false),
        "a device ipv4Address is an object"
    );
    assert!(
        wrong
            .problems
            .iter()
            .any(|p| p.contains("/device/ipv4Address")),
        "{:?}",
        wrong.problems
    );
    assert_eq!(wrong.expect_json_fields, Some(2.0 / 4.0));
    assert!(!wrong.field_matches["device"]);
    assert!(!wrong.field_matches["duration"]);
    assert!(wrong.field_matches["qosProfile"]);
    assert_eq!(wrong.hallucinated_fields, Some(true));
    assert_eq!(wrong.extra_paths, vec!["device.ipv4Address"]);

    // Fenced JSON counts only when allowed; prose around JSON never does.
    let fenced = format!("```json\n{EXPECTED}\n```");
    assert_eq!(check_reply(json, &fenced, false).json_valid, Some(false));
    assert_eq!(
        check_reply(json, &fenced, true).expect_json_exact,
        Some(true)
    );
    let prose = format!("Here is the request: {EXPECTED} Hope this helps!");
    assert_eq!(check_reply(json, &prose, true).json_valid, Some(false));

    // Text checks: case-insensitive; all of must_contain, one of any_of, none of must_not_contain.
    let good = check_reply(
        text,
        "DP is Dynamic Positioning: thrusters keep station.",
        false,
    );
    assert_eq!(good.text_pass, Some(true));
    assert_eq!(good.json_valid, None, "no JSON checks on this case");
    for bad in [
        "Dynamic positioning keeps the vessel steady.",
        "DP is Demographic Parity, not dynamic positioning with thrusters.",
        "It uses thrusters.",
    ] {
        assert_eq!(
            check_reply(text, bad, false).text_pass,
            Some(false),
            "{bad}"
        );
    }

    // Metrics average each check over the cases it applies to.
    let checks = [exact.clone(), extra.clone(), good.clone()];
    let stats = ReplyStats {
        tokens: 10,
        seconds: 0.5,
    };
    let results: Vec<_> = checks.iter().map(|c| (c, stats)).collect();
    let m = aggregate(&results);
    assert_eq!(m["json_valid"], 1.0);
    assert_eq!(m["schema_valid"], 0.5);
    assert_eq!(m["expect_json_exact"], 0.5);
    assert_eq!(m["hallucinated_fields"], 0.5);
    assert_eq!(m["text_pass"], 1.0);
    assert_eq!(m["field_accuracy/duration"], 1.0);
    assert_eq!(m["mean_reply_tokens"], 10.0);
    assert_eq!(m["tokens_per_s"], 20.0);
}

#[test]
fn eval_file_and_schema_errors_name_the_line() {
    let dir = common::scratch_dir("eval_errors");
    let bad_lines = [
        (r#"{"prompt": "p"}"#, "the case has no check"),
        (r#"{"must_contain": ["x"]}"#, "missing field \"prompt\""),
        (
            r#"{"prompt": "p", "must_contain": "x"}"#,
            "field \"must_contain\" must be an array",
        ),
        (
            r#"{"prompt": "p", "expect": {}}"#,
            "unexpected field \"expect\"",
        ),
        (
            r#"{"prompt": "p", "schema": "missing.json"}"#,
            "field \"schema\"",
        ),
        ("{not json", "not valid JSON"),
    ];
    for (i, (bad, expected)) in bad_lines.iter().enumerate() {
        let path = dir.join(format!("bad{i}.jsonl"));
        std::fs::write(
            &path,
            format!("{{\"prompt\": \"ok\", \"any_of\": [\"a\"]}}\n{bad}\n"),
        )
        .unwrap();
        let err = format!("{:#}", load_eval_file(&path).err().expect("an error"));
        let at = format!("{}:2: ", path.display());
        assert!(err.starts_with(&at) && err.contains(expected), "{err}");
    }
    let not_schema = dir.join("not_schema.json");
    std::fs::write(&not_schema, r#"{"type": "no-such-type"}"#).unwrap();
    let err = format!("{:#}", load_schema(&not_schema).err().expect("an error"));
    assert!(err.contains("not a valid JSON Schema"), "{err}");
    let not_json = dir.join("broken.json");
    std::fs::write(&not_json, "{").unwrap();
    let err = format!("{:#}", load_schema(&not_json).err().expect("an error"));
    assert!(err.contains("broken.json: not valid JSON"), "{err}");
    assert!(load_schema(&camara_schema()).is_ok());
}

#[test]
fn the_sample_eval_files_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data");
    let camara = load_eval_file(&root.join("camara_qod/eval.jsonl")).unwrap();
    assert!(
        camara.len() >= 30
            && camara
                .iter()
                .all(|c| c.schema.is_some() && c.expect_json.is_some())
    );
    let oilgas = load_eval_file(&root.join("oilgas/eval.jsonl")).unwrap();
    assert!(oilgas.iter().all(|c| c.has_text_checks()));
    // Every expected answer satisfies its own schema.
    for case in &camara {
        let reply = case.expect_json.as_ref().unwrap().to_string();
        let checks = check_reply(case, &reply, false);
        assert_eq!(checks.schema_valid, Some(true), "line {}", case.line);
    }
}

#[test]
fn eval_base_on_the_cpu_writes_its_report() {
    let dir = common::scratch_dir("eval_cli");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/camara_qod");
    let data = dir.join("three.jsonl");
    let text = std::fs::read_to_string(root.join("eval.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().take(3).collect();
    std::fs::write(&data, lines.join("\n")).unwrap();
    std::fs::copy(root.join("schema.json"), dir.join("schema.json")).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "model_name = \"{}\"\ntrain_file = \"{}\"\neval_max_new_tokens = 24\nsystem_prompt = \"Answer with JSON only.\"\n",
            common::default_gguf().display(),
            root.join("sft.jsonl").display()
        ),
    )
    .unwrap();
    let out = dir.join("report.json");
    let eval = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tunelab"))
            .args(["eval", "--base", "--device", "cpu", "--config"])
            .arg(&config)
            .arg("--data")
            .arg(&data)
            .args(extra)
            .output()
            .unwrap()
    };
    let status = eval(&["--json", out.to_str().unwrap()]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(stdout.contains("json_valid"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["cases"], 3);
    assert_eq!(report["variant"], "base");
    let per_case = report["per_case"].as_array().unwrap();
    assert_eq!(per_case.len(), 3);
    for case in per_case {
        assert!(case["reply"].as_str().is_some_and(|r| !r.is_empty()));
        assert!(case["tokens"].as_u64().unwrap() <= 24);
        assert!(case["checks"]["json_valid"].is_boolean());
    }
    let metrics = report["metrics"].as_object().unwrap();
    for key in [
        "json_valid",
        "schema_valid",
        "expect_json_exact",
        "expect_json_fields",
        "mean_reply_tokens",
    ] {
        assert!(metrics[key].is_number(), "{key} missing: {metrics:?}");
    }

    // Free and constrained side by side: two columns, two reports.
    let both = dir.join("both.json");
    let status = eval(&["--constrain", "both", "--json", both.to_str().unwrap()]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        stdout.contains("free") && stdout.contains("constrained"),
        "{stdout}"
    );
    assert!(stdout.contains("token masks took"), "{stdout}");
    let reports: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&both).unwrap()).unwrap();
    assert_eq!(
        reports["free"]["per_case"], report["per_case"],
        "free is the plain eval"
    );
    for case in reports["constrained"]["per_case"].as_array().unwrap() {
        assert!(case["reply"].as_str().unwrap().starts_with("{\""), "{case}");
    }
    // A schema the library cannot compile stops eval before it generates.
    std::fs::write(
        dir.join("bad.json"),
        r#"{"type": "string", "pattern": "["}"#,
    )
    .unwrap();
    let bad = format!("schema={}", dir.join("bad.json").display());
    let status = eval(&["--constrain", &bad]);
    assert!(!status.status.success());
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(
        stderr.contains("bad.json") && stderr.contains("does not compile"),
        "{stderr}"
    );
}

#[test]
fn training_with_eval_cases_reports_eval_metrics_and_samples() {
    use tunelab::train::events::TrainEvent;
    let dir = common::scratch_dir("eval_live");
    let train = dir.join("train.jsonl");
    std::fs::write(
        &train,
        [
            r#"{"prompt": "Expand DP on a drillship.", "completion": "Dynamic Positioning."}"#,
            r#"{"prompt": "Expand BOP.", "completion": "Blowout Preventer."}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let eval = dir.join("eval.jsonl");
    std::fs::write(
        &eval,
        [
            r#"{"prompt": "Expand DP.", "must_contain": ["Dynamic Positioning"]}"#,
            r#"{"prompt": "Expand BOP.", "must_contain": ["Blowout"]}"#,
            r#"{"prompt": "Expand ROV.", "must_contain": ["Remotely"]}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let config = tunelab::config::RunConfig {
        model_name: common::default_gguf().display().to_string(),
        train_file: train,
        eval_file: Some(eval),
        output_dir: dir.join("run"),
        max_steps: Some(2),
        per_device_train_batch_size: 2,
        eval_steps: Some(1),
        eval_max_cases: 2,
        eval_max_new_tokens: 8,
        max_seq_length: 48,
        logging_steps: 1,
        ..tunelab::config::RunConfig::default()
    };
    let handle = tunelab::train::trainer::spawn(
        tunelab::train::trainer::Start::Fresh(Box::new(config)),
        tunelab::device::DeviceChoice::Cpu,
    )
    .unwrap();
    let events: Vec<TrainEvent> = handle.events.iter().collect();
    handle.join();
    assert!(
        matches!(events.last(), Some(TrainEvent::Finished { ok: true, .. })),
        "{:?}",
        events.last()
    );
    let evals: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Eval { step, metrics } => Some((*step, metrics.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        evals.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![1, 2]
    );
    for (_, metrics) in &evals {
        assert!((0.0..=1.0).contains(&metrics["text_pass"]), "{metrics:?}");
        assert!(metrics["mean_reply_tokens"] <= 8.0);
    }
    let samples: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Sample { prompt, base, .. } => Some((prompt.clone(), base.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0], samples[1], "the base reply is generated once");
    assert_eq!(samples[0].0, "Expand DP.");
    assert!(
        !events.iter().any(
            |e| matches!(e, TrainEvent::Warning { message, .. } if message.contains("eval_file"))
        ),
        "eval cases are a valid eval_file"
    );
}

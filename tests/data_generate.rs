//! `tunelab data generate` end to end against a scripted OpenAI-compatible endpoint: the
//! self-instruct filters, the output checks, provenance, resuming, rate limits, garbage and
//! an endpoint that is down. (tests/serve.rs runs it against `tunelab serve` and a real
//! model.) ROUGE-L is checked against Google's rouge_score.

mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use tunelab::data::generate::rouge::{rouge_l, tokens};

#[test]
fn rouge_l_matches_rouge_score() {
    let fixture = common::read_json("rouge_l.json");
    for case in fixture["cases"].as_array().unwrap() {
        let (a, b) = (case["a"].as_str().unwrap(), case["b"].as_str().unwrap());
        let want = case["f"].as_f64().unwrap();
        let got = rouge_l(&tokens(a), &tokens(b));
        assert!(
            (got - want).abs() < 1e-12,
            "{a:?} vs {b:?}: {got} != {want}"
        );
    }
}

/// What the scripted endpoint does with a request.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Plausible replies, the first request refused once with 429.
    Good,
    /// Every reply is 200 with a body that is not an OpenAI answer.
    Garbage,
    /// Every request is refused with 401.
    Unauthorized,
}

struct Mock {
    mode: Mode,
    requests: Vec<Value>,
    rounds: usize,
}

/// New instructions, one per round; the fixed bad ones come back every round.
const NEW_TASKS: &[&str] = &[
    "Explain how BGP route flap dampening assigns penalties.",
    "Compare iBGP full mesh designs with confederations for a large AS.",
    "Describe what happens when a BGP hold timer expires on a session.",
    "Show how to filter bogon prefixes on an upstream session in FRR.",
    "Why would a router prefer an eBGP route over an iBGP route?",
    "Summarise the purpose of the BGP NEXT_HOP attribute for a new engineer.",
    "Write a Junos policy that tags customer routes with a community.",
    "What does the maximum-prefix limit protect a provider against?",
    "Troubleshoot a session that flaps every three minutes after an upgrade.",
    "List the steps to enable RPKI validation against a local validator.",
    "Explain why multihop is needed for eBGP sessions between loopbacks.",
    "Give an IOS example that sets a higher weight on routes from one neighbor.",
];

async fn answer(State(mock): State<Arc<Mutex<Mock>>>, Json(body): Json<Value>) -> Response {
    let mut mock = mock.lock().unwrap();
    mock.requests.push(body.clone());
    match mock.mode {
        Mode::Garbage => return (StatusCode::OK, "<html>proxy error</html>").into_response(),
        Mode::Unauthorized => {
            let error = json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}});
            return (StatusCode::UNAUTHORIZED, Json(error)).into_response();
        }
        Mode::Good if mock.requests.len() == 1 => {
            let mut headers = HeaderMap::new();
            headers.insert("retry-after", "0".parse().unwrap());
            let error = json!({"error": {"message": "Rate limit reached", "type": "requests"}});
            return (StatusCode::TOO_MANY_REQUESTS, headers, Json(error)).into_response();
        }
        Mode::Good => {}
    }
    let prompt = body["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let text = if prompt.starts_with("Come up with a series of tasks") {
        let new = NEW_TASKS[mock.rounds % NEW_TASKS.len()];
        mock.rounds += 1;
        format!(
            "Here are more tasks:\n9. {new}\n10. Draw a diagram of the BGP topology.\n11. Ping it.\n\
             12. What does the BGP LOCAL_PREF attribute do?\n13. Explain MED and when it is compared."
        )
    } else {
        let task = prompt
            .trim_end()
            .rsplit("Task: ")
            .next()
            .unwrap_or_default();
        format!(
            "Example 1\nInput: show bgp summary for: {task}\nOutput: {{\"answer\": \"{}\"}}\n\
             Example 2\nOutput: Not JSON, a plain answer to: {task}",
            task.len()
        )
    };
    let reply = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]});
    Json(reply).into_response()
}

/// Starts the scripted endpoint on a free port; returns its base URL and its state.
fn start_mock(mode: Mode) -> (String, Arc<Mutex<Mock>>) {
    let mock = Arc::new(Mutex::new(Mock {
        mode,
        requests: Vec::new(),
        rounds: 0,
    }));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new()
        .route("/v1/chat/completions", post(answer))
        .with_state(mock.clone());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (format!("http://127.0.0.1:{port}/v1"), mock)
}

fn seeds() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/bgp/seed_tasks.jsonl")
}

fn generate(endpoint: &str, out: &Path, n: usize, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args(["data", "generate", "--model", "mock-model"])
        .args(["--seeds", &seeds().display().to_string()])
        .args(["--out", &out.display().to_string()])
        .args(["--n", &n.to_string(), "--endpoint", endpoint])
        .args(extra)
        .args(if extra.contains(&"--retries") {
            &[][..]
        } else {
            &["--retries", "2"][..]
        })
        .output()
        .expect("running tunelab data generate")
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn grows_the_seeds_through_the_filters_with_provenance() {
    let (url, mock) = start_mock(Mode::Good);
    let out = common::scratch_dir("generate_good").join("grown.jsonl");
    let run = generate(&url, &out, 6, &["--concurrency", "2"]);
    let log = stderr(&run);
    assert!(run.status.success(), "{log}");
    let records = records(&out);
    assert_eq!(records.len(), 6, "{log}");
    for r in &records {
        let instruction = r["instruction"].as_str().unwrap();
        assert!(NEW_TASKS.contains(&instruction), "{instruction}");
        assert_eq!(r["metadata"]["source"], "self-instruct");
        assert_eq!(r["metadata"]["model"], "mock-model");
        assert!(r["metadata"]["in_context"].as_array().unwrap().len() == 8);
    }
    for reason in ["reject word", "too short", "similar"] {
        assert!(log.contains(reason), "no {reason:?} count in:\n{log}");
    }
    // The first request was refused with 429 and retried; nothing counted as failed.
    assert!(!log.contains("request failed"), "{log}");
    let requests = mock.lock().unwrap().requests.clone();
    assert!(
        requests[1..].contains(&requests[0]),
        "the 429 was not retried"
    );
    assert_eq!(requests[0]["model"], "mock-model");
    // The file is training data as it stands.
    let check = Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args(["data", "validate", &out.display().to_string()])
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
}

#[test]
fn json_checks_and_exclusions_reject_with_reasons() {
    let (url, _mock) = start_mock(Mode::Good);
    let dir = common::scratch_dir("generate_checks");
    let eval = dir.join("eval.jsonl");
    // The first new instruction with the mock's first example input is an eval prompt.
    let held_out = format!("{}\n\nshow bgp summary for: {}", NEW_TASKS[0], NEW_TASKS[0]);
    std::fs::write(&eval, format!("{}\n", json!({"prompt": held_out}))).unwrap();
    let schema = dir.join("schema.json");
    std::fs::write(
        &schema,
        json!({"type": "object", "required": ["answer"], "properties": {"answer": {"type": "string", "maxLength": 1}}}).to_string(),
    )
    .unwrap();
    let out = dir.join("json.jsonl");
    let args = [
        "--json",
        "--exclude",
        eval.to_str().unwrap(),
        "--concurrency",
        "1",
    ];
    let run = generate(&url, &out, 2, &args);
    let log = stderr(&run);
    assert!(run.status.success(), "{log}");
    for r in records(&out) {
        let output: Value = serde_json::from_str(r["output"].as_str().unwrap()).unwrap();
        assert!(output["answer"].is_string());
        assert_ne!(r["instruction"], NEW_TASKS[0]);
    }
    assert!(log.contains("not JSON"), "{log}");
    assert!(log.contains("in exclude file 1"), "{log}");
    // A schema no output can pass: the run ends at --max-rounds, says so, keeps nothing.
    let strict = dir.join("strict.jsonl");
    let args = [
        "--schema",
        schema.to_str().unwrap(),
        "--max-rounds",
        "3",
        "--concurrency",
        "1",
    ];
    let run = generate(&url, &strict, 2, &args);
    let log = stderr(&run);
    assert!(!run.status.success(), "{log}");
    assert!(
        log.contains("stopped after 3 rounds with 0 of 2 records"),
        "{log}"
    );
    assert!(log.contains("fails schema"), "{log}");
}

#[test]
fn a_rerun_goes_on_from_the_records_already_written() {
    let (url, _mock) = start_mock(Mode::Good);
    let out = common::scratch_dir("generate_resume").join("grown.jsonl");
    let first = generate(&url, &out, 3, &["--concurrency", "1"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let before = std::fs::read_to_string(&out).unwrap();
    assert_eq!(before.lines().count(), 3);
    // A record cut off by a kill: dropped, with a warning, before going on.
    std::fs::write(&out, format!("{before}{{\"instruction\": \"Explain")).unwrap();
    let second = generate(&url, &out, 5, &["--concurrency", "1"]);
    let log = stderr(&second);
    assert!(second.status.success(), "{log}");
    assert!(log.contains("the last line was cut off"), "{log}");
    let after = std::fs::read_to_string(&out).unwrap();
    assert!(after.starts_with(&before), "the earlier records changed");
    let all = records(&out);
    assert_eq!(all.len(), 5);
    let distinct: std::collections::HashSet<String> = all
        .iter()
        .map(|r| format!("{}|{}", r["instruction"], r["input"]))
        .collect();
    assert_eq!(distinct.len(), 5, "a rerun repeated a record");
    // Already full: nothing to do, nothing asked.
    let third = generate(&url, &out, 5, &[]);
    assert!(third.status.success(), "{}", stderr(&third));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), after);
}

#[test]
fn endpoint_down_garbage_and_a_bad_key_fail_clearly_and_keep_the_file() {
    let dir = common::scratch_dir("generate_failures");
    let kept = format!(
        "{}\n",
        json!({"instruction": "Explain BGP graceful restart to an operator.", "input": "", "output": "It keeps forwarding.", "metadata": {"source": "self-instruct"}})
    );
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "http://127.0.0.1:{}/v1",
            listener.local_addr().unwrap().port()
        )
    };
    let (garbage, _g) = start_mock(Mode::Garbage);
    let (unauthorized, _u) = start_mock(Mode::Unauthorized);
    for (name, url, says) in [
        ("down", closed.as_str(), "requests in a row failed"),
        ("garbage", garbage.as_str(), "the answer is not JSON"),
        (
            "unauthorized",
            unauthorized.as_str(),
            "HTTP 401: Incorrect API key provided",
        ),
    ] {
        let out = dir.join(format!("{name}.jsonl"));
        std::fs::write(&out, &kept).unwrap();
        let run = generate(url, &out, 4, &["--retries", "0"]);
        let log = stderr(&run);
        assert_eq!(run.status.code(), Some(1), "{name}: {log}");
        assert!(log.contains(says), "{name}: {log}");
        assert!(
            log.contains("the 1 records written so far are kept"),
            "{name}: {log}"
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), kept, "{name}");
    }
}

#[test]
fn seed_file_problems_name_file_and_line() {
    let dir = common::scratch_dir("generate_bad_seeds");
    let bad = dir.join("seeds.jsonl");
    std::fs::write(
        &bad,
        "{\"instruction\": \"ok\", \"output\": \"x\"}\nnot json\n",
    )
    .unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args([
            "data",
            "generate",
            "--seeds",
            bad.to_str().unwrap(),
            "--out",
        ])
        .arg(dir.join("out.jsonl"))
        .args([
            "--n",
            "1",
            "--endpoint",
            "http://127.0.0.1:9/v1",
            "--model",
            "m",
        ])
        .output()
        .unwrap();
    let log = stderr(&run);
    assert_eq!(run.status.code(), Some(1), "{log}");
    assert!(log.contains("seeds.jsonl:2: not valid JSON"), "{log}");
    assert!(!dir.join("out.jsonl").exists());
}

#[test]
fn messages_records_validate_and_resume_from_their_metadata() {
    let (url, _mock) = start_mock(Mode::Good);
    let out = common::scratch_dir("generate_messages").join("grown.jsonl");
    let args = ["--format", "messages", "--concurrency", "1"];
    let first = generate(&url, &out, 2, &args);
    assert!(first.status.success(), "{}", stderr(&first));
    let second = generate(&url, &out, 4, &args);
    assert!(second.status.success(), "{}", stderr(&second));
    let all = records(&out);
    assert_eq!(all.len(), 4);
    for r in &all {
        let instruction = r["metadata"]["instruction"].as_str().unwrap();
        let user = r["messages"][0]["content"].as_str().unwrap();
        assert!(user.starts_with(instruction), "{r}");
        assert_eq!(r["messages"][1]["role"], "assistant");
    }
    let distinct: std::collections::HashSet<String> = all
        .iter()
        .map(|r| {
            format!(
                "{}|{}",
                r["metadata"]["instruction"], r["metadata"]["input"]
            )
        })
        .collect();
    assert_eq!(distinct.len(), 4, "the rerun repeated a record");
    let check = Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args(["data", "validate", &out.display().to_string()])
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
}

//! `tunelab serve` end to end: the real binary on the CPU, driven through a real OpenAI
//! client (async-openai) and raw HTTP, on the tiny Llama of tests/fixtures/lora_tiny with its
//! adapter, and once on the default model.

mod common;

use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestUserMessageArgs,
    CreateChatCompletionRequest, CreateChatCompletionRequestArgs, FinishReason,
};
use async_openai::types::completions::CreateCompletionRequestArgs;
use async_openai::Client;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a server may take to load its model and listen.
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// A running `tunelab serve`, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `tunelab serve --port 0 --device cpu ARGS` and waits for the port it prints.
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tunelab"))
            .args(["serve", "--port", "0", "--device", "cpu"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting tunelab serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(port) = line.strip_prefix("listening on http://127.0.0.1:") {
                    let _ = port_tx.send(port.trim().parse::<u16>().ok());
                }
                let mut log = lines.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let port = port_rx.recv_timeout(START_TIMEOUT).ok().flatten();
        let mut server = Server {
            child,
            port: 0,
            log,
        };
        match port {
            Some(port) => server.port = port,
            None => panic!("the server did not start:\n{}", server.log()),
        }
        server
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn client(&self, key: &str) -> Client<OpenAIConfig> {
        let config = OpenAIConfig::new()
            .with_api_base(self.url("/v1"))
            .with_api_key(key);
        Client::with_config(config)
    }

    /// Waits (bounded) for the process to end by itself.
    fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tiny Llama as a Hugging Face folder (`dir/tiny-llama`, served as "tiny-llama") and a
/// copy of its adapter that records that folder as its base. `context` replaces the model's
/// max_position_embeddings (128), for tests that need replies longer than that.
fn tiny(name: &str, context: Option<usize>) -> (PathBuf, PathBuf) {
    let dir = common::scratch_dir(name);
    let base = common::tiny_hf_folder(&dir);
    if let Some(context) = context {
        let path = base.join("config.json");
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        config["max_position_embeddings"] = json!(context);
        std::fs::write(&path, config.to_string()).unwrap();
    }
    let adapter = dir.join("adapter");
    std::fs::create_dir_all(&adapter).unwrap();
    let fixture = common::fixture("lora_tiny/adapter");
    std::fs::copy(
        fixture.join("adapter_model.safetensors"),
        adapter.join("adapter_model.safetensors"),
    )
    .unwrap();
    let mut config: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture.join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    config["base_model_name_or_path"] = json!(base.display().to_string());
    std::fs::write(adapter.join("adapter_config.json"), config.to_string()).unwrap();
    (base, adapter)
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

fn user(text: &str) -> ChatCompletionRequestMessage {
    ChatCompletionRequestUserMessageArgs::default()
        .content(text)
        .build()
        .unwrap()
        .into()
}

fn greedy_chat(model: &str, prompt: &str, max_tokens: u32) -> CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model(model)
        .messages([user(prompt)])
        .temperature(0.0)
        .max_completion_tokens(max_tokens)
        .build()
        .unwrap()
}

fn tunelab(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args(args)
        .output()
        .expect("running tunelab");
    assert!(
        out.status.success(),
        "tunelab {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `tunelab logits`' greedy reply and prompt length for one chat prompt.
fn logits_probe(
    base: &Path,
    adapter: Option<&Path>,
    prompt: &str,
    tokens: usize,
) -> (String, usize) {
    let mut args = vec![
        "logits".to_string(),
        "--model".into(),
        path_arg(base),
        "--prompt".into(),
        prompt.into(),
        "--greedy".into(),
        tokens.to_string(),
    ];
    if let Some(adapter) = adapter {
        args.extend(["--adapter".into(), path_arg(adapter)]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let probes: Value = serde_json::from_str(&tunelab(&args)).unwrap();
    let probe = &probes[0];
    (
        probe["greedy_text"].as_str().unwrap().to_string(),
        probe["ids"].as_array().unwrap().len(),
    )
}

async fn streamed_chat(
    client: &Client<OpenAIConfig>,
    request: CreateChatCompletionRequest,
) -> (String, Option<FinishReason>) {
    let mut stream = client.chat().create_stream(request).await.unwrap();
    let (mut text, mut finish) = (String::new(), None);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert_eq!(chunk.object, "chat.completion.chunk");
        for choice in chunk.choices {
            text.push_str(choice.delta.content.as_deref().unwrap_or(""));
            finish = finish.or(choice.finish_reason);
        }
    }
    (text, finish)
}

async fn stats(http: &reqwest::Client, server: &Server) -> Value {
    http.get(server.url("/v1/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls /v1/stats until `ok` holds (10 s at most).
async fn wait_for_stats(
    http: &reqwest::Client,
    server: &Server,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let s = stats(http, server).await;
        if ok(&s) || started.elapsed() > Duration::from_secs(10) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const PROMPT: &str = "hello there";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_replies_match_generate_for_base_and_adapter() {
    let (base, adapter) = tiny("serve_chat", None);
    let adapter_arg = format!("tuned={}", adapter.display());
    let server = Server::start(&["--model", &path_arg(&base), "--adapter", &adapter_arg]);
    let client = server.client("unused");

    let models = client.models().list().await.unwrap();
    let ids: Vec<&str> = models.data.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["tiny-llama", "tuned"]);

    let (base_expected, prompt_tokens) = logits_probe(&base, None, PROMPT, 24);
    let (tuned_expected, _) = logits_probe(&base, Some(&adapter), PROMPT, 24);
    assert_ne!(
        base_expected, tuned_expected,
        "the fixture adapter should change the greedy reply"
    );
    let generated = tunelab(&[
        "generate",
        "--model",
        &path_arg(&base),
        "--prompt",
        PROMPT,
        "--temperature",
        "0",
        "--max-tokens",
        "24",
        "--device",
        "cpu",
    ]);
    assert_eq!(generated.strip_suffix('\n').unwrap(), base_expected);

    for (name, expected) in [
        ("tiny-llama", &base_expected),
        ("base", &base_expected),
        ("tuned", &tuned_expected),
        ("tiny-llama", &base_expected),
    ] {
        let reply = client
            .chat()
            .create(greedy_chat(name, PROMPT, 24))
            .await
            .unwrap();
        assert_eq!(reply.object, "chat.completion");
        assert_eq!(
            reply.model,
            if name == "base" { "tiny-llama" } else { name }
        );
        let choice = &reply.choices[0];
        assert_eq!(
            choice.message.content.as_deref(),
            Some(expected.as_str()),
            "{name}"
        );
        let usage = reply.usage.unwrap();
        assert_eq!(usage.prompt_tokens as usize, prompt_tokens);
        assert!(usage.completion_tokens >= 1 && usage.completion_tokens <= 24);
        assert_eq!(
            usage.total_tokens,
            usage.prompt_tokens + usage.completion_tokens
        );
        let expected_finish = if usage.completion_tokens == 24 {
            FinishReason::Length
        } else {
            FinishReason::Stop
        };
        assert_eq!(choice.finish_reason, Some(expected_finish));

        let (streamed, finish) = streamed_chat(&client, greedy_chat(name, PROMPT, 24)).await;
        assert_eq!(&streamed, expected, "{name} streamed");
        assert_eq!(finish, Some(expected_finish));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_stop_sequences_and_seeded_choices() {
    let (base, _) = tiny("serve_completions", None);
    let server = Server::start(&["--model", &path_arg(&base)]);
    let client = server.client("unused");
    let request = |stop: Option<&str>, temperature: f32| {
        let mut args = CreateCompletionRequestArgs::default();
        args.model("tiny-llama")
            .prompt("once upon a time")
            .temperature(temperature)
            .seed(5)
            .max_tokens(40u32);
        if let Some(stop) = stop {
            args.stop(stop);
        }
        args.build().unwrap()
    };
    let greedy = client
        .completions()
        .create(request(None, 0.0))
        .await
        .unwrap();
    assert_eq!(greedy.object, "text_completion");
    let raw = tunelab(&[
        "generate",
        "--raw",
        "--model",
        &path_arg(&base),
        "--prompt",
        "once upon a time",
        "--temperature",
        "0",
        "--max-tokens",
        "40",
        "--device",
        "cpu",
    ]);
    assert_eq!(raw.strip_suffix('\n').unwrap(), greedy.choices[0].text);

    // Sampled with a seed, the reply repeats; a stop sequence from its middle cuts it just
    // before the sequence's first occurrence.
    let full = client
        .completions()
        .create(request(None, 1.0))
        .await
        .unwrap();
    let text = full.choices[0].text.clone();
    let again = client
        .completions()
        .create(request(None, 1.0))
        .await
        .unwrap();
    assert_eq!(
        again.choices[0].text, text,
        "the same seed samples the same reply"
    );
    // A stop sequence from the middle of the reply cuts it just before its first occurrence.
    let chars: Vec<char> = text.chars().collect();
    assert!(chars.len() >= 12, "the reply is too short to cut: {text:?}");
    let stop: String = chars[8..10].iter().collect();
    let cut = &text[..text.find(&stop).unwrap()];
    let stopped = client
        .completions()
        .create(request(Some(&stop), 1.0))
        .await
        .unwrap();
    assert_eq!(stopped.choices[0].text, cut);
    assert_eq!(
        serde_json::to_value(stopped.choices[0].finish_reason).unwrap(),
        "stop"
    );
    let mut stream = client
        .completions()
        .create_stream(request(Some(&stop), 1.0))
        .await
        .unwrap();
    let mut streamed = String::new();
    while let Some(chunk) = stream.next().await {
        streamed.push_str(&chunk.unwrap().choices[0].text);
    }
    assert_eq!(streamed, cut);

    // n choices, sampled: the same seed repeats them, each choice its own draw.
    let http = reqwest::Client::new();
    let sampled = || async {
        let body = json!({
            "model": "base", "prompt": "once upon a time", "n": 3, "temperature": 2.0,
            "seed": 11,
            "max_tokens": 30,
        });
        let r = http
            .post(server.url("/v1/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["choices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["index"].as_u64().unwrap(),
                    c["text"].as_str().unwrap().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let first = sampled().await;
    assert_eq!(first.iter().map(|c| c.0).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(first, sampled().await);
    assert!(
        first[0].1 != first[1].1 || first[1].1 != first[2].1,
        "three draws at T=2 should not all agree: {first:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_requests_are_answered_in_batches() {
    let (base, adapter) = tiny("serve_concurrent", None);
    let adapter_arg = format!("tuned={}", adapter.display());
    let server = Server::start(&[
        "--model",
        &path_arg(&base),
        "--adapter",
        &adapter_arg,
        "--max-batch",
        "8",
    ]);
    let client = server.client("unused");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let client = client.clone();
        let model = if i % 4 == 3 { "tuned" } else { "tiny-llama" };
        tasks.push(tokio::spawn(async move {
            let prompt = format!("request number {i}");
            client.chat().create(greedy_chat(model, &prompt, 64)).await
        }));
    }
    for task in tasks {
        let reply = task.await.unwrap().expect("every request is answered");
        assert_eq!(reply.choices.len(), 1);
        assert!(reply.usage.unwrap().completion_tokens >= 1);
    }
    let http = reqwest::Client::new();
    let s = stats(&http, &server).await;
    assert_eq!(s["requests"], 16, "{s}");
    assert_eq!(s["rows"], 16, "{s}");
    assert!(
        s["largest_batch"].as_u64().unwrap() > 1,
        "no batching happened: {s}"
    );
    assert!(s["batches"].as_u64().unwrap() < 16, "{s}");
}

async fn expect_error(response: reqwest::Response, status: u16, param: Option<&str>) -> String {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    let object = error
        .as_object()
        .unwrap_or_else(|| panic!("not OpenAI-shaped: {body}"));
    for key in ["message", "type", "param", "code"] {
        assert!(object.contains_key(key), "no {key} in {body}");
    }
    assert!(error["type"].is_string(), "{body}");
    if let Some(param) = param {
        assert_eq!(error["param"], param, "{body}");
    }
    error["message"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_openai_shaped_errors() {
    let (base, _) = tiny("serve_errors", None);
    let server = Server::start(&[
        "--model",
        &path_arg(&base),
        "--api-key",
        "secret",
        "--max-body-bytes",
        "4KiB",
        "--max-tokens-limit",
        "64",
    ]);
    let http = reqwest::Client::new();
    let chat = server.url("/v1/chat/completions");
    let post = |body: Value| http.post(&chat).bearer_auth("secret").json(&body).send();
    let hello = json!([{ "role": "user", "content": "hi" }]);

    // The key: missing, wrong, right; /health needs none.
    let r = http.post(&chat).json(&json!({})).send().await.unwrap();
    expect_error(r, 401, None).await;
    let r = http
        .post(&chat)
        .bearer_auth("wrong")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, None).await;
    let wrong_key = server
        .client("wrong")
        .chat()
        .create(greedy_chat("base", "hi", 4))
        .await;
    assert!(
        format!("{wrong_key:?}").contains("Incorrect API key"),
        "{wrong_key:?}"
    );
    let ok = server
        .client("secret")
        .chat()
        .create(greedy_chat("base", "hi", 4))
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    assert_eq!(
        http.get(server.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let r = post(json!({ "model": "nope", "messages": hello }))
        .await
        .unwrap();
    let message = expect_error(r, 404, Some("model")).await;
    assert!(
        message.contains("nope") && message.contains("tiny-llama"),
        "{message}"
    );
    let r = http
        .get(server.url("/v2/nothing"))
        .bearer_auth("secret")
        .send()
        .await
        .unwrap();
    expect_error(r, 404, None).await;

    let r = http
        .post(&chat)
        .bearer_auth("secret")
        .header("content-type", "application/json")
        .body("{\"model\": \"base\", \"messages\": [")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, None).await;
    let r = post(json!({ "model": "base", "messages": hello, "temperature": "hot" }))
        .await
        .unwrap();
    expect_error(r, 400, Some("temperature")).await;
    let r = post(json!({ "model": "base", "messages": [{ "role": "user", "content": 5 }] }))
        .await
        .unwrap();
    expect_error(r, 400, Some("messages[0].content")).await;
    let r = post(json!({ "messages": hello })).await.unwrap();
    expect_error(r, 400, Some("model")).await;
    let r = post(json!({ "model": "base", "messages": hello, "max_tokens": 65 }))
        .await
        .unwrap();
    let message = expect_error(r, 400, Some("max_tokens")).await;
    assert!(message.contains("64"), "{message}");
    let r = post(json!({ "model": "base", "messages": hello, "max_tokens": -1 }))
        .await
        .unwrap();
    expect_error(r, 400, Some("max_tokens")).await;
    let r = post(json!({ "model": "base", "messages": hello, "n": 0 }))
        .await
        .unwrap();
    expect_error(r, 400, Some("n")).await;
    let schema = |schema: Value| json!({ "type": "json_schema", "json_schema": { "name": "t", "schema": schema } });
    let r = post(
        json!({ "model": "base", "messages": hello, "response_format": { "type": "json_schema" } }),
    )
    .await
    .unwrap();
    expect_error(r, 400, Some("response_format.json_schema.schema")).await;
    let unparsable = schema(json!({ "type": "string", "pattern": "[" }));
    let r = post(json!({ "model": "base", "messages": hello, "response_format": unparsable }))
        .await
        .unwrap();
    expect_error(r, 400, Some("response_format.json_schema.schema")).await;
    let r = post(json!({
        "model": "base", "messages": hello, "response_format": { "type": "json_object" },
        "ignore_eos": true
    }))
    .await
    .unwrap();
    expect_error(r, 400, Some("ignore_eos")).await;
    let r = post(json!({
        "model": "base", "messages": hello, "response_format": { "type": "text" }, "max_tokens": 2
    }))
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let long = "word ".repeat(40);
    let r = post(json!({ "model": "base", "messages": [{ "role": "user", "content": long }] }))
        .await
        .unwrap();
    let message = expect_error(r, 400, Some("messages")).await;
    assert!(message.contains("context length"), "{message}");

    let big = "x".repeat(8 * 1024);
    let r = post(json!({ "model": "base", "messages": [{ "role": "user", "content": big }] }))
        .await
        .unwrap();
    expect_error(r, 413, None).await;
    let r = http.get(&chat).bearer_auth("secret").send().await.unwrap();
    expect_error(r, 405, None).await;
    // The server is still well after all of that.
    let ok = server
        .client("secret")
        .chat()
        .create(greedy_chat("base", "hi", 4))
        .await;
    assert!(ok.is_ok(), "{ok:?}\n{}", server.log());
}

/// A streamed request that runs for a while (every row to its max_tokens), its first chunk
/// read, so that it is being generated when this returns.
async fn long_stream(http: &reqwest::Client, server: &Server) -> reqwest::Response {
    let body = json!({
        "model": "base", "prompt": "a", "max_tokens": 2000, "ignore_eos": true,
        "temperature": 0, "stream": true,
    });
    let mut r = http
        .post(server.url("/v1/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let first = r.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "), "{first:?}");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_is_429_and_a_client_leaving_frees_its_row() {
    let (base, _) = tiny("serve_queue", Some(4096));
    let server = Server::start(&[
        "--model",
        &path_arg(&base),
        "--max-batch",
        "1",
        "--max-queue",
        "1",
        "--max-tokens-limit",
        "2000",
    ]);
    let http = reqwest::Client::new();
    let running = long_stream(&http, &server).await;
    let waiting = {
        let http = http.clone();
        let url = server.url("/v1/completions");
        tokio::spawn(async move {
            let body = json!({ "model": "base", "prompt": "b", "max_tokens": 5 });
            http.post(url).json(&body).send().await.unwrap()
        })
    };
    let s = wait_for_stats(&http, &server, |s| s["queued"] == 1).await;
    assert_eq!(s["queued"], 1, "{s}");
    let body = json!({ "model": "base", "prompt": "c", "max_tokens": 5 });
    let r = http
        .post(server.url("/v1/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["retry-after"], "1");
    expect_error(r, 429, None).await;

    drop(running);
    let s = wait_for_stats(&http, &server, |s| s["cancelled_rows"] == 1).await;
    assert_eq!(s["cancelled_rows"], 1, "{s}");
    assert!(s["completion_tokens"].as_u64().unwrap() < 2000, "{s}");
    let answered = waiting.await.unwrap();
    assert_eq!(answered.status(), 200, "the waiting request runs next");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_refuses_with_503_and_finishes_the_running_reply() {
    let (base, _) = tiny("serve_shutdown", Some(4096));
    let mut server = Server::start(&[
        "--model",
        &path_arg(&base),
        "--max-batch",
        "1",
        "--max-tokens-limit",
        "2000",
    ]);
    let http = reqwest::Client::new();
    let mut running = long_stream(&http, &server).await;
    let waiting = {
        let http = http.clone();
        let url = server.url("/v1/completions");
        tokio::spawn(async move {
            let body = json!({ "model": "base", "prompt": "b", "max_tokens": 5 });
            http.post(url).json(&body).send().await.unwrap()
        })
    };
    wait_for_stats(&http, &server, |s| s["queued"] == 1).await;
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());

    expect_error(waiting.await.unwrap(), 503, None).await;
    let body = json!({ "model": "base", "prompt": "c", "max_tokens": 5 });
    let r = http
        .post(server.url("/v1/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_error(r, 503, None).await;
    let mut rest = Vec::new();
    while let Some(chunk) = running.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    let rest = String::from_utf8(rest).unwrap();
    assert!(rest.contains("\"finish_reason\":\"length\""), "{rest}");
    assert!(rest.trim_end().ends_with("data: [DONE]"), "{rest}");
    let status = server.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        server.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_model_knows_the_capital_of_france() {
    let model = common::default_gguf();
    let server = Server::start(&["--model", &path_arg(&model), "--max-batch", "2"]);
    let client = server.client("unused");
    let reply = client
        .chat()
        .create(greedy_chat("base", "What is the capital of France?", 32))
        .await
        .unwrap();
    let text = reply.choices[0].message.content.clone().unwrap_or_default();
    assert!(text.contains("Paris"), "{text:?}");
    assert_eq!(reply.model, "SmolLM2-135M-Instruct.Q4_1");
}

/// `tunelab data generate` grows a seed file against `tunelab serve` and the default model:
/// real replies through the self-instruct prompts, parsers and filters, kept with their
/// provenance.
#[test]
fn data_generate_grows_seed_tasks_against_the_server() {
    let model = common::default_gguf();
    let server = Server::start(&["--model", &path_arg(&model), "--max-batch", "2"]);
    let out = common::scratch_dir("serve_generate").join("grown.jsonl");
    let seeds = common::fixture("generate/everyday_seeds.jsonl");
    let run = Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args([
            "data",
            "generate",
            "--model",
            "base",
            "--n",
            "2",
            "--instances",
            "1",
        ])
        .args(["--seeds", &path_arg(&seeds), "--out", &path_arg(&out)])
        .args(["--endpoint", &server.url("/v1"), "--max-tokens", "160"])
        .args(["--max-rounds", "12", "--concurrency", "2"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{log}\nserver:\n{}", server.log());
    let text = std::fs::read_to_string(&out).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{text}");
    for r in &records {
        assert!(!r["output"].as_str().unwrap().trim().is_empty());
        assert_eq!(r["metadata"]["model"], "base");
    }
    assert!(log.contains("kept 2 records"), "{log}");
}

/// A random tiny model, held to a schema by response_format, answers in it every time.
#[tokio::test(flavor = "multi_thread")]
async fn response_format_holds_replies_to_the_schema() {
    let (base, _) = tiny("serve_response_format", None);
    let server = Server::start(&["--model", &path_arg(&base), "--max-tokens-limit", "64"]);
    let http = reqwest::Client::new();
    let schema = json!({
        "type": "object",
        "properties": { "ok": { "type": "boolean" }, "n": { "type": "integer", "minimum": 0, "maximum": 9 } },
        "required": ["ok", "n"],
        "additionalProperties": false
    });
    let validator = jsonschema::validator_for(&schema).unwrap();
    for (seed, format) in [
        (
            1,
            json!({ "type": "json_schema", "json_schema": { "name": "t", "schema": schema } }),
        ),
        (
            2,
            json!({ "type": "json_schema", "json_schema": { "name": "t", "schema": schema, "strict": true } }),
        ),
    ] {
        let body = json!({
            "model": "base", "messages": [{ "role": "user", "content": "hi" }],
            "response_format": format, "max_tokens": 32, "seed": seed, "n": 3
        });
        let r: Value = http
            .post(server.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for choice in r["choices"].as_array().unwrap() {
            let content = choice["message"]["content"].as_str().unwrap();
            let reply: Value =
                serde_json::from_str(content).unwrap_or_else(|e| panic!("{content}: {e}"));
            assert!(validator.is_valid(&reply), "{content}");
            assert_eq!(choice["finish_reason"], "stop", "{content}");
        }
    }
}

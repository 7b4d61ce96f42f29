//! Load for a running `tunelab serve`: N clients send chat completions back to back for T
//! seconds, then requests/s, generated tokens/s and latencies are printed (text, then one
//! JSON line), with the server's batch sizes from /v1/stats.
//!
//! cargo run --release --example serve_load -- --url http://127.0.0.1:8000 --clients 16 --seconds 30
//!
//! Each request asks for exactly --max-tokens tokens (`ignore_eos`), so runs compare.

use clap::Parser;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(Parser, Clone)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    #[arg(long, default_value = "base")]
    model: String,
    /// Concurrent clients, each with one request in flight.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    #[arg(long, default_value = "Write a short story about a lighthouse keeper.")]
    prompt: String,
    /// Stream the replies, and report the time to the first token.
    #[arg(long)]
    stream: bool,
    #[arg(long)]
    api_key: Option<String>,
}

#[derive(Default)]
struct Tally {
    ok: usize,
    failed: usize,
    tokens: usize,
    latencies: Vec<f64>,
    first_tokens: Vec<f64>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let before = server_stats(&http, &args).await;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let clients: Vec<_> = (0..args.clients)
        .map(|i| tokio::spawn(client(http.clone(), args.clone(), i, deadline)))
        .collect();
    let mut total = Tally::default();
    for c in clients {
        let t = c.await?;
        total.ok += t.ok;
        total.failed += t.failed;
        total.tokens += t.tokens;
        total.latencies.extend(t.latencies);
        total.first_tokens.extend(t.first_tokens);
    }
    let secs = started.elapsed().as_secs_f64();
    let after = server_stats(&http, &args).await;
    report(&args, &total, secs, &before, &after);
    Ok(())
}

async fn client(http: reqwest::Client, args: Args, id: usize, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut n = 0;
    while Instant::now() < deadline {
        let body = json!({
            "model": args.model,
            "messages": [{ "role": "user", "content": format!("{} ({id}.{n})", args.prompt) }],
            "max_tokens": args.max_tokens,
            "ignore_eos": true,
            "temperature": 0.7,
            "seed": (id * 100_000 + n) as i64,
            "stream": args.stream,
            "stream_options": if args.stream { json!({ "include_usage": true }) } else { Value::Null },
        });
        n += 1;
        let sent = Instant::now();
        match one(&http, &args, &body, sent).await {
            Ok((tokens, first)) => {
                tally.ok += 1;
                tally.tokens += tokens;
                tally.latencies.push(sent.elapsed().as_secs_f64());
                tally.first_tokens.extend(first);
            }
            Err(e) => {
                tally.failed += 1;
                eprintln!("client {id}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    tally
}

/// Sends one request; its completion tokens and, streamed, the seconds to its first token.
async fn one(
    http: &reqwest::Client,
    args: &Args,
    body: &Value,
    sent: Instant,
) -> anyhow::Result<(usize, Option<f64>)> {
    let mut request = http
        .post(format!("{}/v1/chat/completions", args.url))
        .json(body);
    if let Some(key) = &args.api_key {
        request = request.bearer_auth(key);
    }
    let mut response = request.send().await?;
    if !response.status().is_success() {
        anyhow::bail!("{} {}", response.status(), response.text().await?);
    }
    if !args.stream {
        let v: Value = response.json().await?;
        return Ok((
            v["usage"]["completion_tokens"].as_u64().unwrap_or(0) as usize,
            None,
        ));
    }
    let (mut first, mut tokens, mut buffer) = (None, 0, String::new());
    while let Some(chunk) = response.chunk().await? {
        first.get_or_insert_with(|| sent.elapsed().as_secs_f64());
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(data) = event.trim().strip_prefix("data: ") {
                if let Ok(v) = serde_json::from_str::<Value>(data) {
                    if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
                        tokens = n as usize;
                    }
                }
            }
        }
    }
    Ok((tokens, first))
}

async fn server_stats(http: &reqwest::Client, args: &Args) -> Value {
    let mut request = http.get(format!("{}/v1/stats", args.url));
    if let Some(key) = &args.api_key {
        request = request.bearer_auth(key);
    }
    match request.send().await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let i = ((values.len() - 1) as f64 * p).round() as usize;
    values[i]
}

fn report(args: &Args, t: &Tally, secs: f64, before: &Value, after: &Value) {
    let mut latencies = t.latencies.clone();
    let mut first = t.first_tokens.clone();
    let count = |v: &Value, key: &str| v[key].as_u64().unwrap_or(0);
    let batches = count(after, "batches").saturating_sub(count(before, "batches"));
    let rows = count(after, "rows").saturating_sub(count(before, "rows"));
    let summary = json!({
        "clients": args.clients,
        "seconds": secs,
        "max_tokens": args.max_tokens,
        "stream": args.stream,
        "requests_ok": t.ok,
        "requests_failed": t.failed,
        "requests_per_s": t.ok as f64 / secs,
        "tokens_per_s": t.tokens as f64 / secs,
        "latency_p50_s": percentile(&mut latencies, 0.5),
        "latency_p95_s": percentile(&mut latencies, 0.95),
        "first_token_p50_s": percentile(&mut first, 0.5),
        "mean_batch_rows": if batches > 0 { rows as f64 / batches as f64 } else { 0.0 },
        "batch_sizes": after["batch_sizes"],
    });
    println!(
        "{} clients, {:.1} s: {} requests ({} failed), {:.2} requests/s, {:.1} tokens/s, \
         latency p50 {:.2} s p95 {:.2} s, mean batch {:.2} rows",
        args.clients,
        secs,
        t.ok,
        t.failed,
        summary["requests_per_s"].as_f64().unwrap_or(0.0),
        summary["tokens_per_s"].as_f64().unwrap_or(0.0),
        summary["latency_p50_s"].as_f64().unwrap_or(0.0),
        summary["latency_p95_s"].as_f64().unwrap_or(0.0),
        summary["mean_batch_rows"].as_f64().unwrap_or(0.0),
    );
    println!("{summary}");
}

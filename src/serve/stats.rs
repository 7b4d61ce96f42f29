//! Counters the server keeps for `GET /v1/stats`: how requests were batched, how many rows
//! were cancelled, how many tokens went in and out.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub struct Stats {
    started: Instant,
    requests: AtomicU64,
    batches: AtomicU64,
    rows: AtomicU64,
    cancelled_rows: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    /// Batch size (rows) → how many batches had it.
    batch_sizes: Mutex<BTreeMap<usize, u64>>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            requests: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            cancelled_rows: AtomicU64::new(0),
            prompt_tokens: AtomicU64::new(0),
            completion_tokens: AtomicU64::new(0),
            batch_sizes: Mutex::new(BTreeMap::new()),
        }
    }
}

fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

impl Stats {
    pub fn request(&self) {
        add(&self.requests, 1);
    }

    /// A batch of `rows` rows, whose prompts hold `prompt_tokens` tokens, started.
    pub fn batch(&self, rows: usize, prompt_tokens: usize) {
        add(&self.batches, 1);
        add(&self.rows, rows);
        add(&self.prompt_tokens, prompt_tokens);
        *self
            .batch_sizes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(rows)
            .or_default() += 1;
    }

    pub fn tokens(&self, completion_tokens: usize) {
        add(&self.completion_tokens, completion_tokens);
    }

    pub fn cancelled(&self, rows: usize) {
        add(&self.cancelled_rows, rows);
    }

    pub fn snapshot(&self, queued: usize) -> Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let sizes = self
            .batch_sizes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        json!({
            "uptime_s": self.started.elapsed().as_secs_f64(),
            "requests": get(&self.requests),
            "batches": get(&self.batches),
            "rows": get(&self.rows),
            "largest_batch": sizes.keys().max().copied().unwrap_or(0),
            "batch_sizes": sizes.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
            "cancelled_rows": get(&self.cancelled_rows),
            "prompt_tokens": get(&self.prompt_tokens),
            "completion_tokens": get(&self.completion_tokens),
            "queued": queued,
        })
    }
}

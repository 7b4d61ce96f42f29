//! `tunelab data generate`: self-instruct against an OpenAI-compatible endpoint, with a
//! progress line of kept and rejected counts.

use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;
use tunelab::data::exclude::prompts_of;
use tunelab::data::generate::client::{Api, Endpoint, Sampling};
use tunelab::data::generate::output::RecordFormat;
use tunelab::data::generate::seeds::load_seed_tasks;
use tunelab::data::generate::{Generator, OutputChecks, Progress};
use tunelab::eval::cases::load_schema;

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Seed tasks: self-instruct's seed_tasks.jsonl layout or alpaca rows.
    #[arg(long)]
    seeds: PathBuf,
    /// The JSONL file to write; when it exists, the run goes on from the records in it.
    #[arg(long)]
    out: PathBuf,
    /// Records the file should hold when the run ends.
    #[arg(long)]
    n: usize,
    /// The endpoint's base URL, e.g. http://127.0.0.1:8000/v1 (`tunelab serve` prints it).
    #[arg(long)]
    endpoint: String,
    /// The model name the endpoint knows.
    #[arg(long)]
    model: String,
    /// The environment variable holding the API key, sent as a Bearer token.
    #[arg(long)]
    api_key_env: Option<String>,
    /// chat (/chat/completions) or completions (/completions, for base models).
    #[arg(long, default_value = "chat")]
    api: Api,
    /// alpaca or messages.
    #[arg(long, default_value = "alpaca")]
    format: RecordFormat,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 0.7)]
    temperature: f64,
    #[arg(long, default_value_t = 0.9)]
    top_p: f64,
    #[arg(long, default_value_t = 512)]
    max_tokens: usize,
    /// Seconds one request may take.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Retries of a request refused with 429 or 5xx (or not answered), with exponential
    /// backoff from 0.5 s (or the server's Retry-After).
    #[arg(long, default_value_t = 5)]
    retries: usize,
    /// Refuse a new instruction whose ROUGE-L against one in the pool is at least this.
    #[arg(long, default_value_t = 0.7)]
    similarity: f64,
    /// Comma-separated words that refuse an instruction (default: the paper's list, with
    /// Alpaca's additions); an empty string turns the rule off.
    #[arg(long)]
    reject_words: Option<String>,
    /// Keep only outputs that are JSON.
    #[arg(long)]
    json: bool,
    /// Keep only outputs that are JSON valid against this schema.
    #[arg(long)]
    schema: Option<PathBuf>,
    /// A JSONL file (an eval set) whose prompts are never written; repeatable.
    #[arg(long)]
    exclude: Vec<PathBuf>,
    /// Stop after this many rounds (one instruction request each); default 20 + 4 × n.
    #[arg(long)]
    max_rounds: Option<usize>,
    /// Examples kept per new instruction.
    #[arg(long, default_value_t = 2)]
    instances: usize,
}

pub fn run_generate(args: GenerateArgs) -> Result<()> {
    if args.n == 0 || args.concurrency == 0 || args.instances == 0 {
        bail!("--n, --concurrency and --instances must be at least 1");
    }
    if !(0.0..=1.0).contains(&args.similarity) {
        bail!("--similarity must be between 0 and 1");
    }
    let generator = generator(&args)?;
    let printer = Printer::new();
    let progress = generator.run(&args.out, &|p| printer.show(p));
    printer.finish();
    let progress = progress?;
    eprintln!(
        "kept {} records in {} ({} rounds, {} requests; rejected {}: {})",
        progress.kept,
        args.out.display(),
        progress.rounds,
        progress.requests,
        progress.rejected_total(),
        progress.rejected_summary()
    );
    Ok(())
}

fn generator(args: &GenerateArgs) -> Result<Generator> {
    let seeds = load_seed_tasks(&args.seeds)?;
    let sampling = Sampling {
        temperature: args.temperature,
        top_p: args.top_p,
        max_tokens: args.max_tokens,
    };
    let timeout = Duration::from_secs(args.timeout);
    let mut endpoint = Endpoint::new(&args.endpoint, &args.model, args.api, sampling, timeout);
    endpoint.backoff.attempts = args.retries + 1;
    if let Some(var) = &args.api_key_env {
        let key =
            std::env::var(var).with_context(|| format!("--api-key-env: ${var} is not set"))?;
        endpoint.api_key = Some(key);
    }
    let mut generator = Generator::new(seeds, endpoint, args.n);
    if let Some(list) = &args.reject_words {
        generator.filter.reject_words = list.split(',').map(|w| w.trim().to_string()).collect();
    }
    generator.filter.max_similarity = args.similarity;
    let mut excluded = HashSet::new();
    for file in &args.exclude {
        excluded.extend(prompts_of(file)?);
    }
    generator.checks = OutputChecks {
        json: args.json,
        schema: args.schema.as_deref().map(load_schema).transpose()?,
        excluded,
    };
    generator.seed = args.seed;
    generator.concurrency = args.concurrency;
    if let Some(rounds) = args.max_rounds {
        generator.max_rounds = rounds;
    }
    generator.instances_per_task = args.instances;
    generator.format = args.format;
    Ok(generator)
}

/// One progress line on stderr: redrawn in place on a terminal, one line per change of the
/// kept count otherwise (a log stays short).
struct Printer {
    terminal: bool,
    last_kept: std::sync::Mutex<Option<usize>>,
    last_warning: std::sync::Mutex<Option<String>>,
}

impl Printer {
    fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            last_kept: std::sync::Mutex::new(None),
            last_warning: std::sync::Mutex::new(None),
        }
    }

    fn show(&self, p: &Progress) {
        let mut warned = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if p.warning.is_some() && *warned != p.warning {
            let clear = if self.terminal { "\r\x1b[2K" } else { "" };
            eprintln!(
                "{clear}warning: {}",
                p.warning.as_deref().unwrap_or_default()
            );
            *warned = p.warning.clone();
        }
        let line = format!(
            "{} {}/{} kept · {} rejected · {} requests",
            bar(p.kept, p.n),
            p.kept,
            p.n,
            p.rejected_total(),
            p.requests
        );
        let mut last = self.last_kept.lock().unwrap_or_else(|e| e.into_inner());
        if self.terminal {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
        } else if *last != Some(p.kept) {
            eprintln!("{line}");
        }
        *last = Some(p.kept);
    }

    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

fn bar(done: usize, total: usize) -> String {
    const WIDTH: usize = 20;
    let filled = (done * WIDTH / total.max(1)).min(WIDTH);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(WIDTH - filled))
}

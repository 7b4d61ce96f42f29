//! `tunelab data synth`: records from a data recipe, written as JSONL with a coverage report.

use anyhow::{bail, Result};
use std::path::PathBuf;
use tunelab::data::recipe::{Kitchen, Output};

#[derive(clap::Args)]
pub struct SynthArgs {
    /// The recipe: a TOML file of slots and templates.
    #[arg(long)]
    recipe: PathBuf,
    /// How many records to write.
    #[arg(long)]
    n: usize,
    /// The same recipe, n and seed always give the same records.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The JSONL file to create (never overwritten).
    #[arg(long)]
    out: PathBuf,
    /// Another record shape than the recipe's own: prompt-completion, messages, alpaca,
    /// preference (needs a rejected answer in every template) or cases (eval cases with
    /// expect_json: GRPO's prompt_file).
    #[arg(long, value_parser = parse_output)]
    output: Option<Output>,
    /// Also write the coverage report as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
}

fn parse_output(s: &str) -> Result<Output, String> {
    serde_json::from_value(serde_json::Value::String(s.replace('-', "_")))
        .map_err(|_| format!("'{s}': use prompt-completion, messages, alpaca, preference or cases"))
}

pub fn run_synth(args: SynthArgs) -> Result<()> {
    if args.n == 0 {
        bail!("--n must be at least 1");
    }
    for path in std::iter::once(&args.out).chain(&args.report) {
        if path.exists() {
            bail!("{}: already exists; choose another name", path.display());
        }
    }
    let mut kitchen = Kitchen::open(&args.recipe)?;
    if let Some(output) = args.output {
        kitchen = kitchen.with_output(output)?;
    }
    let report = kitchen.cook_into(args.n, args.seed, &args.out)?;
    if let Some(path) = &args.report {
        let text = serde_json::to_string_pretty(&report)?;
        tunelab::fsutil::write_file_atomically(path, text.as_bytes())?;
    }
    eprint!("{report}");
    println!("wrote {} records to {}", report.records, args.out.display());
    Ok(())
}

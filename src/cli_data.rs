//! `tunelab data …`: check, describe, convert and split training files before a run.

use anyhow::{bail, Result};
use std::path::PathBuf;
use tunelab::data::convert::{convert_file, Target};
use tunelab::data::dataset::{check_file, DataKind, Dataset};
use tunelab::data::split::{default_outputs, split_file};
use tunelab::data::stats::{stats, token_stats, Stats};
use tunelab::model::{LoadedModel, ModelSource};

#[derive(clap::Subcommand)]
pub enum DataCommand {
    /// List every problem of a data file as FILE:LINE: …; exits 1 when there is any.
    Validate(ValidateArgs),
    /// Records, format, prompt/reply lengths, duplicates, and (with --model) token lengths.
    Stats(StatsArgs),
    /// Write a file's records in another format (a new file; never overwritten).
    Convert(ConvertArgs),
    /// Split a file into train and eval files by a seeded shuffle; duplicates stay together.
    Split(SplitArgs),
    /// Make records from a data recipe (typed slots and templates), checked, with a report.
    Synth(crate::cli_synth::SynthArgs),
    /// Grow a seed-task file by self-instruct against an OpenAI-compatible endpoint.
    Generate(crate::cli_generate::GenerateArgs),
}

#[derive(clap::Args)]
pub struct ValidateArgs {
    file: PathBuf,
    #[arg(long, value_enum, default_value_t = DataKind::Auto)]
    kind: DataKind,
}

#[derive(clap::Args)]
pub struct StatsArgs {
    file: PathBuf,
    #[arg(long, value_enum, default_value_t = DataKind::Auto)]
    kind: DataKind,
    /// Count tokens through this model's chat template: a GGUF file, a Hugging Face folder or
    /// a Hub repo id; `--model` alone takes the default model.
    #[arg(long, num_args = 0..=1, default_missing_value = "")]
    model: Option<String>,
    /// The length records are counted against (with --model).
    #[arg(long, default_value_t = 1024, requires = "model")]
    max_seq_length: usize,
    /// Print one JSON object (a stable schema) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ConvertArgs {
    input: PathBuf,
    #[arg(long, value_enum)]
    to: Target,
    /// The JSONL file to create.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value_t = DataKind::Auto)]
    kind: DataKind,
}

#[derive(clap::Args)]
pub struct SplitArgs {
    input: PathBuf,
    /// The share of records for eval (0.1), or a whole count (50).
    #[arg(long, default_value_t = 0.1)]
    eval: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Default: IN's stem + .train.jsonl, beside it.
    #[arg(long)]
    out_train: Option<PathBuf>,
    /// Default: IN's stem + .eval.jsonl, beside it.
    #[arg(long)]
    out_eval: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = DataKind::Auto)]
    kind: DataKind,
}

pub fn run(command: DataCommand) -> Result<()> {
    match command {
        DataCommand::Validate(args) => validate(args),
        DataCommand::Stats(args) => run_stats(args),
        DataCommand::Convert(args) => convert(args),
        DataCommand::Split(args) => split(args),
        DataCommand::Synth(args) => crate::cli_synth::run_synth(args),
        DataCommand::Generate(args) => crate::cli_generate::run_generate(args),
    }
}

/// Problems go to stdout, one a line, so they can be piped; the summary is the error main
/// prints, which also makes the exit status 1.
fn validate(args: ValidateArgs) -> Result<()> {
    let check = check_file(&args.file, args.kind);
    let file = args.file.display();
    let format = check.format.unwrap_or("unknown format");
    if check.problems.is_empty() {
        println!("{file}: {} records, {format}, no problems", check.records);
        return Ok(());
    }
    for problem in &check.problems {
        println!("{problem}");
    }
    bail!(
        "{file}: {} problems in {} {} records ({format})",
        check.problems.len(),
        check.records,
        check.kind.name()
    );
}

fn run_stats(args: StatsArgs) -> Result<()> {
    let ds = Dataset::load(&args.file, args.kind)?;
    let mut report = stats(&ds);
    if let Some(model) = &args.model {
        let source = ModelSource::parse(Some(model))?;
        let loaded = LoadedModel::load(&source, &candle_core::Device::Cpu, &mut |l| {
            eprintln!("{l}")
        })?;
        report.tokens = Some(token_stats(&ds, &loaded, args.max_seq_length)?);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text_report(&report));
    }
    Ok(())
}

fn text_report(s: &Stats) -> String {
    let summary = |x: &tunelab::data::stats::Summary| {
        format!(
            "min {} / median {} / p95 {} / max {}",
            x.min, x.median, x.p95, x.max
        )
    };
    let repeats = |r: &tunelab::data::stats::Repeats| {
        let groups: Vec<String> = r
            .groups
            .iter()
            .map(|g| {
                let lines: Vec<String> = g.iter().map(usize::to_string).collect();
                lines.join("=")
            })
            .collect();
        match r.count {
            0 => "0".to_string(),
            n => format!("{n} (lines {})", groups.join(", ")),
        }
    };
    let mut out = format!(
        "{}: {} {} records, {}\n",
        s.file, s.records, s.kind, s.format
    );
    out += &format!("prompt chars   {}\n", summary(&s.chars.prompt));
    out += &format!("reply chars    {}\n", summary(&s.chars.reply));
    if let Some(rejected) = &s.chars.rejected {
        out += &format!("rejected chars {}\n", summary(rejected));
    }
    out += &format!("duplicate records {}\n", repeats(&s.duplicates.records));
    out += &format!("duplicate prompts {}\n", repeats(&s.duplicates.prompts));
    if let Some(t) = &s.tokens {
        out += &format!("tokens         {}\n", summary(&t.lengths));
        let lines: Vec<String> = t.over_lines.iter().map(usize::to_string).collect();
        out += &format!(
            "over max_seq_length {}: {}{}\n",
            t.max_seq_length,
            t.over_max_seq_length,
            match lines.is_empty() {
                true => String::new(),
                false => format!(" (lines {})", lines.join(", ")),
            }
        );
    }
    out
}

/// Unexpressible records are listed on stderr, one a line; the count is the error.
fn convert(args: ConvertArgs) -> Result<()> {
    let ds = Dataset::load(&args.input, args.kind)?;
    match convert_file(&ds, args.to, &args.out)? {
        Ok(lines) => {
            eprintln!(
                "{}: {} records as {} → {}",
                args.input.display(),
                lines.len(),
                args.to.name(),
                args.out.display()
            );
            Ok(())
        }
        Err(problems) => {
            for problem in &problems {
                eprintln!("{problem}");
            }
            bail!(
                "{}: {} records cannot be written as {}; nothing was written",
                args.input.display(),
                problems.len(),
                args.to.name()
            )
        }
    }
}

fn split(args: SplitArgs) -> Result<()> {
    let (default_train, default_eval) = default_outputs(&args.input);
    let train_out = args.out_train.unwrap_or(default_train);
    let eval_out = args.out_eval.unwrap_or(default_eval);
    let ds = Dataset::load(&args.input, args.kind)?;
    let plan = split_file(&ds, args.eval, args.seed, (&train_out, &eval_out))?;
    eprintln!(
        "{}: {} train → {}, {} eval → {}",
        args.input.display(),
        plan.train.len(),
        train_out.display(),
        plan.eval.len(),
        eval_out.display()
    );
    Ok(())
}

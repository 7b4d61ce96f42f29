//! `tunelab eval` and `tunelab compare`: the eval engine on the command line.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use tunelab::config::RunConfig;
use tunelab::device::{self, DeviceChoice};
use tunelab::eval::cases::{load_eval_file, EvalCase};
use tunelab::eval::checks::Checks;
use tunelab::eval::compare::{compare, CompareEvent, CompareReport};
use tunelab::eval::run::{evaluate, Constrain, EvalReport, EvalSettings, Variant};
use tunelab::model::constrain::{ConstrainArg, Constraint};
use tunelab::model::peft::{check_adapter_base, load_adapter};
use tunelab::model::{LoadedModel, ModelSource};

/// What both commands read: the config, the cases, where the report goes, the device.
#[derive(clap::Args)]
pub struct EvalInput {
    /// The preset or run config: its model, system prompt and (for --few-shot) train_file.
    #[arg(long)]
    config: PathBuf,
    /// An eval file (JSONL cases); default: the config's eval_file.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Only the first N cases.
    #[arg(long)]
    limit: Option<usize>,
    /// Write the report to this JSON file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Cases generated together; default: the config's eval_batch_size.
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
    /// Constrain the replies' tokens: none, json (any object), schema (each case's own schema),
    /// schema=FILE; eval also takes both (free and each case's schema side by side) or
    /// both=FILE.
    #[arg(long, default_value = "none")]
    constrain: String,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    input: EvalInput,
    /// A PEFT adapter folder to evaluate (the tuned model).
    #[arg(long, conflicts_with = "base")]
    adapter: Option<PathBuf>,
    /// Evaluate the base model, adapters off.
    #[arg(long)]
    base: bool,
    /// Put this many examples from the config's train_file into each prompt (with --base).
    #[arg(long, default_value_t = 0)]
    few_shot: usize,
}

#[derive(clap::Args)]
pub struct CompareArgs {
    #[command(flatten)]
    input: EvalInput,
    /// The tuned model's PEFT adapter folder.
    #[arg(long)]
    adapter: PathBuf,
    /// Also compare the base model with this many examples in the prompt.
    #[arg(long, default_value_t = 0)]
    few_shot: usize,
}

struct Prepared {
    loaded: LoadedModel,
    settings: EvalSettings,
    cases: Vec<EvalCase>,
    /// One mode, or free then constrained for `--constrain both`.
    modes: Vec<Constrain>,
}

fn prepare(input: &EvalInput, adapter: Option<&Path>, few_shot: usize) -> Result<Prepared> {
    let config = RunConfig::load(&input.config)?;
    let data = match input.data.as_deref() {
        Some(d) => d.to_path_buf(),
        None => config
            .eval_file
            .clone()
            .context("give --data FILE (the config has no eval_file)")?,
    };
    let mut cases = load_eval_file(&data)?;
    if let Some(n) = input.limit {
        cases.truncate(n);
    }
    let mut settings = EvalSettings::from_config(&config, few_shot)?;
    if let Some(n) = input.batch_size {
        if n == 0 {
            bail!("--batch-size must be at least 1");
        }
        settings.batch_size = n;
    }
    let device = device::open(input.device)?;
    let source = ModelSource::parse(Some(config.model_name.as_str()))?;
    if let Some(dir) = adapter {
        check_adapter_base(dir, &source)?;
    }
    let mut loaded = LoadedModel::load(&source, &device, &mut |line| eprintln!("{line}"))?;
    if let Some(dir) = adapter {
        load_adapter(&mut loaded.model, dir)?;
    }
    let modes = constrain_modes(&input.constrain, &loaded, &cases, &data)?;
    eprintln!(
        "{} cases from {} on {}",
        cases.len(),
        data.display(),
        device::describe(&device)
    );
    Ok(Prepared {
        loaded,
        settings,
        cases,
        modes,
    })
}

/// The modes `--constrain` asks for, every case's constraint compiled before any reply.
fn constrain_modes(
    arg: &str,
    loaded: &LoadedModel,
    cases: &[EvalCase],
    data: &Path,
) -> Result<Vec<Constrain>> {
    let (both, one) = match arg.trim().strip_prefix("both") {
        Some(file) => (true, format!("schema{file}")),
        None => (false, arg.to_string()),
    };
    let parsed: ConstrainArg = one
        .parse()
        .map_err(|e| anyhow::anyhow!("--constrain {e} (or both, both=FILE)"))?;
    let constrained = match parsed {
        ConstrainArg::None => return Ok(vec![Constrain::Free]),
        ConstrainArg::Json => Constrain::Json,
        ConstrainArg::CaseSchema => Constrain::Schema(None),
        ConstrainArg::SchemaFile(path) => {
            let factory = loaded.tokenizer.grammar_factory(&loaded.stop_ids)?;
            Constrain::Schema(Some(Constraint::schema_file(&path, &factory)?))
        }
    };
    let factory = loaded.tokenizer.grammar_factory(&loaded.stop_ids)?;
    let mut compiled: Vec<Constraint> = Vec::new();
    for case in cases {
        let Some(c) = constrained.for_case(case).filter(|c| !compiled.contains(c)) else {
            continue;
        };
        factory
            .matcher(&c)
            .with_context(|| format!("{}:{}: the case's schema", data.display(), case.line))?;
        compiled.push(c);
    }
    Ok(if both {
        vec![Constrain::Free, constrained]
    } else {
        vec![constrained]
    })
}

fn mode_name(mode: &Constrain) -> &'static str {
    match mode {
        Constrain::Free => "free",
        _ => "constrained",
    }
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    tunelab::fsutil::write_file_atomically(path, serde_json::to_string_pretty(value)?.as_bytes())?;
    eprintln!("report written to {}", path.display());
    Ok(())
}

pub fn run_eval(args: EvalArgs) -> Result<()> {
    if args.adapter.is_none() && !args.base {
        bail!("give --adapter DIR (the tuned model) or --base");
    }
    let p = prepare(&args.input, args.adapter.as_deref(), args.few_shot)?;
    let variant = match (&args.adapter, args.few_shot) {
        (Some(_), _) => Variant::Tuned,
        (None, 0) => Variant::Base,
        (None, _) => Variant::FewShot,
    };
    if args.adapter.is_some() && args.few_shot > 0 {
        bail!("--few-shot goes with --base: it is the prompt-only baseline");
    }
    let mut reports = Vec::new();
    for mode in &p.modes {
        let settings = EvalSettings {
            constrain: mode.clone(),
            ..p.settings.clone()
        };
        let report = evaluate(
            &p.loaded,
            &settings,
            &p.cases,
            variant,
            &mut |done, total| {
                eprint!("\r{} {} {done}/{total}   ", variant.name(), mode_name(mode));
                let _ = std::io::stderr().flush();
            },
        )?;
        reports.push((mode_name(mode), report));
    }
    eprintln!();
    print!("{:<34}", "metric");
    for (mode, _) in &reports {
        let column = if reports.len() == 1 {
            variant.name()
        } else {
            mode
        };
        print!(" {column:>11}");
    }
    println!();
    for name in reports[0].1.metrics.keys() {
        print!("{name:<34}");
        for (_, report) in &reports {
            match report.metrics.get(name) {
                Some(v) => print!(" {v:>11.3}"),
                None => print!(" {:>11}", "-"),
            }
        }
        println!();
    }
    for (mode, report) in &reports {
        if let Some(share) = report.mask_share {
            println!(
                "{mode}: token masks took {:.1}% of generation time",
                share * 100.0
            );
        }
    }
    if let Some(path) = &args.input.json {
        match reports.as_slice() {
            [(_, one)] => write_json(path, one)?,
            _ => {
                let both: std::collections::BTreeMap<&str, &EvalReport> =
                    reports.iter().map(|(m, r)| (*m, r)).collect();
                write_json(path, &both)?
            }
        }
    }
    Ok(())
}

pub fn run_compare(args: CompareArgs) -> Result<()> {
    let mut p = prepare(&args.input, Some(args.adapter.as_path()), args.few_shot)?;
    let [mode] = p.modes.as_slice() else {
        bail!("compare takes one --constrain mode (both is for eval)");
    };
    p.settings.constrain = mode.clone();
    let mut variants = vec![Variant::Base];
    if args.few_shot > 0 {
        variants.push(Variant::FewShot);
    }
    variants.push(Variant::Tuned);
    let width = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(120)
        .max(60);
    let report = compare(&p.loaded, &p.settings, &p.cases, &variants, &mut |event| {
        if let CompareEvent::Reply { case, reply } = event {
            eprint!(
                "\rcase {}/{} {}      ",
                case + 1,
                p.cases.len(),
                reply.variant.name()
            );
            let _ = std::io::stderr().flush();
        }
    })?;
    eprintln!();
    print_comparison(&report, &variants, width);
    if let Some(path) = &args.input.json {
        write_json(path, &report)?;
    }
    Ok(())
}

/// ✓/✗ badges of a reply's checks.
pub fn badges(checks: &Checks) -> String {
    let mark = |b: bool| if b { "✓" } else { "✗" };
    let mut out = Vec::new();
    if let Some(b) = checks.json_valid {
        out.push(format!("json{}", mark(b)));
    }
    if let Some(b) = checks.schema_valid {
        out.push(format!("schema{}", mark(b)));
    }
    if let Some(share) = checks.expect_json_fields {
        out.push(format!("fields {:.0}%", share * 100.0));
    }
    if let Some(h) = checks.hallucinated_fields {
        out.push(format!("no-extra{}", mark(!h)));
    }
    if let Some(b) = checks.text_pass {
        out.push(format!("text{}", mark(b)));
    }
    out.join(" ")
}

fn print_comparison(report: &CompareReport, variants: &[Variant], width: usize) {
    let col = (width - (variants.len() - 1) * 3) / variants.len();
    let row = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .into_iter()
            .map(|c| {
                let n = c.chars().count();
                format!("{c}{}", " ".repeat(col.saturating_sub(n)))
            })
            .collect();
        println!("{}", padded.join(" │ ").trim_end());
    };
    for case in &report.per_case {
        println!("{}", "─".repeat(width));
        println!(
            "line {}: {}   [tuned {:?}]",
            case.line, case.prompt, case.verdict
        );
        row(case
            .replies
            .iter()
            .map(|r| r.variant.name().to_string())
            .collect());
        row(case.replies.iter().map(|r| badges(&r.checks)).collect());
        let wrapped: Vec<Vec<String>> = case.replies.iter().map(|r| wrap(&r.text, col)).collect();
        let lines = wrapped.iter().map(Vec::len).max().unwrap_or(0);
        for i in 0..lines {
            row(wrapped
                .iter()
                .map(|w| w.get(i).cloned().unwrap_or_default())
                .collect());
        }
    }
    println!("{}", "─".repeat(width));
    let names: Vec<&str> = variants.iter().map(|v| v.name()).collect();
    print!("{:<34}", "metric");
    for n in &names {
        print!(" {n:>10}");
    }
    println!();
    let keys: std::collections::BTreeSet<&String> =
        report.metrics.values().flat_map(|m| m.keys()).collect();
    for key in keys {
        print!("{key:<34}");
        for n in &names {
            match report.metrics.get(*n).and_then(|m| m.get(key)) {
                Some(v) => print!(" {v:>10.3}"),
                None => print!(" {:>10}", "-"),
            }
        }
        println!();
    }
    let t = &report.tally;
    println!(
        "tuned vs base: {} better, {} same, {} worse (of {})",
        t.better, t.same, t.worse, report.cases
    );
}

/// Splits text into lines of at most `width` characters, breaking at spaces where possible.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split(' ') {
            let mut word = word.to_string();
            while word.chars().count() > width {
                if !line.is_empty() {
                    out.push(std::mem::take(&mut line));
                }
                let head: String = word.chars().take(width).collect();
                word = word.chars().skip(width).collect();
                out.push(head);
            }
            let needed =
                line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
            if needed > width && !line.is_empty() {
                out.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        out.push(line);
    }
    out
}

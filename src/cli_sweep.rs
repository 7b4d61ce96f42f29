//! `tunelab sweep`: the search on the command line; a line per trial as it ends, the table
//! best first, the best adapter copied to output_dir/best.

use anyhow::Result;
use clap::ValueEnum;
use std::path::PathBuf;
use std::time::Instant;
use tunelab::device::DeviceChoice;
use tunelab::sweep::runner::{best, keep_best, PlannedTrial, SweepSink};
use tunelab::sweep::trial::{shown, Status, TrialRecord};
use tunelab::sweep::{prepare, SweepRequest};

#[derive(clap::Args)]
pub struct SweepArgs {
    /// The config to search around; its [sweep] table says what varies and the objective.
    #[arg(long)]
    config: PathBuf,
    /// key=[v1,v2] (repeatable): a grid key, added to the [sweep] table's or replacing it.
    #[arg(long = "grid")]
    grid: Vec<String>,
    /// Where trials, sweep.jsonl and best/ go (default: the config's output_dir + "-sweep").
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Trials at once (default: the [sweep] table's parallel, else as many as fit the GPU).
    #[arg(long)]
    parallel: Option<usize>,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
    /// Print each trial's record as a JSON line as it ends, then a summary line.
    #[arg(long)]
    json: bool,
}

struct Printer {
    json: bool,
}

impl SweepSink for Printer {
    fn started(&mut self, trial: &PlannedTrial, running: usize) {
        eprintln!(
            "trial {} started ({running} running): {}",
            trial.trial,
            shown(&trial.settings)
        );
    }

    fn ended(&mut self, record: &TrialRecord, done: usize, total: usize) {
        if self.json {
            println!("{}", serde_json::to_string(record).unwrap_or_default());
        }
        let objective = record.objective.map_or("-".into(), |v| format!("{v:.3}"));
        eprintln!(
            "trial {} {:?} objective {objective} in {:.0} s ({done}/{total}){}",
            record.trial,
            record.status,
            record.seconds,
            record
                .reason
                .as_ref()
                .map_or(String::new(), |r| format!(": {r}"))
        );
    }
}

pub fn run_sweep(args: SweepArgs) -> Result<()> {
    let device = args
        .device
        .to_possible_value()
        .map_or("auto".into(), |v| v.get_name().to_string());
    let sweep = prepare(SweepRequest {
        config: &args.config,
        grid_flags: &args.grid,
        output_dir: args.output_dir.clone(),
        parallel: args.parallel,
        device,
        exe: std::env::current_exe()?,
    })?;
    eprintln!(
        "{} trials, {} at a time, objective {} ({:?}); records in {}",
        sweep.trials.len(),
        sweep.slots,
        sweep.spec.objective,
        sweep.spec.direction,
        sweep.records_path().display()
    );
    let before = tunelab::sweep::trial::read_records(&sweep.records_path())?.len();
    let started = Instant::now();
    let records = sweep.run(&mut Printer { json: args.json })?;
    let hours = started.elapsed().as_secs_f64() / 3600.0;
    let ran = records.len() - before;
    let best = best(sweep.spec.direction, &records);
    let best_dir = best.map(|b| keep_best(&sweep.dir, b)).transpose()?;
    print_table(&records, &sweep.spec.objective, best.map(|b| b.trial));
    let per_hour = if hours > 0.0 { ran as f64 / hours } else { 0.0 };
    eprintln!(
        "{ran} trials in {:.1} min at {} at a time: {per_hour:.1} trials/hour",
        hours * 60.0,
        sweep.slots
    );
    if args.json {
        let summary = serde_json::json!({
            "summary": {
                "trials": records.len(),
                "ran": ran,
                "parallel": sweep.slots,
                "wall_s": hours * 3600.0,
                "trials_per_hour": per_hour,
                "best_trial": best.map(|b| b.trial),
                "best_objective": best.and_then(|b| b.objective),
                "best_adapter": best_dir,
            }
        });
        println!("{summary}");
    }
    if records.iter().all(|r| r.status == Status::Failed) {
        anyhow::bail!("every trial failed (their reasons are in sweep.jsonl)");
    }
    Ok(())
}

/// Trials best first (failed last), the best marked.
fn print_table(records: &[TrialRecord], objective: &str, best: Option<usize>) {
    let mut sorted: Vec<&TrialRecord> = records.iter().collect();
    sorted.sort_by(|a, b| {
        let key = |r: &TrialRecord| r.objective.unwrap_or(f64::NEG_INFINITY);
        key(b).total_cmp(&key(a))
    });
    println!(
        "{:<4} {:<9} {:>12}  {:>7}  settings",
        "", "status", objective, "s"
    );
    for r in sorted {
        let mark = if Some(r.trial) == best { "★" } else { " " };
        println!(
            "{mark}{:<3} {:<9} {:>12}  {:>7.0}  {}",
            r.trial,
            format!("{:?}", r.status).to_lowercase(),
            r.objective.map_or("-".into(), |v| format!("{v:.3}")),
            r.seconds,
            shown(&r.settings)
        );
    }
}

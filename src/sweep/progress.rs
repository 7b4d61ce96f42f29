//! A sweep folder read back, as the workbench's Sweeps screen shows it while the sweep runs (or
//! after): the plan, the trials ended so far (sweep.jsonl) and the loss curve of every trial
//! that has started.

use super::plan::Settings;
use super::spec::Direction;
use super::trial::{read_records, shown, trial_dir, Status, TrialRecord};
use crate::config::RunConfig;
use crate::train::events::TrainEvent;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const PLAN_FILE: &str = "plan.json";

/// plan.json: what the sweep searches and how its trials are scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub objective: String,
    pub direction: Direction,
    pub trials: Vec<Settings>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialState {
    /// Not started yet.
    Waiting,
    /// Started, no record yet: training or being scored (or cut off, until the sweep resumes).
    Running,
    Ended(Status),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrialProgress {
    pub trial: usize,
    /// `learning_rate=0.0002 lora_r=16`.
    pub settings: String,
    pub state: TrialState,
    pub objective: Option<f64>,
    pub metrics: BTreeMap<String, f64>,
    pub seconds: Option<f64>,
    pub reason: Option<String>,
    pub adapter: Option<PathBuf>,
    /// The first stage's run folder (to follow it).
    pub run_dir: PathBuf,
    /// (step, train loss), the stages one after the other.
    pub losses: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SweepProgress {
    pub dir: PathBuf,
    pub objective: String,
    pub direction: Direction,
    pub trials: Vec<TrialProgress>,
    /// The best finished trial's index in `trials`.
    pub best: Option<usize>,
}

/// Reads `dir` (a folder with plan.json).
pub fn read(dir: &Path) -> Result<SweepProgress> {
    let path = dir.join(PLAN_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let plan: Plan = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a sweep plan", path.display()))?;
    let records = read_records(&dir.join("sweep.jsonl"))?;
    let best_trial = super::runner::best(plan.direction, &records).map(|r| r.trial);
    let trials: Vec<TrialProgress> = plan
        .trials
        .iter()
        .enumerate()
        .map(|(i, settings)| {
            let trial = i + 1;
            let record = records.iter().find(|r| r.trial == trial);
            progress_of(dir, trial, settings, record)
        })
        .collect();
    Ok(SweepProgress {
        dir: dir.to_path_buf(),
        objective: plan.objective,
        direction: plan.direction,
        best: trials.iter().position(|t| Some(t.trial) == best_trial),
        trials,
    })
}

fn progress_of(
    dir: &Path,
    trial: usize,
    settings: &Settings,
    record: Option<&TrialRecord>,
) -> TrialProgress {
    let run_dirs = run_dirs(&trial_dir(dir, trial));
    let losses = losses(&run_dirs);
    let state = match record {
        Some(r) => TrialState::Ended(r.status),
        None if run_dirs.iter().any(|d| d.join("events.jsonl").is_file()) => TrialState::Running,
        None => TrialState::Waiting,
    };
    TrialProgress {
        trial,
        settings: shown(settings),
        state,
        objective: record.and_then(|r| r.objective),
        metrics: record.map(|r| r.metrics.clone()).unwrap_or_default(),
        seconds: record.map(|r| r.seconds),
        reason: record.and_then(|r| r.reason.clone()),
        adapter: record.and_then(|r| r.adapter.clone()),
        run_dir: run_dirs.first().cloned().unwrap_or_default(),
        losses,
    }
}

/// The trial's stage folders in the order they run, from its own config.
fn run_dirs(trial_dir: &Path) -> Vec<PathBuf> {
    RunConfig::load(&trial_dir.join("config.json"))
        .and_then(|c| c.stage_configs())
        .map(|stages| stages.into_iter().map(|s| s.output_dir).collect())
        .unwrap_or_default()
}

/// Each stage's step losses, a later stage's steps after the earlier ones'.
fn losses(run_dirs: &[PathBuf]) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut offset = 0.0;
    for dir in run_dirs {
        let text = std::fs::read_to_string(dir.join("events.jsonl")).unwrap_or_default();
        let mut last = 0.0;
        // A running trial's last line may be half written: lines that do not parse are skipped.
        for event in text.lines().filter_map(|l| serde_json::from_str(l).ok()) {
            if let TrainEvent::Step { step, loss, .. } = event {
                last = step as f64;
                out.push((offset + last, loss));
            }
        }
        offset += last;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_stage_continues_the_steps_of_the_one_before() {
        let root = std::env::temp_dir().join(format!("tunelab-progress-{}", std::process::id()));
        let step = |s: usize, loss: f64| {
            format!(
                r#"{{"event":"step","step":{s},"epoch":1.0,"loss":{loss},"lr":0.1,"grad_norm":1.0,"tokens_per_s":5.0,"elapsed_s":1.0}}"#
            )
        };
        let dirs = [root.join("sft"), root.join("dpo")];
        for (dir, lines) in dirs.iter().zip([
            vec![step(1, 2.0), step(2, 1.5)],
            vec![step(1, 0.7), r#"{"event":"st"#.to_string()],
        ]) {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("events.jsonl"), lines.join("\n")).unwrap();
        }
        let got = losses(&dirs);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(got, vec![(1.0, 2.0), (2.0, 1.5), (3.0, 0.7)]);
    }
}

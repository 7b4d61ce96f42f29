//! Runs a sweep's trials as child processes (`tunelab train`, then `tunelab eval` on the
//! config's eval file), as many at once as fit, records each in sweep.jsonl as it ends, stops
//! weak trials early, and copies the best adapter to `output_dir/best`. A trial is one process
//! so that one running out of memory or diverging fails alone; a sweep started again skips the
//! trials sweep.jsonl already holds.

use super::plan::Settings;
use super::spec::{Direction, SweepSpec};
use super::trial::{append_record, read_records, shown, Status, TrialRecord};
use crate::train::events::TrainEvent;
use anyhow::{Context, Result};
use std::collections::{BTreeMap, VecDeque};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

/// A planned trial: its number, settings and config file.
#[derive(Debug, Clone)]
pub struct PlannedTrial {
    pub trial: usize,
    pub settings: Settings,
    pub config: PathBuf,
}

pub struct Sweep {
    pub spec: SweepSpec,
    pub dir: PathBuf,
    pub trials: Vec<PlannedTrial>,
    /// Trials at once.
    pub slots: usize,
    /// `--device` for the children.
    pub device: String,
    /// The tunelab binary the children run.
    pub exe: PathBuf,
}

/// What the caller hears: each record as its trial ends.
pub trait SweepSink {
    fn started(&mut self, trial: &PlannedTrial, running: usize);
    fn ended(&mut self, record: &TrialRecord, done: usize, total: usize);
}

enum Phase {
    Train,
    Eval { adapter: PathBuf },
}

struct Running {
    trial: PlannedTrial,
    child: Child,
    phase: Phase,
    started: Instant,
    /// The last Finished event's adapter and message.
    finished: Option<(Option<String>, String)>,
    /// Eval metrics seen during training, by (stage, step).
    history: BTreeMap<(String, usize), BTreeMap<String, f64>>,
    stage: String,
}

impl Sweep {
    pub fn records_path(&self) -> PathBuf {
        self.dir.join("sweep.jsonl")
    }

    /// Runs every trial sweep.jsonl lacks; returns all records, in trial order.
    pub fn run(&self, sink: &mut dyn SweepSink) -> Result<Vec<TrialRecord>> {
        let path = self.records_path();
        let mut records = read_records(&path)?;
        let mut pending: VecDeque<PlannedTrial> = self
            .trials
            .iter()
            .filter(|t| !records.iter().any(|r| r.trial == t.trial))
            .cloned()
            .collect();
        let (events_out, events) = channel();
        let mut running: Vec<Running> = Vec::new();
        while !pending.is_empty() || !running.is_empty() {
            while running.len() < self.slots {
                let Some(trial) = pending.pop_front() else {
                    break;
                };
                running.push(self.start_training(trial, &events_out)?);
                sink.started(&running.last().expect("pushed").trial, running.len());
            }
            self.take_events(&events, &mut running);
            let mut ended = Vec::new();
            for (i, run) in running.iter_mut().enumerate() {
                if let Some(record) = self.poll(run, &records)? {
                    ended.push((i, record));
                }
            }
            for (i, record) in ended.into_iter().rev() {
                running.remove(i);
                append_record(&path, &record)?;
                records.push(record);
                sink.ended(
                    records.last().expect("pushed"),
                    records.len(),
                    self.trials.len(),
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        records.sort_by_key(|r| r.trial);
        Ok(records)
    }

    fn start_training(
        &self,
        trial: PlannedTrial,
        events: &Sender<(usize, TrainEvent)>,
    ) -> Result<Running> {
        let dir = trial
            .config
            .parent()
            .expect("a trial config is in its folder");
        let log = std::fs::File::create(dir.join("train.log"))?;
        let mut child = Command::new(&self.exe)
            .args(["train", "--json", "--device", &self.device, "--config"])
            .arg(&trial.config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.exe.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let (events, id) = (events.clone(), trial.trial);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(event) = serde_json::from_str::<TrainEvent>(&line) {
                    if events.send((id, event)).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Running {
            trial,
            child,
            phase: Phase::Train,
            started: Instant::now(),
            finished: None,
            history: BTreeMap::new(),
            stage: String::new(),
        })
    }

    fn take_events(&self, events: &Receiver<(usize, TrainEvent)>, running: &mut [Running]) {
        while let Ok((id, event)) = events.try_recv() {
            let Some(run) = running.iter_mut().find(|r| r.trial.trial == id) else {
                continue;
            };
            match event {
                TrainEvent::Started { stage, .. } => run.stage = stage,
                TrainEvent::Eval { step, metrics } => {
                    run.history.insert((run.stage.clone(), step), metrics);
                }
                TrainEvent::Finished {
                    adapter, message, ..
                } => {
                    run.finished = Some((adapter, message));
                }
                _ => {}
            }
        }
    }

    /// The record of `run` if it ended (or was stopped) now; starts its eval after training.
    fn poll(&self, run: &mut Running, records: &[TrialRecord]) -> Result<Option<TrialRecord>> {
        if matches!(run.phase, Phase::Train) && self.spec.median_stopping {
            if let Some((objective, metrics)) = self.below_median(run, records) {
                let _ = run.child.kill();
                let _ = run.child.wait();
                let reason = "its eval objective fell below the other trials' median".to_string();
                return Ok(Some(self.record(
                    run,
                    Status::Stopped,
                    Some(objective),
                    metrics,
                    Some(reason),
                    None,
                )));
            }
        }
        let Some(status) = run.child.try_wait()? else {
            return Ok(None);
        };
        let dir = run
            .trial
            .config
            .parent()
            .expect("in its folder")
            .to_path_buf();
        match run.phase {
            Phase::Train => self.training_ended(run, status.success(), &dir),
            Phase::Eval { ref adapter } => {
                let adapter = adapter.clone();
                Ok(Some(self.eval_ended(run, status.success(), &dir, adapter)))
            }
        }
    }

    /// Starts the eval of a trial that trained; a failed training ends the trial.
    fn training_ended(
        &self,
        run: &mut Running,
        success: bool,
        dir: &Path,
    ) -> Result<Option<TrialRecord>> {
        let adapter = run.finished.as_ref().and_then(|(a, _)| a.clone());
        match (success, adapter) {
            (true, Some(adapter)) => {
                run.child = self.start_eval(run, dir, Path::new(&adapter))?;
                run.phase = Phase::Eval {
                    adapter: PathBuf::from(adapter),
                };
                Ok(None)
            }
            _ => {
                let reason = run
                    .finished
                    .as_ref()
                    .map(|(_, m)| m.clone())
                    .unwrap_or_else(|| last_line(&dir.join("train.log")));
                Ok(Some(self.failed(run, reason)))
            }
        }
    }

    /// The trial's record from its eval report.
    fn eval_ended(
        &self,
        run: &Running,
        success: bool,
        dir: &Path,
        adapter: PathBuf,
    ) -> TrialRecord {
        let report = std::fs::read_to_string(dir.join("eval.json")).ok();
        let metrics: Option<BTreeMap<String, f64>> = report
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| serde_json::from_value(v["metrics"].clone()).ok());
        match (success, metrics) {
            (true, Some(metrics)) => {
                let objective = metrics.get(&self.spec.objective).copied();
                self.record(
                    run,
                    Status::Finished,
                    objective,
                    metrics,
                    None,
                    Some(adapter),
                )
            }
            _ => self.failed(run, format!("eval: {}", last_line(&dir.join("eval.log")))),
        }
    }

    fn failed(&self, run: &Running, reason: String) -> TrialRecord {
        self.record(
            run,
            Status::Failed,
            None,
            BTreeMap::new(),
            Some(reason),
            None,
        )
    }

    fn start_eval(&self, run: &Running, dir: &Path, adapter: &Path) -> Result<Child> {
        let log = std::fs::File::create(dir.join("eval.log"))?;
        Command::new(&self.exe)
            .args(["eval", "--device", &self.device, "--config"])
            .arg(&run.trial.config)
            .arg("--adapter")
            .arg(adapter)
            .arg("--json")
            .arg(dir.join("eval.json"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.exe.display()))
    }

    /// The latest eval of a training trial, if its objective is worse than the median of the
    /// other trials' at the same stage and step (three or more of them).
    fn below_median(
        &self,
        run: &Running,
        records: &[TrialRecord],
    ) -> Option<(f64, BTreeMap<String, f64>)> {
        let (point, metrics) = run.history.iter().next_back()?;
        let value = *metrics.get(&self.spec.objective)?;
        let others = self.values_at(point, records, run.trial.trial);
        worse_than_median(&self.spec, value, others).then(|| (value, metrics.clone()))
    }

    /// Other trials' objective at `point`, from their eval histories kept beside sweep.jsonl.
    fn values_at(
        &self,
        point: &(String, usize),
        records: &[TrialRecord],
        except: usize,
    ) -> Vec<f64> {
        records
            .iter()
            .filter(|r| r.trial != except)
            .filter_map(|r| {
                let history = read_history(&self.dir, r.trial)?;
                history
                    .get(&format!("{}@{}", point.0, point.1))?
                    .get(&self.spec.objective)
                    .copied()
            })
            .collect()
    }

    fn record(
        &self,
        run: &Running,
        status: Status,
        objective: Option<f64>,
        metrics: BTreeMap<String, f64>,
        reason: Option<String>,
        adapter: Option<PathBuf>,
    ) -> TrialRecord {
        let dir = run.trial.config.parent().expect("in its folder");
        write_history(dir, &run.history);
        let peak = crate::hw::calibration::find_records(dir)
            .into_iter()
            .map(|(_, m)| m.run_peak_bytes)
            .max();
        TrialRecord {
            trial: run.trial.trial,
            settings: run.trial.settings.clone(),
            status,
            objective,
            metrics,
            seconds: run.started.elapsed().as_secs_f64(),
            peak_gpu_bytes: peak,
            adapter,
            reason,
        }
    }
}

/// The median stopping rule: worse than the median of at least three others at this point.
fn worse_than_median(spec: &SweepSpec, value: f64, others: Vec<f64>) -> bool {
    others.len() >= 3 && spec.better(median(others), value)
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// A trial's training-time evals, `stage@step` → metrics, for the median rule.
fn write_history(dir: &Path, history: &BTreeMap<(String, usize), BTreeMap<String, f64>>) {
    let keyed: BTreeMap<String, &BTreeMap<String, f64>> = history
        .iter()
        .map(|((s, n), m)| (format!("{s}@{n}"), m))
        .collect();
    if let Ok(text) = serde_json::to_string(&keyed) {
        let _ = crate::fsutil::write_file_atomically(&dir.join("evals.json"), text.as_bytes());
    }
}

fn read_history(sweep_dir: &Path, trial: usize) -> Option<BTreeMap<String, BTreeMap<String, f64>>> {
    let text =
        std::fs::read_to_string(super::trial::trial_dir(sweep_dir, trial).join("evals.json"))
            .ok()?;
    serde_json::from_str(&text).ok()
}

/// The last non-empty line of a log, for a failed trial's reason.
fn last_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| format!("no output ({})", path.display()))
}

/// The best finished trial by the objective.
pub fn best(direction: Direction, records: &[TrialRecord]) -> Option<&TrialRecord> {
    records
        .iter()
        .filter(|r| r.status == Status::Finished && r.adapter.is_some())
        .filter_map(|r| Some((r, r.objective?)))
        .fold(
            None,
            |best: Option<(&TrialRecord, f64)>, (r, v)| match best {
                Some((_, b)) if !direction.better(v, b) => best,
                _ => Some((r, v)),
            },
        )
        .map(|(r, _)| r)
}

/// Copies the best trial's adapter to `dir/best` (replacing an earlier best whole), with
/// `trial.json` naming its settings.
pub fn keep_best(dir: &Path, record: &TrialRecord) -> Result<PathBuf> {
    let adapter = record
        .adapter
        .as_ref()
        .context("the best trial has no adapter")?;
    let best = dir.join("best");
    crate::fsutil::write_dir_atomically(&best, |tmp| {
        for entry in std::fs::read_dir(adapter)
            .with_context(|| format!("{}: cannot read", adapter.display()))?
        {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                std::fs::copy(entry.path(), tmp.join(entry.file_name()))?;
            }
        }
        let about = serde_json::to_string_pretty(record)?;
        std::fs::write(tmp.join("trial.json"), about)?;
        Ok(())
    })?;
    eprintln!(
        "best: trial {} ({}) → {}",
        record.trial,
        shown(&record.settings),
        best.display()
    );
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::spec::{Direction, Method};

    fn record(trial: usize, status: Status, objective: Option<f64>) -> TrialRecord {
        TrialRecord {
            trial,
            settings: Settings::new(),
            status,
            objective,
            metrics: BTreeMap::new(),
            seconds: 1.0,
            peak_gpu_bytes: None,
            adapter: Some(PathBuf::from("a")),
            reason: None,
        }
    }

    #[test]
    fn the_median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    fn spec() -> SweepSpec {
        SweepSpec {
            method: Method::Grid,
            params: vec![],
            objective: "schema_valid".into(),
            direction: Direction::Maximize,
            parallel: None,
            median_stopping: true,
            seed: 0,
        }
    }

    #[test]
    fn a_trial_below_the_median_of_three_others_stops() {
        let spec = spec();
        assert!(worse_than_median(&spec, 0.4, vec![0.5, 0.6, 0.7]));
        assert!(!worse_than_median(&spec, 0.65, vec![0.5, 0.6, 0.7]));
        assert!(
            !worse_than_median(&spec, 0.1, vec![0.5, 0.6]),
            "two are too few"
        );
        let minimize = SweepSpec {
            direction: Direction::Minimize,
            ..spec
        };
        assert!(worse_than_median(&minimize, 0.9, vec![0.5, 0.6, 0.7]));
    }

    #[test]
    fn the_best_is_the_finished_trial_with_the_best_objective() {
        let mut spec = spec();
        let records = vec![
            record(1, Status::Finished, Some(0.5)),
            record(2, Status::Stopped, Some(0.9)),
            record(3, Status::Finished, Some(0.7)),
            record(4, Status::Failed, None),
            record(5, Status::Finished, Some(0.2)),
        ];
        assert_eq!(best(spec.direction, &records).map(|r| r.trial), Some(3));
        spec.direction = Direction::Minimize;
        assert_eq!(best(spec.direction, &records).map(|r| r.trial), Some(5));
    }
}

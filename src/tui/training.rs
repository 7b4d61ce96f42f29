//! The training screen's state: one run as its events describe it, whether this process runs
//! it (and can pause or stop it) or follows another process's events.jsonl.

use super::series::Series;
use crate::train::events::TrainEvent;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How many log lines the pane keeps.
const LOG_LINES: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunSource {
    /// Started here; commands reach it.
    Own,
    /// Another process writes it; we tail its events.jsonl.
    Followed(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// Before Started: the model is loading, the data tokenizing.
    Loading,
    Running,
    Paused,
    Stopping,
    Finished {
        ok: bool,
        message: String,
    },
}

#[derive(Debug, Clone)]
pub struct RunView {
    /// Events tagged with another id (an earlier run or follow) are ignored.
    pub id: u64,
    pub source: RunSource,
    pub state: RunState,
    pub output_dir: String,
    pub stage: String,
    pub device: String,
    pub total_steps: usize,
    pub start_step: usize,
    pub examples: usize,
    pub truncated: usize,
    pub trainable_parameters: usize,
    pub step: usize,
    pub epoch: f64,
    pub elapsed_s: f64,
    pub loss: Series,
    pub learning_rate: Series,
    pub grad_norm: Series,
    pub tokens_per_s: Series,
    /// The stage's own metrics by TRL name (DPO: rewards/chosen, rewards/margins, …).
    pub stage_metrics: BTreeMap<String, Series>,
    /// Eval metrics by name (eval_loss, json_valid, …).
    pub eval_metrics: BTreeMap<String, Series>,
    /// The current pre-training phase: name, done, total.
    pub phase: Option<(String, usize, usize)>,
    pub warnings: Vec<String>,
    pub log: Vec<String>,
    pub adapter: Option<String>,
    /// Peak GPU memory seen while this run was watched here.
    pub gpu_peak: Option<u64>,
}

impl RunView {
    pub fn new(id: u64, source: RunSource) -> Self {
        Self {
            id,
            source,
            state: RunState::Loading,
            output_dir: String::new(),
            stage: "sft".into(),
            device: String::new(),
            total_steps: 0,
            start_step: 0,
            examples: 0,
            truncated: 0,
            trainable_parameters: 0,
            step: 0,
            epoch: 0.0,
            elapsed_s: 0.0,
            loss: Series::default(),
            learning_rate: Series::default(),
            grad_norm: Series::default(),
            tokens_per_s: Series::default(),
            stage_metrics: BTreeMap::new(),
            eval_metrics: BTreeMap::new(),
            phase: None,
            warnings: Vec::new(),
            log: Vec::new(),
            adapter: None,
            gpu_peak: None,
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(
            self.state,
            RunState::Loading | RunState::Running | RunState::Paused | RunState::Stopping
        )
    }

    pub fn controllable(&self) -> bool {
        self.source == RunSource::Own && self.is_live()
    }

    /// Seconds left at the average pace so far.
    pub fn eta_s(&self) -> Option<f64> {
        let done = self.step.checked_sub(self.start_step).filter(|&d| d > 0)?;
        let left = self.total_steps.saturating_sub(self.step);
        Some(self.elapsed_s / done as f64 * left as f64)
    }

    pub fn progress(&self) -> f64 {
        if self.total_steps == 0 {
            0.0
        } else {
            (self.step as f64 / self.total_steps as f64).clamp(0.0, 1.0)
        }
    }

    pub fn log_line(&mut self, line: String) {
        if self.log.len() == LOG_LINES {
            self.log.remove(0);
        }
        self.log.push(line);
    }

    pub fn apply(&mut self, event: TrainEvent) {
        match event {
            TrainEvent::Started {
                output_dir,
                total_steps,
                start_step,
                examples,
                truncated,
                trainable_parameters,
                device,
                stage,
            } => {
                self.log_line(format!(
                    "started {stage} on {device}: {examples} examples, steps {start_step}→{total_steps}"
                ));
                // A pipeline's next stage counts its steps from the start again: its curves
                // are drawn on their own.
                if stage != self.stage && !self.loss.is_empty() {
                    self.loss = Series::default();
                    self.learning_rate = Series::default();
                    self.grad_norm = Series::default();
                    self.tokens_per_s = Series::default();
                    self.stage_metrics.clear();
                    self.eval_metrics.clear();
                }
                self.output_dir = crate::fsutil::shown(std::path::Path::new(&output_dir));
                self.total_steps = total_steps;
                self.start_step = start_step;
                self.step = start_step;
                self.examples = examples;
                self.truncated = truncated;
                self.trainable_parameters = trainable_parameters;
                self.device = device;
                self.stage = stage;
                // A pause or stop asked for while loading still holds; a followed run that
                // resumed starts over in the same file.
                if !matches!(self.state, RunState::Paused | RunState::Stopping) {
                    self.state = RunState::Running;
                }
            }
            TrainEvent::Phase { name, done, total } => {
                self.phase = (done < total).then_some((name, done, total));
            }
            TrainEvent::Step {
                step,
                epoch,
                loss,
                lr,
                grad_norm,
                tokens_per_s,
                elapsed_s,
                metrics,
            } => {
                self.phase = None;
                self.step = step;
                self.epoch = epoch;
                self.elapsed_s = elapsed_s;
                let x = step as f64;
                self.loss.push(x, loss);
                self.learning_rate.push(x, lr);
                self.grad_norm.push(x, grad_norm);
                self.tokens_per_s.push(x, tokens_per_s);
                for (name, value) in metrics {
                    self.stage_metrics.entry(name).or_default().push(x, value);
                }
                if self.state == RunState::Loading {
                    self.state = RunState::Running;
                }
            }
            TrainEvent::Eval { step, metrics } => {
                let text: Vec<String> =
                    metrics.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
                self.log_line(format!("eval at step {step}: {}", text.join(", ")));
                for (name, value) in metrics {
                    self.eval_metrics
                        .entry(name)
                        .or_default()
                        .push(step as f64, value);
                }
            }
            TrainEvent::Sample {
                step,
                prompt,
                base,
                tuned,
            } => {
                self.log_line(format!("sample at step {step}: {}", one_line(&prompt)));
                self.log_line(format!("  base:  {}", one_line(&base)));
                self.log_line(format!("  tuned: {}", one_line(&tuned)));
            }
            TrainEvent::Completions {
                step,
                prompt,
                samples,
            } => {
                self.log_line(format!("completions at step {step}: {}", one_line(&prompt)));
                for sample in samples {
                    let reward = sample
                        .reward
                        .map_or("  —  ".to_string(), |r| format!("{r:5.2}"));
                    self.log_line(format!(
                        "  reward {reward} (advantage {:+.2}): {}",
                        sample.advantage,
                        one_line(&sample.text)
                    ));
                }
            }
            TrainEvent::Checkpoint { step, path } => {
                self.log_line(format!("checkpoint at step {step}: {path}"));
            }
            TrainEvent::Warning { step, message } => {
                self.warnings.push(format!("step {step}: {message}"));
            }
            TrainEvent::Finished {
                ok,
                message,
                output_dir,
                adapter,
            } => {
                self.log_line(format!(
                    "{}: {message}",
                    if ok { "finished" } else { "failed" }
                ));
                if !output_dir.is_empty() {
                    self.output_dir = crate::fsutil::shown(std::path::Path::new(&output_dir));
                }
                self.adapter = adapter;
                self.phase = None;
                self.state = RunState::Finished { ok, message };
            }
        }
    }
}

/// The first line of a text, for one-line log entries.
pub fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if text.lines().nth(1).is_some() {
        format!("{line} …")
    } else {
        line.to_string()
    }
}

#[derive(Debug, Clone, Default)]
pub struct TrainState {
    pub run: Option<RunView>,
    /// The chart page shown (charts are shown four at a time).
    pub chart_page: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(stage: &str) -> TrainEvent {
        TrainEvent::Started {
            output_dir: "runs/p".into(),
            total_steps: 4,
            start_step: 0,
            examples: 8,
            truncated: 0,
            trainable_parameters: 10,
            device: "cpu".into(),
            stage: stage.into(),
        }
    }

    fn step(step: usize, loss: f64) -> TrainEvent {
        TrainEvent::Step {
            step,
            epoch: 1.0,
            loss,
            lr: 1e-4,
            grad_norm: 1.0,
            tokens_per_s: 10.0,
            elapsed_s: 2.0 * step as f64,
            metrics: BTreeMap::new(),
        }
    }

    #[test]
    fn a_pipelines_next_stage_gets_fresh_curves() {
        let mut view = RunView::new(1, RunSource::Own);
        view.apply(started("sft"));
        view.apply(step(1, 2.0));
        view.apply(step(2, 1.5));
        assert_eq!(view.eta_s(), Some(4.0));
        view.apply(started("dpo"));
        assert!(view.loss.is_empty());
        view.apply(step(1, 0.69));
        assert_eq!(view.loss.points, vec![(1.0, 0.69)]);
        assert_eq!(view.stage, "dpo");
        assert_eq!(view.log.len(), 2);
    }
}

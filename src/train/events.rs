//! What a training run reports, and what it can be told between steps. Events hold scalars
//! and strings only; each is also appended as one JSON line to `<output_dir>/events.jsonl`.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainEvent {
    Started {
        output_dir: String,
        total_steps: usize,
        start_step: usize,
        examples: usize,
        truncated: usize,
        trainable_parameters: usize,
        device: String,
        /// "sft", "dpo" or "grpo".
        #[serde(default = "default_stage")]
        stage: String,
    },
    /// Work before the first step that takes a while (DPO's reference log-probs), with progress.
    Phase {
        name: String,
        done: usize,
        total: usize,
    },
    Step {
        step: usize,
        epoch: f64,
        loss: f64,
        lr: f64,
        grad_norm: f64,
        tokens_per_s: f64,
        elapsed_s: f64,
        /// The stage's own figures under TRL's names (DPO: rewards/chosen, rewards/margins, …).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        metrics: BTreeMap<String, f64>,
    },
    Eval {
        step: usize,
        metrics: BTreeMap<String, f64>,
    },
    /// One eval prompt answered by the base model and by the model being trained.
    Sample {
        step: usize,
        prompt: String,
        base: String,
        tuned: String,
    },
    /// GRPO: one prompt's group of sampled completions with their rewards, as scored.
    Completions {
        step: usize,
        prompt: String,
        samples: Vec<ScoredCompletion>,
    },
    Checkpoint {
        step: usize,
        path: String,
    },
    Warning {
        step: usize,
        message: String,
    },
    Finished {
        ok: bool,
        message: String,
        output_dir: String,
        adapter: Option<String>,
    },
}

/// A sampled completion, its total reward (None: no reward applied) and each reward's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredCompletion {
    pub text: String,
    pub reward: Option<f64>,
    pub advantage: f64,
    pub rewards: BTreeMap<String, Option<f64>>,
}

fn default_stage() -> String {
    "sft".into()
}

/// Commands read between optimiser steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainCommand {
    Pause,
    Resume,
    /// Saves a checkpoint, then ends the run.
    Stop,
    SaveNow,
}

/// Appends events to a JSON-lines file, one flushed line each.
pub struct EventLog {
    file: std::fs::File,
    path: PathBuf,
}

impl EventLog {
    pub fn open(output_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(output_dir)
            .with_context(|| format!("{}: cannot create", output_dir.display()))?;
        let path = output_dir.join("events.jsonl");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        Ok(Self { file, path })
    }

    pub fn append(&mut self, event: &TrainEvent) -> Result<()> {
        let line = serde_json::to_string(event)?;
        writeln!(self.file, "{line}")
            .with_context(|| format!("{}: cannot write", self.path.display()))?;
        self.file.flush()?;
        Ok(())
    }
}

/// Reads an events.jsonl back (to follow or reopen a run); a bad line names its number.
pub fn read_events(path: &Path) -> Result<Vec<TrainEvent>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not an event", path.display(), i + 1))
        })
        .collect()
}

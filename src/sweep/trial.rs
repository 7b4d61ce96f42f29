//! One trial on disk: its config (the sweep's config with the trial's settings, its own
//! output_dir) and its line in sweep.jsonl.

use super::plan::Settings;
use crate::config::RunConfig;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Finished,
    /// Stopped early: its eval objective was below the other trials' median.
    Stopped,
    /// Training or eval failed (out of memory, NaN loss, …); the reason says.
    Failed,
}

/// A line of sweep.jsonl.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    /// 1, 2, …: the trial's place in the plan (its folder is trial-NNN).
    pub trial: usize,
    pub settings: Settings,
    pub status: Status,
    /// The objective on the config's eval file (for a stopped trial, at its last eval).
    pub objective: Option<f64>,
    pub metrics: BTreeMap<String, f64>,
    pub seconds: f64,
    /// NVML's peak above the run's baseline (CUDA runs; with packed trials the GPU's, so it
    /// includes what neighbours grew by meanwhile).
    pub peak_gpu_bytes: Option<u64>,
    pub adapter: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

pub fn trial_dir(sweep_dir: &Path, trial: usize) -> PathBuf {
    sweep_dir.join(format!("trial-{trial:03}"))
}

/// The trial's config: `base` (the sweep's config as loaded, paths absolute) with `settings`
/// applied, output_dir inside the trial's folder; written as JSON and checked by loading it.
pub fn write_config(base: &RunConfig, settings: &Settings, dir: &Path) -> Result<PathBuf> {
    let Value::Object(mut table) = serde_json::to_value(base)? else {
        bail!("a config serialises to a table");
    };
    for (key, value) in settings {
        match key.split_once('.') {
            Some((stage, inner)) => {
                let stage_table = table
                    .entry(stage.to_string())
                    .or_insert_with(|| Value::Object(Default::default()));
                if let Value::Object(t) = stage_table {
                    t.insert(inner.to_string(), value.clone());
                }
            }
            None => {
                for stage in crate::config::Stage::ALL.map(crate::config::Stage::name) {
                    if table.get(stage).and_then(|t| t.get(key)).is_some() {
                        bail!(
                            "sweep key '{key}': the config's [{stage}] table sets it too, and \
                             would win; sweep '{stage}.{key}' instead"
                        );
                    }
                }
                table.insert(key.clone(), value.clone());
            }
        }
    }
    table.insert(
        "output_dir".into(),
        Value::String(dir.join("run").display().to_string()),
    );
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let path = dir.join("config.json");
    crate::fsutil::write_file_atomically(&path, serde_json::to_string_pretty(&table)?.as_bytes())?;
    RunConfig::load(&path).with_context(|| format!("trial settings {}", shown(settings)))?;
    Ok(path)
}

/// `learning_rate=0.0002 lora_r=16`.
pub fn shown(settings: &Settings) -> String {
    settings
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The records of sweep.jsonl so far (none if it does not exist yet).
pub fn read_records(path: &Path) -> Result<Vec<TrialRecord>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not a trial record", path.display(), i + 1))
        })
        .collect()
}

/// Appends one record as a line, flushed before returning.
pub fn append_record(path: &Path, record: &TrialRecord) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    writeln!(file, "{}", serde_json::to_string(record)?)?;
    file.sync_data()?;
    Ok(())
}

//! Calibration: each training run on a GPU writes its measured peak device memory and the
//! estimate for its shape to output_dir/memory.json; `tunelab hw --config` reads them back to
//! show how far the estimate was from the measurement on runs like the one planned.

use super::estimate::Estimate;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const MEMORY_FILE: &str = "memory.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryRecord {
    pub method: String,
    pub baseline_used_bytes: u64,
    pub peak_used_bytes: u64,
    /// Peak minus baseline: what the run added to the device.
    pub run_peak_bytes: u64,
    /// The estimate for the run's shape (absent in records of older versions).
    #[serde(default)]
    pub estimate: Option<Estimate>,
}

impl MemoryRecord {
    /// (estimate − measured) / measured, for the run's own part of the memory.
    pub fn estimate_error(&self) -> Option<f64> {
        let e = self.estimate.as_ref()?;
        (self.run_peak_bytes > 0)
            .then(|| (e.run_bytes as f64 - self.run_peak_bytes as f64) / self.run_peak_bytes as f64)
    }
}

pub fn read_record(path: &Path) -> Result<MemoryRecord> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a memory record", path.display()))
}

/// The memory records of the runs of an output_dir (it and the later runs beside it, and
/// their sub-folders two levels deep, as a pipeline writes them), with their paths;
/// unreadable ones are skipped.
pub fn find_records(root: &Path) -> Vec<(PathBuf, MemoryRecord)> {
    let mut dirs = crate::fsutil::run_dirs(root);
    for _ in 0..2 {
        let children: Vec<PathBuf> = dirs
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir() && !dirs.contains(p))
            .collect();
        dirs.extend(children);
    }
    dirs.sort();
    dirs.dedup();
    dirs.into_iter()
        .map(|d| d.join(MEMORY_FILE))
        .filter_map(|p| read_record(&p).ok().map(|r| (p, r)))
        .collect()
}

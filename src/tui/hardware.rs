//! The hardware screen's state: the latest report, recent utilisation and temperature per GPU,
//! and the selected config's memory estimate.

use crate::config::RunConfig;
use crate::hw::HardwareReport;
use crate::model::catalog::CatalogEntry;
use crate::tui::view::widgets::gib;
use std::collections::VecDeque;

/// How many one-second samples the sparklines keep.
pub const HISTORY: usize = 120;

/// A memory estimate as the panel shows it: named terms in bytes, their total, and the verdict
/// ("fits in 24 GiB with 6 GiB to spare"). The estimator fills it; the panel only draws it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryEstimate {
    pub terms: Vec<(String, u64)>,
    pub total: u64,
    /// The verdict in a word or two: "fits", "tight", "does not fit", "no GPU".
    pub fits: String,
    pub verdict: String,
}

#[derive(Debug, Clone, Default)]
pub struct HardwareState {
    pub report: Option<HardwareReport>,
    /// Per GPU (in report order): utilisation percent and temperature, oldest first.
    pub utilization: Vec<VecDeque<u64>>,
    pub temperature: Vec<VecDeque<u64>>,
    pub estimate: Option<MemoryEstimate>,
}

impl HardwareState {
    pub fn apply(&mut self, report: HardwareReport) {
        let n = report.gpus.len();
        self.utilization.resize_with(n, VecDeque::new);
        self.temperature.resize_with(n, VecDeque::new);
        for (i, gpu) in report.gpus.iter().enumerate() {
            push_capped(
                &mut self.utilization[i],
                gpu.utilization_percent.unwrap_or(0).into(),
            );
            push_capped(
                &mut self.temperature[i],
                gpu.temperature_c.unwrap_or(0).into(),
            );
        }
        self.report = Some(report);
    }

    /// Free memory on the first GPU, if there is one and the driver says.
    pub fn gpu_memory_free(&self) -> Option<u64> {
        self.report.as_ref()?.gpus.first()?.memory_free_bytes
    }

    /// Memory in use on the first GPU, if there is one and the driver says.
    pub fn gpu_memory_used(&self) -> Option<u64> {
        self.report.as_ref()?.gpus.first()?.memory_used_bytes
    }
}

fn push_capped(history: &mut VecDeque<u64>, value: u64) {
    if history.len() == HISTORY {
        history.pop_front();
    }
    history.push_back(value);
}

/// The estimate of a config's most demanding stage on its model, against the first GPU's free
/// memory. The model is described from its header or known shape, not loaded.
pub fn estimate_for(config: &RunConfig) -> anyhow::Result<MemoryEstimate> {
    let entry = crate::model::catalog::describe(&config.model_name)?;
    let free = crate::hw::probe()
        .gpus
        .first()
        .and_then(|g| g.memory_free_bytes);
    estimate_on(config, &entry, free)
}

/// The estimate of `config`'s most demanding stage on `entry`'s model against `free` bytes.
pub fn estimate_on(
    config: &RunConfig,
    entry: &CatalogEntry,
    free: Option<u64>,
) -> anyhow::Result<MemoryEstimate> {
    use crate::hw::estimate::{estimate, ModelFacts, Verdict};
    let facts = ModelFacts::of_entry(entry);
    let e = config
        .stage_configs()?
        .iter()
        .map(|stage| estimate(stage, &facts, free))
        .max_by_key(|e| e.total_bytes)
        .ok_or_else(|| anyhow::anyhow!("the config has no stage"))?;
    let stage = e.shape.stage.name().to_uppercase();
    let (fits, verdict) = match (e.verdict, e.free_bytes) {
        (Some(Verdict::Fits), Some(f)) => ("fits", format!("{stage} fits in {} free", gib(f))),
        (Some(Verdict::Tight), Some(f)) => {
            ("tight", format!("{stage} is tight in {} free", gib(f)))
        }
        (Some(Verdict::DoesNotFit), Some(f)) => (
            "does not fit",
            format!(
                "{stage} does not fit in {} free: batch {} or max_seq_length {} would",
                gib(f),
                e.max_batch.unwrap_or(0),
                e.max_seq.unwrap_or(0)
            ),
        ),
        _ => (
            "no GPU",
            format!("{stage}: no GPU to judge against (the CPU path uses RAM)"),
        ),
    };
    Ok(MemoryEstimate {
        terms: e.terms.iter().map(|t| (t.name.clone(), t.bytes)).collect(),
        total: e.total_bytes,
        fits: fits.to_string(),
        verdict,
    })
}

//! The hardware screen's state: the latest report, recent utilisation and temperature per GPU,
//! and the selected config's memory estimate.

use crate::hw::HardwareReport;
use std::collections::VecDeque;

/// How many one-second samples the sparklines keep.
pub const HISTORY: usize = 120;

/// A memory estimate as the panel shows it: named terms in bytes, their total, and the verdict
/// ("fits in 24 GiB with 6 GiB to spare"). The estimator fills it; the panel only draws it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryEstimate {
    pub terms: Vec<(String, u64)>,
    pub total: u64,
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

/// The estimate of a config's most demanding stage against the first GPU's free memory.
pub fn estimate_for(config_path: &std::path::Path) -> anyhow::Result<MemoryEstimate> {
    use crate::hw::estimate::{estimate, ModelFacts, Verdict};
    let config = crate::config::RunConfig::load(config_path)?;
    let source = crate::model::ModelSource::parse(Some(config.model_name.as_str()))?;
    let loaded = crate::model::LoadedModel::load(&source, &candle_core::Device::Cpu, &mut |_| {})?;
    let facts = ModelFacts::of(&crate::model::info::ModelInfo::of(&loaded));
    let free = crate::hw::probe()
        .gpus
        .first()
        .and_then(|g| g.memory_free_bytes);
    let e = config
        .stage_configs()?
        .iter()
        .map(|stage| estimate(stage, &facts, free))
        .max_by_key(|e| e.total_bytes)
        .ok_or_else(|| anyhow::anyhow!("the config has no stage"))?;
    let gib = |b: u64| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64);
    let stage = e.shape.stage.name().to_uppercase();
    let verdict = match (e.verdict, e.free_bytes) {
        (Some(Verdict::Fits), Some(f)) => format!("{stage} fits in {} free", gib(f)),
        (Some(Verdict::Tight), Some(f)) => format!("{stage} is tight in {} free", gib(f)),
        (Some(Verdict::DoesNotFit), Some(f)) => format!(
            "{stage} does not fit in {} free: batch {} or max_seq_length {} would",
            gib(f),
            e.max_batch.unwrap_or(0),
            e.max_seq.unwrap_or(0)
        ),
        _ => format!("{stage}: no GPU to judge against (the CPU path uses RAM)"),
    };
    Ok(MemoryEstimate {
        terms: e.terms.iter().map(|t| (t.name.clone(), t.bytes)).collect(),
        total: e.total_bytes,
        verdict,
    })
}

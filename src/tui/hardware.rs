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

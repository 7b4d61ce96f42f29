//! Learning-rate schedules with warmup, as transformers defines them
//! (get_constant_schedule_with_warmup, get_linear_schedule_with_warmup,
//! get_cosine_schedule_with_warmup with half a cycle).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    #[serde(alias = "constant_with_warmup")]
    Constant,
    Linear,
    Cosine,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrSchedule {
    pub kind: ScheduleKind,
    pub base_lr: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
}

/// Warmup steps for a ratio of the run, rounded up as transformers does.
pub fn warmup_steps_from_ratio(ratio: f64, total_steps: usize) -> usize {
    (ratio * total_steps as f64).ceil() as usize
}

impl LrSchedule {
    /// The learning rate of optimiser step `step` (0-based).
    pub fn lr_at(&self, step: usize) -> f64 {
        let (s, w, t) = (
            step as f64,
            self.warmup_steps as f64,
            self.total_steps as f64,
        );
        let factor = if step < self.warmup_steps {
            s / w.max(1.0)
        } else {
            let progress = (s - w) / (t - w).max(1.0);
            match self.kind {
                ScheduleKind::Constant => 1.0,
                ScheduleKind::Linear => ((t - s) / (t - w).max(1.0)).max(0.0),
                ScheduleKind::Cosine => {
                    (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
                }
            }
        };
        self.base_lr * factor
    }
}

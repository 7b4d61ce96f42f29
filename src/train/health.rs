//! Watches a stage's per-step metrics for the known ways a run goes wrong, and says so once
//! each: DPO's here, GRPO's in `grpo_health`.

use crate::config::LossType;
use std::collections::BTreeMap;

/// Steps looked back over when judging a trend.
const WINDOW: usize = 10;

pub struct DpoHealth {
    pairs_per_step: usize,
    warmup_steps: usize,
    loss_type: LossType,
    rpo_alpha_set: bool,
    history: Vec<BTreeMap<String, f64>>,
    said: Vec<&'static str>,
}

pub trait Health {
    /// Records one step's metrics; returns the warnings this step newly raises.
    fn observe(&mut self, metrics: &BTreeMap<String, f64>) -> Vec<String>;
}

impl Health for DpoHealth {
    fn observe(&mut self, metrics: &BTreeMap<String, f64>) -> Vec<String> {
        DpoHealth::observe(self, metrics)
    }
}

impl DpoHealth {
    pub fn new(
        pairs_per_step: usize,
        warmup_steps: usize,
        loss_type: LossType,
        rpo_alpha_set: bool,
    ) -> Self {
        Self {
            pairs_per_step,
            warmup_steps,
            loss_type,
            rpo_alpha_set,
            history: Vec::new(),
            said: Vec::new(),
        }
    }

    /// Records one step's metrics; returns the warnings this step newly raises.
    pub fn observe(&mut self, metrics: &BTreeMap<String, f64>) -> Vec<String> {
        self.history.push(metrics.clone());
        let mut out = Vec::new();
        let checks: [(&'static str, Option<String>); 4] = [
            ("accuracy", self.accuracy_is_coarse()),
            ("chosen_falling", self.chosen_falling()),
            ("negative_margins", self.negative_margins()),
            ("loss_flat", self.loss_flat()),
        ];
        for (name, warning) in checks {
            if let Some(message) = warning.filter(|_| !self.said.contains(&name)) {
                self.said.push(name);
                out.push(message);
            }
        }
        out
    }

    fn series(&self, key: &str) -> Vec<f64> {
        self.history
            .iter()
            .filter_map(|m| m.get(key).copied())
            .collect()
    }

    fn recent(&self, key: &str) -> Option<Vec<f64>> {
        let all = self.series(key);
        (all.len() >= WINDOW).then(|| all[all.len() - WINDOW..].to_vec())
    }

    fn accuracy_is_coarse(&self) -> Option<String> {
        let recent = self.recent("rewards/accuracies")?;
        let all_extreme = recent.iter().all(|&a| a == 0.0 || a == 1.0);
        (self.pairs_per_step <= 2 && all_extreme).then(|| {
            format!(
                "rewards/accuracies can only be 0 or 1 with {} pair(s) per step, so it says little; \
                 raise per_device_train_batch_size or gradient_accumulation_steps to read it",
                self.pairs_per_step
            )
        })
    }

    fn chosen_falling(&self) -> Option<String> {
        let chosen = self.recent("logps/chosen")?;
        let margins = self.recent("rewards/margins")?;
        let falling = slope(&chosen) < 0.0 && chosen[WINDOW - 1] < chosen[0] - 1.0;
        let growing = slope(&margins) > 0.0 && margins[WINDOW - 1] > margins[0];
        (falling && growing).then(|| {
            let advice = if self.rpo_alpha_set {
                "raise rpo_alpha"
            } else {
                "set rpo_alpha (e.g. 1.0) to keep the chosen replies likely"
            };
            format!(
                "logps/chosen is falling ({:.1} → {:.1}) while the margins grow: the model is \
                 pushing both replies down, a known DPO failure; {advice}",
                chosen[0],
                chosen[WINDOW - 1]
            )
        })
    }

    fn negative_margins(&self) -> Option<String> {
        if self.history.len() < self.warmup_steps + WINDOW {
            return None;
        }
        let margins = self.recent("rewards/margins")?;
        let mean = margins.iter().sum::<f64>() / margins.len() as f64;
        (mean < 0.0).then(|| {
            format!(
                "rewards/margins is negative after warm-up (mean {mean:.3} over the last {WINDOW} \
                 steps): the rejected replies are gaining; check that chosen and rejected are not \
                 swapped, or lower the learning rate"
            )
        })
    }

    fn loss_flat(&self) -> Option<String> {
        if self.loss_type != LossType::Sigmoid || self.history.len() < self.warmup_steps + WINDOW {
            return None;
        }
        let loss = self.recent("loss")?;
        let ln2 = std::f64::consts::LN_2;
        loss.iter().all(|l| (l - ln2).abs() < 0.005).then(|| {
            "the loss sits at ln 2 (0.693) and is not moving: the policy is not leaving the \
             reference; the learning rate is likely too low"
                .to_string()
        })
    }
}

/// Least-squares slope of `values` against their index.
fn slope(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = values.iter().sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, y) in values.iter().enumerate() {
        let dx = i as f64 - mean_x;
        num += dx * (y - mean_y);
        den += dx * dx;
    }
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(loss: f64, chosen: f64, margins: f64, accuracy: f64) -> BTreeMap<String, f64> {
        [
            ("loss", loss),
            ("logps/chosen", chosen),
            ("rewards/margins", margins),
            ("rewards/accuracies", accuracy),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn run(
        health: &mut DpoHealth,
        steps: impl Iterator<Item = BTreeMap<String, f64>>,
    ) -> Vec<String> {
        steps.flat_map(|m| health.observe(&m)).collect()
    }

    #[test]
    fn a_healthy_run_raises_nothing() {
        let mut h = DpoHealth::new(8, 2, LossType::Sigmoid, false);
        let warnings = run(
            &mut h,
            (0..30).map(|i| {
                step(
                    0.69 - 0.01 * i as f64,
                    -40.0 + 0.1 * i as f64,
                    0.05 * i as f64,
                    0.75,
                )
            }),
        );
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn each_failure_is_named_once() {
        let mut h = DpoHealth::new(1, 0, LossType::Sigmoid, false);
        let warnings = run(
            &mut h,
            (0..25).map(|i| step(0.6, -40.0 - 2.0 * i as f64, 0.1 * i as f64, (i % 2) as f64)),
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("can only be 0 or 1 with 1 pair"));
        assert!(warnings[1].contains("set rpo_alpha"));

        let mut h = DpoHealth::new(8, 5, LossType::Sigmoid, false);
        let early = run(
            &mut h,
            (0..14).map(|_| step(std::f64::consts::LN_2 + 1e-4, -40.0, -0.2, 0.3)),
        );
        assert!(early.is_empty(), "warm-up is not judged: {early:?}");
        let late = run(
            &mut h,
            (0..5).map(|_| step(std::f64::consts::LN_2 + 1e-4, -40.0, -0.2, 0.3)),
        );
        assert_eq!(late.len(), 2, "{late:?}");
        assert!(late[0].contains("negative after warm-up"));
        assert!(late[1].contains("learning rate is likely too low"));
    }
}

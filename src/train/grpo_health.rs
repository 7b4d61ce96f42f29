//! Watches GRPO's per-step metrics for the ways an RL run goes wrong: groups whose
//! completions all score the same (no signal), a KL to the reference that climbs fast, and
//! completions collapsing to the length limit or to nothing. Each is said once, and again
//! only after it has cleared.

use super::health::Health;
use std::collections::BTreeMap;

/// Steps a condition must hold before it is reported, so one odd batch says nothing.
const PERSIST: usize = 3;

pub struct GrpoHealth {
    beta: f64,
    kl: Vec<f64>,
    /// Consecutive steps each condition has held, and whether it has been said.
    streaks: BTreeMap<&'static str, (usize, bool)>,
}

impl GrpoHealth {
    pub fn new(beta: f64) -> Self {
        Self {
            beta,
            kl: Vec::new(),
            streaks: BTreeMap::new(),
        }
    }

    /// Counts a condition's streak; the message when it has just held PERSIST steps.
    fn track(&mut self, name: &'static str, holds: bool, message: String) -> Option<String> {
        let (streak, said) = self.streaks.entry(name).or_insert((0, false));
        if !holds {
            *streak = 0;
            *said = false;
            return None;
        }
        *streak += 1;
        if *streak >= PERSIST && !*said {
            *said = true;
            return Some(message);
        }
        None
    }

    /// KL above 0.05 and more than four times what it was a few steps before.
    fn kl_rising(&mut self, metrics: &BTreeMap<String, f64>) -> bool {
        let Some(&kl) = metrics.get("kl") else {
            return false;
        };
        self.kl.push(kl);
        let n = self.kl.len();
        n > 5 && kl > 0.05 && kl > 4.0 * self.kl[n - 6].max(1e-6)
    }
}

impl Health for GrpoHealth {
    fn observe(&mut self, metrics: &BTreeMap<String, f64>) -> Vec<String> {
        let get = |k: &str| metrics.get(k).copied().unwrap_or(f64::NAN);
        let zero_std = get("frac_reward_zero_std");
        let clipped = get("completions/clipped_ratio");
        let mean_length = get("completions/mean_length");
        let kl = get("kl");
        let kl_rising = self.beta != 0.0 && self.kl_rising(metrics);
        let checks = [
            (
                "zero_std",
                zero_std > 0.5,
                format!(
                    "the rewards of {:.0}% of the groups do not vary (every completion of a \
                     prompt scored the same): those prompts give no learning signal; use harder \
                     or easier prompts, a finer reward (expect_json_fields over \
                     expect_json_exact), more num_generations or a higher temperature",
                    zero_std * 100.0
                ),
            ),
            (
                "kl",
                kl_rising,
                format!(
                    "kl is rising fast ({kl:.3}, over four times its value five steps ago): the \
                     policy is leaving the reference quickly; lower the learning rate or raise \
                     beta"
                ),
            ),
            (
                "length_limit",
                clipped > 0.9,
                format!(
                    "{:.0}% of completions hit max_completion_length: they are cut before they \
                     end, so their rewards judge unfinished answers; raise max_completion_length \
                     or reward shorter answers (length_penalty)",
                    clipped * 100.0
                ),
            ),
            (
                "empty",
                mean_length < 1.5,
                "completions have collapsed to empty (the end token alone): the rewards favour \
                 saying nothing; check the reward (a length_penalty weighted too high?) and \
                 lower the learning rate"
                    .to_string(),
            ),
        ];
        checks
            .into_iter()
            .filter_map(|(name, holds, message)| self.track(name, holds, message))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn healthy(kl: f64) -> BTreeMap<String, f64> {
        step(&[
            ("frac_reward_zero_std", 0.25),
            ("completions/clipped_ratio", 0.1),
            ("completions/mean_length", 40.0),
            ("kl", kl),
        ])
    }

    #[test]
    fn a_condition_is_said_once_after_it_persists() {
        let mut h = GrpoHealth::new(0.0);
        let mut bad = healthy(0.0);
        bad.insert("frac_reward_zero_std".into(), 0.75);
        assert!(h.observe(&bad).is_empty());
        assert!(h.observe(&bad).is_empty());
        let said = h.observe(&bad);
        assert_eq!(said.len(), 1);
        assert!(said[0].contains("75% of the groups"), "{said:?}");
        assert!(h.observe(&bad).is_empty());
        // Cleared, then back: said again.
        assert!(h.observe(&healthy(0.0)).is_empty());
        let again: Vec<_> = (0..3).flat_map(|_| h.observe(&bad)).collect();
        assert_eq!(again.len(), 1);
    }

    #[test]
    fn collapse_and_kl_are_named() {
        let mut h = GrpoHealth::new(0.04);
        let mut said = Vec::new();
        for i in 0..12 {
            let mut m = healthy(0.01 * 2f64.powi(i));
            m.insert("completions/clipped_ratio".into(), 1.0);
            said.extend(h.observe(&m));
        }
        assert!(said.iter().any(|m| m.contains("max_completion_length")));
        assert!(said.iter().any(|m| m.contains("kl is rising")));
        let mut h = GrpoHealth::new(0.0);
        let empty = step(&[("completions/mean_length", 1.0)]);
        let said: Vec<_> = (0..3).flat_map(|_| h.observe(&empty)).collect();
        assert!(said[0].contains("collapsed to empty"));
        // Without beta there is no KL to watch.
        let mut h = GrpoHealth::new(0.0);
        assert!((0..12)
            .flat_map(|i| h.observe(&healthy(0.01 * 2f64.powi(i))))
            .all(|m| !m.contains("kl")));
    }
}

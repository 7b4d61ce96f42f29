//! The Sweeps screen's state: which sweep is shown, the highlighted trial, and the column the
//! trials are sorted by.

use crate::sweep::progress::{SweepProgress, TrialProgress};

/// What the trials table is sorted by.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SortBy {
    #[default]
    Trial,
    /// The sweep's objective, best first.
    Objective,
    /// An eval metric, highest first.
    Metric(String),
}

impl SortBy {
    pub fn label(&self, progress: &SweepProgress) -> String {
        match self {
            SortBy::Trial => "trial".into(),
            SortBy::Objective => format!("{} (objective)", progress.objective),
            SortBy::Metric(key) => key.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepsState {
    /// Index into Found.sweeps.
    pub sweep: usize,
    /// Row of the table (in sorted order).
    pub selected: usize,
    pub sort: SortBy,
}

impl SweepsState {
    /// The next column to sort by: trial, objective, then each metric the trials have.
    pub fn next_sort(&mut self, progress: &SweepProgress) {
        let mut columns = vec![SortBy::Trial, SortBy::Objective];
        columns.extend(metric_keys(progress).into_iter().map(SortBy::Metric));
        let at = columns.iter().position(|c| *c == self.sort).unwrap_or(0);
        self.sort = columns[(at + 1) % columns.len()].clone();
        self.selected = 0;
    }
}

/// Every metric some trial recorded, sorted.
pub fn metric_keys(progress: &SweepProgress) -> Vec<String> {
    let mut keys: Vec<String> = progress
        .trials
        .iter()
        .flat_map(|t| t.metrics.keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The trials in table order; trials without the value sorted by come last, by number.
pub fn ordered<'a>(progress: &'a SweepProgress, sort: &SortBy) -> Vec<&'a TrialProgress> {
    let mut trials: Vec<&TrialProgress> = progress.trials.iter().collect();
    let value = |t: &TrialProgress| match sort {
        SortBy::Trial => Some(-(t.trial as f64)),
        SortBy::Objective => t.objective.map(|v| match progress.direction {
            crate::sweep::spec::Direction::Maximize => v,
            crate::sweep::spec::Direction::Minimize => -v,
        }),
        SortBy::Metric(key) => t.metrics.get(key).copied(),
    };
    // Highest first: stable, so ties keep trial order.
    trials.sort_by(|a, b| match (value(a), value(b)) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    trials
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::progress::TrialState;
    use crate::sweep::spec::Direction;
    use crate::sweep::trial::Status;

    fn trial(n: usize, objective: Option<f64>, loss: Option<f64>) -> TrialProgress {
        TrialProgress {
            trial: n,
            settings: format!("lr={n}"),
            state: TrialState::Ended(Status::Finished),
            objective,
            metrics: loss
                .map(|l| ("eval_loss".to_string(), l))
                .into_iter()
                .collect(),
            seconds: None,
            reason: None,
            adapter: None,
            run_dir: Default::default(),
            losses: vec![],
        }
    }

    fn sweep(direction: Direction) -> SweepProgress {
        SweepProgress {
            dir: "s".into(),
            objective: "expect_json_exact".into(),
            direction,
            trials: vec![
                trial(1, Some(0.2), Some(1.0)),
                trial(2, None, None),
                trial(3, Some(0.7), Some(0.5)),
                trial(4, Some(0.4), Some(2.0)),
            ],
            best: Some(2),
        }
    }

    fn numbers(trials: Vec<&TrialProgress>) -> Vec<usize> {
        trials.iter().map(|t| t.trial).collect()
    }

    #[test]
    fn the_objective_sorts_best_first_by_its_direction_and_missing_values_last() {
        let max = sweep(Direction::Maximize);
        assert_eq!(numbers(ordered(&max, &SortBy::Trial)), vec![1, 2, 3, 4]);
        assert_eq!(numbers(ordered(&max, &SortBy::Objective)), vec![3, 4, 1, 2]);
        let min = sweep(Direction::Minimize);
        assert_eq!(numbers(ordered(&min, &SortBy::Objective)), vec![1, 4, 3, 2]);
        let by_loss = SortBy::Metric("eval_loss".into());
        assert_eq!(numbers(ordered(&max, &by_loss)), vec![4, 1, 3, 2]);
    }

    #[test]
    fn sorting_cycles_through_trial_objective_and_each_metric() {
        let progress = sweep(Direction::Maximize);
        let mut state = SweepsState {
            selected: 3,
            ..Default::default()
        };
        let mut seen = vec![];
        for _ in 0..3 {
            state.next_sort(&progress);
            seen.push(state.sort.clone());
        }
        assert_eq!(
            seen,
            vec![
                SortBy::Objective,
                SortBy::Metric("eval_loss".into()),
                SortBy::Trial
            ]
        );
        assert_eq!(state.selected, 0);
    }
}

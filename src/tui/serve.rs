//! The Runs screen's Serve panel: the workbench's own OpenAI-compatible server for the
//! chosen config's model and every run's adapter, on 127.0.0.1, with its address, models,
//! requests and tokens/s. Self-instruct on the Data screen asks it for new records.

use std::path::PathBuf;

/// What to serve: the model (as RunConfig::model_name) and (name, folder) of each adapter.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeJob {
    pub model: String,
    pub adapters: Vec<(String, PathBuf)>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum ServeStatus {
    #[default]
    Off,
    Starting,
    Serving {
        address: String,
        models: Vec<String>,
    },
    Stopping,
    Failed(String),
}

/// The server's counters, read from its `/v1/stats` once a second.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ServeCounters {
    pub uptime_s: f64,
    pub requests: u64,
    pub completion_tokens: u64,
    pub queued: u64,
}

#[derive(Debug, Clone, Default)]
pub struct ServeState {
    pub status: ServeStatus,
    pub counters: ServeCounters,
    /// Generated tokens per second over the last reading.
    pub tokens_per_s: f64,
    /// Adapters left out because they were trained on another base.
    pub skipped: usize,
}

impl ServeState {
    /// The base URL clients use, while serving.
    pub fn endpoint(&self) -> Option<String> {
        match &self.status {
            ServeStatus::Serving { address, .. } => Some(format!("http://{address}/v1")),
            _ => None,
        }
    }

    pub fn is_on(&self) -> bool {
        matches!(
            self.status,
            ServeStatus::Starting | ServeStatus::Serving { .. } | ServeStatus::Stopping
        )
    }

    pub fn apply(&mut self, counters: ServeCounters) {
        let seconds = counters.uptime_s - self.counters.uptime_s;
        let tokens = counters
            .completion_tokens
            .saturating_sub(self.counters.completion_tokens);
        if seconds > 0.0 {
            self.tokens_per_s = tokens as f64 / seconds;
        }
        self.counters = counters;
    }
}

/// Adapter names from run folders: the folder's last two parts (`camara_qod-dpo`), made
/// unique with a number where two runs would share one.
pub fn adapter_names(dirs: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for dir in dirs {
        let parts: Vec<String> = dir
            .components()
            .rev()
            .take(2)
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let base: String = parts
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("-")
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut name = base.clone();
        let mut i = 2;
        while names.contains(&name) || name == crate::serve::catalog::BASE_ALIAS {
            name = format!("{base}-{i}");
            i += 1;
        }
        names.push(name);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_run_folders_and_stay_unique() {
        let dirs = [
            PathBuf::from("sample_data/camara_qod/runs/camara_qod/dpo"),
            PathBuf::from("runs/x/dpo"),
            PathBuf::from("other/x/dpo"),
            PathBuf::from("a b/base"),
        ];
        assert_eq!(
            adapter_names(&dirs),
            vec!["camara_qod-dpo", "x-dpo", "x-dpo-2", "a_b-base"]
        );
    }

    #[test]
    fn tokens_per_second_come_from_the_change_between_readings() {
        let mut state = ServeState::default();
        let reading = |uptime_s, completion_tokens| ServeCounters {
            uptime_s,
            completion_tokens,
            ..ServeCounters::default()
        };
        state.apply(reading(1.0, 0));
        state.apply(reading(3.0, 100));
        assert!((state.tokens_per_s - 50.0).abs() < 1e-9);
    }
}

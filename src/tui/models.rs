//! The model picker's state: every model a run could use here, each with its memory verdict
//! for the chosen config on this machine's first GPU.

use super::hardware::{estimate_on, MemoryEstimate};
use crate::config::RunConfig;
use crate::model::catalog::{Catalog, CatalogEntry};

#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    pub entry: CatalogEntry,
    /// The config's most demanding stage on this model, or why it cannot be estimated.
    pub estimate: Result<MemoryEstimate, String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelsState {
    pub rows: Vec<ModelRow>,
    /// Files in the cache that could not be read, with the reason.
    pub skipped: Vec<String>,
    /// The catalog is being read.
    pub loading: bool,
}

impl ModelsState {
    /// Judges each model of `catalog` for `config` against `free` bytes of GPU memory.
    pub fn set(&mut self, catalog: Catalog, config: &RunConfig, free: Option<u64>) {
        self.rows = catalog
            .entries
            .into_iter()
            .map(|entry| ModelRow {
                estimate: estimate_on(config, &entry, free).map_err(|e| format!("{e:#}")),
                entry,
            })
            .collect();
        self.skipped = catalog.skipped;
        self.loading = false;
    }

    /// The row of the model `model_name` names (the first row, the default, for "").
    pub fn position(&self, model_name: &str) -> usize {
        let wanted = model_name.trim();
        let default = crate::model::fetch::DEFAULT_MODEL.name;
        self.rows
            .iter()
            .position(|r| r.entry.name == wanted || (wanted.is_empty() && r.entry.name == default))
            .unwrap_or(0)
    }
}

/// 134_515_008 → "135M", 1_235_814_400 → "1.24B".
pub fn parameters(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.0}M", n as f64 / 1e6),
        n => format!("{:.1}M", n as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_read_as_people_write_them() {
        assert_eq!(parameters(134_515_008), "135M");
        assert_eq!(parameters(1_235_814_400), "1.24B");
        assert_eq!(parameters(8_030_261_248), "8.03B");
        assert_eq!(parameters(120_000), "0.1M");
    }
}

//! The names the server answers to: the base model under its own name (and "base"), each
//! adapter under the name given on the command line.

use crate::model::fetch::DEFAULT_MODEL_FILE;
use crate::model::ModelSource;
use anyhow::{bail, Result};
use std::path::Path;

/// Also accepted for the base model, whatever its own name.
pub const BASE_ALIAS: &str = "base";

#[derive(Debug, Clone)]
pub struct Catalog {
    base: String,
    adapters: Vec<String>,
    /// Unix seconds the server started, reported as each model's `created`.
    pub created: u64,
}

/// Which weights a request runs on: the base, or adapter `i` of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Served {
    Base,
    Adapter(usize),
}

impl Catalog {
    pub fn new(base: String, adapters: Vec<String>) -> Result<Self> {
        for (i, name) in adapters.iter().enumerate() {
            if name.trim().is_empty() {
                bail!("--adapter: an adapter needs a name (NAME=DIR)");
            }
            if name == &base || name == BASE_ALIAS {
                bail!("--adapter {name}: that name is the base model's");
            }
            if adapters[..i].contains(name) {
                bail!("--adapter {name}: two adapters have this name");
            }
        }
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Self {
            base,
            adapters,
            created,
        })
    }

    pub fn resolve(&self, name: &str) -> Option<Served> {
        if name == self.base || name == BASE_ALIAS {
            return Some(Served::Base);
        }
        self.adapters
            .iter()
            .position(|a| a == name)
            .map(Served::Adapter)
    }

    /// The name a response reports for what it ran on.
    pub fn name(&self, served: Served) -> &str {
        match served {
            Served::Base => &self.base,
            Served::Adapter(i) => &self.adapters[i],
        }
    }

    /// Every model id, the base first.
    pub fn ids(&self) -> Vec<String> {
        std::iter::once(self.base.clone())
            .chain(self.adapters.iter().cloned())
            .collect()
    }
}

/// The base model's id: a GGUF's file stem, a folder's name, a Hub repo's id.
pub fn base_id(source: &ModelSource) -> String {
    let stem = |p: &Path| {
        p.file_stem()
            .or(p.file_name())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    match source {
        ModelSource::Default => stem(Path::new(DEFAULT_MODEL_FILE)),
        ModelSource::Gguf(p) => stem(p),
        ModelSource::HfFolder(p) => {
            let p = p.canonicalize().unwrap_or_else(|_| p.clone());
            p.file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string())
        }
        ModelSource::HubRepo(id) => id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_and_clash_is_refused() {
        let c = Catalog::new("tiny".into(), vec!["qod".into()]).unwrap();
        assert_eq!(c.resolve("tiny"), Some(Served::Base));
        assert_eq!(c.resolve("base"), Some(Served::Base));
        assert_eq!(c.resolve("qod"), Some(Served::Adapter(0)));
        assert_eq!(c.resolve("other"), None);
        assert_eq!(c.ids(), ["tiny", "qod"]);
        assert!(Catalog::new("tiny".into(), vec!["base".into()]).is_err());
        assert!(Catalog::new("tiny".into(), vec!["a".into(), "a".into()]).is_err());
        assert_eq!(base_id(&ModelSource::Default), "SmolLM2-135M-Instruct.Q4_1");
    }
}

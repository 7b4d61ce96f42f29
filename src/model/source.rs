//! What `--model` names: a GGUF file, a Hugging Face folder, a Hub repo id, or nothing (the
//! embedded default).

use super::{fetch, hub};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// SmolLM2-135M-Instruct Q4_1, fetched into the cache on first use.
    Default,
    Gguf(PathBuf),
    HfFolder(PathBuf),
    HubRepo(String),
}

/// A model on local disk, ready to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalModel {
    Gguf(PathBuf),
    HfFolder(PathBuf),
}

impl ModelSource {
    /// Reads a `--model` argument.
    pub fn parse(arg: Option<&str>) -> Result<Self> {
        let Some(arg) = arg.map(str::trim).filter(|a| !a.is_empty()) else {
            return Ok(Self::Default);
        };
        let path = Path::new(arg);
        if path.is_dir() {
            return Ok(Self::HfFolder(path.to_path_buf()));
        }
        if path.is_file() {
            return Ok(Self::Gguf(path.to_path_buf()));
        }
        if looks_like_repo_id(arg) {
            return Ok(Self::HubRepo(arg.to_string()));
        }
        bail!("{arg}: no such GGUF file or model folder (nor an org/name Hub repo id)")
    }

    /// Makes the model available locally, fetching it if needed.
    pub fn resolve(&self, progress: &mut dyn FnMut(&str)) -> Result<LocalModel> {
        Ok(match self {
            Self::Default => LocalModel::Gguf(fetch::ensure_default_model(progress)?),
            Self::Gguf(p) => LocalModel::Gguf(p.clone()),
            Self::HfFolder(p) => LocalModel::HfFolder(p.clone()),
            Self::HubRepo(id) => LocalModel::HfFolder(hub::fetch_repo(id, progress)?),
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Default => format!("default ({})", fetch::DEFAULT_MODEL_NAME),
            Self::Gguf(p) | Self::HfFolder(p) => p.display().to_string(),
            Self::HubRepo(id) => format!("hub:{id}"),
        }
    }
}

/// `org/name`: one slash, no path-like prefix, characters the Hub allows.
fn looks_like_repo_id(arg: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    match arg.split_once('/') {
        Some((org, name)) => {
            ok(org) && ok(name) && !org.starts_with('.') && !arg.ends_with(".gguf")
        }
        None => false,
    }
}

impl LocalModel {
    pub fn path(&self) -> &Path {
        match self {
            Self::Gguf(p) | Self::HfFolder(p) => p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        assert_eq!(ModelSource::parse(None).unwrap(), ModelSource::Default);
        assert_eq!(
            ModelSource::parse(Some("HuggingFaceTB/SmolLM2-135M-Instruct")).unwrap(),
            ModelSource::HubRepo("HuggingFaceTB/SmolLM2-135M-Instruct".into())
        );
        let dir = std::env::temp_dir();
        assert_eq!(
            ModelSource::parse(dir.to_str()).unwrap(),
            ModelSource::HfFolder(dir.clone())
        );
        let err = ModelSource::parse(Some("./missing/model.gguf")).unwrap_err();
        assert!(err.to_string().contains("no such GGUF file"), "{err}");
    }
}

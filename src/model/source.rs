//! What `--model` names: a GGUF file, a Hugging Face folder, a Hub repo id, a bundled model's
//! name (`gemma3-270m`, fetched into the cache on first use), or nothing (the default model).

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
        // A bundled model by name or file name, or its place in the cache before it is
        // fetched: the cached GGUF, which `resolve` fetches when missing.
        if let Some(model) = fetch::bundled(arg).or_else(|| fetch::bundled_at(path)) {
            return Ok(if *model == fetch::DEFAULT_MODEL {
                Self::Default
            } else {
                Self::Gguf(fetch::model_path(model))
            });
        }
        if looks_like_repo_id(arg) {
            return Ok(Self::HubRepo(arg.to_string()));
        }
        bail!(
            "{arg}: no such GGUF file or model folder (nor an org/name Hub repo id, nor a \
             bundled model: {})",
            fetch::bundled_names()
        )
    }

    /// Makes the model available locally, fetching it if needed.
    pub fn resolve(&self, progress: &mut dyn FnMut(&str)) -> Result<LocalModel> {
        Ok(match self {
            Self::Default => LocalModel::Gguf(fetch::ensure_default_model(progress)?),
            Self::Gguf(p) if !p.is_file() => match fetch::bundled_at(p) {
                Some(model) => LocalModel::Gguf(fetch::ensure_model(model, progress)?),
                None => LocalModel::Gguf(p.clone()),
            },
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
        assert!(err.to_string().contains("gemma3-270m"), "{err}");
    }

    #[test]
    fn bundled_names_resolve_to_the_cache() {
        let gemma = fetch::model_path(&fetch::GEMMA3_270M);
        for arg in ["gemma3-270m", "gemma-3-270m-q4_k_m.gguf"] {
            assert_eq!(
                ModelSource::parse(Some(arg)).unwrap(),
                ModelSource::Gguf(gemma.clone())
            );
        }
        if !gemma.is_file() {
            // Its cache path names it too, before the fetch (as an adapter records it).
            assert_eq!(
                ModelSource::parse(gemma.to_str()).unwrap(),
                ModelSource::Gguf(gemma.clone())
            );
        }
        assert_eq!(
            ModelSource::parse(Some("smollm2-135m")).unwrap(),
            ModelSource::Default
        );
    }
}

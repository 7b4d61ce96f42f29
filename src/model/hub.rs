//! Models named by a Hugging Face Hub repo id (`org/name`), downloaded with hf-hub into its
//! usual cache ($HF_HOME/hub). A complete cached copy is used without touching the network;
//! with HF_HUB_OFFLINE=1 the network is never tried.

use anyhow::{bail, Context, Result};
use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::Cache;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The snapshot folder holding the repo's config, tokenizer and safetensors.
pub fn fetch_repo(repo_id: &str, progress: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    let cache = Cache::from_env();
    let cached = cache.model(repo_id.to_string());
    if let Ok(folder) = collect(repo_id, &mut |f| Ok(cached.get(f))) {
        return Ok(folder);
    }
    if std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| !v.is_empty() && v != "0") {
        bail!(
            "'{repo_id}' is not in the Hugging Face cache ({}) and HF_HUB_OFFLINE is set",
            cache.path().display()
        );
    }
    progress(&format!("Downloading {repo_id} from the Hugging Face Hub…"));
    let api = ApiBuilder::from_env()
        .with_progress(true)
        .with_retries(0)
        .build()
        .context("setting up the Hugging Face Hub client")?;
    let repo = api.model(repo_id.to_string());
    collect(repo_id, &mut |f| match repo.get(f) {
        Ok(path) => Ok(Some(path)),
        Err(ApiError::RequestError(e)) if matches!(*e, ureq::Error::Status(404, _)) => Ok(None),
        Err(ApiError::RequestError(e)) if matches!(*e, ureq::Error::Status(401 | 403, _)) => bail!(
            "'{repo_id}': access denied by the Hugging Face Hub (gated or private? set HF_TOKEN)"
        ),
        Err(e) => bail!(
            "could not download '{repo_id}' from the Hugging Face Hub (offline?): {e}; \
             pass a local GGUF file or model folder with --model"
        ),
    })
}

/// Fetches the files a model folder needs through `get`, which returns None for a file the
/// repo does not have.
fn collect(repo_id: &str, get: &mut dyn FnMut(&str) -> Result<Option<PathBuf>>) -> Result<PathBuf> {
    let required = |name: &str, found: Option<PathBuf>| {
        found.with_context(|| format!("'{repo_id}' has no {name}"))
    };
    let config = required("config.json", get("config.json")?)?;
    required("tokenizer.json", get("tokenizer.json")?)?;
    for optional in ["tokenizer_config.json", "generation_config.json"] {
        get(optional)?;
    }
    match get("model.safetensors.index.json")? {
        Some(index) => {
            for shard in shard_names(&index)? {
                required(&shard, get(&shard)?)?;
            }
        }
        None => {
            required("model.safetensors", get("model.safetensors")?)?;
        }
    }
    Ok(config
        .parent()
        .context("cache path has no parent")?
        .to_path_buf())
}

/// The shard file names listed in a `model.safetensors.index.json`.
pub fn shard_names(index: &Path) -> Result<BTreeSet<String>> {
    let text = std::fs::read_to_string(index)
        .with_context(|| format!("{}: cannot read", index.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", index.display()))?;
    let map = value
        .get("weight_map")
        .and_then(|m| m.as_object())
        .with_context(|| format!("{}: field weight_map is missing", index.display()))?;
    map.values()
        .map(|v| {
            v.as_str()
                .filter(|s| !s.contains('/') && !s.contains(".."))
                .map(str::to_string)
                .with_context(|| {
                    format!("{}: weight_map holds a bad file name {v}", index.display())
                })
        })
        .collect()
}

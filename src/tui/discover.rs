//! What the pickers offer: run configs, dataset files and run folders found under the working
//! directory (sample_data/ and runs/ included).

use crate::sweep::progress::{self, SweepProgress};
use crate::train::events::{read_events, TrainEvent};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    pub configs: Vec<PathBuf>,
    pub data_files: Vec<PathBuf>,
    pub runs: Vec<RunSummary>,
    /// Sweep folders (with plan.json) under the same parents as runs.
    pub sweeps: Vec<SweepProgress>,
}

/// A run folder (one with events.jsonl) as its events tell it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub dir: PathBuf,
    pub stage: String,
    pub step: usize,
    pub total_steps: usize,
    pub last_loss: Option<f64>,
    /// "finished", "failed: …", "stopped or running" (no Finished event yet).
    pub status: String,
    /// The final adapter folder, when the run wrote one.
    pub adapter: Option<PathBuf>,
}

/// A data recipe (`tunelab data synth`) sits beside configs as TOML too; its templates tell it
/// apart.
fn is_recipe(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .is_some_and(|table| table.contains_key("templates"))
}

/// Scans `root` (the working directory).
pub fn scan(root: &Path) -> Found {
    let sample_dirs = subdirs(&root.join("sample_data"));
    let mut configs: Vec<PathBuf> = sample_dirs
        .iter()
        .map(|d| d.join("config.toml"))
        .filter(|p| p.is_file())
        .collect();
    configs.extend(files_with(root, &["toml"]).into_iter().filter(|p| {
        p.file_name()
            .is_some_and(|n| n != "Cargo.toml" && n != "Cargo.lock")
            && !is_recipe(p)
    }));
    let mut data_files = files_with(root, &["jsonl", "json"]);
    for dir in &sample_dirs {
        data_files.extend(files_with(dir, &["jsonl", "json"]));
    }
    let mut run_parents = vec![root.join("runs")];
    run_parents.extend(sample_dirs.iter().map(|d| d.join("runs")));
    // A pipeline's folder holds a folder per stage, each a run of its own.
    let runs = run_parents
        .iter()
        .flat_map(|p| subdirs(p))
        .flat_map(|d| std::iter::once(d.clone()).chain(subdirs(&d)))
        .filter_map(|d| summarize(&d))
        .map(|mut run| {
            run.dir = strip(run.dir, root);
            run.adapter = run.adapter.map(|a| strip(a, root));
            run
        })
        .collect();
    let sweeps = run_parents
        .iter()
        .flat_map(|p| subdirs(p))
        .filter(|d| d.join(progress::PLAN_FILE).is_file())
        .filter_map(|d| progress::read(&d).ok())
        .map(|mut sweep| {
            sweep.dir = strip(sweep.dir, root);
            sweep
        })
        .collect();
    Found {
        configs: relative(configs, root),
        data_files: relative(data_files, root),
        runs,
        sweeps,
    }
}

/// A run folder's summary, or None when it has no events.jsonl.
pub fn summarize(dir: &Path) -> Option<RunSummary> {
    let path = dir.join("events.jsonl");
    if !path.is_file() {
        return None;
    }
    let mut summary = RunSummary {
        dir: dir.to_path_buf(),
        stage: "sft".into(),
        step: 0,
        total_steps: 0,
        last_loss: None,
        status: "stopped or running".into(),
        adapter: None,
    };
    let events = match read_events(&path) {
        Ok(events) => events,
        Err(e) => {
            summary.status = format!("unreadable: {e:#}");
            return Some(summary);
        }
    };
    for event in events {
        match event {
            TrainEvent::Started {
                total_steps, stage, ..
            } => {
                summary.total_steps = total_steps;
                summary.stage = stage;
                summary.status = "stopped or running".into();
            }
            TrainEvent::Step { step, loss, .. } => {
                summary.step = step;
                summary.last_loss = Some(loss);
            }
            TrainEvent::Finished {
                ok,
                message,
                adapter,
                ..
            } => {
                summary.status = if ok {
                    "finished".into()
                } else {
                    format!("failed: {message}")
                };
                // A pipeline's adapter is its last stage's.
                summary.adapter = adapter.map(PathBuf::from).filter(|a| is_adapter(a));
            }
            _ => {}
        }
    }
    let own = dir.join("adapter");
    if is_adapter(&own) {
        summary.adapter = Some(own);
    }
    Some(summary)
}

fn is_adapter(dir: &Path) -> bool {
    dir.join("adapter_config.json").is_file()
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

fn files_with(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| extensions.contains(&e))
        })
        .collect();
    out.sort();
    out
}

/// Paths shown relative to the working directory, shorter to read.
fn relative(paths: Vec<PathBuf>, root: &Path) -> Vec<PathBuf> {
    paths.into_iter().map(|p| strip(p, root)).collect()
}

fn strip(path: PathBuf, root: &Path) -> PathBuf {
    path.strip_prefix(root)
        .map(Path::to_path_buf)
        .unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_configs_data_and_runs() {
        let root = std::env::temp_dir().join(format!("tunelab-scan-{}", std::process::id()));
        let preset = root.join("sample_data/p");
        let run = root.join("runs/r1");
        let stage = root.join("runs/r2/sft");
        std::fs::create_dir_all(&preset).unwrap();
        std::fs::create_dir_all(run.join("adapter")).unwrap();
        std::fs::write(preset.join("config.toml"), "").unwrap();
        std::fs::write(preset.join("sft.jsonl"), "").unwrap();
        std::fs::write(root.join("Cargo.toml"), "").unwrap();
        std::fs::write(root.join("mine.toml"), "").unwrap();
        std::fs::write(
            root.join("recipe.toml"),
            "[[templates]]\nprompts = [\"a\"]\n",
        )
        .unwrap();
        std::fs::write(run.join("adapter/adapter_config.json"), "{}").unwrap();
        let events = [
            r#"{"event":"started","output_dir":"x","total_steps":9,"start_step":0,"examples":3,"truncated":0,"trainable_parameters":1,"device":"cpu"}"#,
            r#"{"event":"step","step":4,"epoch":1.0,"loss":1.5,"lr":0.1,"grad_norm":1.0,"tokens_per_s":5.0,"elapsed_s":1.0}"#,
        ];
        std::fs::write(run.join("events.jsonl"), events.join("\n")).unwrap();
        std::fs::create_dir_all(&stage).unwrap();
        std::fs::write(stage.join("events.jsonl"), events[0]).unwrap();
        let found = scan(&root);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(
            found.configs,
            vec![
                PathBuf::from("sample_data/p/config.toml"),
                "mine.toml".into()
            ]
        );
        assert_eq!(
            found.data_files,
            vec![PathBuf::from("sample_data/p/sft.jsonl")]
        );
        assert_eq!(found.runs.len(), 2);
        assert_eq!(found.runs[1].dir, PathBuf::from("runs/r2/sft"));
        let run = &found.runs[0];
        assert_eq!(
            (run.step, run.total_steps, run.last_loss),
            (4, 9, Some(1.5))
        );
        assert_eq!(run.status, "stopped or running");
        assert_eq!(run.dir, PathBuf::from("runs/r1"));
        assert_eq!(run.adapter, Some(PathBuf::from("runs/r1/adapter")));
    }
}

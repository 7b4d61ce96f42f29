//! `tunelab sweep`: hyperparameter search over a config's keys, scored on its eval file. The
//! spec is read and every trial's config written and checked before anything trains.

pub mod plan;
pub mod progress;
pub mod runner;
pub mod spec;
pub mod trial;

use crate::config::RunConfig;
use anyhow::{bail, Context, Result};
use runner::{PlannedTrial, Sweep};
use spec::SweepSpec;
use std::path::{Path, PathBuf};

pub struct SweepRequest<'a> {
    pub config: &'a Path,
    pub grid_flags: &'a [String],
    /// Where trials, sweep.jsonl and best/ go; default: the config's output_dir + "-sweep".
    pub output_dir: Option<PathBuf>,
    /// Overrides the spec's `parallel`.
    pub parallel: Option<usize>,
    pub device: String,
    pub exe: PathBuf,
}

/// Reads the spec, plans the trials and writes their configs; refuses a sweep folder planned
/// with other settings.
pub fn prepare(request: SweepRequest) -> Result<Sweep> {
    let path = request.config;
    let base = RunConfig::load(path)?;
    let table = crate::config::sweep_table(path)?;
    let mut spec = SweepSpec::read(
        table.as_ref(),
        request.grid_flags,
        &crate::config::known_keys(),
    )
    .with_context(|| path.display().to_string())?;
    if request.parallel.is_some() {
        spec.parallel = request.parallel;
    }
    check_objective(&base, &spec.objective).with_context(|| path.display().to_string())?;
    let dir = request
        .output_dir
        .unwrap_or_else(|| PathBuf::from(format!("{}-sweep", base.output_dir.display())));
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    // Absolute: trial configs name their output_dir, read against their own folder.
    let dir = std::path::absolute(&dir)?;
    let planned = plan::plan(&spec);
    check_same_plan(&dir, &spec, &planned)?;
    let trials = planned
        .into_iter()
        .enumerate()
        .map(|(i, settings)| {
            let trial = i + 1;
            let config = trial::write_config(&base, &settings, &trial::trial_dir(&dir, trial))?;
            Ok(PlannedTrial {
                trial,
                settings,
                config,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let slots = slots(&spec, &trials, &request.device)?;
    Ok(Sweep {
        spec,
        dir,
        trials,
        slots,
        device: request.device,
        exe: request.exe,
    })
}

/// The objective must be a metric the config's eval file gives: its checks run on each case's
/// expected reply tell which.
fn check_objective(config: &RunConfig, objective: &str) -> Result<()> {
    use crate::eval::checks::check_reply;
    use crate::eval::metrics::{aggregate, ReplyStats};
    let Some(eval_file) = &config.eval_file else {
        bail!("a sweep scores each trial on the config's eval_file, and it has none");
    };
    let cases = crate::eval::cases::load_eval_file(eval_file)?;
    let checks: Vec<_> = cases
        .iter()
        .map(|c| {
            let reply = c
                .expect_json
                .as_ref()
                .map(|j| j.to_string())
                .unwrap_or_default();
            check_reply(c, &reply, false)
        })
        .collect();
    let stats = || ReplyStats {
        tokens: 1,
        seconds: 1.0,
    };
    let results: Vec<_> = checks.iter().map(|c| (c, stats())).collect();
    let metrics = aggregate(&results);
    if !metrics.contains_key(objective) {
        let known: Vec<&str> = metrics.keys().map(String::as_str).collect();
        bail!(
            "objective '{objective}': {} does not give it (it gives {})",
            eval_file.display(),
            known.join(", ")
        );
    }
    Ok(())
}

/// A sweep folder holds one plan: plan.json, written at the first start, with the objective its
/// records were scored by.
fn check_same_plan(dir: &Path, spec: &SweepSpec, planned: &[plan::Settings]) -> Result<()> {
    let path = dir.join(progress::PLAN_FILE);
    let plan = progress::Plan {
        objective: spec.objective.clone(),
        direction: spec.direction,
        trials: planned.to_vec(),
    };
    let text = serde_json::to_string_pretty(&plan)?;
    match std::fs::read_to_string(&path) {
        Ok(old) if old == text => Ok(()),
        Ok(_) => bail!(
            "{}: this sweep folder was planned with other settings or another objective; give a new --output-dir \
             (or restore the config) to keep its trials apart",
            dir.display()
        ),
        Err(_) => crate::fsutil::write_file_atomically(&path, text.as_bytes()),
    }
}

/// Trials at once: the spec's number, else as many as the largest trial's memory estimate
/// fits in 85% of the first GPU's free memory (at most 8); one without a GPU.
fn slots(spec: &SweepSpec, trials: &[PlannedTrial], device: &str) -> Result<usize> {
    if let Some(n) = spec.parallel {
        return Ok(n);
    }
    let free = crate::hw::probe()
        .gpus
        .first()
        .and_then(|g| g.memory_free_bytes);
    let Some(free) = free.filter(|_| device != "cpu") else {
        return Ok(1);
    };
    let mut need = 0u64;
    for t in trials {
        need = need.max(trial_estimate(&RunConfig::load(&t.config)?)?);
    }
    Ok(((free as f64 * 0.85) / need.max(1) as f64)
        .floor()
        .clamp(1.0, 8.0) as usize)
}

/// The estimated peak of a trial's most demanding stage.
fn trial_estimate(config: &RunConfig) -> Result<u64> {
    use crate::hw::estimate::{estimate, ModelFacts};
    let entry = crate::model::catalog::describe(&config.model_name)?;
    let facts = ModelFacts::of_entry(&entry);
    Ok(config
        .stage_configs()?
        .iter()
        .map(|stage| estimate(stage, &facts, None).total_bytes)
        .max()
        .unwrap_or(0))
}

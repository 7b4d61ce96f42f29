//! The benchmark workload: `steps` optimiser steps (after `warmup` untimed ones) of LoRA SFT
//! or DPO on random token ids of one shape, through the trainer's own step code.

use crate::config::Stage;
use crate::data::preference::{TokenizedPair, TokenizedPairs};
use crate::data::sft::{TokenizedDataset, TokenizedExample};
use crate::model::lora::LoraConfig;
use crate::model::Transformer;
use crate::train::dpo::DpoParams;
use crate::train::dpo_objective::DpoObjective;
use crate::train::loss::IGNORE_INDEX;
use crate::train::objective::{Objective, SftObjective};
use crate::train::optim::{AdamW, AdamWParams, FlatGrads};
use crate::train::reference;
use crate::train::step::accumulate;
use anyhow::{bail, Result};
use candle_core::{Device, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct BenchSpec {
    pub stage: Stage,
    /// Sequences per step for SFT, pairs per step for DPO.
    pub batch: usize,
    /// Tokens in every sequence.
    pub seq: usize,
    pub steps: usize,
    pub warmup: usize,
    pub lora: LoraConfig,
    pub seed: u64,
    /// Wait for the device after each phase of a step and time it (see [`PhaseTimes`]).
    pub phases: bool,
}

/// Where a step's time goes, as medians over the timed steps, with the device waited for
/// after each phase (which costs the overlap of one phase's host work with the previous
/// phase's kernels, so the phases add up to a little more than an unsplit step).
#[derive(Debug, Clone, Serialize)]
pub struct PhaseTimes {
    /// Host time to queue the phase's work.
    pub issue_ms: f64,
    /// Until the device finished it.
    pub total_ms: f64,
}

/// Per-phase (issue, total) seconds of every timed step.
#[derive(Default)]
struct PhaseClock {
    samples: std::collections::BTreeMap<&'static str, Vec<(f64, f64)>>,
}

impl PhaseClock {
    /// Records the phase that ran since `since`, then restarts it.
    fn mark(&mut self, name: &'static str, since: &mut Instant, device: &Device) -> Result<()> {
        let issued = since.elapsed().as_secs_f64();
        device.synchronize()?;
        let total = since.elapsed().as_secs_f64();
        self.samples.entry(name).or_default().push((issued, total));
        *since = Instant::now();
        Ok(())
    }

    fn medians(self) -> std::collections::BTreeMap<&'static str, PhaseTimes> {
        self.samples
            .into_iter()
            .map(|(name, s)| {
                let issue = median(s.iter().map(|p| p.0).collect());
                let total = median(s.iter().map(|p| p.1).collect());
                let times = PhaseTimes {
                    issue_ms: issue * 1e3,
                    total_ms: total * 1e3,
                };
                (name, times)
            })
            .collect()
    }
}

/// Starts or stops the CUDA profiler's capture range, so that a profiler started with
/// capture off (`ncu --profile-from-start off`, see bench/profile.sh) sees the last step only.
/// Without a profiler attached it does nothing.
fn profiler_range(on: bool) {
    #[cfg(feature = "cuda")]
    {
        use candle_core::cuda_backend::cudarc::driver::sys;
        // SAFETY: no arguments; the context is current on this thread after the warmup steps.
        // The result is ignored: without a profiler there is nothing to start.
        let _ = unsafe {
            match on {
                true => sys::cuProfilerStart(),
                false => sys::cuProfilerStop(),
            }
        };
    }
    #[cfg(not(feature = "cuda"))]
    let _ = on;
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The timing half of the JSON line; the command adds what it knows about model and device.
#[derive(Debug, Clone, Serialize)]
pub struct BenchTimes {
    /// Median over the timed steps.
    pub ms_per_step: f64,
    pub ms_per_step_min: f64,
    /// Tokens through the model per second at the median step (DPO: chosen and rejected).
    pub tokens_per_s: f64,
    /// DPO only: pairs per second at the median step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pairs_per_s: Option<f64>,
    /// DPO only: the reference log-probs pass, done once before the first step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_s: Option<f64>,
    pub loss_first: f64,
    pub loss_last: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phases: Option<std::collections::BTreeMap<&'static str, PhaseTimes>>,
}

fn random_ids(rng: &mut StdRng, n: usize, vocab: usize) -> Vec<u32> {
    (0..n).map(|_| rng.random_range(0..vocab as u32)).collect()
}

/// A sequence whose labels count from `prompt` on (SFT: every token, prompt = 0).
fn example(input_ids: Vec<u32>, prompt: usize) -> TokenizedExample {
    let labels = input_ids
        .iter()
        .enumerate()
        .map(|(i, &t)| if i < prompt { IGNORE_INDEX } else { t as i64 })
        .collect();
    TokenizedExample {
        input_ids,
        labels,
        truncated: false,
        line: 0,
    }
}

/// SFT: `batch` sequences, every token a label. DPO: `batch` pairs sharing a prompt of half
/// the sequence, chosen and rejected completions of the other half, with reference log-probs
/// computed as the trainer does.
fn objective(
    model: &Transformer,
    spec: &BenchSpec,
    device: &Device,
) -> Result<(Box<dyn Objective>, Option<f64>)> {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let vocab = model.config().vocab_size;
    match spec.stage {
        Stage::Sft => {
            let examples = (0..spec.batch)
                .map(|_| example(random_ids(&mut rng, spec.seq, vocab), 0))
                .collect();
            let data = TokenizedDataset {
                examples,
                truncated: 0,
                left_out: Vec::new(),
            };
            let objective = SftObjective {
                data,
                eval: None,
                pad_id: 0,
                batch_size: spec.batch,
                device: device.clone(),
            };
            Ok((Box::new(objective), None))
        }
        Stage::Dpo => {
            let prompt = spec.seq / 2;
            let pairs = (0..spec.batch)
                .map(|_| {
                    let p = random_ids(&mut rng, prompt, vocab);
                    let side = |rng: &mut StdRng| {
                        let mut ids = p.clone();
                        ids.extend(random_ids(rng, spec.seq - prompt, vocab));
                        example(ids, prompt)
                    };
                    TokenizedPair {
                        chosen: side(&mut rng),
                        rejected: side(&mut rng),
                        line: 0,
                    }
                })
                .collect::<Vec<_>>();
            let started = Instant::now();
            let switch = model.adapters();
            switch.set_enabled(false);
            let reference =
                reference::compute(model, &pairs, spec.batch, 0, device, &mut |_, _| Ok(()));
            switch.set_enabled(true);
            let reference = reference?;
            device.synchronize()?;
            let reference_s = started.elapsed().as_secs_f64();
            let pairs = TokenizedPairs {
                pairs,
                truncated: 0,
                left_out: Vec::new(),
                identical: Vec::new(),
            };
            let params = DpoParams {
                beta: 0.1,
                loss_type: Default::default(),
                label_smoothing: 0.0,
                rpo_alpha: None,
            };
            let objective = DpoObjective::new(pairs, reference, params, 0, spec.batch, device);
            Ok((Box::new(objective), Some(reference_s)))
        }
        Stage::Grpo => bail!("bench times SFT and DPO steps; a GRPO step's generation is timed by `bench --generate`"),
    }
}

/// Attaches fresh adapters to `model` and times `spec.steps` training steps.
pub fn run(model: &mut Transformer, spec: &BenchSpec) -> Result<BenchTimes> {
    if spec.batch == 0 || spec.seq < 2 || spec.steps == 0 {
        bail!("bench needs --batch ≥ 1, --seq ≥ 2 and --steps ≥ 1");
    }
    let device = model.device().clone();
    model.attach_lora(&spec.lora, spec.seed)?;
    let vars: Vec<Var> = model.lora_vars();
    let (objective, reference_s) = objective(model, spec, &device)?;
    let mut optimizer = AdamW::new(
        vars.clone(),
        AdamWParams {
            lr: 1e-4,
            ..AdamWParams::default()
        },
    )?;
    let indices: Vec<usize> = (0..spec.batch).collect();
    model.adapters().set_training(true);
    let mut times = Vec::with_capacity(spec.steps);
    let mut losses = Vec::with_capacity(spec.steps);
    let mut clock = PhaseClock::default();
    let last = spec.warmup + spec.steps - 1;
    for step in 0..=last {
        if step == last {
            profiler_range(true);
        }
        let started = Instant::now();
        let mut phase_started = started;
        let timed = spec.phases && step >= spec.warmup;
        let mut mark = |name, since: &mut Instant| match timed {
            true => clock.mark(name, since, &device),
            false => Ok(()),
        };
        let window = accumulate(
            objective.as_ref(),
            model,
            &vars,
            std::slice::from_ref(&indices),
            spec.seed,
            step,
            &mut |name| mark(name, &mut phase_started),
        )?;
        let mut grads = FlatGrads::gather(&window.grads, &vars)?;
        grads.clip(1.0)?;
        mark("clip", &mut phase_started)?;
        optimizer.step(&grads)?;
        mark("optimizer", &mut phase_started)?;
        device.synchronize()?;
        if step == last {
            profiler_range(false);
        }
        if step >= spec.warmup {
            times.push(started.elapsed().as_secs_f64());
            losses.push(window.loss);
        }
    }
    model.adapters().set_training(false);
    let fastest = times.iter().copied().fold(f64::INFINITY, f64::min);
    let median = median(times);
    let rows = spec.batch * if spec.stage == Stage::Dpo { 2 } else { 1 };
    Ok(BenchTimes {
        ms_per_step: median * 1e3,
        ms_per_step_min: fastest * 1e3,
        tokens_per_s: (rows * spec.seq) as f64 / median,
        pairs_per_s: (spec.stage == Stage::Dpo).then(|| spec.batch as f64 / median),
        reference_s,
        loss_first: losses[0],
        loss_last: *losses.last().unwrap_or(&losses[0]),
        phases: spec.phases.then(|| clock.medians()),
    })
}

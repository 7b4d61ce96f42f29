//! The training loop (SFT or DPO, one stage after another), run on its own named thread. It reports through `TrainEvent`s
//! (also appended to events.jsonl), obeys `TrainCommand`s between optimiser steps, saves
//! PEFT-format checkpoints with the optimiser state, and resumes from one so that the loss
//! sequence equals an uninterrupted run's.

use super::dpo::weighted_mean;
use super::dpo_objective::DpoObjective;
use super::events::{EventLog, TrainCommand, TrainEvent};
use super::grpo_health::GrpoHealth;
use super::grpo_objective::GrpoObjective;
use super::health::{DpoHealth, Health};
use super::objective::{Objective, SftObjective};
use super::optim::{AdamW, AdamWParams, FlatGrads};
use super::schedule::{warmup_steps_from_ratio, LrSchedule};
use super::step::{accumulate, Accumulated};
use crate::config::{RunConfig, Stage};
use crate::data::batch::batch_order;
use crate::data::sft::{load_sft_file, tokenize_dataset};
use crate::device::{self, DeviceChoice};
use crate::eval::cases::load_eval_file;
use crate::eval::live::LiveEval;
use crate::fsutil::{
    claim_run_dir, clean_leftovers, set_default_permissions, write_dir_atomically,
    write_file_atomically,
};
use crate::hw::calibration::MemoryRecord;
use crate::hw::estimate::{estimate, Estimate, ModelFacts};
use crate::hw::peak::{PeakReading, PeakSampler};
use crate::model::info::ModelInfo;
use crate::model::lora::LoraConfig;
use crate::model::peft::{check_adapter_base, load_adapter, save_adapter, write_adapter_files};
use crate::model::{LoadedModel, ModelSource};
use anyhow::{bail, Context, Result};
use candle_core::quantized::GgmlDType;
use candle_core::Var;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

pub const STATE_FILE: &str = "trainer_state.json";
/// The training thread's name (the workbench's panic hook leaves its panics to the run).
pub const THREAD_NAME: &str = "tunelab-trainer";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// Where a run starts: fresh, or from a checkpoint folder.
#[derive(Debug, Clone)]
pub enum Start {
    Fresh(Box<RunConfig>),
    /// A checkpoint folder, and optionally a new max_steps.
    Resume(PathBuf, Option<usize>),
}

/// What a checkpoint records besides the adapter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainerState {
    pub global_step: usize,
    pub config: RunConfig,
    pub losses: Vec<f64>,
}

/// The caller's side of a running trainer. Dropping it cancels the run and joins the thread.
pub struct TrainerHandle {
    pub events: Receiver<TrainEvent>,
    commands: Sender<TrainCommand>,
    cancel: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TrainerHandle {
    pub fn send(&self, command: TrainCommand) {
        let _ = self.commands.send(command);
    }

    /// Waits for the thread to end.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TrainerHandle {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts a run on the "tunelab-trainer" thread.
pub fn spawn(start: Start, device: DeviceChoice) -> Result<TrainerHandle> {
    let (event_tx, events) = channel();
    let (commands, command_rx) = channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let thread = std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(move || {
            let mut run = Run {
                events: event_tx,
                commands: command_rx,
                cancel: flag,
                logs: Vec::new(),
            };
            let outcome = panics_as_errors(|| run.train(start, device));
            let (ok, message, output_dir, adapter) = match outcome {
                Ok(done) => (true, done.message, done.output_dir, Some(done.adapter)),
                Err(e) => (
                    false,
                    explain_failure(&format!("{e:#}")),
                    String::new(),
                    None,
                ),
            };
            run.emit(TrainEvent::Finished {
                ok,
                message,
                output_dir,
                adapter,
            });
        })
        .context("starting the trainer thread")?;
    Ok(TrainerHandle {
        events,
        commands,
        cancel,
        thread: Some(thread),
    })
}

struct Done {
    message: String,
    output_dir: String,
    adapter: String,
    stopped: bool,
}

struct Run {
    events: Sender<TrainEvent>,
    commands: Receiver<TrainCommand>,
    cancel: Arc<AtomicBool>,
    /// The stage's events.jsonl, and a pipeline's own one beside its stages' folders.
    logs: Vec<EventLog>,
}

impl Run {
    fn emit(&mut self, event: TrainEvent) {
        let mut failures = Vec::new();
        for log in &mut self.logs {
            if let Err(e) = log.append(&event) {
                failures.push(format!("{e:#}"));
            }
        }
        for message in failures {
            let _ = self.events.send(TrainEvent::Warning { step: 0, message });
        }
        let _ = self.events.send(event);
    }

    fn check_cancel(&self, what: &str) -> Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            bail!("cancelled {what}");
        }
        Ok(())
    }

    /// Runs every stage of the config (or resumes one), in order; the last stage's result.
    fn train(&mut self, start: Start, device_choice: DeviceChoice) -> Result<Done> {
        match start {
            Start::Fresh(config) => {
                config.validate()?;
                let mut config = *config;
                config.output_dir = claim_run_dir(&config.output_dir)?;
                let stages = config.stage_configs()?;
                for stage in &stages {
                    if !stage.output_dir.starts_with(&config.output_dir) {
                        refuse_used_dir(&stage.output_dir)?;
                    }
                }
                let pipeline_log = if stages.len() > 1 {
                    Some(config.output_dir.clone())
                } else {
                    None
                };
                let mut last = None;
                for stage in stages {
                    let done =
                        self.train_stage(stage, None, pipeline_log.as_deref(), device_choice)?;
                    // A stopped stage ends the pipeline: the next would start from a partial adapter.
                    let stopped = done.stopped;
                    last = Some(done);
                    if stopped {
                        break;
                    }
                }
                last.context("the config has no stage")
            }
            Start::Resume(dir, max_steps) => {
                let state = read_state(&dir)?;
                let mut config = state.config.clone();
                if max_steps.is_some() {
                    config.max_steps = max_steps;
                }
                // Checked before any folder is chosen, so a refused resume writes nothing.
                if let Some(max) = config.max_steps.filter(|&m| m <= state.global_step) {
                    bail!(
                        "{}: the checkpoint is at step {} and max_steps is {max}: nothing is \
                         left to train (give --max-steps above {})",
                        dir.display(),
                        state.global_step,
                        state.global_step
                    );
                }
                config.output_dir = resume_dir(&dir)?;
                self.train_stage(config, Some((dir, state)), None, device_choice)
            }
        }
    }

    fn train_stage(
        &mut self,
        config: RunConfig,
        resume: Option<(PathBuf, TrainerState)>,
        pipeline_log: Option<&Path>,
        device_choice: DeviceChoice,
    ) -> Result<Done> {
        config.validate()?;
        self.logs = vec![EventLog::open(&config.output_dir)?];
        if let Some(dir) = pipeline_log {
            self.logs.push(EventLog::open(dir)?);
        }
        let device = device::open(device_choice)?;
        // Sampled from before the model loads, so the peak minus the baseline is this run's.
        let memory = if device.is_cuda() {
            PeakSampler::start(0)
        } else {
            None
        };
        let source = ModelSource::parse(Some(config.model_name.as_str()))?;
        if let Some(dir) = &config.init_adapter {
            check_adapter_base(dir, &source).context("init_adapter")?;
        }
        let mut loaded = LoadedModel::load(&source, &device, &mut |_| {})?;
        // A dense (safetensors) base becomes a 4-bit base: QLoRA.
        loaded.model.quantize_linears(GgmlDType::Q4_1)?;
        // bf16 compute on CUDA; LoRA weights, optimiser state, norms, softmax and loss stay f32.
        if device.is_cuda() {
            loaded.model.set_activation_dtype(candle_core::DType::BF16);
        }
        let layers = loaded.model.config().num_hidden_layers;
        let checkpointed = config.gradient_checkpointing.layers(layers);
        loaded.model.set_checkpointed_layers(checkpointed);
        // The start point: a given adapter (its own LoRA settings), or a fresh one.
        let lora = match &config.init_adapter {
            Some(dir) => load_adapter(&mut loaded.model, dir).context("init_adapter")?,
            None => {
                loaded.model.attach_lora(&config.lora(), config.seed)?;
                config.lora()
            }
        };
        let pad_id = *loaded
            .stop_ids
            .first()
            .context("the model has no end token to pad with")?;
        let mut warnings = Vec::new();
        // An eval file of cases is scored with the eval metrics during training; any other
        // eval file is the stage's own kind of data (eval loss, eval rewards).
        let eval_cases = config
            .eval_file
            .as_deref()
            .and_then(|p| load_eval_file(p).ok());
        let eval_data = config.eval_file.as_deref().filter(|_| eval_cases.is_none());
        let mut objective: Box<dyn Objective> = match config.stage {
            Stage::Sft => {
                let (objective, found) =
                    sft_objective(&config, eval_data, &loaded, &device, pad_id)?;
                warnings.extend(found);
                Box::new(objective)
            }
            Stage::Dpo => {
                let cancel = self.cancel.clone();
                let events = self.events.clone();
                let mut logs = std::mem::take(&mut self.logs);
                // Before Started: the reference pass is part of getting ready.
                let prepared =
                    DpoObjective::prepare(&config, eval_data, &loaded, &device, pad_id, &mut |e| {
                        for log in &mut logs {
                            log.append(&e)?;
                        }
                        let _ = events.send(e);
                        if cancel.load(Ordering::Relaxed) {
                            bail!("cancelled while computing reference log-probs");
                        }
                        Ok(())
                    });
                self.logs = logs;
                let (objective, found) = prepared?;
                warnings.extend(found);
                Box::new(objective)
            }
            Stage::Grpo => {
                let (objective, found) = GrpoObjective::prepare(&config, &loaded, &device, pad_id)?;
                warnings.extend(found);
                Box::new(objective)
            }
        };
        let mut live_eval = match eval_cases {
            Some(cases) => Some(LiveEval::new(&config, cases)?),
            None => None,
        };
        if let Some((dir, _)) = &resume {
            load_adapter(&mut loaded.model, dir)?;
        }
        let vars: Vec<Var> = loaded.model.lora_vars();
        let trainable: usize = vars.iter().map(|v| v.elem_count()).sum();
        let mut plan = Plan::new(&config, objective.lengths());

        let mut optimizer = AdamW::new(
            vars.clone(),
            AdamWParams {
                lr: config.learning_rate,
                beta1: config.adam_beta1,
                beta2: config.adam_beta2,
                eps: config.adam_epsilon,
                weight_decay: config.weight_decay,
            },
        )?;
        let mut losses = Vec::new();
        let mut step = 0;
        if let Some((dir, state)) = &resume {
            let path = dir.join(OPTIMIZER_FILE);
            let tensors = candle_core::safetensors::load(&path, &device)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            optimizer.load_state(&tensors, state.global_step)?;
            step = state.global_step;
            losses = state.losses.clone();
        }
        if resume.is_some() && step >= plan.total_steps {
            bail!(
                "the checkpoint is at step {step} and the run has {} steps: nothing is left to \
                 train (give --max-steps above {step})",
                plan.total_steps
            );
        }
        let truncated = objective.truncated();
        self.emit(TrainEvent::Started {
            output_dir: config.output_dir.display().to_string(),
            total_steps: plan.total_steps,
            start_step: step,
            examples: objective.examples(),
            truncated,
            trainable_parameters: trainable,
            device: device::describe(&device),
            stage: config.stage.name().into(),
        });
        if truncated > 0 {
            self.emit(TrainEvent::Warning {
                step,
                message: format!(
                    "{truncated} of {} examples were cut at max_seq_length {}",
                    objective.examples(),
                    config.max_seq_length
                ),
            });
        }
        for message in warnings {
            self.emit(TrainEvent::Warning { step, message });
        }
        let mut health: Option<Box<dyn Health>> = match config.stage {
            Stage::Sft => None,
            Stage::Dpo => Some(Box::new(DpoHealth::new(
                config.per_device_train_batch_size * config.gradient_accumulation_steps,
                plan.schedule.warmup_steps,
                config.loss(),
                config.rpo_alpha.is_some(),
            ))),
            Stage::Grpo => Some(Box::new(GrpoHealth::new(config.beta()))),
        };
        loaded.model.adapters().set_training(true);
        let started = Instant::now();
        let mut stop_requested = false;
        let mut last_saved = usize::MAX;
        while step < plan.total_steps && !stop_requested {
            self.check_cancel(&format!("at step {step}"))?;
            let step_started = Instant::now();
            let lr = plan.schedule.lr_at(step);
            optimizer.set_lr(lr);
            let rollout = objective.rollout(&loaded, step)?;
            let batches: Vec<_> = match &rollout {
                Some(r) => r.batches.clone(),
                None => (0..config.gradient_accumulation_steps)
                    .map(|k| plan.micro_batch(step * config.gradient_accumulation_steps + k))
                    .collect(),
            };
            if let Some((prompt, samples)) = rollout.as_ref().and_then(|r| r.sample.clone()) {
                self.emit(TrainEvent::Completions {
                    step: step + 1,
                    prompt,
                    samples,
                });
            }
            let Accumulated {
                grads,
                loss: loss_sum,
                tokens,
                parts,
            } = accumulate(
                objective.as_ref(),
                &loaded.model,
                &vars,
                &batches,
                config.seed,
                step * config.gradient_accumulation_steps,
                &mut |_| Ok(()),
            )?;
            if !loss_sum.is_finite() {
                bail!(
                    "the loss became {loss_sum} at step {}; stopped, the last good checkpoint is kept \
                     (try a lower learning_rate)",
                    step + 1
                );
            }
            let mut grads = FlatGrads::gather(&grads, &vars)?;
            let grad_norm = grads.clip(config.max_grad_norm)?;
            optimizer.step(&grads)?;
            let grad_norm = grad_norm.to_scalar::<f64>()?;
            step += 1;
            losses.push(loss_sum);
            let mut metrics = weighted_mean(&parts);
            metrics.remove("loss");
            if let Some(rollout) = rollout {
                metrics.extend(rollout.metrics);
                let share = rollout.generation_secs / step_started.elapsed().as_secs_f64();
                metrics.insert("rollout/generation_share".into(), share);
            }
            if let Some(health) = health.as_mut() {
                let mut observed = metrics.clone();
                observed.insert("loss".into(), loss_sum);
                for message in health.observe(&observed) {
                    self.emit(TrainEvent::Warning { step, message });
                }
            }
            if step % config.logging_steps == 0 || step == plan.total_steps {
                self.emit(TrainEvent::Step {
                    step,
                    epoch: plan.epoch_at(step),
                    loss: loss_sum,
                    lr,
                    grad_norm,
                    tokens_per_s: tokens as f64 / step_started.elapsed().as_secs_f64(),
                    elapsed_s: started.elapsed().as_secs_f64(),
                    metrics,
                });
            }
            let mut save_now = step % config.save_steps == 0 && step < plan.total_steps;
            loop {
                match self.commands.try_recv() {
                    Ok(TrainCommand::SaveNow) => save_now = true,
                    Ok(TrainCommand::Stop) => {
                        stop_requested = true;
                        save_now = true;
                    }
                    Ok(TrainCommand::Pause) => {
                        if self.wait_for_resume()? {
                            stop_requested = true;
                            save_now = true;
                        }
                    }
                    Ok(TrainCommand::Resume) => {}
                    Err(_) => break,
                }
            }
            let eval_due =
                config.eval_steps.is_some_and(|n| step % n == 0) || step == plan.total_steps;
            if eval_due {
                let switch = loaded.model.adapters();
                switch.set_training(false);
                let metrics = objective.evaluate(&loaded);
                switch.set_training(true);
                let mut metrics = metrics?;
                if let Some(live) = live_eval.as_mut() {
                    let found = live.run(&loaded)?;
                    metrics.extend(found.metrics);
                    self.emit(TrainEvent::Sample {
                        step,
                        prompt: found.prompt,
                        base: found.base,
                        tuned: found.tuned,
                    });
                }
                if !metrics.is_empty() {
                    self.emit(TrainEvent::Eval { step, metrics });
                }
            }
            if save_now {
                self.checkpoint(&loaded, &config, &lora, &optimizer, step, &losses)?;
                last_saved = step;
            }
        }
        loaded.model.adapters().set_training(false);
        let final_dir = config.output_dir.join("adapter");
        save_adapter(
            &loaded.model,
            &lora,
            base_name(&config).as_deref(),
            &final_dir,
        )?;
        if last_saved != step {
            self.checkpoint(&loaded, &config, &lora, &optimizer, step, &losses)?;
        }
        if let Some(sampler) = memory {
            // The estimate at the longest sequence the data actually has (batches are padded
            // to their longest), beside the measured peak: the calibration record.
            let mut shaped = config.clone();
            shaped.max_seq_length = objective.lengths().into_iter().max().unwrap_or(1);
            let facts = ModelFacts::of(&ModelInfo::of(&loaded));
            let estimate = estimate(&shaped, &facts, None);
            write_memory_record(&config.output_dir, &sampler.finish(0), &estimate)?;
        }
        Ok(Done {
            message: format!(
                "{} {} at step {step}; adapter in {}",
                config.stage.name().to_uppercase(),
                if stop_requested {
                    "stopped"
                } else {
                    "finished"
                },
                final_dir.display()
            ),
            output_dir: config.output_dir.display().to_string(),
            adapter: final_dir.display().to_string(),
            stopped: stop_requested,
        })
    }

    /// Blocks while paused. Returns true when told to stop instead of resuming.
    fn wait_for_resume(&mut self) -> Result<bool> {
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                return Ok(true);
            }
            match self
                .commands
                .recv_timeout(std::time::Duration::from_millis(200))
            {
                Ok(TrainCommand::Resume) => return Ok(false),
                Ok(TrainCommand::Stop) => return Ok(true),
                Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(true),
            }
        }
    }

    fn checkpoint(
        &mut self,
        loaded: &LoadedModel,
        config: &RunConfig,
        lora: &LoraConfig,
        optimizer: &AdamW,
        step: usize,
        losses: &[f64],
    ) -> Result<PathBuf> {
        let dir = config.output_dir.join(format!("checkpoint-{step}"));
        let state = TrainerState {
            global_step: step,
            config: config.clone(),
            losses: losses.to_vec(),
        };
        write_dir_atomically(&dir, |tmp| {
            write_adapter_files(&loaded.model, lora, base_name(config).as_deref(), tmp)?;
            candle_core::safetensors::save(&optimizer.state_tensors()?, tmp.join(OPTIMIZER_FILE))?;
            set_default_permissions(&tmp.join(OPTIMIZER_FILE))?;
            std::fs::write(tmp.join(STATE_FILE), serde_json::to_string_pretty(&state)?)?;
            Ok(())
        })?;
        self.emit(TrainEvent::Checkpoint {
            step,
            path: dir.display().to_string(),
        });
        Ok(dir)
    }
}

/// Records the run's measured device memory and its estimate in output_dir (atomically),
/// for calibration.
fn write_memory_record(
    output_dir: &Path,
    reading: &PeakReading,
    estimate: &Estimate,
) -> Result<()> {
    let record = MemoryRecord {
        method: "NVML device memory in use, sampled every 100 ms".into(),
        baseline_used_bytes: reading.baseline_used_bytes,
        peak_used_bytes: reading.peak_used_bytes,
        run_peak_bytes: reading.run_peak_bytes(),
        estimate: Some(estimate.clone()),
    };
    write_file_atomically(
        &output_dir.join(crate::hw::calibration::MEMORY_FILE),
        serde_json::to_string_pretty(&record)?.as_bytes(),
    )
}

/// Where a resumed run writes: beside its checkpoint when that run never finished, else a new
/// run folder beside it, so the finished adapter and later checkpoints stay as they were.
fn resume_dir(checkpoint: &Path) -> Result<PathBuf> {
    let checkpoint = std::path::absolute(checkpoint)
        .with_context(|| format!("{}: cannot resolve", checkpoint.display()))?;
    let run = checkpoint
        .parent()
        .context("a checkpoint folder lies inside its run's folder")?;
    if run.join("adapter").exists() {
        return claim_run_dir(run);
    }
    clean_leftovers(run, std::time::Duration::ZERO);
    Ok(run.to_path_buf())
}

/// A stage whose output_dir a config sets on its own must not land in an earlier run.
fn refuse_used_dir(dir: &Path) -> Result<()> {
    if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        bail!(
            "{}: a stage's output_dir already holds a run; remove the stage's output_dir (each \
             run then gets a fresh folder) or name an empty one",
            dir.display()
        );
    }
    Ok(())
}

/// A panic in the engine (or a dependency) as an error, so the run ends as a failure and never
/// as a thread that quietly stops sending events.
fn panics_as_errors<T>(work: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
        .unwrap_or_else(|panic| bail!("the trainer failed: {}", panic_message(&panic)))
}

/// The text a panic carried.
fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

fn base_name(config: &RunConfig) -> Option<String> {
    let name = config.model_name.trim();
    Some(if config.model_name.is_empty() {
        crate::model::fetch::DEFAULT_MODEL_FILE.to_string()
    } else if let Some(model) =
        crate::model::fetch::bundled(name).filter(|_| !Path::new(name).exists())
    {
        // A bundled model named by its name: its file name, as for the default, which
        // `--model` takes back and which matches the cached GGUF's name.
        model.file.to_string()
    } else {
        config.model_name.clone()
    })
}

fn read_state(dir: &Path) -> Result<TrainerState> {
    let path = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: cannot read (is this a checkpoint folder?)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a trainer state", path.display()))
}

/// The order of micro-batches over the whole run, and the schedule.
struct Plan {
    /// The batch order of the epoch last asked for.
    cached: Option<(usize, Vec<Vec<usize>>)>,
    batches_per_epoch: usize,
    accumulation: usize,
    total_steps: usize,
    schedule: LrSchedule,
    lengths: Vec<usize>,
    batch_size: usize,
    group_by_length: bool,
    seed: u64,
}

impl Plan {
    fn new(config: &RunConfig, lengths: Vec<usize>) -> Self {
        let bs = config.per_device_train_batch_size;
        let batches_per_epoch = lengths.len().div_ceil(bs).max(1);
        let accumulation = config.gradient_accumulation_steps;
        let total_steps = config.max_steps.unwrap_or_else(|| {
            ((config.num_train_epochs * batches_per_epoch as f64) / accumulation as f64).ceil()
                as usize
        });
        let warmup = config
            .warmup_steps
            .unwrap_or_else(|| warmup_steps_from_ratio(config.warmup_ratio, total_steps));
        Self {
            cached: None,
            batches_per_epoch,
            accumulation,
            total_steps,
            schedule: LrSchedule {
                kind: config.lr_scheduler_type,
                base_lr: config.learning_rate,
                warmup_steps: warmup,
                total_steps,
            },
            lengths,
            batch_size: bs,
            group_by_length: config.group_by_length,
            seed: config.seed,
        }
    }

    /// Example indices of the `index`-th micro-batch of the run (epochs follow each other).
    fn micro_batch(&mut self, index: usize) -> Vec<usize> {
        let epoch = index / self.batches_per_epoch;
        if self.cached.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let order = batch_order(
                &self.lengths,
                self.batch_size,
                self.group_by_length,
                self.seed,
                epoch,
            );
            self.cached = Some((epoch, order));
        }
        let (_, order) = self.cached.as_ref().expect("cached just above");
        order[index % self.batches_per_epoch].clone()
    }

    fn epoch_at(&self, step: usize) -> f64 {
        (step * self.accumulation) as f64 / self.batches_per_epoch as f64
    }
}

/// The SFT objective of a config: its train data, and its eval data when eval_file is SFT data
/// (otherwise a warning: such files hold eval cases, which `tunelab eval` scores).
fn sft_objective(
    config: &RunConfig,
    eval_data: Option<&Path>,
    loaded: &LoadedModel,
    device: &candle_core::Device,
    pad_id: u32,
) -> Result<(SftObjective, Vec<String>)> {
    let tokenize = |path: &Path| {
        load_sft_file(path).and_then(|ds| {
            tokenize_dataset(
                &ds,
                &loaded.template,
                &loaded.tokenizer,
                config.system_prompt.as_deref(),
                config.max_seq_length,
            )
        })
    };
    let data = tokenize(&config.train_file)?;
    let mut warnings: Vec<String> = data
        .warning(&config.train_file, config.max_seq_length)
        .into_iter()
        .collect();
    let eval = match eval_data {
        None => None,
        Some(path) => match tokenize(path) {
            Ok(d) => Some(d),
            Err(e) => {
                warnings.push(format!(
                    "eval_file is neither SFT data ({e:#}) nor eval cases, so no eval runs"
                ));
                None
            }
        },
    };
    Ok((
        SftObjective {
            data,
            eval,
            pad_id,
            batch_size: config.per_device_train_batch_size,
            device: device.clone(),
        },
        warnings,
    ))
}

/// Turns a CUDA out-of-memory error into advice; other messages pass through.
pub fn explain_failure(message: &str) -> String {
    let lower = message.to_lowercase();
    if lower.contains("out_of_memory") || lower.contains("out of memory") {
        format!(
            "the GPU ran out of memory: lower per_device_train_batch_size or max_seq_length \
             (raise gradient_accumulation_steps to keep the effective batch); {message}"
        )
    } else {
        message.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_naming_it() {
        let err = panics_as_errors(|| -> Result<()> {
            let divisor = std::hint::black_box(0u64);
            let _ = 7 / divisor;
            Ok(())
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the trainer failed: attempt to divide by zero"),
            "{err}"
        );
        let err = panics_as_errors(|| -> Result<()> { panic!("{} went wrong", "it") }).unwrap_err();
        assert_eq!(err.to_string(), "the trainer failed: it went wrong");
        assert_eq!(panics_as_errors(|| Ok(3)).unwrap(), 3);
    }

    #[test]
    fn a_bundled_base_is_recorded_by_its_file_name() {
        let named = |model_name: &str| {
            base_name(&RunConfig {
                model_name: model_name.into(),
                ..RunConfig::default()
            })
            .unwrap()
        };
        assert_eq!(named(""), crate::model::fetch::DEFAULT_MODEL_FILE);
        assert_eq!(named("gemma3-270m"), "gemma-3-270m-q4_k_m.gguf");
        assert_eq!(named("models/other.gguf"), "models/other.gguf");
        // The recorded name names the same model again.
        assert_eq!(
            ModelSource::parse(Some(&named("gemma3-270m"))).unwrap(),
            ModelSource::parse(Some("gemma3-270m")).unwrap()
        );
    }
}

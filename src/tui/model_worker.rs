//! The thread that holds a model for the workbench: it renders and tokenizes dataset records
//! for the data screen and generates the compare screen's replies. The model is loaded on the
//! first job that needs it and kept; base and tuned replies share it, with the adapter
//! switched off for the base.

use super::app::{ModelJob as Job, ModelSettings, Msg};
use super::compare::{ReplyPiece, Side};
use super::data::Inspection;
use crate::data::sft::{tokenize_record, SftRecord};
use crate::device::{self, DeviceChoice};
use crate::model::constrain::Constraint;
use crate::model::peft::{check_adapter_base, load_adapter};
use crate::model::{generate, LoadedModel, ModelSource, SamplingParams};
use anyhow::{Context, Result};
use candle_core::quantized::GgmlDType;
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// Replies are this long at most.
const MAX_REPLY_TOKENS: usize = 256;

pub struct ModelWorker {
    jobs: Sender<Job>,
    /// The generation job that may run; any other stops at its next token.
    current: Arc<AtomicU64>,
}

impl ModelWorker {
    pub fn spawn(out: UnboundedSender<Msg>) -> Result<Self> {
        let (jobs, inbox) = channel();
        let current = Arc::new(AtomicU64::new(0));
        let flag = current.clone();
        std::thread::Builder::new()
            .name("tunelab-model".into())
            .spawn(move || Worker::new(out, flag).serve(inbox))
            .context("starting the model thread")?;
        Ok(Self { jobs, current })
    }

    pub fn send(&self, job: Job) {
        if let Job::Generate { job, .. } = &job {
            self.current.store(*job, Ordering::Relaxed);
        }
        let _ = self.jobs.send(job);
    }

    pub fn cancel_generation(&self) {
        self.current.store(u64::MAX, Ordering::Relaxed);
    }
}

struct Worker {
    out: UnboundedSender<Msg>,
    current: Arc<AtomicU64>,
    /// The loaded model, by its config name, and the adapter on it.
    loaded: Option<(String, Option<PathBuf>, LoadedModel)>,
}

impl Worker {
    fn new(out: UnboundedSender<Msg>, current: Arc<AtomicU64>) -> Self {
        Self {
            out,
            current,
            loaded: None,
        }
    }

    fn serve(mut self, inbox: Receiver<Job>) {
        while let Ok(first) = inbox.recv() {
            // Of several queued inspections only the newest matters (the user scrolled on).
            let mut jobs = vec![first];
            jobs.extend(inbox.try_iter());
            let last_inspect = jobs.iter().rposition(|j| matches!(j, Job::Inspect { .. }));
            for (i, job) in jobs.into_iter().enumerate() {
                if matches!(job, Job::Inspect { .. }) && Some(i) != last_inspect {
                    continue;
                }
                if self.run(job).is_err() {
                    return; // The workbench has closed.
                }
            }
        }
    }

    fn send(&self, msg: Msg) -> Result<(), ()> {
        self.out.send(msg).map_err(|_| ())
    }

    fn run(&mut self, job: Job) -> Result<(), ()> {
        match job {
            Job::Inspect {
                path,
                line,
                record,
                settings,
            } => {
                let result = self
                    .model(&settings.model)
                    .and_then(|m| inspect(m, &record, &settings))
                    .map(|inspection| Inspection {
                        path,
                        line,
                        ..inspection
                    })
                    .map_err(|e| format!("{e:#}"));
                self.send(Msg::Inspected(result))
            }
            Job::Lengths {
                path,
                records,
                settings,
            } => match self.model(&settings.model) {
                Ok(model) => {
                    let lengths: Vec<usize> = records
                        .par_iter()
                        .map(|r| {
                            tokenize_record(
                                r,
                                &model.template,
                                &model.tokenizer,
                                settings.system_prompt.as_deref(),
                                usize::MAX,
                            )
                            .map_or(0, |e| e.input_ids.len())
                        })
                        .collect();
                    self.send(Msg::Lengths { path, lengths })
                }
                Err(e) => self.send(Msg::ModelStatus(format!("{e:#}"))),
            },
            Job::Generate {
                job,
                case,
                prompt,
                settings,
                adapter,
                constraint,
            } => {
                let sides: &[Side] = if adapter.is_some() {
                    &[Side::Base, Side::Tuned]
                } else {
                    &[Side::Base]
                };
                let prepared = self
                    .model(&settings.model)
                    .map(|_| ())
                    .and_then(|_| self.use_adapter(adapter.as_ref()));
                for &side in sides {
                    let piece = match &prepared {
                        Err(e) => ReplyPiece::Failed(format!("{e:#}")),
                        Ok(()) => {
                            match self.reply(job, (case, side), &prompt, &settings, &constraint) {
                                Ok(()) => ReplyPiece::Done,
                                Err(e) => ReplyPiece::Failed(format!("{e:#}")),
                            }
                        }
                    };
                    self.send(Msg::Reply {
                        job,
                        case,
                        side,
                        piece,
                    })?;
                }
                self.send(Msg::GenerationDone { job })
            }
        }
    }

    /// The model named by a config (empty: the default), loading it when another is held.
    fn model(&mut self, name: &str) -> Result<&LoadedModel> {
        if self.loaded.as_ref().is_none_or(|(n, _, _)| n != name) {
            self.loaded = None;
            let source = ModelSource::parse(Some(name))?;
            let _ = self
                .out
                .send(Msg::ModelStatus(format!("loading {}…", source.describe())));
            let device = device::open(DeviceChoice::Auto)?;
            let out = self.out.clone();
            let mut progress = |line: &str| {
                let _ = out.send(Msg::ModelStatus(line.to_string()));
            };
            let mut model = LoadedModel::load(&source, &device, &mut progress)?;
            // The base as training sees it: a dense base is quantized to 4 bits.
            model.model.quantize_linears(GgmlDType::Q4_1)?;
            let _ = self.out.send(Msg::ModelStatus(String::new()));
            self.loaded = Some((name.to_string(), None, model));
        }
        Ok(&self.loaded.as_ref().expect("loaded above").2)
    }

    fn use_adapter(&mut self, adapter: Option<&PathBuf>) -> Result<()> {
        let (name, on, model) = self.loaded.as_mut().expect("model loaded first");
        if let Some(dir) = adapter {
            if on.as_ref() != Some(dir) {
                check_adapter_base(dir, &ModelSource::parse(Some(name.as_str()))?)?;
                load_adapter(&mut model.model, dir)?;
                *on = Some(dir.clone());
            }
        }
        Ok(())
    }

    fn reply(
        &self,
        job: u64,
        (case, side): (usize, Side),
        prompt: &str,
        settings: &ModelSettings,
        constraint: &Option<Constraint>,
    ) -> Result<()> {
        let (_, _, model) = self.loaded.as_ref().expect("model loaded first");
        model.model.adapters().set_enabled(side == Side::Tuned);
        let ids = model.chat_prompt(settings.system_prompt.as_deref(), prompt)?;
        let params = SamplingParams {
            max_tokens: MAX_REPLY_TOKENS,
            constraint: constraint.clone(),
            ..SamplingParams::default()
        };
        generate(
            &model.model,
            &model.tokenizer,
            &ids,
            &params,
            &model.stop_ids,
            |piece| {
                let live = self.current.load(Ordering::Relaxed) == job;
                let sent = self.out.send(Msg::Reply {
                    job,
                    case,
                    side,
                    piece: ReplyPiece::Text(piece.to_string()),
                });
                Ok(live && sent.is_ok())
            },
        )?;
        Ok(())
    }
}

/// The record through the chat template, and its tokens (up to max_seq_length) with whether
/// each carries loss; also how many tokens past max_seq_length are cut. The path and line are
/// left for the caller.
fn inspect(
    model: &LoadedModel,
    record: &SftRecord,
    settings: &ModelSettings,
) -> Result<Inspection> {
    let system = settings.system_prompt.as_deref();
    let rendered = model.template.render(&record.conversation(system), false)?;
    let example = tokenize_record(
        record,
        &model.template,
        &model.tokenizer,
        system,
        usize::MAX,
    )?;
    let kept = example.input_ids.len().min(settings.max_seq_length);
    let tokens = example.input_ids[..kept]
        .iter()
        .zip(&example.labels)
        .map(|(&id, &label)| {
            let text = model.tokenizer.decode(&[id], false)?;
            Ok((text, label >= 0))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Inspection {
        path: PathBuf::new(),
        line: 0,
        rendered,
        tokens,
        truncated: example.input_ids.len() - kept,
    })
}

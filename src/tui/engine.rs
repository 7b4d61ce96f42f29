//! Carries out the effects `App::update` asks for, off the UI thread: file reads on short-lived
//! threads, the model on its worker thread, training on the trainer's thread, hardware polled
//! once a second. Every result comes back as a `Msg` on one channel.

use super::app::{Effect, Msg};
use super::compare::read_cases;
use super::data::read_dataset;
use super::discover;
use super::follow;
use super::model_worker::ModelWorker;
use crate::config::RunConfig;
use crate::device::DeviceChoice;
use crate::train::events::TrainEvent;
use crate::train::trainer::{spawn, Start, TrainerHandle};
use anyhow::Result;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

pub struct Engine {
    out: UnboundedSender<Msg>,
    model: ModelWorker,
    trainer: Option<TrainerHandle>,
    /// Stops the follow thread of the run being followed.
    following: Option<Arc<AtomicBool>>,
    hardware_stop: Arc<AtomicBool>,
    server: Option<super::services::Server>,
}

impl Engine {
    pub fn start(out: UnboundedSender<Msg>) -> Result<Self> {
        let hardware_stop = Arc::new(AtomicBool::new(false));
        poll_hardware(out.clone(), hardware_stop.clone());
        Ok(Self {
            model: ModelWorker::spawn(out.clone())?,
            out,
            trainer: None,
            following: None,
            hardware_stop,
            server: None,
        })
    }

    pub fn run(&mut self, effect: Effect) {
        match effect {
            Effect::Discover => self.in_background(|| Msg::Found(discover::scan(Path::new(".")))),
            Effect::LoadConfig(path) => {
                let out = self.out.clone();
                std::thread::spawn(move || {
                    let result = RunConfig::load(&path).map_err(|e| format!("{e:#}"));
                    let estimate = result.as_ref().ok().map(estimate);
                    let _ = out.send(Msg::ConfigLoaded {
                        result: result.map(Box::new),
                        path,
                    });
                    if let Some(estimate) = estimate {
                        let _ = out.send(estimate);
                    }
                });
            }
            Effect::Estimate(config) => self.in_background(move || estimate(&config)),
            Effect::ListModels(config_model) => self.in_background(move || {
                Msg::Models(crate::model::catalog::Catalog::scan(&config_model))
            }),
            Effect::LoadDataset(path) => self.in_background(move || Msg::Dataset {
                result: read_dataset(&path),
                path,
            }),
            Effect::LoadCases(path) => {
                let out = self.out.clone();
                // The prompts first, then (for an eval file, not a file of bare prompts) their
                // checks: in this order, so that the prompts' arrival does not clear the checks.
                std::thread::spawn(move || {
                    let checks = crate::eval::cases::load_eval_file(&path).ok();
                    let _ = out.send(Msg::Cases {
                        result: read_cases(&path),
                        path: path.clone(),
                    });
                    if let Some(cases) = checks {
                        let _ = out.send(Msg::CaseChecks {
                            path,
                            checks: super::checks::CaseChecks::new(cases),
                        });
                    }
                });
            }
            Effect::Model(job) => self.model.send(job),
            Effect::CancelGenerate => self.model.cancel_generation(),
            Effect::StartRun { run, config } => self.start_run(run, config),
            Effect::Command(command) => {
                if let Some(trainer) = &self.trainer {
                    trainer.send(command);
                }
            }
            Effect::MakeData(job) => super::services::make_data(job, self.out.clone()),
            Effect::Serve(job) => {
                self.server = Some(super::services::Server::start(job, self.out.clone()));
            }
            Effect::StopServe => self.server = None,
            Effect::Follow { run, dir } => {
                if let Some(stop) = self.following.take() {
                    stop.store(true, Ordering::Relaxed);
                }
                let stop = Arc::new(AtomicBool::new(false));
                let out = self.out.clone();
                follow::spawn(&dir, stop.clone(), move |item| {
                    let msg = match item {
                        Ok(event) => Msg::Train { run, event },
                        Err(message) => Msg::RunProblem { run, message },
                    };
                    out.send(msg).is_ok()
                });
                self.following = Some(stop);
            }
        }
    }

    fn in_background(&self, job: impl FnOnce() -> Msg + Send + 'static) {
        let out = self.out.clone();
        std::thread::spawn(move || {
            let _ = out.send(job());
        });
    }

    fn start_run(&mut self, run: u64, config: Box<RunConfig>) {
        // The previous run has finished (the app starts one at a time); this joins its thread.
        self.trainer = None;
        match spawn(Start::Fresh(config), DeviceChoice::Auto) {
            Ok(mut handle) => {
                // The events go to the UI's channel through a forwarding thread.
                let events = std::mem::replace(&mut handle.events, std::sync::mpsc::channel().1);
                let out = self.out.clone();
                std::thread::spawn(move || {
                    for event in events {
                        if out.send(Msg::Train { run, event }).is_err() {
                            break;
                        }
                    }
                });
                self.trainer = Some(handle);
            }
            Err(e) => {
                let _ = self.out.send(Msg::Train {
                    run,
                    event: TrainEvent::Finished {
                        ok: false,
                        message: format!("{e:#}"),
                        output_dir: String::new(),
                        adapter: None,
                    },
                });
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.hardware_stop.store(true, Ordering::Relaxed);
        if let Some(stop) = &self.following {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

/// Probes once, then refreshes every second until `stop` is set or the UI has gone.
fn poll_hardware(out: UnboundedSender<Msg>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut report = crate::hw::probe();
        while !stop.load(Ordering::Relaxed) {
            if out.send(Msg::Hardware(Box::new(report.clone()))).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
            crate::hw::refresh(&mut report);
        }
    });
}

/// The memory estimate of `config` on its model (a header read, no load).
fn estimate(config: &RunConfig) -> Msg {
    Msg::Estimate(crate::tui::hardware::estimate_for(config).map_err(|e| format!("{e:#}")))
}

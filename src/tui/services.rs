//! The workbench's long-lived jobs beside training: making data (a recipe or self-instruct)
//! and its own server. Each runs on its own thread and reports through `Msg`s; neither writes
//! to the terminal.

use super::app::Msg;
use super::generate::{GenerateJob, GenerateKind, GenerateProgress};
use super::serve::{ServeCounters, ServeJob};
use crate::data::exclude::prompts_of;
use crate::data::generate::client::{Api, Endpoint, Sampling};
use crate::data::generate::seeds::load_seed_tasks;
use crate::data::generate::{Generator, OutputChecks, Progress};
use crate::data::recipe::Kitchen;
use crate::device::DeviceChoice;
use crate::eval::cases::load_schema;
use crate::fsutil::shown;
use crate::model::peft::check_adapter_base;
use crate::model::ModelSource;
use crate::serve::{serve_with, Control, Limits, ServeOptions};
use anyhow::Result;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

/// Runs a Generate job to its end on a thread of its own.
pub fn make_data(job: GenerateJob, out: UnboundedSender<Msg>) {
    std::thread::spawn(move || {
        let result = match job.kind {
            GenerateKind::Recipe => from_recipe(&job),
            GenerateKind::SelfInstruct => self_instruct(&job, &out),
        };
        let _ = out.send(Msg::MakeDataDone {
            out: job.out.clone(),
            result: result.map_err(|e| format!("{e:#}")),
        });
    });
}

fn from_recipe(job: &GenerateJob) -> Result<String> {
    let report = Kitchen::open(&job.source)?.cook_into(job.n, 42, &job.out)?;
    Ok(format!(
        "wrote {} records to {}",
        report.records,
        shown(&job.out)
    ))
}

fn self_instruct(job: &GenerateJob, out: &UnboundedSender<Msg>) -> Result<String> {
    let sampling = Sampling {
        temperature: 0.7,
        top_p: 0.9,
        max_tokens: 512,
    };
    let endpoint = Endpoint::new(
        &job.endpoint,
        &job.model,
        Api::Chat,
        sampling,
        Duration::from_secs(300),
    );
    let mut generator = Generator::new(load_seed_tasks(&job.source)?, endpoint, job.n);
    generator.checks = OutputChecks {
        json: job.schema.is_some(),
        schema: job.schema.as_deref().map(load_schema).transpose()?,
        excluded: match &job.exclude {
            Some(file) => prompts_of(file)?.into_iter().collect(),
            None => Default::default(),
        },
    };
    let report = |p: &Progress| {
        let _ = out.send(Msg::MakeDataProgress(GenerateProgress {
            kept: p.kept,
            n: p.n,
            requests: p.requests,
            rejected: p.rejected_total(),
            rejected_summary: p.rejected_summary(),
            sample: p.sample.as_ref().map(|s| (s.prompt(), s.output.clone())),
        }));
    };
    let progress = generator.run(&job.out, &report)?;
    Ok(format!("{} records in {}", progress.kept, shown(&job.out)))
}

/// The workbench's server; dropping it stops the server.
pub struct Server {
    stop: Option<oneshot::Sender<()>>,
}

impl Server {
    /// Loads the model and serves it on 127.0.0.1 (a free port) with the adapters trained on
    /// it; the others are left out and counted.
    pub fn start(job: ServeJob, out: UnboundedSender<Msg>) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::spawn(move || {
            let result = serve_job(job, out.clone(), stopped);
            let _ = out.send(Msg::ServeStopped(result.map_err(|e| format!("{e:#}"))));
        });
        Self { stop: Some(stop) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn serve_job(
    job: ServeJob,
    out: UnboundedSender<Msg>,
    stopped: oneshot::Receiver<()>,
) -> Result<()> {
    let model = Some(job.model).filter(|m| !m.is_empty());
    let source = ModelSource::parse(model.as_deref())?;
    let total = job.adapters.len();
    let adapters: Vec<_> = job
        .adapters
        .into_iter()
        .filter(|(_, dir)| check_adapter_base(dir, &source).is_ok())
        .collect();
    let skipped = total - adapters.len();
    let options = ServeOptions {
        model,
        adapters,
        host: "127.0.0.1".into(),
        port: 0,
        api_key: None,
        device: DeviceChoice::Auto,
        limits: Limits {
            max_batch: 8,
            max_queue: 64,
            max_tokens: 2048,
            max_body_bytes: 1 << 20,
        },
    };
    let alive = Arc::new(AtomicBool::new(true));
    let polling = alive.clone();
    let listening = out.clone();
    let control = Control {
        on_listening: Box::new(move |address, models| {
            let _ = listening.send(Msg::ServeStarted {
                address: address.to_string(),
                models,
                skipped,
            });
            poll_stats(address.to_string(), polling, listening);
        }),
        stop: Box::pin(async {
            let _ = stopped.await;
        }),
    };
    let result = serve_with(options, &mut |_| {}, control);
    alive.store(false, Ordering::Relaxed);
    result
}

/// Reads the server's `/v1/stats` once a second while it runs.
fn poll_stats(address: String, alive: Arc<AtomicBool>, out: UnboundedSender<Msg>) {
    std::thread::spawn(move || {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(2))
            .build();
        let url = format!("http://{address}/v1/stats");
        while alive.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_secs(1));
            let Some(stats) = agent
                .get(&url)
                .call()
                .ok()
                .and_then(|r| r.into_json::<serde_json::Value>().ok())
            else {
                continue;
            };
            let number = |key: &str| stats[key].as_u64().unwrap_or(0);
            let counters = ServeCounters {
                uptime_s: stats["uptime_s"].as_f64().unwrap_or(0.0),
                requests: number("requests"),
                completion_tokens: number("completion_tokens"),
                queued: number("queued"),
            };
            if out.send(Msg::ServeCounters(counters)).is_err() {
                return;
            }
        }
    });
}

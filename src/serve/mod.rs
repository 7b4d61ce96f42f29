//! `tunelab serve`: the base model and its adapters behind an OpenAI-compatible HTTP API
//! (`/v1/chat/completions`, `/v1/completions`, `/v1/models`), so code written against
//! OpenAI's clients runs on a tuned model unchanged.
//!
//! Handlers parse and check a request, build its prompt ids and queue it; one worker thread
//! owns the model and generates the queued requests of one model (base or adapter) together
//! as one left-padded batch, switching adapters between batches; each row's text streams
//! back to its request as it is decoded.

mod adapters;
pub mod catalog;
mod chat;
mod completions;
mod decode;
pub mod error;
mod generation;
mod job;
mod queue;
mod request;
mod respond;
mod routes;
mod shutdown;
mod state;
mod stats;
mod stop;
mod stream;
mod worker;

pub use state::Limits;

use crate::device::{self, DeviceChoice};
use crate::model::peft::check_adapter_base;
use crate::model::{LoadedModel, ModelSource};
use adapters::AdapterBank;
use anyhow::{bail, Context, Result};
use catalog::Catalog;
use queue::Queue;
use state::AppState;
use stats::Stats;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{oneshot, Notify};
use worker::Worker;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// As `--model` everywhere: a GGUF, a Hugging Face folder, a Hub repo id, or the default.
    pub model: Option<String>,
    /// (name, PEFT folder) of each adapter served.
    pub adapters: Vec<(String, PathBuf)>,
    pub host: String,
    /// 0: any free port (the one chosen is printed).
    pub port: u16,
    pub api_key: Option<String>,
    pub device: DeviceChoice,
    pub limits: Limits,
}

/// How a server started by code (the workbench) is told where it listens and when to stop.
pub struct Control {
    /// Called once requests are taken, with the address and the model ids served.
    pub on_listening: Box<dyn FnOnce(SocketAddr, Vec<String>) + Send>,
    /// Resolves when the server should stop (waiting requests are answered 503, the replies
    /// being generated finish).
    pub stop: Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// Loads the model and adapters, serves until SIGINT or SIGTERM, and prints
/// `listening on http://ADDR` on stderr once requests are taken.
pub fn serve(options: ServeOptions, progress: &mut dyn FnMut(&str)) -> Result<()> {
    let limits = options.limits;
    let control = Control {
        on_listening: Box::new(move |address, ids| {
            eprintln!(
                "serving {} (batches of up to {} rows, {} waiting at most)",
                ids.join(", "),
                limits.max_batch,
                limits.max_queue
            );
            eprintln!("listening on http://{address}");
        }),
        stop: Box::pin(shutdown::on_signal()),
    };
    serve_with(options, progress, control)
}

/// `serve`, told by `control` where it listens and when to stop.
pub fn serve_with(
    options: ServeOptions,
    progress: &mut dyn FnMut(&str),
    control: Control,
) -> Result<()> {
    let limits = options.limits;
    for (flag, value) in [
        ("--max-batch", limits.max_batch),
        ("--max-queue", limits.max_queue),
        ("--max-tokens-limit", limits.max_tokens),
        ("--max-body-bytes", limits.max_body_bytes),
    ] {
        if value == 0 {
            bail!("{flag} must be at least 1");
        }
    }
    let source = ModelSource::parse(options.model.as_deref())?;
    let (names, dirs): (Vec<String>, Vec<PathBuf>) = options.adapters.iter().cloned().unzip();
    let catalog = Catalog::new(catalog::base_id(&source), names)?;
    for dir in &dirs {
        check_adapter_base(dir, &source)?;
    }
    let device = device::open(options.device)?;
    let LoadedModel {
        mut model,
        tokenizer,
        template,
        stop_ids,
        bos_id,
        ..
    } = LoadedModel::load(&source, &device, progress)?;
    let bank = AdapterBank::load(&mut model, &dirs)?;
    let tokenizer = Arc::new(tokenizer);
    let queue = Arc::new(Queue::new(limits.max_queue));
    let stats = Arc::new(Stats::default());
    let state = Arc::new(AppState {
        catalog,
        tokenizer: tokenizer.clone(),
        stop_ids: stop_ids.clone(),
        template,
        bos_id,
        context: model.config().max_position_embeddings,
        vocab_size: model.config().vocab_size,
        queue: queue.clone(),
        stats: stats.clone(),
        limits,
        api_key: options.api_key.clone().filter(|k| !k.is_empty()),
    });
    let worker = Worker {
        model,
        bank,
        tokenizer,
        stop_ids,
        queue,
        stats,
        max_batch: limits.max_batch,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    progress(&format!("serving on {}", device::describe(&device)));
    runtime.block_on(run(state, worker, &options.host, options.port, control))
}

async fn run(
    state: Arc<AppState>,
    worker: Worker,
    host: &str,
    port: u16,
    control: Control,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .with_context(|| format!("listening on {host}:{port}"))?;
    let address = listener.local_addr()?;
    let (exited, worker_exited) = oneshot::channel();
    let thread = worker.spawn(move || {
        let _ = exited.send(());
    })?;
    (control.on_listening)(address, state.catalog.ids());
    let done = Arc::new(Notify::new());
    let shutdown = shutdown::drained(
        control.stop,
        state.queue.clone(),
        worker_exited,
        done.clone(),
    );
    let server = axum::serve(listener, routes::router(state.clone()))
        .with_graceful_shutdown(shutdown)
        .into_future();
    let outcome = tokio::select! {
        outcome = server => outcome.context("serving HTTP"),
        _ = async {
            done.notified().await;
            tokio::time::sleep(shutdown::CLOSE_GRACE).await;
        } => {
            eprintln!("closing the connections still open");
            Ok(())
        }
    };
    state.queue.close();
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    outcome
}

//! The one thread that owns the model: it takes batches from the queue, puts the batch's
//! adapter on (or the adapters off), decodes the batch and streams each row's text to its
//! request. candle runs synchronously, so generation never blocks the HTTP side.

use super::adapters::AdapterBank;
use super::decode::{decode_batch, BatchRow, RowEnd, RowSink};
use super::error::ApiError;
use super::job::{Finish, Job, RowEvent};
use super::queue::Queue;
use super::stats::Stats;
use super::stop::StopMatcher;
use crate::model::{TextTokenizer, Transformer};
use anyhow::{Context, Result};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

pub struct Worker {
    pub model: Transformer,
    pub bank: AdapterBank,
    pub tokenizer: Arc<TextTokenizer>,
    pub stop_ids: Vec<u32>,
    pub queue: Arc<Queue>,
    pub stats: Arc<Stats>,
    /// The most rows one batch holds.
    pub max_batch: usize,
}

impl Worker {
    /// Runs until the queue closes, then calls `on_exit`.
    pub fn spawn(mut self, on_exit: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("tunelab-serve-model".into())
            .spawn(move || {
                while let Some(batch) = self.queue.next_batch(self.max_batch, &self.stats) {
                    self.run(&batch);
                }
                on_exit();
            })
            .context("starting the generation thread")
    }

    /// Runs one batch; a failure (or a panic inside candle) fails that batch's requests
    /// with a 500 and leaves the worker serving.
    fn run(&mut self, batch: &[Job]) {
        self.bank.select(&mut self.model, batch[0].served);
        let outcome = catch_unwind(AssertUnwindSafe(|| self.decode(batch)));
        let failure = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(e)) => format!("{e:#}"),
            Err(panic) => panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".into()),
        };
        eprintln!("generation failed: {failure}");
        for job in batch {
            let error = ApiError::internal(format!("generation failed: {failure}"));
            let _ = job.events.send(RowEvent::Failed(error));
        }
    }

    fn decode(&self, batch: &[Job]) -> Result<()> {
        let mut rows: Vec<BatchRow> = Vec::new();
        let mut owners = Vec::new();
        let mut matchers = Vec::new();
        for (j, job) in batch.iter().enumerate() {
            for (r, row) in job.rows.iter().enumerate() {
                rows.push(row.clone());
                owners.push((j, r));
                matchers.push(StopMatcher::new(&job.stop));
            }
        }
        let prompt_tokens = batch.iter().map(Job::prompt_tokens).sum();
        self.stats.batch(rows.len(), prompt_tokens);
        let stop_ids: &[u32] = if batch[0].ignore_eos {
            &[]
        } else {
            &self.stop_ids
        };
        let mut sink = BatchSink {
            jobs: batch,
            owners,
            matchers,
            stats: &self.stats,
        };
        decode_batch(&self.model, &self.tokenizer, &rows, stop_ids, &mut sink)
    }
}

/// Sends each row's text, cut at its request's stop sequences, to the row's request.
struct BatchSink<'a> {
    jobs: &'a [Job],
    /// Batch row → (job, row within the job).
    owners: Vec<(usize, usize)>,
    matchers: Vec<StopMatcher>,
    stats: &'a Stats,
}

impl BatchSink<'_> {
    fn send(&self, r: usize, event: RowEvent) -> bool {
        self.jobs[self.owners[r].0].events.send(event).is_ok()
    }
}

impl RowSink for BatchSink<'_> {
    fn text(&mut self, r: usize, piece: &str) -> bool {
        let released = self.matchers[r].feed(piece);
        let row = self.owners[r].1;
        if !released.text.is_empty()
            && !self.send(
                r,
                RowEvent::Text {
                    row,
                    text: released.text,
                },
            )
        {
            return false;
        }
        !released.stopped
    }

    fn wanted(&self, r: usize) -> bool {
        !self.jobs[self.owners[r].0].abandoned()
    }

    fn finished(&mut self, r: usize, end: RowEnd, tokens: usize) {
        self.stats.tokens(tokens);
        let row = self.owners[r].1;
        let finish = match end {
            _ if self.matchers[r].stopped() => Finish::Stop,
            RowEnd::Halted => {
                self.stats.cancelled(1);
                return;
            }
            RowEnd::EndToken => Finish::Stop,
            RowEnd::Length => Finish::Length,
        };
        let rest = self.matchers[r].flush();
        if !rest.is_empty() {
            self.send(r, RowEvent::Text { row, text: rest });
        }
        self.send(
            r,
            RowEvent::Finished {
                row,
                finish,
                completion_tokens: tokens,
            },
        );
    }
}

//! The queue between the HTTP handlers and the generation worker: bounded (a full queue is
//! answered 429 rather than growing without end), closed on shutdown (whatever waits is
//! answered 503), and handing the worker batches of jobs that can run together.

use super::error::ApiError;
use super::job::{Job, RowEvent};
use super::stats::Stats;
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a batch that is not full waits for more requests: a few milliseconds, little
/// beside the time one batch takes to generate.
const BATCH_WINDOW: Duration = Duration::from_millis(5);

pub struct Queue {
    state: Mutex<State>,
    ready: Condvar,
    capacity: usize,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    closed: bool,
}

impl Queue {
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn push(&self, job: Job) -> Result<(), ApiError> {
        let mut state = self.lock();
        if state.closed {
            return Err(ApiError::shutting_down());
        }
        if state.jobs.len() >= self.capacity {
            return Err(ApiError::queue_full(self.capacity));
        }
        state.jobs.push_back(job);
        self.ready.notify_one();
        Ok(())
    }

    /// How many requests wait for the model.
    pub fn waiting(&self) -> usize {
        self.lock().jobs.len()
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Takes no more jobs and answers every waiting one 503; the worker ends once its
    /// current batch is done.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        for job in state.jobs.drain(..) {
            let _ = job.events.send(RowEvent::Failed(ApiError::shutting_down()));
        }
        self.ready.notify_all();
    }

    /// Waits for work and returns the oldest job with the waiting jobs that can share its
    /// batch (same key), in arrival order, up to `max_rows` rows; jobs whose clients left
    /// are dropped. A batch not yet full waits BATCH_WINDOW for more: clients that send
    /// their next request as soon as their last one is answered then share the next batch
    /// instead of each starting one alone. None once the queue is closed.
    pub fn next_batch(&self, max_rows: usize, stats: &Stats) -> Option<Vec<Job>> {
        let mut state = self.lock();
        let first = loop {
            if state.closed {
                return None;
            }
            state.jobs.retain(|job| {
                let gone = job.abandoned();
                if gone {
                    stats.cancelled(job.rows.len());
                }
                !gone
            });
            if let Some(first) = state.jobs.pop_front() {
                break first;
            }
            state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner());
        };
        let mut batch = vec![first];
        let deadline = Instant::now() + BATCH_WINDOW;
        loop {
            fill(&mut state.jobs, &mut batch, max_rows);
            let now = Instant::now();
            if rows(&batch) >= max_rows || now >= deadline || state.closed {
                return Some(batch);
            }
            state = self
                .ready
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

fn rows(batch: &[Job]) -> usize {
    batch.iter().map(|job| job.rows.len()).sum()
}

/// Moves the waiting jobs that fit into `batch` (same key as its first, `max_rows` in all).
fn fill(jobs: &mut VecDeque<Job>, batch: &mut Vec<Job>, max_rows: usize) {
    let key = batch[0].key();
    let mut taken = rows(batch);
    let mut i = 0;
    while i < jobs.len() && taken < max_rows {
        if jobs[i].key() == key && !jobs[i].abandoned() && taken + jobs[i].rows.len() <= max_rows {
            taken += jobs[i].rows.len();
            batch.extend(jobs.remove(i));
        } else {
            i += 1;
        }
    }
}

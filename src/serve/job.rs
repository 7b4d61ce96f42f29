//! A request as the generation worker sees it, and what the worker sends back.

use super::catalog::Served;
use super::decode::BatchRow;
use super::error::ApiError;
use tokio::sync::mpsc::UnboundedSender;

/// One request: its rows (n choices, or several prompts) go into one batch together.
pub struct Job {
    pub served: Served,
    /// Stop ids are ignored: every row runs to its max_tokens.
    pub ignore_eos: bool,
    pub rows: Vec<BatchRow>,
    pub stop: Vec<String>,
    pub events: UnboundedSender<RowEvent>,
}

impl Job {
    /// Jobs with the same key can share a batch: the same weights, the same stop ids.
    pub fn key(&self) -> (Served, bool) {
        (self.served, self.ignore_eos)
    }

    /// Whether the client has gone (its response was dropped).
    pub fn abandoned(&self) -> bool {
        self.events.is_closed()
    }

    pub fn prompt_tokens(&self) -> usize {
        self.rows.iter().map(|r| r.prompt.len()).sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Stop,
    Length,
}

impl Finish {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum RowEvent {
    Text {
        row: usize,
        text: String,
    },
    Finished {
        row: usize,
        finish: Finish,
        completion_tokens: usize,
    },
    /// The whole job failed; nothing more follows.
    Failed(ApiError),
}

//! What every handler shares: the names served, the tokenizer and chat template (prompts are
//! built on the HTTP side, so a bad one is refused before it queues), the queue, the limits.

use super::catalog::Catalog;
use super::queue::Queue;
use super::stats::Stats;
use crate::model::{ChatTemplate, TextTokenizer};
use std::sync::Arc;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Rows one batch holds; also the most replies one request may ask for.
    pub max_batch: usize,
    pub max_queue: usize,
    /// The largest max_tokens a request may ask for, and the default.
    pub max_tokens: usize,
    pub max_body_bytes: usize,
}

pub struct AppState {
    pub catalog: Catalog,
    pub tokenizer: Arc<TextTokenizer>,
    /// The tokens that end a reply (and a constrained reply's grammar).
    pub stop_ids: Vec<u32>,
    pub template: ChatTemplate,
    /// The token a text prompt starts with, when the tokenizer adds one (Gemma's BOS).
    pub bos_id: Option<u32>,
    /// The model's context (max_position_embeddings): prompt and reply together.
    pub context: usize,
    pub vocab_size: usize,
    pub queue: Arc<Queue>,
    pub stats: Arc<Stats>,
    pub limits: Limits,
    pub api_key: Option<String>,
}

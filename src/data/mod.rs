//! Training data: supervised fine-tuning files read and checked line by line, rendered with the
//! model's chat template, tokenized with loss on the assistant's replies only, then ordered into
//! batches and padded into tensors.

pub mod batch;
pub mod convert;
pub mod dataset;
pub mod exclude;
pub mod generate;
pub mod jsonl;
pub mod message;
pub mod preference;
pub mod recipe;
pub mod sft;
pub mod sharegpt;
pub mod split;
pub mod stats;

//! Ordering tokenized examples into batches for an epoch, and padding a batch into tensors.

use super::sft::TokenizedExample;
use crate::train::loss::IGNORE_INDEX;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::cmp::Reverse;

/// Batches per mega-batch when grouping by length, as transformers' length-grouped sampler:
/// large enough to find similar lengths, small enough to keep the order random.
const BATCHES_PER_MEGA_BATCH: usize = 50;

/// The example indices of each batch of one epoch: a seeded shuffle, so a run can be repeated
/// and resumed; with `group_by_length` each mega-batch of the shuffle is sorted longest first
/// so a batch holds similar lengths and little padding. The last batch may be smaller.
pub fn batch_order(
    lengths: &[usize],
    batch_size: usize,
    group_by_length: bool,
    seed: u64,
    epoch: usize,
) -> Vec<Vec<usize>> {
    assert!(batch_size > 0, "batch_size must be at least 1");
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(epoch_seed(seed, epoch)));
    if group_by_length {
        // A mega-batch is a whole number of batches, so no batch straddles two of them.
        for mega_batch in order.chunks_mut(BATCHES_PER_MEGA_BATCH * batch_size) {
            mega_batch.sort_by_key(|&i| Reverse(lengths[i]));
        }
    }
    order.chunks(batch_size).map(<[usize]>::to_vec).collect()
}

/// Mixes the epoch into the seed with a multiplicative hash so that neighbouring epochs (and
/// neighbouring seeds) get unrelated shuffles.
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[derive(Debug, Clone)]
pub struct Batch {
    /// (batch, seq) u32.
    pub input_ids: Tensor,
    /// (batch, seq) i64, IGNORE_INDEX on prompts and padding.
    pub labels: Tensor,
    /// Tokens that are not padding.
    pub tokens: usize,
    /// Labels the shifted loss counts (positions 1.. that are not IGNORE_INDEX).
    pub loss_tokens: usize,
}

/// Pads every example on the right with `pad_id` to the longest in the batch. Right padding
/// needs no attention mask under a causal mask: real tokens never look ahead at the padding,
/// and the padding's labels are IGNORE_INDEX.
pub fn collate(examples: &[&TokenizedExample], pad_id: u32, device: &Device) -> Result<Batch> {
    let longest = examples
        .iter()
        .map(|e| e.input_ids.len())
        .max()
        .context("collate: the batch holds no example")?;
    if longest == 0 {
        bail!("collate: every example of the batch is empty");
    }
    let mut input_ids = Vec::with_capacity(examples.len() * longest);
    let mut labels = Vec::with_capacity(examples.len() * longest);
    for example in examples {
        if example.labels.len() != example.input_ids.len() {
            bail!(
                "collate: the example of line {} has {} labels for {} tokens",
                example.line,
                example.labels.len(),
                example.input_ids.len()
            );
        }
        let padding = longest - example.input_ids.len();
        input_ids.extend_from_slice(&example.input_ids);
        input_ids.extend(std::iter::repeat_n(pad_id, padding));
        labels.extend_from_slice(&example.labels);
        labels.extend(std::iter::repeat_n(IGNORE_INDEX, padding));
    }
    let shape = (examples.len(), longest);
    Ok(Batch {
        input_ids: Tensor::from_vec(input_ids, shape, device)?,
        labels: Tensor::from_vec(labels, shape, device)?,
        tokens: examples.iter().map(|e| e.input_ids.len()).sum(),
        loss_tokens: examples.iter().map(|e| e.loss_tokens()).sum(),
    })
}

//! What a training stage optimises, behind one interface the trainer loop drives: the SFT
//! objective here, DPO's in `dpo_objective`.

use super::events::ScoredCompletion;
use super::loss::causal_lm_loss;
use crate::data::batch::collate;
use crate::data::sft::TokenizedDataset;
use crate::model::{LoadedModel, Transformer};
use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use std::collections::BTreeMap;

/// One micro-batch's contribution.
pub struct MicroStep {
    /// The micro-batch's mean loss, with gradients.
    pub loss: Tensor,
    /// Tokens processed (not padding), for tokens/s.
    pub tokens: usize,
    /// The stage's own figures for this micro-batch (TRL's names), averaged by weight.
    pub metrics: PendingMetrics,
}

/// Named scalars still on the device, read together once the backward is queued: a read
/// waits for the device, and waiting in the middle of a step leaves the device idle while the
/// host queues the rest.
#[derive(Default)]
pub struct PendingMetrics {
    entries: Vec<(String, Tensor)>,
}

impl PendingMetrics {
    /// Adds a metric: a tensor of one element.
    pub fn push(&mut self, name: &str, value: &Tensor) -> Result<()> {
        let value = value.detach().to_dtype(DType::F32)?.reshape(1)?;
        self.entries.push((name.to_string(), value));
        Ok(())
    }

    /// Every metric's value, with one read from the device.
    pub fn read(self) -> Result<BTreeMap<String, f64>> {
        if self.entries.is_empty() {
            return Ok(BTreeMap::new());
        }
        let (names, values): (Vec<_>, Vec<_>) = self.entries.into_iter().unzip();
        let values = Tensor::cat(&values, 0)?.to_vec1::<f32>()?;
        Ok(names
            .into_iter()
            .zip(values.into_iter().map(f64::from))
            .collect())
    }
}

/// What an online objective (GRPO) made for one optimiser step.
pub struct Rollout {
    /// The step's micro-batches: indices that `weight` and `micro_step` take.
    pub batches: Vec<Vec<usize>>,
    /// Figures of the completions the step trains on (reward, completions/…).
    pub metrics: BTreeMap<String, f64>,
    /// One prompt's group of completions to show, when this step sampled new ones.
    pub sample: Option<(String, Vec<ScoredCompletion>)>,
    /// Seconds spent sampling completions for this step (0 when it reuses them).
    pub generation_secs: f64,
}

pub trait Objective {
    /// Examples (SFT records, DPO pairs) in one epoch.
    fn examples(&self) -> usize;
    /// Examples cut at max_seq_length (or max_prompt_length).
    fn truncated(&self) -> usize;
    /// Each example's length in tokens, for length-grouped batching.
    fn lengths(&self) -> Vec<usize>;
    /// How much an example weighs in the mean over an accumulation window: SFT counts loss
    /// tokens (as transformers does), DPO counts pairs.
    fn weight(&self, example: usize) -> usize;
    /// Forward pass and loss of one micro-batch; None when it carries no loss at all.
    fn micro_step(&self, model: &Transformer, examples: &[usize]) -> Result<Option<MicroStep>>;
    /// Metrics on the eval data (eval_loss, …), adapters on, dropout off; empty without eval data.
    fn evaluate(&self, model: &LoadedModel) -> Result<BTreeMap<String, f64>>;
    /// Before optimiser step `step` (0-based): an online objective samples and scores the
    /// step's completions and says its micro-batches. None: the step trains on the plan's
    /// batches of the fixed data.
    fn rollout(&mut self, _model: &LoadedModel, _step: usize) -> Result<Option<Rollout>> {
        Ok(None)
    }
}

pub struct SftObjective {
    pub data: TokenizedDataset,
    pub eval: Option<TokenizedDataset>,
    pub pad_id: u32,
    pub batch_size: usize,
    pub device: Device,
}

impl Objective for SftObjective {
    fn examples(&self) -> usize {
        self.data.examples.len()
    }

    fn truncated(&self) -> usize {
        self.data.truncated
    }

    fn lengths(&self) -> Vec<usize> {
        self.data
            .examples
            .iter()
            .map(|e| e.input_ids.len())
            .collect()
    }

    fn weight(&self, example: usize) -> usize {
        self.data.examples[example].loss_tokens()
    }

    fn micro_step(&self, model: &Transformer, examples: &[usize]) -> Result<Option<MicroStep>> {
        let rows: Vec<_> = examples.iter().map(|&i| &self.data.examples[i]).collect();
        let batch = collate(&rows, self.pad_id, &self.device)?;
        if batch.loss_tokens == 0 {
            return Ok(None); // every reply was cut off by max_seq_length
        }
        let hidden = model.forward_hidden(&batch.input_ids, 0, None)?;
        Ok(Some(MicroStep {
            loss: causal_lm_loss(model.lm_head(), &hidden, &batch.labels)?,
            tokens: batch.tokens,
            metrics: PendingMetrics::default(),
        }))
    }

    fn evaluate(&self, model: &LoadedModel) -> Result<BTreeMap<String, f64>> {
        let Some(data) = &self.eval else {
            return Ok(BTreeMap::new());
        };
        let (mut total, mut tokens) = (0f64, 0usize);
        for chunk in data.examples.chunks(self.batch_size) {
            let rows: Vec<_> = chunk.iter().collect();
            let batch = collate(&rows, self.pad_id, &self.device)?;
            if batch.loss_tokens == 0 {
                continue;
            }
            let m = &model.model;
            let hidden = m.forward_hidden(&batch.input_ids, 0, None)?.detach();
            let mean = causal_lm_loss(m.lm_head(), &hidden, &batch.labels)?.to_scalar::<f32>()?;
            let mean = f64::from(mean);
            total += mean * batch.loss_tokens as f64;
            tokens += batch.loss_tokens;
        }
        Ok([("eval_loss".to_string(), total / tokens.max(1) as f64)].into())
    }
}

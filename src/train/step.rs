//! One optimiser step's gradients: each micro-batch of an accumulation window forward and
//! backward, its loss weighted by its share of the window. The trainer and `tunelab bench`
//! both step through here, so a benchmark times what training runs.

use super::objective::Objective;
use crate::model::lora::mix_seed;
use crate::model::Transformer;
use anyhow::{Context, Result};
use candle_core::backprop::GradStore;
use candle_core::Var;
use std::collections::BTreeMap;

/// What one accumulation window produced.
pub struct Accumulated {
    pub grads: GradStore,
    /// The window's loss: the weighted mean over its micro-batches.
    pub loss: f64,
    /// Tokens processed (not padding).
    pub tokens: usize,
    /// Each micro-batch's weight and metrics, for `weighted_mean`.
    pub parts: Vec<(usize, BTreeMap<String, f64>)>,
}

/// Runs the micro-batches `batches` (example indices each); micro-batch k of the window draws
/// its dropout from `mix_seed(seed, first_micro + k)`. Each loss is weighted by its examples'
/// weight over the window's: by loss tokens for SFT, as transformers does; by pairs for DPO.
/// `on_phase` is called after each micro-batch's "forward" and "backward" (the bench's
/// `--phases` times them there; the trainer passes a no-op).
pub fn accumulate(
    objective: &dyn Objective,
    model: &Transformer,
    vars: &[Var],
    batches: &[Vec<usize>],
    seed: u64,
    first_micro: usize,
    on_phase: &mut dyn FnMut(&'static str) -> Result<()>,
) -> Result<Accumulated> {
    let window: usize = batches.iter().flatten().map(|&i| objective.weight(i)).sum();
    let mut grads: Option<GradStore> = None;
    let (mut loss, mut tokens) = (0f64, 0usize);
    let mut parts = Vec::new();
    for (k, indices) in batches.iter().enumerate() {
        model
            .adapters()
            .set_dropout_seed(mix_seed(seed, (first_micro + k) as u64));
        let Some(micro) = objective.micro_step(model, indices)? else {
            continue;
        };
        let weight: usize = indices.iter().map(|&i| objective.weight(i)).sum();
        let scaled = (micro.loss * (weight as f64 / window.max(1) as f64))?;
        on_phase("forward")?;
        let g = model.backward(&scaled)?;
        on_phase("backward")?;
        // Read after backward is queued, so the GPU is busy while the host waits for it.
        loss += scaled
            .to_dtype(candle_core::DType::F64)?
            .to_scalar::<f64>()?;
        tokens += micro.tokens;
        parts.push((weight, micro.metrics.read()?));
        grads = Some(match grads {
            None => g,
            Some(acc) => add_grads(acc, &g, vars)?,
        });
    }
    Ok(Accumulated {
        grads: grads.context("no micro-batch carried any loss")?,
        loss,
        tokens,
        parts,
    })
}

fn add_grads(mut acc: GradStore, more: &GradStore, vars: &[Var]) -> Result<GradStore> {
    for v in vars {
        if let Some(g) = more.get(v) {
            let sum = match acc.remove(v) {
                Some(a) => (a + g)?,
                None => g.clone(),
            };
            acc.insert(v, sum);
        }
    }
    Ok(acc)
}

//! The DPO stage's objective: preference pairs, their reference log-probs (computed once at
//! the start point, or read from the cache), and TRL's losses and metrics per micro-batch.

use super::dpo::{dpo_loss, weighted_mean, DpoParams, PairLogps};
use super::events::TrainEvent;
use super::objective::{MicroStep, Objective};
use super::reference::{self, CacheKey, ReferenceLogps};
use crate::config::RunConfig;
use crate::data::preference::{load_preference_file, tokenize_pairs, PairLimits, TokenizedPairs};
use crate::model::{LoadedModel, Transformer};
use anyhow::Result;
use candle_core::Device;
use std::collections::BTreeMap;
use std::path::Path;

pub struct DpoObjective {
    pub pairs: TokenizedPairs,
    pub reference: ReferenceLogps,
    eval: Option<(TokenizedPairs, ReferenceLogps)>,
    params: DpoParams,
    pad_id: u32,
    batch_size: usize,
    device: Device,
}

/// Reports progress, and fails when the run is cancelled.
pub type Report<'a> = &'a mut dyn FnMut(TrainEvent) -> Result<()>;

impl DpoObjective {
    /// Reads and tokenizes the pairs and gets their reference log-probs. The model must be at
    /// its start point: adapters are switched off for the pass unless the run starts from an
    /// adapter (init_adapter), whose model is then the reference.
    pub fn prepare(
        config: &RunConfig,
        eval_data: Option<&Path>,
        loaded: &LoadedModel,
        device: &Device,
        pad_id: u32,
        report: Report,
    ) -> Result<(Self, Vec<String>)> {
        let limits = PairLimits {
            max_length: config.max_seq_length,
            max_prompt_length: config.max_prompt_length,
        };
        let tokenize = |path: &Path| {
            load_preference_file(path).and_then(|ds| {
                tokenize_pairs(
                    &ds,
                    &loaded.template,
                    &loaded.tokenizer,
                    config.system_prompt.as_deref(),
                    limits,
                )
            })
        };
        let pairs = tokenize(config.data_file())?;
        let mut warnings = pairs.warnings(config.data_file(), limits);
        let eval_pairs = match eval_data {
            None => None,
            Some(path) => match tokenize(path) {
                Ok(p) => Some(p),
                Err(e) => {
                    warnings.push(format!(
                        "eval_file is neither preference data ({e:#}) nor eval cases, so no eval runs"
                    ));
                    None
                }
            },
        };
        let batch_size = config.per_device_train_batch_size;
        let switch = loaded.model.adapters();
        let was_enabled = switch.enabled();
        switch.set_enabled(config.init_adapter.is_some());
        let result = (|| {
            let mut get = |pairs: &TokenizedPairs, name: &str| {
                reference_logps(
                    config, loaded, pairs, name, batch_size, pad_id, device, report,
                )
            };
            let train_ref = get(&pairs, "reference log-probs")?;
            let eval = match eval_pairs {
                Some(p) => {
                    let r = get(&p, "reference log-probs (eval)")?;
                    Some((p, r))
                }
                None => None,
            };
            Ok::<_, anyhow::Error>((train_ref, eval))
        })();
        switch.set_enabled(was_enabled);
        let (reference, eval) = result?;
        let params = DpoParams {
            beta: config.beta(),
            loss_type: config.loss(),
            label_smoothing: config.label_smoothing,
            rpo_alpha: config.rpo_alpha,
        };
        let objective = Self::new(pairs, reference, params, pad_id, batch_size, device);
        Ok((Self { eval, ..objective }, warnings))
    }

    /// Pairs whose reference log-probs are already known, without eval data.
    pub fn new(
        pairs: TokenizedPairs,
        reference: ReferenceLogps,
        params: DpoParams,
        pad_id: u32,
        batch_size: usize,
        device: &Device,
    ) -> Self {
        Self {
            pairs,
            reference,
            eval: None,
            params,
            pad_id,
            batch_size,
            device: device.clone(),
        }
    }

    fn batch(
        &self,
        model: &Transformer,
        pairs: &TokenizedPairs,
        reference: &ReferenceLogps,
        indices: &[usize],
    ) -> Result<MicroStep> {
        let rows: Vec<_> = indices.iter().map(|&i| &pairs.pairs[i]).collect();
        let (logps, counts) = reference::pair_logps(model, &rows, self.pad_id, &self.device)?;
        let n = rows.len();
        let logps = PairLogps {
            policy_chosen: logps.narrow(0, 0, n)?,
            policy_rejected: logps.narrow(0, n, n)?,
            reference_chosen: indices.iter().map(|&i| reference.chosen[i]).collect(),
            reference_rejected: indices.iter().map(|&i| reference.rejected[i]).collect(),
            chosen_tokens: counts[..n].to_vec(),
            rejected_tokens: counts[n..].to_vec(),
        };
        let (loss, metrics) = dpo_loss(&self.params, &logps)?;
        let tokens = rows
            .iter()
            .map(|p| p.chosen.input_ids.len() + p.rejected.input_ids.len())
            .sum();
        Ok(MicroStep {
            loss,
            tokens,
            metrics,
        })
    }
}

/// The cached reference log-probs of `pairs`, or a fresh pass reported as Phase events.
#[allow(clippy::too_many_arguments)]
fn reference_logps(
    config: &RunConfig,
    loaded: &LoadedModel,
    pairs: &TokenizedPairs,
    name: &str,
    batch_size: usize,
    pad_id: u32,
    device: &Device,
    report: Report,
) -> Result<ReferenceLogps> {
    let key = CacheKey {
        model_name: &config.model_name,
        adapter_start: config.init_adapter.as_deref(),
        pairs: &pairs.pairs,
        precision: format!("{device:?} {:?}", loaded.model.dtype()),
    }
    .key()?;
    let total = pairs.pairs.len();
    if let Some(cached) = reference::load_cached(&key, total) {
        report(TrainEvent::Phase {
            name: format!("{name}: cached"),
            done: total,
            total,
        })?;
        return Ok(cached);
    }
    report(TrainEvent::Phase {
        name: name.to_string(),
        done: 0,
        total,
    })?;
    let logps = reference::compute(
        &loaded.model,
        &pairs.pairs,
        batch_size,
        pad_id,
        device,
        &mut |done, total| {
            report(TrainEvent::Phase {
                name: name.to_string(),
                done,
                total,
            })
        },
    )?;
    reference::save_cached(&key, &logps)?;
    Ok(logps)
}

impl Objective for DpoObjective {
    fn examples(&self) -> usize {
        self.pairs.pairs.len()
    }

    fn truncated(&self) -> usize {
        self.pairs.truncated
    }

    fn lengths(&self) -> Vec<usize> {
        self.pairs
            .pairs
            .iter()
            .map(|p| p.chosen.input_ids.len().max(p.rejected.input_ids.len()))
            .collect()
    }

    fn weight(&self, _example: usize) -> usize {
        1
    }

    fn micro_step(&self, model: &Transformer, examples: &[usize]) -> Result<Option<MicroStep>> {
        self.batch(model, &self.pairs, &self.reference, examples)
            .map(Some)
    }

    fn evaluate(&self, model: &LoadedModel) -> Result<BTreeMap<String, f64>> {
        let Some((pairs, reference)) = &self.eval else {
            return Ok(BTreeMap::new());
        };
        let indices: Vec<usize> = (0..pairs.pairs.len()).collect();
        let mut parts = Vec::new();
        for chunk in indices.chunks(self.batch_size.max(1)) {
            let step = self.batch(&model.model, pairs, reference, chunk)?;
            parts.push((chunk.len(), step.metrics.read()?));
        }
        Ok(weighted_mean(&parts)
            .into_iter()
            .map(|(k, v)| (format!("eval_{k}"), v))
            .collect())
    }
}

//! Eval during training: the first eval_max_cases cases of an eval file answered by the model
//! being trained, scored with the eval metrics, plus one prompt's base vs current reply.

use super::cases::EvalCase;
use super::run::{answer, evaluate, EvalSettings, Variant};
use crate::config::RunConfig;
use crate::model::LoadedModel;
use anyhow::Result;
use std::collections::BTreeMap;

pub struct LiveEval {
    cases: Vec<EvalCase>,
    settings: EvalSettings,
    /// The base model's reply to the first case, generated once.
    base_sample: Option<String>,
}

/// What one live eval found.
pub struct LiveResult {
    pub metrics: BTreeMap<String, f64>,
    pub prompt: String,
    pub base: String,
    pub tuned: String,
}

impl LiveEval {
    pub fn new(config: &RunConfig, mut cases: Vec<EvalCase>) -> Result<Self> {
        cases.truncate(config.eval_max_cases.max(1));
        Ok(Self {
            cases,
            settings: EvalSettings::from_config(config, 0)?,
            base_sample: None,
        })
    }

    pub fn run(&mut self, loaded: &LoadedModel) -> Result<LiveResult> {
        let first = &self.cases[0];
        if self.base_sample.is_none() {
            let base = answer(loaded, &self.settings, first, Variant::Base, &mut |_| {})?;
            self.base_sample = Some(base.text);
        }
        let report = evaluate(
            loaded,
            &self.settings,
            &self.cases,
            Variant::Tuned,
            &mut |_, _| {},
        )?;
        Ok(LiveResult {
            tuned: report.per_case[0].reply.clone(),
            metrics: report.metrics,
            prompt: first.prompt.clone(),
            base: self.base_sample.clone().unwrap_or_default(),
        })
    }
}

//! Answering eval cases with the model — base (adapters off), base with few-shot examples in
//! the prompt, or tuned (adapters on) — on one copy of the weights, greedy, streaming each
//! reply's text as it is generated, several cases at a time; then checks and metrics.

use super::cases::EvalCase;
use super::checks::{check_reply, Checks};
use super::metrics::{aggregate, ReplyStats};
use crate::config::RunConfig;
use crate::data::sft::load_sft_file;
use crate::model::constrain::Constraint;
use crate::model::{generate_batch, ChatMessage, GenerationOutput, LoadedModel, SamplingParams};
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    Base,
    FewShot,
    Tuned,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Self::Base => "base",
            Self::FewShot => "few_shot",
            Self::Tuned => "tuned",
        }
    }
}

/// How cases are put to the model.
#[derive(Debug, Clone, Default)]
pub struct EvalSettings {
    /// Used when a case has no system prompt of its own.
    pub system_prompt: Option<String>,
    /// Example turns (user, assistant, …) placed before the case's prompt for FewShot.
    pub few_shot: Vec<ChatMessage>,
    pub max_new_tokens: usize,
    /// How many cases are generated together.
    pub batch_size: usize,
    /// Whether a reply that is one fenced ```json block counts as JSON.
    pub allow_fenced_json: bool,
    pub constrain: Constrain,
}

/// What constrains the replies' tokens.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Constrain {
    #[default]
    Free,
    /// Any JSON object.
    Json,
    /// This schema for every case; without one, each case's own schema (any JSON object for a
    /// case that has none but expects JSON, nothing for a text case).
    Schema(Option<Constraint>),
}

impl Constrain {
    pub fn for_case(&self, case: &EvalCase) -> Option<Constraint> {
        match self {
            Self::Free => None,
            Self::Json => Some(Constraint::Json),
            Self::Schema(Some(c)) => Some(c.clone()),
            Self::Schema(None) => match &case.schema {
                Some(s) => Some(Constraint::Schema(Arc::new(s.document.clone()))),
                None => case.wants_json().then_some(Constraint::Json),
            },
        }
    }
}

impl EvalSettings {
    /// The config's system prompt and generation limits, and `few_shot` examples: the first
    /// records of its train_file, as conversation turns.
    pub fn from_config(config: &RunConfig, few_shot: usize) -> Result<Self> {
        let mut turns = Vec::new();
        if few_shot > 0 {
            let data = load_sft_file(&config.train_file)?;
            for record in data.records.iter().take(few_shot) {
                turns.extend(
                    record
                        .conversation(None)
                        .into_iter()
                        .filter(|m| m.role != "system"),
                );
            }
        }
        Ok(Self {
            system_prompt: config.system_prompt.clone(),
            few_shot: turns,
            max_new_tokens: config.eval_max_new_tokens,
            batch_size: config.eval_batch_size,
            allow_fenced_json: config.eval_allow_fenced_json,
            constrain: Constrain::Free,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Reply {
    pub variant: Variant,
    pub text: String,
    pub checks: Checks,
    pub tokens: usize,
    pub seconds: f64,
    /// Of `seconds`, the time computing the constraint's token masks.
    pub mask_seconds: f64,
}

/// The prompt ids of a case: system turn, few-shot turns (for FewShot), then the case.
pub fn prompt_ids(
    loaded: &LoadedModel,
    settings: &EvalSettings,
    case: &EvalCase,
    variant: Variant,
) -> Result<Vec<u32>> {
    let mut messages = Vec::new();
    if let Some(system) = case.system.as_ref().or(settings.system_prompt.as_ref()) {
        messages.push(ChatMessage::new("system", system));
    }
    if variant == Variant::FewShot {
        messages.extend(settings.few_shot.iter().cloned());
    }
    messages.push(ChatMessage::new("user", &case.prompt));
    let text = loaded.template.render(&messages, true)?;
    loaded.tokenizer.encode(&text)
}

/// Generates one reply greedily, streaming its text to `on_text`, and checks it.
pub fn answer(
    loaded: &LoadedModel,
    settings: &EvalSettings,
    case: &EvalCase,
    variant: Variant,
    on_text: &mut dyn FnMut(&str),
) -> Result<Reply> {
    let mut replies = answer_batch(loaded, settings, &[case], variant, &mut |_, piece| {
        on_text(piece)
    })?;
    Ok(replies.remove(0))
}

/// Generates the replies to `cases` greedily as one batch, streaming each one's text to
/// `on_text(index in cases, piece)`, and checks them. Adapters are on for Tuned only, and
/// restored afterwards. Each reply's `seconds` is its share of the batch's time, so that
/// tokens over seconds summed across replies is the batch's throughput.
pub fn answer_batch(
    loaded: &LoadedModel,
    settings: &EvalSettings,
    cases: &[&EvalCase],
    variant: Variant,
    on_text: &mut dyn FnMut(usize, &str),
) -> Result<Vec<Reply>> {
    let prompts = cases
        .iter()
        .map(|case| prompt_ids(loaded, settings, case, variant))
        .collect::<Result<Vec<_>>>()?;
    let switch = loaded.model.adapters();
    let (was_enabled, was_training) = (switch.enabled(), switch.training());
    switch.set_enabled(variant == Variant::Tuned);
    switch.set_training(false);
    let constraints: Vec<Option<Constraint>> = cases
        .iter()
        .map(|c| settings.constrain.for_case(c))
        .collect();
    let started = Instant::now();
    let outputs = generate_grouped(loaded, settings, &prompts, &constraints, on_text);
    switch.set_enabled(was_enabled);
    switch.set_training(was_training);
    let outputs = outputs?;
    let share = started.elapsed().as_secs_f64() / cases.len().max(1) as f64;
    Ok(cases
        .iter()
        .zip(outputs)
        .map(|(case, out)| Reply {
            variant,
            checks: check_reply(case, &out.text, settings.allow_fenced_json),
            text: out.text,
            tokens: out.tokens.len(),
            seconds: share,
            mask_seconds: out.constraint_secs,
        })
        .collect())
}

/// Greedy replies to `prompts`, one batch per distinct constraint, in the prompts' order.
fn generate_grouped(
    loaded: &LoadedModel,
    settings: &EvalSettings,
    prompts: &[Vec<u32>],
    constraints: &[Option<Constraint>],
    on_text: &mut dyn FnMut(usize, &str),
) -> Result<Vec<GenerationOutput>> {
    let mut groups: Vec<(Option<Constraint>, Vec<usize>)> = Vec::new();
    for (i, c) in constraints.iter().enumerate() {
        match groups.iter_mut().find(|(g, _)| g == c) {
            Some((_, members)) => members.push(i),
            None => groups.push((c.clone(), vec![i])),
        }
    }
    let mut outputs: Vec<Option<GenerationOutput>> = vec![None; prompts.len()];
    for (constraint, members) in groups {
        let params = SamplingParams {
            temperature: 0.0,
            max_tokens: settings.max_new_tokens,
            constraint,
            ..SamplingParams::default()
        };
        let batch: Vec<Vec<u32>> = members.iter().map(|&i| prompts[i].clone()).collect();
        let replies = generate_batch(
            &loaded.model,
            &loaded.tokenizer,
            &batch,
            &params,
            &loaded.stop_ids,
            |row, piece| {
                on_text(members[row], piece);
                Ok(true)
            },
        )?;
        for (&i, reply) in members.iter().zip(replies) {
            outputs[i] = Some(reply);
        }
    }
    Ok(outputs.into_iter().flatten().collect())
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub line: usize,
    pub prompt: String,
    pub reply: String,
    pub checks: Checks,
    pub tokens: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub variant: Variant,
    pub cases: usize,
    pub metrics: BTreeMap<String, f64>,
    /// Constrained replies: the share of generation time spent computing token masks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask_share: Option<f64>,
    pub per_case: Vec<CaseResult>,
}

/// Answers every case with one variant, `batch_size` at a time; `progress(done, total)`
/// after each batch.
pub fn evaluate(
    loaded: &LoadedModel,
    settings: &EvalSettings,
    cases: &[EvalCase],
    variant: Variant,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<EvalReport> {
    let mut replies = Vec::with_capacity(cases.len());
    for chunk in cases.chunks(settings.batch_size.max(1)) {
        let chunk: Vec<&EvalCase> = chunk.iter().collect();
        replies.extend(answer_batch(
            loaded,
            settings,
            &chunk,
            variant,
            &mut |_, _| {},
        )?);
        progress(replies.len(), cases.len());
    }
    Ok(report(variant, cases, &replies))
}

pub fn report(variant: Variant, cases: &[EvalCase], replies: &[Reply]) -> EvalReport {
    let results: Vec<(&Checks, ReplyStats)> = replies
        .iter()
        .map(|r| {
            (
                &r.checks,
                ReplyStats {
                    tokens: r.tokens,
                    seconds: r.seconds,
                },
            )
        })
        .collect();
    let seconds: f64 = replies.iter().map(|r| r.seconds).sum();
    let masks: f64 = replies.iter().map(|r| r.mask_seconds).sum();
    EvalReport {
        variant,
        cases: cases.len(),
        metrics: aggregate(&results),
        mask_share: (masks > 0.0 && seconds > 0.0).then(|| masks / seconds),
        per_case: cases
            .iter()
            .zip(replies)
            .map(|(case, r)| CaseResult {
                line: case.line,
                prompt: case.prompt.clone(),
                reply: r.text.clone(),
                checks: r.checks.clone(),
                tokens: r.tokens,
            })
            .collect(),
    }
}

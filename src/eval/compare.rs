//! Base vs (few-shot vs) tuned, case by case on one copy of the weights, streaming every
//! reply, with the tally of cases where tuning made the reply better, the same, or worse.

use super::cases::EvalCase;
use super::run::{answer_batch, report, EvalSettings, Reply, Variant};
use anyhow::{bail, Result};
use serde::Serialize;
use std::collections::BTreeMap;

/// What a comparison reports while it runs.
pub enum CompareEvent<'a> {
    /// A piece of a reply's text, as generated.
    Text {
        case: usize,
        variant: Variant,
        piece: &'a str,
    },
    /// A finished reply with its checks.
    Reply { case: usize, reply: &'a Reply },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Better,
    Same,
    Worse,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseComparison {
    pub line: usize,
    pub prompt: String,
    pub replies: Vec<Reply>,
    /// The tuned reply against the base reply, by the mean of their checks.
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub better: usize,
    pub same: usize,
    pub worse: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    pub cases: usize,
    pub tally: Tally,
    /// Each variant's metrics, by its name.
    pub metrics: BTreeMap<String, BTreeMap<String, f64>>,
    pub per_case: Vec<CaseComparison>,
}

pub fn verdict(base: &Reply, tuned: &Reply) -> Verdict {
    let (b, t) = (
        base.checks.score().unwrap_or(0.0),
        tuned.checks.score().unwrap_or(0.0),
    );
    if t > b + 1e-9 {
        Verdict::Better
    } else if t < b - 1e-9 {
        Verdict::Worse
    } else {
        Verdict::Same
    }
}

/// Answers each case with each variant (which must include Base and Tuned), a batch of
/// cases per variant at a time.
pub fn compare(
    loaded: &crate::model::LoadedModel,
    settings: &EvalSettings,
    cases: &[EvalCase],
    variants: &[Variant],
    on_event: &mut dyn FnMut(CompareEvent),
) -> Result<CompareReport> {
    if !(variants.contains(&Variant::Base) && variants.contains(&Variant::Tuned)) {
        bail!("a comparison needs the base and the tuned model");
    }
    let mut per_case = Vec::with_capacity(cases.len());
    let mut tally = Tally::default();
    let batch = settings.batch_size.max(1);
    for (chunk_index, chunk) in cases.chunks(batch).enumerate() {
        let first = chunk_index * batch;
        let chunk: Vec<&EvalCase> = chunk.iter().collect();
        // replies[row] holds that case's replies in the order of `variants`.
        let mut replies: Vec<Vec<Reply>> = vec![Vec::with_capacity(variants.len()); chunk.len()];
        for &variant in variants {
            let answers = answer_batch(loaded, settings, &chunk, variant, &mut |row, piece| {
                on_event(CompareEvent::Text {
                    case: first + row,
                    variant,
                    piece,
                })
            })?;
            for (row, reply) in answers.into_iter().enumerate() {
                on_event(CompareEvent::Reply {
                    case: first + row,
                    reply: &reply,
                });
                replies[row].push(reply);
            }
        }
        for (case, replies) in chunk.iter().zip(replies) {
            let find = |v: Variant| replies.iter().find(|r| r.variant == v).expect("asked for");
            let v = verdict(find(Variant::Base), find(Variant::Tuned));
            match v {
                Verdict::Better => tally.better += 1,
                Verdict::Same => tally.same += 1,
                Verdict::Worse => tally.worse += 1,
            }
            per_case.push(CaseComparison {
                line: case.line,
                prompt: case.prompt.clone(),
                replies,
                verdict: v,
            });
        }
    }
    let metrics = variants
        .iter()
        .map(|&v| {
            let replies: Vec<Reply> = per_case
                .iter()
                .map(|c| {
                    c.replies
                        .iter()
                        .find(|r| r.variant == v)
                        .expect("asked for")
                        .clone()
                })
                .collect();
            (v.name().to_string(), report(v, cases, &replies).metrics)
        })
        .collect();
    Ok(CompareReport {
        cases: cases.len(),
        tally,
        metrics,
        per_case,
    })
}

//! Base vs (few-shot vs) tuned, case by case on one copy of the weights, streaming every
//! reply, with the tally of cases where tuning made the reply better, the same, or worse.

use super::cases::EvalCase;
use super::run::{answer, report, EvalSettings, Reply, Variant};
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

/// Answers each case with each variant (which must include Base and Tuned).
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
    for (i, case) in cases.iter().enumerate() {
        let mut replies = Vec::with_capacity(variants.len());
        for &variant in variants {
            let reply = answer(loaded, settings, case, variant, &mut |piece| {
                on_event(CompareEvent::Text {
                    case: i,
                    variant,
                    piece,
                })
            })?;
            on_event(CompareEvent::Reply {
                case: i,
                reply: &reply,
            });
            replies.push(reply);
        }
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

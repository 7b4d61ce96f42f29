//! What a data file holds, at a glance: how long prompts and replies are (in characters, and in
//! tokens through a model's chat template), how many would be cut at max_seq_length, and which
//! records or prompts repeat — repeats overweight one example and leak across a train/eval split.

use super::dataset::Dataset;
use super::preference::{tokenize_pair, PairLimits};
use super::sft::tokenize_record;
use crate::model::{ChatMessage, LoadedModel};
use anyhow::Result;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

/// How many duplicate groups, and lines of each, a report lists.
const SHOWN: usize = 5;

/// The report. Its JSON form is stable: fields are only ever added.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub file: String,
    pub kind: &'static str,
    pub format: &'static str,
    pub records: usize,
    pub chars: CharStats,
    pub duplicates: Duplicates,
    pub tokens: Option<TokenStats>,
}

/// Character counts. For a supervised record the prompt is everything the loss skips (system
/// and user turns, weight-0 replies) and the reply is the trained replies; for a pair the
/// prompt is its prompt and the reply its chosen completion.
#[derive(Debug, Clone, Serialize)]
pub struct CharStats {
    pub prompt: Summary,
    pub reply: Summary,
    /// Preference pairs only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Summary>,
}

/// Nearest-rank order statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub min: usize,
    pub median: usize,
    pub p95: usize,
    pub max: usize,
}

impl Summary {
    pub fn of(values: &[usize]) -> Self {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let rank = |p: f64| {
            let n = sorted.len();
            let i = ((p * n as f64).ceil() as usize).clamp(1, n.max(1)) - 1;
            sorted.get(i).copied().unwrap_or(0)
        };
        Self {
            min: rank(0.0),
            median: rank(0.5),
            p95: rank(0.95),
            max: sorted.last().copied().unwrap_or(0),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Duplicates {
    /// Records that train exactly like an earlier one.
    pub records: Repeats,
    /// Records whose prompt (everything before the last reply) is an earlier one's.
    pub prompts: Repeats,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repeats {
    /// Records that repeat an earlier one (a group of three counts two).
    pub count: usize,
    /// The first few groups, each the lines of its records, the original first.
    pub groups: Vec<Vec<usize>>,
}

impl Repeats {
    pub fn of(keys: &[String], lines: &[usize]) -> Self {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut group_of: HashMap<&str, usize> = HashMap::new();
        for (key, &line) in keys.iter().zip(lines) {
            let g = *group_of.entry(key.as_str()).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[g].push(line);
        }
        let count = keys.len() - groups.len();
        let groups = groups
            .into_iter()
            .filter(|g| g.len() > 1)
            .take(SHOWN)
            .map(|g| g.into_iter().take(SHOWN).collect())
            .collect();
        Self { count, groups }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenStats {
    /// Each record's whole sequence (a pair's longer one) through the chat template.
    pub lengths: Summary,
    pub max_seq_length: usize,
    /// Records longer than max_seq_length, which training cuts.
    pub over_max_seq_length: usize,
    /// The first few of their lines.
    pub over_lines: Vec<usize>,
}

fn chars(messages: &[ChatMessage]) -> usize {
    messages.iter().map(|m| m.content.chars().count()).sum()
}

fn key(messages: &[ChatMessage]) -> String {
    format!("{messages:?}")
}

pub fn stats(ds: &Dataset) -> Stats {
    let (file, chars_stats, prompt_keys) = match ds {
        Dataset::Sft(sft) => {
            let mut prompt = Vec::new();
            let mut reply = Vec::new();
            let mut keys = Vec::new();
            for record in &sft.records {
                let conversation = record.conversation(None);
                let (context, trained) = split_by_loss(&conversation, &record.trained_replies());
                prompt.push(chars(&context));
                reply.push(chars(&trained));
                keys.push(key(&conversation[..conversation.len().saturating_sub(1)]));
            }
            let stats = CharStats {
                prompt: Summary::of(&prompt),
                reply: Summary::of(&reply),
                rejected: None,
            };
            (&sft.path, stats, keys)
        }
        Dataset::Preference(pref) => {
            let of = |f: fn(&super::preference::PreferencePair) -> &[ChatMessage]| {
                Summary::of(&pref.pairs.iter().map(|p| chars(f(p))).collect::<Vec<_>>())
            };
            let stats = CharStats {
                prompt: of(|p| &p.prompt),
                reply: of(|p| &p.chosen),
                rejected: Some(of(|p| &p.rejected)),
            };
            (
                &pref.path,
                stats,
                pref.pairs.iter().map(|p| key(&p.prompt)).collect(),
            )
        }
    };
    Stats {
        file: file.display().to_string(),
        kind: ds.kind().name(),
        format: ds.format_name(),
        records: ds.len(),
        chars: chars_stats,
        duplicates: Duplicates {
            records: Repeats::of(&ds.record_keys(), ds.lines()),
            prompts: Repeats::of(&prompt_keys, ds.lines()),
        },
        tokens: None,
    }
}

/// The messages the loss skips, and the replies it covers.
fn split_by_loss(
    conversation: &[ChatMessage],
    trained: &[bool],
) -> (Vec<ChatMessage>, Vec<ChatMessage>) {
    let mut replies = trained.iter();
    conversation
        .iter()
        .cloned()
        .partition(|m| m.role != "assistant" || !replies.next().copied().unwrap_or(true))
}

/// Token lengths of every record through `model`'s chat template and tokenizer, untruncated.
pub fn token_stats(ds: &Dataset, model: &LoadedModel, max_seq_length: usize) -> Result<TokenStats> {
    let (template, tokenizer) = (&model.template, &model.tokenizer);
    let lengths: Vec<usize> = match ds {
        Dataset::Sft(sft) => sft
            .records
            .par_iter()
            .zip(&sft.lines)
            .map(|(r, line)| {
                tokenize_record(r, template, tokenizer, None, usize::MAX)
                    .map(|e| e.input_ids.len())
                    .map_err(|e| anyhow::anyhow!("{}:{line}: {e:#}", sft.path.display()))
            })
            .collect::<Result<_>>()?,
        Dataset::Preference(pref) => {
            let limits = PairLimits {
                max_length: usize::MAX,
                max_prompt_length: None,
            };
            pref.pairs
                .par_iter()
                .zip(&pref.lines)
                .map(|(p, line)| {
                    tokenize_pair(p, template, tokenizer, None, limits)
                        .map(|t| t.chosen.input_ids.len().max(t.rejected.input_ids.len()))
                        .map_err(|e| anyhow::anyhow!("{}:{line}: {e:#}", pref.path.display()))
                })
                .collect::<Result<_>>()?
        }
    };
    let over: Vec<usize> = lengths
        .iter()
        .zip(ds.lines())
        .filter(|(&n, _)| n > max_seq_length)
        .map(|(_, &line)| line)
        .collect();
    Ok(TokenStats {
        lengths: Summary::of(&lengths),
        max_seq_length,
        over_max_seq_length: over.len(),
        over_lines: over.into_iter().take(SHOWN).collect(),
    })
}

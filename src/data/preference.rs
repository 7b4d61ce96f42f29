//! Preference files for DPO: JSONL (or one JSON array) of pairs, in TRL's two shapes or
//! OpenAI's preference fine-tuning format.
//!
//! - plain: `{"prompt" | "instruction", "input"?, "system"?, "chosen": str, "rejected": str}`
//! - conversational: `{"prompt": [messages], "chosen": [assistant messages], "rejected": […]}`
//! - OpenAI: `{"input": {"messages": [messages]}, "preferred_output": [assistant messages],
//!   "non_preferred_output": […]}`
//!
//! Both are rendered with the model's chat template; the completion is what the full
//! conversation adds to the prompt rendered with the generation prompt, and only its tokens
//! count in the log-probs. Problems are reported as `FILE:LINE: …`.

use super::jsonl::{as_string, kind, read_items};
use super::message::{parse_message_list, refuse_tool_keys, FieldResult};
use super::sft::{left_out_warning, TokenizedExample, MAX_PROBLEMS};
use crate::model::{ChatMessage, ChatTemplate, TextTokenizer};
use crate::train::loss::IGNORE_INDEX;
use anyhow::{anyhow, bail, Result};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

const FIELDS: [&str; 6] = [
    "prompt",
    "instruction",
    "input",
    "system",
    "chosen",
    "rejected",
];

/// OpenAI's preference fields; a record with either of the last two is in that format.
const OPENAI_FIELDS: [&str; 3] = ["input", "preferred_output", "non_preferred_output"];

/// The shape a pair is written in. A file may mix them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PreferenceFormat {
    Plain,
    Conversational,
    OpenAi,
}

impl PreferenceFormat {
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain preference",
            Self::Conversational => "conversational preference",
            Self::OpenAi => "openai preference",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreferencePair {
    /// The conversation before the completion (a system turn, if any, first).
    pub prompt: Vec<ChatMessage>,
    pub chosen: Vec<ChatMessage>,
    pub rejected: Vec<ChatMessage>,
}

#[derive(Debug, Clone)]
pub struct PreferenceDataset {
    pub path: PathBuf,
    pub pairs: Vec<PreferencePair>,
    /// The 1-based line each pair starts on.
    pub lines: Vec<usize>,
    /// The shape every pair is written in; None when the file mixes shapes.
    pub format: Option<PreferenceFormat>,
}

/// Reads and checks a whole file; fails with its first problem.
pub fn load_preference_file(path: &Path) -> Result<PreferenceDataset> {
    let mut pairs = Vec::new();
    let mut lines = Vec::new();
    let mut formats = Vec::new();
    for (line, value) in read_items(path)? {
        let (pair, format) = value
            .and_then(parse_pair)
            .map_err(|problem| anyhow!("{}:{line}: {problem}", path.display()))?;
        pairs.push(pair);
        lines.push(line);
        formats.push(format);
    }
    if pairs.is_empty() {
        bail!("{}: no preference pairs", path.display());
    }
    let format = Some(formats[0]).filter(|first| formats.iter().all(|f| f == first));
    Ok(PreferenceDataset {
        path: path.to_path_buf(),
        pairs,
        lines,
        format,
    })
}

/// What checking a whole preference file found.
#[derive(Debug, Clone)]
pub struct PreferenceCheck {
    /// Records read (good or bad) before the check stopped.
    pub records: usize,
    /// The first good pair's shape.
    pub format: Option<PreferenceFormat>,
    /// Whether later good pairs are in other shapes.
    pub mixed: bool,
    /// Up to MAX_PROBLEMS, in file order; empty when the file loads.
    pub problems: Vec<String>,
}

/// Every problem of a file (up to MAX_PROBLEMS), instead of stopping at the first.
pub fn check_preference_file(path: &Path) -> PreferenceCheck {
    let items = match read_items(path) {
        Ok(items) => items,
        Err(e) => {
            return PreferenceCheck {
                records: 0,
                format: None,
                mixed: false,
                problems: vec![format!("{e:#}")],
            }
        }
    };
    let mut check = PreferenceCheck {
        records: 0,
        format: None,
        mixed: false,
        problems: Vec::new(),
    };
    for (line, value) in items {
        check.records += 1;
        match value.and_then(parse_pair) {
            Ok((_, format)) => {
                check.mixed |= *check.format.get_or_insert(format) != format;
            }
            Err(problem) => check
                .problems
                .push(format!("{}:{line}: {problem}", path.display())),
        }
        if check.problems.len() >= MAX_PROBLEMS {
            break;
        }
    }
    if check.records == 0 {
        check
            .problems
            .push(format!("{}: no preference pairs", path.display()));
    }
    check
}

/// Whether a record is a preference pair rather than a supervised example: it names a
/// completion pair in one of the shapes read here.
pub fn looks_like_pair(record: &Map<String, Value>) -> bool {
    [
        "chosen",
        "rejected",
        "preferred_output",
        "non_preferred_output",
    ]
    .iter()
    .any(|k| record.contains_key(*k))
}

fn parse_pair(value: Value) -> FieldResult<(PreferencePair, PreferenceFormat)> {
    let Value::Object(record) = value else {
        return Err(format!(
            "a preference pair must be a JSON object, found {}",
            kind(&value)
        ));
    };
    refuse_tool_keys(&record, "")?;
    if record.contains_key("preferred_output") || record.contains_key("non_preferred_output") {
        return parse_openai_pair(&record).map(|pair| (pair, PreferenceFormat::OpenAi));
    }
    if let Some(extra) = record.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "unexpected field \"{extra}\" (a preference pair takes prompt or instruction, \
             chosen, rejected, and optionally input and system; or OpenAI's input, \
             preferred_output, non_preferred_output)"
        ));
    }
    let format = match record.get("prompt") {
        Some(Value::Array(_)) => PreferenceFormat::Conversational,
        _ => PreferenceFormat::Plain,
    };
    let mut prompt = match (record.get("prompt"), record.get("instruction")) {
        (Some(_), Some(_)) => return Err("give \"prompt\" or \"instruction\", not both".into()),
        (None, None) => return Err("missing field \"prompt\" (or \"instruction\")".into()),
        (Some(list @ Value::Array(_)), None) => messages_of("\"prompt\"", list)?,
        (Some(value), None) => vec![ChatMessage::new("user", &as_string(value, "\"prompt\"")?)],
        (None, Some(value)) => {
            let instruction = as_string(value, "\"instruction\"")?;
            let user = match record.get("input") {
                None | Some(Value::Null) => instruction,
                Some(input) => match as_string(input, "\"input\"")? {
                    input if input.trim().is_empty() => instruction,
                    input => format!("{instruction}\n\n{input}"),
                },
            };
            vec![ChatMessage::new("user", &user)]
        }
    };
    if prompt.is_empty() {
        return Err("field \"prompt\" is empty".into());
    }
    if let Some(system) = record.get("system") {
        if prompt.iter().any(|m| m.role == "system") {
            return Err("field \"system\" is given but \"prompt\" has a system message".into());
        }
        prompt.insert(
            0,
            ChatMessage::new("system", &as_string(system, "\"system\"")?),
        );
    }
    let chosen = completion(&record, "chosen")?;
    let rejected = completion(&record, "rejected")?;
    distinct_pair(prompt, chosen, rejected, ("chosen", "rejected")).map(|pair| (pair, format))
}

fn distinct_pair(
    prompt: Vec<ChatMessage>,
    chosen: Vec<ChatMessage>,
    rejected: Vec<ChatMessage>,
    names: (&str, &str),
) -> FieldResult<PreferencePair> {
    if chosen == rejected {
        return Err(format!(
            "fields \"{}\" and \"{}\" are the same: the pair teaches nothing",
            names.0, names.1
        ));
    }
    Ok(PreferencePair {
        prompt,
        chosen,
        rejected,
    })
}

/// `{"input": {"messages": […]}, "preferred_output": […], "non_preferred_output": […]}`.
fn parse_openai_pair(record: &Map<String, Value>) -> FieldResult<PreferencePair> {
    if let Some(extra) = record.keys().find(|k| !OPENAI_FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "unexpected field \"{extra}\" (OpenAI's preference format takes input, \
             preferred_output, non_preferred_output)"
        ));
    }
    let input = record
        .get("input")
        .ok_or("missing field \"input\" (OpenAI's preference format)")?;
    let Value::Object(input) = input else {
        return Err(format!(
            "field \"input\" must be an object with \"messages\", found {}",
            kind(input)
        ));
    };
    refuse_tool_keys(input, "\"input\".")?;
    if let Some(extra) = input.keys().find(|k| k.as_str() != "messages") {
        return Err(format!(
            "unexpected field \"input\".\"{extra}\" (the input takes messages)"
        ));
    }
    let messages = input
        .get("messages")
        .ok_or("missing field \"input\".\"messages\"")?;
    let prompt = messages_of("\"input\".\"messages\"", messages)?;
    if prompt.is_empty() {
        return Err("field \"input\".\"messages\" is empty".into());
    }
    let chosen = completion(record, "preferred_output")?;
    let rejected = completion(record, "non_preferred_output")?;
    distinct_pair(
        prompt,
        chosen,
        rejected,
        ("preferred_output", "non_preferred_output"),
    )
}

/// A list of messages under `field`, without weights (a preference completion is trained
/// whole).
fn messages_of(field: &str, value: &Value) -> FieldResult<Vec<ChatMessage>> {
    Ok(parse_message_list(field, value, false)?
        .into_iter()
        .map(|p| p.message)
        .collect())
}

/// A completion: a string (one assistant reply) or a list of assistant messages.
fn completion(record: &Map<String, Value>, name: &str) -> FieldResult<Vec<ChatMessage>> {
    let value = record
        .get(name)
        .ok_or_else(|| format!("missing field \"{name}\""))?;
    let messages = match value {
        list @ Value::Array(_) => messages_of(&format!("\"{name}\""), list)?,
        other => vec![ChatMessage::new(
            "assistant",
            &as_string(other, &format!("\"{name}\""))?,
        )],
    };
    if let Some((i, m)) = messages
        .iter()
        .enumerate()
        .find(|(_, m)| m.role != "assistant")
    {
        return Err(format!(
            "field \"{name}\"[{i}].role is \"{}\": a completion holds assistant messages only",
            m.role
        ));
    }
    if messages.iter().all(|m| m.content.trim().is_empty()) {
        return Err(format!(
            "field \"{name}\" is empty: a completion needs text"
        ));
    }
    Ok(messages)
}

/// A pair tokenized: both sequences carry labels on their completion only.
#[derive(Debug, Clone)]
pub struct TokenizedPair {
    pub chosen: TokenizedExample,
    pub rejected: TokenizedExample,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct TokenizedPairs {
    pub pairs: Vec<TokenizedPair>,
    /// Pairs where a prompt or completion was cut.
    pub truncated: usize,
    /// Lines of the pairs left out because a completion kept no token within the limits.
    pub left_out: Vec<usize>,
    /// Lines of the pairs left out because chosen and rejected became the same tokens once
    /// cut (they differed only past the limit): they would train at loss ln 2 and teach nothing.
    pub identical: Vec<usize>,
}

impl TokenizedPairs {
    /// What a run should be told about the pairs it will not train on.
    pub fn warnings(&self, file: &Path, limits: PairLimits) -> Vec<String> {
        let mut out: Vec<String> =
            left_out_warning(&self.left_out, file, limits.max_length, "pairs keep")
                .into_iter()
                .collect();
        if !self.identical.is_empty() {
            let shown: Vec<String> = self
                .identical
                .iter()
                .take(5)
                .map(usize::to_string)
                .collect();
            out.push(format!(
                "{}: {} pairs have the same chosen and rejected tokens within max_seq_length {} \
                 (lines {}{}): they differ only past the cut and are left out; raise \
                 max_seq_length or set max_prompt_length",
                file.display(),
                self.identical.len(),
                limits.max_length,
                shown.join(", "),
                if self.identical.len() > 5 {
                    ", …"
                } else {
                    ""
                }
            ));
        }
        out
    }
}

/// Lengths that bound a pair: the prompt keeps its last `max_prompt_length` tokens (the part
/// nearest the reply, as TRL did), then each whole sequence keeps its first `max_length`.
#[derive(Debug, Clone, Copy)]
pub struct PairLimits {
    pub max_length: usize,
    pub max_prompt_length: Option<usize>,
}

/// Tokenizes one pair; `system_prompt` opens the prompt unless it has its own system turn.
pub fn tokenize_pair(
    pair: &PreferencePair,
    template: &ChatTemplate,
    tokenizer: &TextTokenizer,
    system_prompt: Option<&str>,
    limits: PairLimits,
) -> Result<TokenizedPair> {
    if limits.max_length == 0 {
        bail!("max_seq_length must be at least 1");
    }
    let mut prompt = pair.prompt.clone();
    if let Some(system) = system_prompt {
        if !prompt.iter().any(|m| m.role == "system") {
            prompt.insert(0, ChatMessage::new("system", system));
        }
    }
    let prompt_text = template.render(&prompt, true)?;
    let mut prompt_ids = tokenizer.encode(&prompt_text)?;
    let mut cut = false;
    if let Some(keep) = limits.max_prompt_length {
        if prompt_ids.len() > keep {
            prompt_ids.drain(..prompt_ids.len() - keep);
            cut = true;
        }
    }
    let sequence = |completion: &[ChatMessage]| -> Result<TokenizedExample> {
        let full: Vec<ChatMessage> = prompt.iter().chain(completion).cloned().collect();
        let full_text = template.render(&full, false)?;
        let Some(completion_text) = full_text.strip_prefix(&prompt_text) else {
            bail!(
                "the chat template does not render incrementally: the conversation with its \
                 completion does not start with the prompt rendered with the generation prompt"
            );
        };
        // Tokenized apart from the prompt, as TRL does, so no token straddles the boundary.
        let completion_ids = tokenizer.encode(completion_text)?;
        let mut input_ids = prompt_ids.clone();
        let mut labels = vec![IGNORE_INDEX; prompt_ids.len()];
        labels.extend(completion_ids.iter().map(|&id| i64::from(id)));
        input_ids.extend(completion_ids);
        let truncated = cut || input_ids.len() > limits.max_length;
        input_ids.truncate(limits.max_length);
        labels.truncate(limits.max_length);
        Ok(TokenizedExample {
            input_ids,
            labels,
            truncated,
            line: 0,
        })
    };
    Ok(TokenizedPair {
        chosen: sequence(&pair.chosen)?,
        rejected: sequence(&pair.rejected)?,
        line: 0,
    })
}

/// Tokenizes every pair; a failure names the pair's file and line. Fails when no pair keeps a
/// completion token within the limits.
pub fn tokenize_pairs(
    ds: &PreferenceDataset,
    template: &ChatTemplate,
    tokenizer: &TextTokenizer,
    system_prompt: Option<&str>,
    limits: PairLimits,
) -> Result<TokenizedPairs> {
    let file = ds.path.display();
    let results: Vec<Result<TokenizedPair>> = ds
        .pairs
        .par_iter()
        .zip(ds.lines.par_iter())
        .map(|(pair, &line)| {
            let mut tokenized = tokenize_pair(pair, template, tokenizer, system_prompt, limits)
                .map_err(|e| anyhow!("{file}:{line}: {e:#}"))?;
            tokenized.line = line;
            tokenized.chosen.line = line;
            tokenized.rejected.line = line;
            Ok(tokenized)
        })
        .collect();
    let mut pairs = results.into_iter().collect::<Result<Vec<_>>>()?;
    let empty = |p: &TokenizedPair| p.chosen.loss_tokens() == 0 || p.rejected.loss_tokens() == 0;
    let same = |p: &TokenizedPair| p.chosen.input_ids == p.rejected.input_ids;
    let left_out: Vec<usize> = pairs.iter().filter(|p| empty(p)).map(|p| p.line).collect();
    let identical: Vec<usize> = pairs
        .iter()
        .filter(|p| !empty(p) && same(p))
        .map(|p| p.line)
        .collect();
    let had_tokens = pairs.iter().any(|p| !empty(p));
    pairs.retain(|p| !empty(p) && !same(p));
    if !had_tokens {
        bail!(
            "{file}: no pair keeps a completion token within max_seq_length {}; raise it or set \
             max_prompt_length",
            limits.max_length
        );
    }
    let truncated = pairs
        .iter()
        .filter(|p| p.chosen.truncated || p.rejected.truncated)
        .count();
    if pairs.is_empty() {
        bail!(
            "{file}: every pair's chosen and rejected replies are the same tokens within \
             max_seq_length {}; they differ only past the cut: raise max_seq_length or set \
             max_prompt_length",
            limits.max_length
        );
    }
    Ok(TokenizedPairs {
        pairs,
        truncated,
        left_out,
        identical,
    })
}

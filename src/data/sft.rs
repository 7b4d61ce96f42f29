//! Supervised fine-tuning files: JSONL (or one JSON array) of Alpaca, chat-messages (TRL's, or
//! OpenAI's fine-tuning chat format with its per-reply `weight`), ShareGPT or prompt/completion
//! records. The format is detected from the first record and every later record must match it;
//! problems are reported as `FILE:LINE: …` so they can be fixed in an editor. Records are
//! rendered with the model's chat template and tokenized with loss on the assistant's trained
//! replies only.

use super::jsonl::{as_string, kind, read_items};
use super::message::{parse_message_list, refuse_tool_keys, FieldResult, ParsedMessage};
use super::sharegpt::parse_conversations;
use crate::model::{ChatMessage, ChatTemplate, TextTokenizer};
use crate::train::loss::IGNORE_INDEX;
use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// How many problems `validate_sft_file` lists before it stops looking.
pub const MAX_PROBLEMS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SftFormat {
    Alpaca,
    Messages,
    ShareGpt,
    PromptCompletion,
}

impl SftFormat {
    /// The name messages and the UI show.
    pub fn name(self) -> &'static str {
        match self {
            Self::Alpaca => "alpaca",
            Self::Messages => "messages",
            Self::ShareGpt => "sharegpt",
            Self::PromptCompletion => "prompt/completion",
        }
    }

    /// The fields that identify the format (and that messages about it list).
    fn fields(self) -> &'static [&'static str] {
        match self {
            Self::Alpaca => &["instruction", "input", "output"],
            Self::Messages => &["messages"],
            Self::ShareGpt => &["conversations"],
            Self::PromptCompletion => &["prompt", "completion"],
        }
    }

    /// Fields a record may carry besides its identifying ones: the system prompt column that
    /// LLaMA-Factory's alpaca and ShareGPT files have, and `metadata` (provenance, such as
    /// `data generate` writes), which training ignores. Neither identifies a format.
    fn optional_fields(self) -> &'static [&'static str] {
        match self {
            Self::Alpaca | Self::ShareGpt => &["system", "metadata"],
            Self::Messages | Self::PromptCompletion => &["metadata"],
        }
    }

    fn allows(self, key: &str) -> bool {
        self.fields().contains(&key) || self.optional_fields().contains(&key)
    }

    /// The format whose fields a record uses; the chat formats are checked first because chat
    /// exports sometimes carry a stray "prompt" beside them. No field identifies two formats,
    /// so the order only matters for such mixtures.
    fn detect(record: &Map<String, Value>) -> Option<Self> {
        [
            Self::Messages,
            Self::ShareGpt,
            Self::PromptCompletion,
            Self::Alpaca,
        ]
        .into_iter()
        .find(|f| f.fields().iter().any(|k| record.contains_key(*k)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SftRecord {
    Alpaca {
        instruction: String,
        input: Option<String>,
        output: String,
    },
    Messages(Vec<ChatMessage>),
    /// A chat in which some assistant replies are context the loss skips (OpenAI's
    /// `"weight": 0`). `trained` holds one flag per assistant message, in order; at least one
    /// is true and one false (a chat with every reply trained is `Messages`).
    Weighted {
        messages: Vec<ChatMessage>,
        trained: Vec<bool>,
    },
    PromptCompletion {
        prompt: String,
        completion: String,
    },
}

impl SftRecord {
    /// The conversation the record stands for; `system_prompt` opens it unless it has its own
    /// system message.
    pub fn conversation(&self, system_prompt: Option<&str>) -> Vec<ChatMessage> {
        let mut messages = match self {
            Self::Alpaca {
                instruction,
                input,
                output,
            } => {
                let user = match input.as_deref().filter(|i| !i.trim().is_empty()) {
                    Some(input) => format!("{instruction}\n\n{input}"),
                    None => instruction.clone(),
                };
                vec![
                    ChatMessage::new("user", &user),
                    ChatMessage::new("assistant", output),
                ]
            }
            Self::Messages(messages) | Self::Weighted { messages, .. } => messages.clone(),
            Self::PromptCompletion { prompt, completion } => vec![
                ChatMessage::new("user", prompt),
                ChatMessage::new("assistant", completion),
            ],
        };
        if let Some(system) = system_prompt {
            if !messages.iter().any(|m| m.role == "system") {
                messages.insert(0, ChatMessage::new("system", system));
            }
        }
        messages
    }

    /// Whether the loss covers each assistant reply of `conversation`, in order.
    pub fn trained_replies(&self) -> Vec<bool> {
        match self {
            Self::Weighted { trained, .. } => trained.clone(),
            Self::Messages(messages) => messages
                .iter()
                .filter(|m| m.role == "assistant")
                .map(|_| true)
                .collect(),
            Self::Alpaca { .. } | Self::PromptCompletion { .. } => vec![true],
        }
    }
}

#[derive(Debug, Clone)]
pub struct SftDataset {
    pub path: PathBuf,
    pub format: SftFormat,
    pub records: Vec<SftRecord>,
    /// The 1-based line each record starts on.
    pub lines: Vec<usize>,
}

/// Reads and checks a whole file; fails with its first problem.
pub fn load_sft_file(path: &Path) -> Result<SftDataset> {
    let scan = scan_file(path, 1)?;
    if let Some(first) = scan.problems.into_iter().next() {
        bail!(first);
    }
    let (format, _) = scan
        .format
        .with_context(|| format!("{}: no records", path.display()))?;
    Ok(SftDataset {
        path: path.to_path_buf(),
        format,
        records: scan.records,
        lines: scan.lines,
    })
}

/// Every problem of a file (up to 100), in file order; empty when the file loads.
pub fn validate_sft_file(path: &Path) -> Vec<String> {
    check_sft_file(path).problems
}

/// What checking a whole file found.
#[derive(Debug, Clone)]
pub struct SftCheck {
    /// Records read (good or bad) before the check stopped.
    pub records: usize,
    pub format: Option<SftFormat>,
    /// Up to MAX_PROBLEMS, in file order; empty when the file loads.
    pub problems: Vec<String>,
}

pub fn check_sft_file(path: &Path) -> SftCheck {
    match scan_file(path, MAX_PROBLEMS) {
        Ok(scan) if scan.problems.is_empty() && scan.records.is_empty() => SftCheck {
            records: 0,
            format: None,
            problems: vec![format!("{}: no records", path.display())],
        },
        Ok(scan) => SftCheck {
            records: scan.records.len() + scan.problems.len(),
            format: scan.format.map(|(format, _)| format),
            problems: scan.problems,
        },
        Err(e) => SftCheck {
            records: 0,
            format: None,
            problems: vec![format!("{e:#}")],
        },
    }
}

#[derive(Default)]
struct Scan {
    /// The detected format and the line it was detected from.
    format: Option<(SftFormat, usize)>,
    records: Vec<SftRecord>,
    lines: Vec<usize>,
    problems: Vec<String>,
}

fn scan_file(path: &Path, max_problems: usize) -> Result<Scan> {
    let items = read_items(path)?;
    let mut scan = Scan::default();
    for (line, value) in items {
        match value.and_then(|v| parse_record(v, line, &mut scan.format)) {
            Ok(record) => {
                scan.records.push(record);
                scan.lines.push(line);
            }
            Err(problem) => {
                scan.problems
                    .push(format!("{}:{line}: {problem}", path.display()));
                if scan.problems.len() >= max_problems {
                    break;
                }
            }
        }
    }
    Ok(scan)
}

fn parse_record(
    value: Value,
    line: usize,
    detected: &mut Option<(SftFormat, usize)>,
) -> std::result::Result<SftRecord, String> {
    let Value::Object(record) = value else {
        return Err(format!(
            "a record must be a JSON object, found {}",
            kind(&value)
        ));
    };
    let (format, from) = match *detected {
        Some(found) => found,
        None => {
            let format = SftFormat::detect(&record).ok_or_else(|| {
                format!(
                    "cannot tell the format from fields {}: expected instruction/output (alpaca), \
                     messages, or prompt/completion, or conversations (sharegpt); messages \
                     reads TRL's and OpenAI's chat files",
                    quoted_keys(&record)
                )
            })?;
            *detected = Some((format, line));
            (format, line)
        }
    };
    let fields = Fields {
        record: &record,
        format,
        from,
    };
    refuse_tool_keys(&record, "")?;
    fields.check_names()?;
    match format {
        SftFormat::Alpaca => parse_alpaca(&fields),
        SftFormat::Messages => weighted_record(parse_message_list(
            "\"messages\"",
            fields.required("messages")?,
            true,
        )?),
        SftFormat::ShareGpt => {
            let system = fields.optional_string("system")?;
            let messages = parse_conversations(fields.required("conversations")?, system)?;
            check_chat("\"conversations\"", &messages)?;
            Ok(SftRecord::Messages(messages))
        }
        SftFormat::PromptCompletion => Ok(SftRecord::PromptCompletion {
            prompt: fields.string("prompt")?,
            completion: fields.non_empty_string("completion")?,
        }),
    }
}

/// An alpaca record; one with a system prompt (LLaMA-Factory's column) is the chat it stands
/// for, since `SftRecord::Alpaca` has no place for one.
fn parse_alpaca(fields: &Fields) -> FieldResult<SftRecord> {
    let record = SftRecord::Alpaca {
        instruction: fields.string("instruction")?,
        input: fields.optional_string("input")?,
        output: fields.non_empty_string("output")?,
    };
    Ok(match fields.optional_string("system")? {
        Some(system) => SftRecord::Messages(record.conversation(Some(&system))),
        None => record,
    })
}

/// A messages record, `Weighted` when some reply has weight 0.
fn weighted_record(parsed: Vec<ParsedMessage>) -> FieldResult<SftRecord> {
    let trained: Vec<bool> = parsed
        .iter()
        .filter(|p| p.message.role == "assistant")
        .map(|p| p.weight.unwrap_or(true))
        .collect();
    let messages: Vec<ChatMessage> = parsed.into_iter().map(|p| p.message).collect();
    check_chat("\"messages\"", &messages)?;
    if !trained.contains(&true) {
        return Err(
            "field \"messages\": every assistant reply has weight 0, so the record trains on \
             nothing; set \"weight\": 1 on the reply to learn, or leave the record out"
                .into(),
        );
    }
    Ok(if trained.contains(&false) {
        SftRecord::Weighted { messages, trained }
    } else {
        SftRecord::Messages(messages)
    })
}

/// A chat must end with the assistant's reply, which is what the model learns.
fn check_chat(field: &str, messages: &[ChatMessage]) -> FieldResult<()> {
    let Some(last) = messages.last() else {
        return Err(format!("field {field} is empty"));
    };
    if last.role != "assistant" {
        return Err(format!(
            "field {field}[{}].role is \"{}\": the last message must be from the assistant, \
             whose reply is what the model learns",
            messages.len() - 1,
            last.role
        ));
    }
    Ok(())
}

/// One record's fields, read against the file's format.
struct Fields<'a> {
    record: &'a Map<String, Value>,
    format: SftFormat,
    from: usize,
}

impl Fields<'_> {
    /// A record of another format gets one clear message instead of a field-by-field list.
    fn check_names(&self) -> FieldResult<()> {
        let allowed = self.format.fields();
        let uses_own_fields = self.record.keys().any(|k| allowed.contains(&k.as_str()));
        if let Some(other) = SftFormat::detect(self.record).filter(|_| !uses_own_fields) {
            return Err(format!(
                "fields {} are {} format, but this file is {} format (detected from line {})",
                quoted_keys(self.record),
                other.name(),
                self.format.name(),
                self.from
            ));
        }
        match self.record.keys().find(|k| !self.format.allows(k)) {
            Some(extra) => Err(format!(
                "unexpected field \"{extra}\" ({} format takes {})",
                self.format.name(),
                allowed.join(", ")
            )),
            None => Ok(()),
        }
    }

    fn required(&self, name: &str) -> FieldResult<&Value> {
        self.record.get(name).ok_or_else(|| {
            format!(
                "missing field \"{name}\" ({} format, detected from line {})",
                self.format.name(),
                self.from
            )
        })
    }

    fn string(&self, name: &str) -> FieldResult<String> {
        as_string(self.required(name)?, &format!("\"{name}\""))
    }

    fn non_empty_string(&self, name: &str) -> FieldResult<String> {
        let text = self.string(name)?;
        if text.trim().is_empty() {
            return Err(format!(
                "field \"{name}\" is empty: there is nothing to learn"
            ));
        }
        Ok(text)
    }

    /// Absent and null both mean "no input", as exports from data frames write it.
    fn optional_string(&self, name: &str) -> FieldResult<Option<String>> {
        match self.record.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => as_string(value, &format!("\"{name}\"")).map(Some),
        }
    }
}

fn quoted_keys(record: &Map<String, Value>) -> String {
    if record.is_empty() {
        return "(none)".into();
    }
    // Sorted, so the message is the same whatever order the line had them in.
    let mut keys: Vec<String> = record.keys().map(|k| format!("\"{k}\"")).collect();
    keys.sort();
    keys.join(", ")
}

#[derive(Debug, Clone)]
pub struct TokenizedExample {
    pub input_ids: Vec<u32>,
    /// `input_ids` on the assistant's replies, IGNORE_INDEX elsewhere.
    pub labels: Vec<i64>,
    /// Whether tokens past max_seq_length were cut off.
    pub truncated: bool,
    /// The record's line in its file; 0 when it came from no file.
    pub line: usize,
}

impl TokenizedExample {
    /// Labels the loss counts: position 0 predicts nothing because the loss shifts by one.
    pub fn loss_tokens(&self) -> usize {
        self.labels
            .iter()
            .skip(1)
            .filter(|&&label| label != IGNORE_INDEX)
            .count()
    }
}

#[derive(Debug, Clone)]
pub struct TokenizedDataset {
    pub examples: Vec<TokenizedExample>,
    /// How many examples were cut at max_seq_length.
    pub truncated: usize,
    /// The lines of the records left out because no reply token survived max_seq_length
    /// (a micro-batch of them alone would carry no loss).
    pub left_out: Vec<usize>,
}

impl TokenizedDataset {
    /// What a run should be told about the examples it will not train on.
    pub fn warning(&self, file: &Path, max_seq_length: usize) -> Option<String> {
        left_out_warning(&self.left_out, file, max_seq_length, "records keep")
    }
}

/// "N records keep no reply token within max_seq_length M (lines …) and are left out".
pub fn left_out_warning(
    lines: &[usize],
    file: &Path,
    max_seq_length: usize,
    what: &str,
) -> Option<String> {
    if lines.is_empty() {
        return None;
    }
    let shown: Vec<String> = lines.iter().take(5).map(usize::to_string).collect();
    let more = if lines.len() > 5 { ", …" } else { "" };
    Some(format!(
        "{}: {} {what} no reply token within max_seq_length {max_seq_length} (lines {}{more}) \
         and are left out; raise max_seq_length to train on them",
        file.display(),
        lines.len(),
        shown.join(", ")
    ))
}

/// Renders a record with the chat template and tokenizes it; labels are set on the trained
/// assistant replies (with the template's end-of-turn text, so the model learns to stop) and
/// nowhere else: a weight-0 reply is context, like the user's turns.
pub fn tokenize_record(
    record: &SftRecord,
    template: &ChatTemplate,
    tokenizer: &TextTokenizer,
    system_prompt: Option<&str>,
    max_seq_length: usize,
) -> Result<TokenizedExample> {
    if max_seq_length == 0 {
        bail!("max_seq_length must be at least 1");
    }
    let messages = record.conversation(system_prompt);
    let mut input_ids = Vec::new();
    let mut labels = Vec::new();
    // Each piece is tokenized on its own, as TRL's completion-only masking does, so a token
    // never straddles the boundary between prompt and reply.
    for (text, trained) in rendered_pieces(&messages, &record.trained_replies(), template)? {
        let ids = tokenizer.encode(&text)?;
        labels.extend(
            ids.iter()
                .map(|&id| if trained { i64::from(id) } else { IGNORE_INDEX }),
        );
        input_ids.extend(ids);
    }
    let truncated = input_ids.len() > max_seq_length;
    input_ids.truncate(max_seq_length);
    labels.truncate(max_seq_length);
    Ok(TokenizedExample {
        input_ids,
        labels,
        truncated,
        line: 0,
    })
}

/// The rendered conversation cut into consecutive pieces, each flagged true when it is an
/// assistant reply the loss covers (`trained`: one flag per assistant message; a missing flag
/// means trained). A reply is located as the text its message adds to the conversation before
/// it (rendered with the generation prompt), so any template that renders incrementally works.
fn rendered_pieces(
    messages: &[ChatMessage],
    trained: &[bool],
    template: &ChatTemplate,
) -> Result<Vec<(String, bool)>> {
    let full = template.render(messages, false)?;
    let mut pieces = Vec::new();
    let mut push = |text: &str, labelled: bool| {
        if !text.is_empty() {
            pieces.push((text.to_string(), labelled));
        }
    };
    let mut cursor = 0;
    let replies = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m.role == "assistant");
    for (reply, (i, _)) in replies.enumerate() {
        let prefix = template.render(&messages[..i], true)?;
        let upto = template.render(&messages[..=i], false)?;
        if prefix.len() < cursor || !upto.starts_with(&prefix) || !full.starts_with(&upto) {
            bail!(
                "the chat template does not render incrementally: the conversation up to message \
                 {i} (assistant) is not the conversation before it plus the reply, so the reply \
                 cannot be located for loss masking"
            );
        }
        push(&full[cursor..prefix.len()], false);
        push(
            &full[prefix.len()..upto.len()],
            trained.get(reply).copied().unwrap_or(true),
        );
        cursor = upto.len();
    }
    // Text some templates write after the last turn (an EOS, say) is context, not reply.
    push(&full[cursor..], false);
    Ok(pieces)
}

/// Tokenizes every record; a failure names the record's file and line. Fails when no example
/// keeps a token to learn from after truncation.
pub fn tokenize_dataset(
    ds: &SftDataset,
    template: &ChatTemplate,
    tokenizer: &TextTokenizer,
    system_prompt: Option<&str>,
    max_seq_length: usize,
) -> Result<TokenizedDataset> {
    let file = ds.path.display();
    if ds.records.len() != ds.lines.len() {
        bail!(
            "{file}: {} records but {} line numbers",
            ds.records.len(),
            ds.lines.len()
        );
    }
    let results: Vec<Result<TokenizedExample>> = ds
        .records
        .par_iter()
        .zip(ds.lines.par_iter())
        .map(|(record, &line)| {
            let mut example =
                tokenize_record(record, template, tokenizer, system_prompt, max_seq_length)
                    .map_err(|e| anyhow!("{file}:{line}: {e:#}"))?;
            example.line = line;
            Ok(example)
        })
        .collect();
    // Collected in file order, so the error reported is the first one in the file.
    let mut examples = results.into_iter().collect::<Result<Vec<_>>>()?;
    let left_out: Vec<usize> = examples
        .iter()
        .filter(|e| e.loss_tokens() == 0)
        .map(|e| e.line)
        .collect();
    examples.retain(|e| e.loss_tokens() > 0);
    if examples.is_empty() {
        bail!(
            "{file}: no example keeps a reply token within max_seq_length {max_seq_length}; \
             raise max_seq_length or shorten the prompts"
        );
    }
    let truncated = examples.iter().filter(|e| e.truncated).count();
    Ok(TokenizedDataset {
        examples,
        truncated,
        left_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::chat_template::CHATML_TEMPLATE;

    #[test]
    fn chatml_replies_are_located_with_their_end_of_turn() {
        let template = ChatTemplate::new(CHATML_TEMPLATE, "", "").unwrap();
        let messages = [
            ChatMessage::new("user", "Hi"),
            ChatMessage::new("assistant", "Hello"),
        ];
        let pieces = rendered_pieces(&messages, &[true], &template).unwrap();
        assert_eq!(
            pieces,
            vec![
                (
                    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n".to_string(),
                    false
                ),
                ("Hello<|im_end|>\n".to_string(), true),
            ]
        );
    }

    #[test]
    fn a_weight_0_reply_is_context() {
        let template = ChatTemplate::new(CHATML_TEMPLATE, "", "").unwrap();
        let messages = [
            ChatMessage::new("user", "Hi"),
            ChatMessage::new("assistant", "Hello"),
            ChatMessage::new("user", "Again"),
            ChatMessage::new("assistant", "Hello again"),
        ];
        let pieces = rendered_pieces(&messages, &[false, true], &template).unwrap();
        let labelled: Vec<&str> = pieces
            .iter()
            .filter(|(_, l)| *l)
            .map(|(t, _)| t.as_str())
            .collect();
        assert_eq!(labelled, vec!["Hello again<|im_end|>\n"]);
        assert!(pieces
            .iter()
            .any(|(t, l)| !l && t.contains("Hello<|im_end|>")));
    }

    #[test]
    fn a_template_that_rewrites_history_is_refused() {
        // Renders only the last message, as templates that drop earlier reasoning effectively do.
        let last_only =
            "{% for m in messages %}{% if loop.last %}{{ m.content }}{% endif %}{% endfor %}";
        let template = ChatTemplate::new(last_only, "", "").unwrap();
        let messages = [
            ChatMessage::new("user", "Hi"),
            ChatMessage::new("assistant", "Hello"),
        ];
        let err = rendered_pieces(&messages, &[true], &template).unwrap_err();
        assert!(
            err.to_string().contains("does not render incrementally"),
            "{err}"
        );
    }
}

//! Writing records in the formats other tools read: OpenAI's fine-tuning chat and preference
//! JSONL, alpaca, ShareGPT, TRL's messages and TRL's conversational preference pairs. A record
//! the target cannot express (a weight-0 reply outside OpenAI's format, a multi-turn chat as
//! alpaca) is an error naming its line, and then nothing is written.

use super::dataset::Dataset;
use super::jsonl::write_new_jsonl;
use super::preference::PreferencePair;
use super::sft::{SftRecord, MAX_PROBLEMS};
use super::sharegpt::speaker;
use crate::model::ChatMessage;
use anyhow::Result;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// OpenAI fine-tuning JSONL: chat (`messages`, weights kept) or preference.
    #[value(name = "openai")]
    OpenAi,
    /// `{"instruction", "input"?, "output", "system"?}`: one user turn and one reply.
    Alpaca,
    /// `{"conversations": [{"from", "value"}]}`.
    #[value(name = "sharegpt")]
    ShareGpt,
    /// TRL's conversational preference pairs: `prompt`, `chosen`, `rejected` message lists.
    TrlPreference,
    /// TRL's `{"messages": [{"role", "content"}]}`.
    Messages,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Alpaca => "alpaca",
            Self::ShareGpt => "sharegpt",
            Self::TrlPreference => "trl-preference",
            Self::Messages => "messages",
        }
    }
}

/// What a conversion produced: the JSONL lines, or every record that could not be expressed
/// (`FILE:LINE: reason`, up to MAX_PROBLEMS).
pub type Converted = std::result::Result<Vec<String>, Vec<String>>;

/// Every record of `ds` as a line of `target`.
pub fn convert(ds: &Dataset, target: Target) -> Result<Converted> {
    check_kind(ds, target)?;
    let (path, lines, texts): (&Path, &[usize], Vec<Result<String, String>>) = match ds {
        Dataset::Sft(sft) => (
            &sft.path,
            &sft.lines,
            sft.records.iter().map(|r| sft_line(r, target)).collect(),
        ),
        Dataset::Preference(pref) => (
            &pref.path,
            &pref.lines,
            pref.pairs.iter().map(|p| pair_line(p, target)).collect(),
        ),
    };
    let mut out = Vec::with_capacity(texts.len());
    let mut problems = Vec::new();
    for (text, line) in texts.into_iter().zip(lines) {
        match text {
            Ok(text) => out.push(text),
            Err(reason) if problems.len() < MAX_PROBLEMS => {
                problems.push(format!("{}:{line}: {reason}", path.display()))
            }
            Err(_) => {}
        }
    }
    Ok(if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    })
}

/// A whole file of the wrong kind is one error, not one per line.
fn check_kind(ds: &Dataset, target: Target) -> Result<()> {
    let (path, fits) = match ds {
        Dataset::Sft(sft) => (&sft.path, target != Target::TrlPreference),
        Dataset::Preference(pref) => (
            &pref.path,
            matches!(target, Target::TrlPreference | Target::OpenAi),
        ),
    };
    if !fits {
        anyhow::bail!(
            "{}: holds {} records, which cannot be written as {}; {}",
            path.display(),
            ds.kind().name(),
            target.name(),
            match ds {
                Dataset::Sft(_) => "use openai, alpaca, sharegpt or messages",
                Dataset::Preference(_) => "use trl-preference or openai",
            }
        );
    }
    Ok(())
}

/// Converts and writes `out` (a new file, written atomically); the problems when any record
/// cannot be expressed, in which case nothing is written.
pub fn convert_file(ds: &Dataset, target: Target, out: &Path) -> Result<Converted> {
    super::jsonl::refuse_existing(out)?;
    let converted = convert(ds, target)?;
    if let Ok(lines) = &converted {
        write_new_jsonl(out, lines)?;
    }
    Ok(converted)
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'a str,
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    weight: Option<u8>,
}

fn messages(list: &[ChatMessage]) -> Vec<Message<'_>> {
    list.iter()
        .map(|m| Message {
            role: &m.role,
            content: &m.content,
            weight: None,
        })
        .collect()
}

fn json<T: Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| format!("cannot write as JSON: {e}"))
}

fn sft_line(record: &SftRecord, target: Target) -> Result<String, String> {
    match target {
        Target::OpenAi => openai_chat(record),
        Target::Messages => {
            refuse_weights(record, "TRL's messages")?;
            #[derive(Serialize)]
            struct Line<'a> {
                messages: Vec<Message<'a>>,
            }
            let conversation = record.conversation(None);
            json(&Line {
                messages: messages(&conversation),
            })
        }
        Target::ShareGpt => sharegpt(record),
        Target::Alpaca => alpaca(record),
        Target::TrlPreference => Err(
            "a supervised record has no rejected reply, so it cannot be a preference pair".into(),
        ),
    }
}

/// OpenAI's chat format; a record with weight-0 replies says so on every reply, so a reader
/// need not know that an absent weight means 1.
fn openai_chat(record: &SftRecord) -> Result<String, String> {
    #[derive(Serialize)]
    struct Line<'a> {
        messages: Vec<Message<'a>>,
    }
    let conversation = record.conversation(None);
    let mut list = messages(&conversation);
    if let SftRecord::Weighted { trained, .. } = record {
        let replies = list.iter_mut().filter(|m| m.role == "assistant");
        for (message, &trained) in replies.zip(trained) {
            message.weight = Some(u8::from(trained));
        }
    }
    json(&Line { messages: list })
}

fn refuse_weights(record: &SftRecord, target: &str) -> Result<(), String> {
    match record {
        SftRecord::Weighted { trained, .. } => {
            let context = trained.iter().filter(|t| !**t).count();
            Err(format!(
                "{context} assistant replies have weight 0, and {target} format has no weight; \
                 convert to openai to keep them as context"
            ))
        }
        _ => Ok(()),
    }
}

fn sharegpt(record: &SftRecord) -> Result<String, String> {
    refuse_weights(record, "ShareGPT")?;
    #[derive(Serialize)]
    struct Turn<'a> {
        from: &'a str,
        value: &'a str,
    }
    #[derive(Serialize)]
    struct Line<'a> {
        conversations: Vec<Turn<'a>>,
    }
    let conversation = record.conversation(None);
    let turns = conversation
        .iter()
        .map(|m| Turn {
            from: speaker(&m.role),
            value: &m.content,
        })
        .collect();
    json(&Line {
        conversations: turns,
    })
}

#[derive(Serialize)]
struct AlpacaLine<'a> {
    instruction: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<&'a str>,
    output: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
}

/// An alpaca record keeps its instruction and input apart; any other record must be one user
/// turn and one reply (after an optional system turn).
fn alpaca(record: &SftRecord) -> Result<String, String> {
    if let SftRecord::Alpaca {
        instruction,
        input,
        output,
    } = record
    {
        return json(&AlpacaLine {
            instruction,
            input: input.as_deref(),
            output,
            system: None,
        });
    }
    refuse_weights(record, "alpaca")?;
    let conversation = record.conversation(None);
    let (system, turns) = match conversation.split_first() {
        Some((first, rest)) if first.role == "system" => (Some(first.content.as_str()), rest),
        _ => (None, conversation.as_slice()),
    };
    match turns {
        [user, reply] if user.role == "user" && reply.role == "assistant" => json(&AlpacaLine {
            instruction: &user.content,
            input: None,
            output: &reply.content,
            system,
        }),
        _ => Err(format!(
            "alpaca holds one user turn and one reply (after an optional system turn), and \
             this record has {} turns ({}); convert to openai, sharegpt or messages instead",
            conversation.len(),
            roles(&conversation)
        )),
    }
}

fn roles(conversation: &[ChatMessage]) -> String {
    let roles: Vec<&str> = conversation.iter().map(|m| m.role.as_str()).collect();
    roles.join(", ")
}

fn pair_line(pair: &PreferencePair, target: Target) -> Result<String, String> {
    match target {
        Target::TrlPreference => {
            #[derive(Serialize)]
            struct Line<'a> {
                prompt: Vec<Message<'a>>,
                chosen: Vec<Message<'a>>,
                rejected: Vec<Message<'a>>,
            }
            json(&Line {
                prompt: messages(&pair.prompt),
                chosen: messages(&pair.chosen),
                rejected: messages(&pair.rejected),
            })
        }
        Target::OpenAi => {
            #[derive(Serialize)]
            struct Input<'a> {
                messages: Vec<Message<'a>>,
            }
            #[derive(Serialize)]
            struct Line<'a> {
                input: Input<'a>,
                preferred_output: Vec<Message<'a>>,
                non_preferred_output: Vec<Message<'a>>,
            }
            json(&Line {
                input: Input {
                    messages: messages(&pair.prompt),
                },
                preferred_output: messages(&pair.chosen),
                non_preferred_output: messages(&pair.rejected),
            })
        }
        other => Err(format!(
            "a preference pair cannot be written as {}, a supervised format; use \
             trl-preference or openai",
            other.name()
        )),
    }
}

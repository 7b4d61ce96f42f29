//! Chat messages as TRL and OpenAI write them: `{"role", "content"}`, where OpenAI's files may
//! give the content as a list of text parts and mark an assistant reply `"weight": 0` (context,
//! not trained). Tool calling is refused by name wherever it appears, since training on it is
//! not supported and silently dropping it would teach replies that ignore the tools.

use super::jsonl::{as_string, kind};
use crate::model::ChatMessage;
use serde_json::{Map, Value};

pub(crate) type FieldResult<T> = std::result::Result<T, String>;

pub const ROLES: [&str; 3] = ["system", "user", "assistant"];

/// Record-level keys OpenAI uses to declare tools; `conversations` files from LLaMA-Factory use
/// `tools` too.
const TOOL_RECORD_KEYS: [&str; 3] = ["tools", "functions", "parallel_tool_calls"];
/// Message-level keys of a tool call or its answer.
const TOOL_MESSAGE_KEYS: [&str; 3] = ["tool_calls", "function_call", "tool_call_id"];
const TOOL_ROLES: [&str; 2] = ["tool", "function"];

const TOOLS_UNSUPPORTED: &str = "tool calling is not supported for training yet; remove";

/// A message and, for an assistant reply, whether the loss covers it (OpenAI's weight; None
/// when the file gives none, which means trained).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMessage {
    pub message: ChatMessage,
    pub weight: Option<bool>,
}

/// Refuses a record that declares tools, naming the key.
pub(crate) fn refuse_tool_keys(record: &Map<String, Value>, prefix: &str) -> FieldResult<()> {
    match TOOL_RECORD_KEYS.iter().find(|k| record.contains_key(**k)) {
        Some(key) => Err(format!(
            "field {prefix}\"{key}\": {TOOLS_UNSUPPORTED} \"{key}\" and the tool messages from \
             this record, or leave the record out"
        )),
        None => Ok(()),
    }
}

/// One message of the list `field` (e.g. `"messages"`) at `index`. `weighted` allows OpenAI's
/// `weight` on assistant replies (supervised files; a preference completion has none).
pub(crate) fn parse_message(
    field: &str,
    index: usize,
    value: &Value,
    weighted: bool,
) -> FieldResult<ParsedMessage> {
    let field = format!("{field}[{index}]");
    let Value::Object(message) = value else {
        return Err(format!(
            "field {field} must be an object, found {}",
            kind(value)
        ));
    };
    // Checked before any other field: a tool call's assistant message has no text content,
    // and "content must be a string" would hide the real reason.
    if let Some(key) = TOOL_MESSAGE_KEYS.iter().find(|k| message.contains_key(**k)) {
        return Err(format!(
            "field {field}.{key}: {TOOLS_UNSUPPORTED} the tool calls and tool messages from this \
             record, or leave the record out"
        ));
    }
    let allowed: &[&str] = if weighted {
        &["role", "content", "weight"]
    } else {
        &["role", "content"]
    };
    if let Some(extra) = message.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!(
            "unexpected field {field}.{extra} (a message takes {})",
            allowed.join(", ")
        ));
    }
    let get = |name: &str| {
        message
            .get(name)
            .ok_or_else(|| format!("missing field {field}.{name}"))
    };
    let role = as_string(get("role")?, &format!("{field}.role"))?;
    check_role(&field, &role)?;
    let content = content_text(get("content")?, &format!("{field}.content"))?;
    if role == "assistant" && content.trim().is_empty() {
        return Err(format!(
            "field {field}.content is empty: an assistant reply needs text to learn"
        ));
    }
    let weight = match message.get("weight") {
        None => None,
        Some(_) if role != "assistant" => {
            return Err(format!(
                "field {field}.weight is set on a {role} message: only assistant replies carry \
                 a weight (0 = context, 1 = trained)"
            ))
        }
        Some(w) => Some(parse_weight(w, &field)?),
    };
    Ok(ParsedMessage {
        message: ChatMessage { role, content },
        weight,
    })
}

fn check_role(field: &str, role: &str) -> FieldResult<()> {
    if TOOL_ROLES.contains(&role) {
        return Err(format!(
            "field {field}.role is \"{role}\": {TOOLS_UNSUPPORTED} the {role} messages and the \
             tool calls they answer from this record, or leave the record out"
        ));
    }
    if !ROLES.contains(&role) {
        return Err(format!(
            "field {field}.role must be system, user or assistant (found \"{role}\")"
        ));
    }
    Ok(())
}

/// OpenAI documents the weight as the integer 0 or 1.
fn parse_weight(value: &Value, field: &str) -> FieldResult<bool> {
    match value.as_u64() {
        Some(0) => Ok(false),
        Some(1) => Ok(true),
        _ => Err(format!(
            "field {field}.weight must be 0 or 1 (found {value})"
        )),
    }
}

/// A string, or OpenAI's list of content parts with every part text. Parts are joined with a
/// newline, as vLLM's OpenAI-compatible server joins them for a text-only model.
fn content_text(value: &Value, field: &str) -> FieldResult<String> {
    let Value::Array(parts) = value else {
        return as_string(value, field);
    };
    let texts = parts
        .iter()
        .enumerate()
        .map(|(i, part)| text_part(part, &format!("{field}[{i}]")))
        .collect::<FieldResult<Vec<_>>>()?;
    Ok(texts.join("\n"))
}

fn text_part(part: &Value, field: &str) -> FieldResult<String> {
    let Value::Object(part) = part else {
        return Err(format!(
            "field {field} must be a content part object, found {}",
            kind(part)
        ));
    };
    let kind_of = part
        .get("type")
        .ok_or_else(|| format!("missing field {field}.type"))?;
    let kind_of = as_string(kind_of, &format!("{field}.type"))?;
    if kind_of != "text" {
        return Err(format!(
            "field {field}.type is \"{kind_of}\": only text parts can be trained on (the model \
             reads text); remove the {kind_of} part"
        ));
    }
    if let Some(extra) = part.keys().find(|k| !matches!(k.as_str(), "type" | "text")) {
        return Err(format!(
            "unexpected field {field}.{extra} (a text part takes type, text)"
        ));
    }
    let text = part
        .get("text")
        .ok_or_else(|| format!("missing field {field}.text"))?;
    as_string(text, &format!("{field}.text"))
}

/// A list of messages under `field`, each parsed with `parse_message`.
pub(crate) fn parse_message_list(
    field: &str,
    value: &Value,
    weighted: bool,
) -> FieldResult<Vec<ParsedMessage>> {
    let Value::Array(list) = value else {
        return Err(format!(
            "field {field} must be an array, found {}",
            kind(value)
        ));
    };
    list.iter()
        .enumerate()
        .map(|(i, m)| parse_message(field, i, m, weighted))
        .collect()
}

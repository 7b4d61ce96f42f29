//! ShareGPT conversations, as LLaMA-Factory and Axolotl read them:
//! `{"conversations": [{"from": "human" | "gpt" | …, "value": "…"}], "system"?: "…"}`.
//! Each turn becomes a chat message so the rest of the pipeline sees one shape.

use super::jsonl::{as_string, kind};
use super::message::FieldResult;
use crate::model::ChatMessage;
use serde_json::Value;

/// The `from` values read, and the role each stands for.
const SPEAKERS: [(&str, &str); 5] = [
    ("system", "system"),
    ("human", "user"),
    ("user", "user"),
    ("gpt", "assistant"),
    ("assistant", "assistant"),
];

/// LLaMA-Factory's names for a tool call and its answer.
const TOOL_SPEAKERS: [&str; 4] = ["function_call", "observation", "tool", "function"];

/// The `from` value a role is written as.
pub fn speaker(role: &str) -> &'static str {
    match role {
        "user" => "human",
        "assistant" => "gpt",
        _ => "system",
    }
}

/// The turns of `"conversations"` as chat messages, with `system` (the record's own field, if
/// any) first.
pub(crate) fn parse_conversations(
    value: &Value,
    system: Option<String>,
) -> FieldResult<Vec<ChatMessage>> {
    let Value::Array(turns) = value else {
        return Err(format!(
            "field \"conversations\" must be an array, found {}",
            kind(value)
        ));
    };
    let mut messages: Vec<ChatMessage> = system
        .map(|s| ChatMessage::new("system", &s))
        .into_iter()
        .collect();
    for (i, turn) in turns.iter().enumerate() {
        let message = parse_turn(i, turn)?;
        if message.role == "system" && system_given(&messages) {
            return Err(format!(
                "field \"conversations\"[{i}] is a second system turn: give the system prompt \
                 once, as the first turn or the record's \"system\" field"
            ));
        }
        messages.push(message);
    }
    Ok(messages)
}

fn system_given(messages: &[ChatMessage]) -> bool {
    messages.iter().any(|m| m.role == "system")
}

fn parse_turn(index: usize, value: &Value) -> FieldResult<ChatMessage> {
    let field = format!("\"conversations\"[{index}]");
    let Value::Object(turn) = value else {
        return Err(format!(
            "field {field} must be an object, found {}",
            kind(value)
        ));
    };
    if let Some(extra) = turn
        .keys()
        .find(|k| !matches!(k.as_str(), "from" | "value"))
    {
        return Err(format!(
            "unexpected field {field}.{extra} (a ShareGPT turn takes from, value)"
        ));
    }
    let get = |name: &str| {
        turn.get(name)
            .ok_or_else(|| format!("missing field {field}.{name}"))
    };
    let from = as_string(get("from")?, &format!("{field}.from"))?;
    let role = role_of(&field, &from)?;
    let content = as_string(get("value")?, &format!("{field}.value"))?;
    if role == "assistant" && content.trim().is_empty() {
        return Err(format!(
            "field {field}.value is empty: an assistant reply needs text to learn"
        ));
    }
    Ok(ChatMessage::new(role, &content))
}

fn role_of(field: &str, from: &str) -> FieldResult<&'static str> {
    if TOOL_SPEAKERS.contains(&from) {
        return Err(format!(
            "field {field}.from is \"{from}\": tool calling is not supported for training yet; \
             remove the {from} turns from this record, or leave the record out"
        ));
    }
    SPEAKERS
        .iter()
        .find(|(name, _)| *name == from)
        .map(|(_, role)| *role)
        .ok_or_else(|| {
            let accepted: Vec<&str> = SPEAKERS.iter().map(|(name, _)| *name).collect();
            format!(
                "field {field}.from must be one of {} (found \"{from}\")",
                accepted.join(", ")
            )
        })
}

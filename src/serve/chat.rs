//! `POST /v1/chat/completions`: messages rendered with the model's chat template.

use super::error::ApiError;
use super::generation::{answer, body_bytes};
use super::request::{fields, parse_json, Common};
use super::respond::Kind;
use super::state::AppState;
use crate::model::constrain::Constraint;
use crate::model::ChatMessage;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
struct ChatFields {
    messages: Vec<Message>,
    response_format: Option<ResponseFormat>,
    tools: Option<Vec<Value>>,
    functions: Option<Vec<Value>>,
    logprobs: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct Message {
    role: String,
    content: Option<Content>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ResponseFormat {
    #[serde(rename = "type")]
    kind: String,
    json_schema: Option<JsonSchemaFormat>,
}

/// OpenAI's `response_format.json_schema`: a name, the schema, and `strict` (a constrained
/// reply always follows its schema, so strict or not is the same here).
#[derive(Debug, Deserialize)]
struct JsonSchemaFormat {
    schema: Option<Value>,
}

pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match run(&state, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn run(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let body = parse_json(&body_bytes(body, state.limits.max_body_bytes)?)?;
    let common: Common = fields(&body)?;
    let chat: ChatFields = fields(&body)?;
    refuse_unsupported(&chat)?;
    let mut settings = common.settings(state)?;
    settings.params.constraint = match &chat.response_format {
        Some(format) => constraint(format, state, settings.ignore_eos)?,
        None => None,
    };
    let messages = messages(chat.messages)?;
    let text = state
        .template
        .render(&messages, true)
        .map_err(|e| ApiError::invalid("messages", format!("{e:#}")))?;
    let ids = state
        .tokenizer
        .encode(&text)
        .map_err(|e| ApiError::invalid("messages", format!("{e:#}")))?;
    answer(state, settings, vec![ids], "messages", Kind::Chat).await
}

/// The grammar a response_format asks for, compiled once here so that a bad schema is this
/// request's 400, not its batch's failure.
fn constraint(
    format: &ResponseFormat,
    state: &AppState,
    ignore_eos: bool,
) -> Result<Option<Constraint>, ApiError> {
    let constraint = match format.kind.as_str() {
        "text" => return Ok(None),
        "json_object" => Constraint::Json,
        "json_schema" => {
            let schema = format.json_schema.as_ref().and_then(|j| j.schema.clone());
            let Some(schema) = schema else {
                return Err(ApiError::invalid(
                    "response_format.json_schema.schema",
                    "response_format json_schema needs json_schema.schema",
                ));
            };
            Constraint::Schema(Arc::new(schema))
        }
        other => {
            return Err(ApiError::invalid(
                "response_format.type",
                format!(
                    "response_format type must be text, json_object or json_schema, got {other:?}"
                ),
            ))
        }
    };
    if ignore_eos {
        return Err(ApiError::invalid(
            "ignore_eos",
            "ignore_eos cannot go with a response_format: a constrained reply ends with its JSON",
        ));
    }
    let param = match constraint {
        Constraint::Json => "response_format",
        Constraint::Schema(_) => "response_format.json_schema.schema",
    };
    state
        .tokenizer
        .grammar_factory(&state.stop_ids)
        .and_then(|f| f.matcher(&constraint))
        .map_err(|e| ApiError::invalid(param, format!("{e:#}")))?;
    Ok(Some(constraint))
}

fn refuse_unsupported(chat: &ChatFields) -> Result<(), ApiError> {
    if chat.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(ApiError::unsupported("tools", "tool calling"));
    }
    if chat.functions.as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(ApiError::unsupported("functions", "function calling"));
    }
    if chat.logprobs == Some(true) {
        return Err(ApiError::unsupported("logprobs", "logprobs"));
    }
    Ok(())
}

/// The conversation as the template takes it. OpenAI's `developer` role is the system role
/// of older models; text parts are joined; other parts (images, audio) and tool turns are
/// refused.
fn messages(messages: Vec<Message>) -> Result<Vec<ChatMessage>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "messages must hold at least one message",
        ));
    }
    messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let role = match m.role.as_str() {
                "developer" => "system",
                "system" | "user" | "assistant" => m.role.as_str(),
                other => {
                    return Err(ApiError::invalid(
                        format!("messages[{i}].role"),
                        format!(
                            "role {other:?} is not supported (system, developer, user, assistant)"
                        ),
                    ))
                }
            };
            let content = match m.content {
                None => String::new(),
                Some(Content::Text(text)) => text,
                Some(Content::Parts(parts)) => text_of(parts, i)?,
            };
            Ok(ChatMessage::new(role, &content))
        })
        .collect()
}

fn text_of(parts: Vec<Part>, message: usize) -> Result<String, ApiError> {
    let mut text = String::new();
    for (j, part) in parts.into_iter().enumerate() {
        match (part.kind.as_str(), part.text) {
            ("text", Some(t)) => text.push_str(&t),
            ("text", None) => {
                return Err(ApiError::invalid(
                    format!("messages[{message}].content[{j}].text"),
                    "a text part needs its text",
                ))
            }
            (kind, _) => {
                return Err(ApiError::unsupported(
                    &format!("messages[{message}].content[{j}].type"),
                    &format!("content of type {kind:?}"),
                ))
            }
        }
    }
    Ok(text)
}

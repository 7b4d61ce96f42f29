//! `POST /v1/chat/completions`: messages rendered with the model's chat template.

use super::error::ApiError;
use super::generation::{answer, body_bytes};
use super::request::{fields, parse_json, Common};
use super::respond::Kind;
use super::state::AppState;
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
    let settings = common.settings(state)?;
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

fn refuse_unsupported(chat: &ChatFields) -> Result<(), ApiError> {
    if let Some(format) = &chat.response_format {
        match format.kind.as_str() {
            "text" => {}
            "json_object" | "json_schema" => {
                return Err(ApiError::unsupported(
                    "response_format",
                    &format!("response_format {}", format.kind),
                ))
            }
            other => {
                return Err(ApiError::invalid(
                    "response_format.type",
                    format!(
                    "response_format type must be text, json_object or json_schema, got {other:?}"
                ),
                ))
            }
        }
    }
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

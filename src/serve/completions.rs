//! `POST /v1/completions`: raw prompts, no chat template (as `tunelab generate --raw`).

use super::error::ApiError;
use super::generation::{answer, body_bytes};
use super::request::{fields, parse_json, Common};
use super::respond::Kind;
use super::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
struct CompletionFields {
    prompt: Prompt,
    echo: Option<bool>,
    suffix: Option<String>,
    logprobs: Option<Value>,
    best_of: Option<u64>,
}

/// OpenAI's four forms of `prompt`: text, texts, token ids, lists of token ids.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Prompt {
    Text(String),
    Texts(Vec<String>),
    Ids(Vec<u32>),
    IdLists(Vec<Vec<u32>>),
}

pub async fn completions(
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
    let completion: CompletionFields = fields(&body)?;
    if completion.echo == Some(true) {
        return Err(ApiError::unsupported("echo", "echo"));
    }
    if completion.suffix.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::unsupported("suffix", "suffix"));
    }
    if completion.logprobs.as_ref().is_some_and(|l| !l.is_null()) {
        return Err(ApiError::unsupported("logprobs", "logprobs"));
    }
    if completion.best_of.is_some_and(|b| b > 1) {
        return Err(ApiError::unsupported("best_of", "best_of"));
    }
    let settings = common.settings(state)?;
    let prompts = prompt_ids(state, completion.prompt)?;
    answer(state, settings, prompts, "prompt", Kind::Completion).await
}

fn prompt_ids(state: &AppState, prompt: Prompt) -> Result<Vec<Vec<u32>>, ApiError> {
    let encode = |text: &str| {
        let ids = state
            .tokenizer
            .encode(text)
            .map_err(|e| ApiError::invalid("prompt", format!("{e:#}")))?;
        Ok::<_, ApiError>(crate::model::loaded::with_bos(state.bos_id, ids))
    };
    let prompts = match prompt {
        Prompt::Text(text) => vec![encode(&text)?],
        Prompt::Texts(texts) => texts.iter().map(|t| encode(t)).collect::<Result<_, _>>()?,
        Prompt::Ids(ids) => vec![ids],
        Prompt::IdLists(lists) => lists,
    };
    if prompts.is_empty() || prompts.iter().any(Vec::is_empty) {
        return Err(ApiError::invalid("prompt", "The prompt is empty"));
    }
    if let Some(id) = prompts
        .iter()
        .flatten()
        .find(|&&id| id as usize >= state.vocab_size)
    {
        return Err(ApiError::invalid(
            "prompt",
            format!(
                "token id {id} is outside the vocabulary of {}",
                state.vocab_size
            ),
        ));
    }
    Ok(prompts)
}

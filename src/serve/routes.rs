//! The HTTP surface: routes, the API key check, the body size limit, and OpenAI-shaped
//! errors for every path and method the server does not serve.

use super::chat::chat_completions;
use super::completions::completions;
use super::error::ApiError;
use super::state::AppState;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.limits.max_body_bytes;
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{*id}", get(one_model))
        .route("/v1/stats", get(stats))
        .route("/health", get(health))
        .fallback(unknown_url)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), require_key))
        .with_state(state)
}

/// With `--api-key`, every path but /health wants `Authorization: Bearer KEY`.
async fn require_key(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let Some(key) = &state.api_key else {
        return next.run(request).await;
    };
    if request.uri().path() == "/health" {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        None => ApiError::unauthorized(
            "You didn't provide an API key: send it as 'Authorization: Bearer KEY'",
        )
        .into_response(),
        Some(given) if !same_key(given.trim().as_bytes(), key.as_bytes()) => {
            ApiError::unauthorized("Incorrect API key provided").into_response()
        }
        Some(_) => next.run(request).await,
    }
}

/// Compares without stopping at the first difference, so response times do not tell how
/// much of a guessed key was right.
fn same_key(given: &[u8], key: &[u8]) -> bool {
    let differ = given.iter().zip(key).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    differ == 0 && given.len() == key.len()
}

fn model_object(state: &AppState, id: &str) -> serde_json::Value {
    json!({
        "id": id,
        "object": "model",
        "created": state.catalog.created,
        "owned_by": "tunelab",
    })
}

async fn list_models(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let data: Vec<_> = state
        .catalog
        .ids()
        .iter()
        .map(|id| model_object(&state, id))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

async fn one_model(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match state.catalog.resolve(&id) {
        Some(served) => Json(model_object(&state, state.catalog.name(served))).into_response(),
        None => ApiError::model_not_found(&id, &state.catalog.ids()).into_response(),
    }
}

async fn stats(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(state.stats.snapshot(state.queue.waiting()))
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    if state.queue.is_closed() {
        let body = json!({ "status": "shutting_down" });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    Json(json!({
        "status": "ok",
        "models": state.catalog.ids(),
        "queued": state.queue.waiting(),
    }))
    .into_response()
}

async fn unknown_url(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("Unknown request URL: {method} {}", uri.path()))
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(format!("{method} is not allowed on {}", uri.path()))
}

#[cfg(test)]
mod tests {
    use super::same_key;

    #[test]
    fn keys_must_match_whole() {
        assert!(same_key(b"secret", b"secret"));
        assert!(!same_key(b"secre", b"secret"));
        assert!(!same_key(b"secretx", b"secret"));
        assert!(!same_key(b"Secret", b"secret"));
    }
}

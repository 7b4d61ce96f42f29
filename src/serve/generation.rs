//! What both generation endpoints do once their prompts are token ids: queue one job and
//! answer with the whole reply, or stream it.

use super::error::ApiError;
use super::job::{Job, RowEvent};
use super::request::Settings;
use super::respond::{collect, complete, Header, Kind};
use super::state::AppState;
use super::stream;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tokio::sync::mpsc::unbounded_channel;

/// The body, or the error its reading gave: 413 past the size limit.
pub fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(limit)
        } else {
            ApiError::invalid_body(rejection.body_text())
        }
    })
}

/// Queues `prompts` (n replies each) and answers once they are generated, or streams them.
/// `param` names the request field that holds the prompts, for errors about them.
pub async fn answer(
    state: &AppState,
    settings: Settings,
    prompts: Vec<Vec<u32>>,
    param: &str,
    kind: Kind,
) -> Result<Response, ApiError> {
    let rows = settings.rows(&prompts, param, state.context, state.limits.max_batch)?;
    let row_count = rows.len();
    let prompt_tokens: usize = prompts.iter().map(Vec::len).sum();
    let (sender, mut events) = unbounded_channel();
    state.queue.push(Job {
        served: settings.served,
        ignore_eos: settings.ignore_eos,
        rows,
        stop: settings.stop.clone(),
        events: sender,
    })?;
    state.stats.request();
    let header = Header::new(kind, &settings.model_id);
    if settings.stream {
        let first = match events.recv().await {
            Some(RowEvent::Failed(error)) => return Err(error),
            Some(event) => event,
            None => return Err(ApiError::internal("the generation worker stopped")),
        };
        return Ok(stream::respond(
            header,
            first,
            events,
            row_count,
            prompt_tokens,
            settings.include_usage,
        ));
    }
    let choices = collect(&mut events, row_count).await?;
    Ok(Json(complete(&header, &choices, prompt_tokens)).into_response())
}

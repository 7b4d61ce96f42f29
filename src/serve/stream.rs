//! `stream: true`: each row's text as Server-Sent Events the moment the worker releases it,
//! shaped as OpenAI's chunks (`chat.completion.chunk`: the role first, then content deltas,
//! then an empty delta with the finish_reason; `text_completion` chunks for completions),
//! optionally a usage chunk, and `data: [DONE]`. Dropping the response (the client left)
//! drops the receiver, which the worker sees and ends the rows.

use super::error::ApiError;
use super::job::RowEvent;
use super::respond::{usage, Header, Kind};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::VecDeque;
use std::convert::Infallible;
use tokio::sync::mpsc::UnboundedReceiver;

struct Stream {
    header: Header,
    events: UnboundedReceiver<RowEvent>,
    rows_left: usize,
    prompt_tokens: usize,
    completion_tokens: usize,
    include_usage: bool,
    ready: VecDeque<Event>,
    done: bool,
}

/// The stream of a job whose first event (`first`) has come: the handler waits for it so
/// that a job refused before it starts is answered with its own status, not a 200 stream.
pub fn respond(
    header: Header,
    first: RowEvent,
    events: UnboundedReceiver<RowEvent>,
    rows: usize,
    prompt_tokens: usize,
    include_usage: bool,
) -> Response {
    let mut stream = Stream {
        header,
        events,
        rows_left: rows,
        prompt_tokens,
        completion_tokens: 0,
        include_usage,
        ready: VecDeque::new(),
        done: false,
    };
    if stream.header.kind == Kind::Chat {
        for row in 0..rows {
            let chunk = stream
                .header
                .wrap(true, vec![stream.header.role(row)], None);
            stream.ready.push_back(data(&chunk));
        }
    }
    stream.take(Some(first));
    let events = futures_util::stream::unfold(stream, |mut s| async move {
        let event = s.next().await?;
        Some((Ok::<_, Infallible>(event), s))
    });
    Sse::new(events).into_response()
}

fn data(value: &Value) -> Event {
    Event::default().data(value.to_string())
}

impl Stream {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            if self.done {
                return None;
            }
            let event = self.events.recv().await;
            self.take(event);
        }
    }

    fn take(&mut self, event: Option<RowEvent>) {
        match event {
            Some(RowEvent::Text { row, text }) => {
                let chunk = self
                    .header
                    .wrap(true, vec![self.header.delta(row, &text, None)], None);
                self.ready.push_back(data(&chunk));
            }
            Some(RowEvent::Finished {
                row,
                finish,
                completion_tokens,
            }) => {
                let chunk =
                    self.header
                        .wrap(true, vec![self.header.delta(row, "", Some(finish))], None);
                self.ready.push_back(data(&chunk));
                self.completion_tokens += completion_tokens;
                self.rows_left -= 1;
                if self.rows_left == 0 {
                    if self.include_usage {
                        let totals = usage(self.prompt_tokens, self.completion_tokens);
                        let chunk = self.header.wrap(true, vec![], Some(totals));
                        self.ready.push_back(data(&chunk));
                    }
                    self.end();
                }
            }
            Some(RowEvent::Failed(error)) => self.fail(&error),
            None => self.fail(&ApiError::internal("the generation worker stopped")),
        }
    }

    /// An error after the stream began can only be told in the stream.
    fn fail(&mut self, error: &ApiError) {
        self.ready.push_back(data(&error.body()));
        self.end();
    }

    fn end(&mut self) {
        self.ready.push_back(Event::default().data("[DONE]"));
        self.done = true;
    }
}

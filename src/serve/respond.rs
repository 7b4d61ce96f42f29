//! Turning a queued job's events into an answer: the whole reply as one JSON object
//! (`chat.completion` or `text_completion`), or, with `stream`, Server-Sent Events.

use super::error::ApiError;
use super::job::{Finish, RowEvent};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

/// Which endpoint's shapes to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Chat,
    Completion,
}

/// What every object of one response repeats.
#[derive(Debug, Clone)]
pub struct Header {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub kind: Kind,
}

impl Header {
    pub fn new(kind: Kind, model: &str) -> Self {
        let prefix = match kind {
            Kind::Chat => "chatcmpl",
            Kind::Completion => "cmpl",
        };
        Self {
            id: format!(
                "{prefix}-{:016x}{:08x}",
                rand::random::<u64>(),
                rand::random::<u32>()
            ),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            model: model.to_string(),
            kind,
        }
    }

    fn object(&self, chunk: bool) -> &'static str {
        match (self.kind, chunk) {
            (Kind::Chat, false) => "chat.completion",
            (Kind::Chat, true) => "chat.completion.chunk",
            (Kind::Completion, _) => "text_completion",
        }
    }

    /// A response object around `choices` (and `usage`, when given).
    pub fn wrap(&self, chunk: bool, choices: Vec<Value>, usage: Option<Value>) -> Value {
        let mut object = json!({
            "id": self.id,
            "object": self.object(chunk),
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": choices,
        });
        if let Some(usage) = usage {
            object["usage"] = usage;
        }
        object
    }

    /// A streamed choice carrying `text` (or, for a chat stream's first chunk, the role).
    pub fn delta(&self, index: usize, text: &str, finish: Option<Finish>) -> Value {
        let finish = finish.map(Finish::as_str);
        match self.kind {
            Kind::Chat => {
                let delta = if finish.is_some() && text.is_empty() {
                    json!({})
                } else {
                    json!({ "content": text })
                };
                json!({ "index": index, "delta": delta, "logprobs": null, "finish_reason": finish })
            }
            Kind::Completion => {
                json!({ "index": index, "text": text, "logprobs": null, "finish_reason": finish })
            }
        }
    }

    /// The first chunk of a chat stream's choice: the assistant's role, no text yet.
    pub fn role(&self, index: usize) -> Value {
        json!({
            "index": index,
            "delta": { "role": "assistant", "content": "" },
            "logprobs": null,
            "finish_reason": null,
        })
    }
}

pub fn usage(prompt_tokens: usize, completion_tokens: usize) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    })
}

/// One finished choice.
#[derive(Debug, Clone, Default)]
pub struct Choice {
    pub text: String,
    pub finish: Option<Finish>,
    pub tokens: usize,
}

/// Waits for every row of the job to finish.
pub async fn collect(
    events: &mut UnboundedReceiver<RowEvent>,
    rows: usize,
) -> Result<Vec<Choice>, ApiError> {
    let mut choices = vec![Choice::default(); rows];
    let mut left = rows;
    while left > 0 {
        match events.recv().await {
            Some(RowEvent::Text { row, text }) => choices[row].text.push_str(&text),
            Some(RowEvent::Finished {
                row,
                finish,
                completion_tokens,
            }) => {
                choices[row].finish = Some(finish);
                choices[row].tokens = completion_tokens;
                left -= 1;
            }
            Some(RowEvent::Failed(error)) => return Err(error),
            None => return Err(ApiError::internal("the generation worker stopped")),
        }
    }
    Ok(choices)
}

/// The whole answer as one object.
pub fn complete(header: &Header, choices: &[Choice], prompt_tokens: usize) -> Value {
    let completion_tokens = choices.iter().map(|c| c.tokens).sum();
    let finish = |c: &Choice| c.finish.map(Finish::as_str);
    let items = choices
        .iter()
        .enumerate()
        .map(|(index, c)| match header.kind {
            Kind::Chat => json!({
                "index": index,
                "message": { "role": "assistant", "content": c.text },
                "logprobs": null,
                "finish_reason": finish(c),
            }),
            Kind::Completion => json!({
                "index": index,
                "text": c.text,
                "logprobs": null,
                "finish_reason": finish(c),
            }),
        })
        .collect();
    header.wrap(false, items, Some(usage(prompt_tokens, completion_tokens)))
}

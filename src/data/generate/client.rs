//! A small client for an OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp's server,
//! `tunelab serve`): one prompt in, one reply out, through `/chat/completions` (the prompt as
//! the user's message) or `/completions` (the prompt as is, for base models). Rate limits and
//! server errors are retried with exponential backoff; what cannot succeed by retrying (a
//! wrong key, an unknown model) is fatal at once.

use serde_json::{json, Value};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Chat,
    Completions,
}

impl std::str::FromStr for Api {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "chat" => Ok(Self::Chat),
            "completions" => Ok(Self::Completions),
            _ => Err(format!("'{s}': use chat or completions")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Sampling {
    pub temperature: f64,
    pub top_p: f64,
    pub max_tokens: usize,
}

#[derive(Debug, Clone)]
pub struct Backoff {
    /// The first wait; each retry waits twice the last, up to `longest`.
    pub first: Duration,
    pub longest: Duration,
    /// Tries in all, the first included.
    pub attempts: usize,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(500),
            longest: Duration::from_secs(30),
            attempts: 6,
        }
    }
}

pub struct Endpoint {
    /// The base URL, e.g. `http://127.0.0.1:8000/v1`, without a trailing slash.
    pub base: String,
    pub model: String,
    pub api_key: Option<String>,
    pub api: Api,
    pub sampling: Sampling,
    pub backoff: Backoff,
    agent: ureq::Agent,
}

/// Why a request gave no reply.
#[derive(Debug)]
pub enum RequestError {
    /// Retrying cannot help (401, 403, 404, other 4xx): the run stops.
    Fatal(String),
    /// Still failing after every retry, or answered with something that is not a reply.
    Failed(String),
}

impl Endpoint {
    pub fn new(base: &str, model: &str, api: Api, sampling: Sampling, timeout: Duration) -> Self {
        let base = base.trim_end_matches('/');
        let base = ["/chat/completions", "/completions"]
            .iter()
            .find_map(|suffix| base.strip_suffix(suffix))
            .unwrap_or(base);
        Self {
            base: base.to_string(),
            model: model.to_string(),
            api_key: None,
            api,
            sampling,
            backoff: Backoff::default(),
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(10))
                .timeout(timeout)
                .build(),
        }
    }

    /// The model's reply to `prompt`, ended at any of `stop`; `seed` is sent for endpoints
    /// that honour it.
    pub fn complete(&self, prompt: &str, stop: &[&str], seed: u64) -> Result<Reply, RequestError> {
        let (path, mut body) = self.request(prompt, seed);
        body["stop"] = json!(stop);
        let url = format!("{}{path}", self.base);
        let mut wait = self.backoff.first;
        let mut last = String::new();
        for attempt in 1..=self.backoff.attempts.max(1) {
            match self.post(&url, &body) {
                Ok(reply) => return reply_text(&reply, self.api).map_err(RequestError::Failed),
                Err(Retry::Never(message)) => return Err(RequestError::Fatal(message)),
                Err(Retry::After(message, hint)) => {
                    last = message;
                    if attempt < self.backoff.attempts {
                        std::thread::sleep(hint.unwrap_or(wait).min(self.backoff.longest));
                        wait = (wait * 2).min(self.backoff.longest);
                    }
                }
            }
        }
        Err(RequestError::Failed(format!(
            "{last} (after {} tries)",
            self.backoff.attempts
        )))
    }

    fn request(&self, prompt: &str, seed: u64) -> (&'static str, Value) {
        let mut body = json!({
            "model": self.model,
            "temperature": self.sampling.temperature,
            "top_p": self.sampling.top_p,
            "max_tokens": self.sampling.max_tokens,
            "seed": seed,
        });
        match self.api {
            Api::Chat => {
                body["messages"] = json!([{"role": "user", "content": prompt}]);
                ("/chat/completions", body)
            }
            Api::Completions => {
                body["prompt"] = json!(prompt);
                ("/completions", body)
            }
        }
    }

    fn post(&self, url: &str, body: &Value) -> Result<Value, Retry> {
        let mut request = self.agent.post(url);
        if let Some(key) = &self.api_key {
            request = request.set("Authorization", &format!("Bearer {key}"));
        }
        match request.send_json(body) {
            Ok(response) => response
                .into_json::<Value>()
                .map_err(|e| Retry::After(format!("{url}: the answer is not JSON ({e})"), None)),
            Err(ureq::Error::Status(code, response)) => Err(status_error(url, code, response)),
            Err(ureq::Error::Transport(e)) => Err(Retry::After(format!("{url}: {e}"), None)),
        }
    }
}

enum Retry {
    Never(String),
    /// Worth another try, after the server's Retry-After when it sent one.
    After(String, Option<Duration>),
}

fn status_error(url: &str, code: u16, response: ureq::Response) -> Retry {
    let hint = response
        .header("retry-after")
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64);
    let text = response.into_string().unwrap_or_default();
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.chars().take(200).collect());
    let message = format!("{url}: HTTP {code}: {message}");
    match code {
        429 | 408 | 500..=599 => Retry::After(message, hint),
        _ => Retry::Never(message),
    }
}

/// The first choice of a chat or completion answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub text: String,
    /// The reply ran into max_tokens (`finish_reason` "length"): its last item is cut off.
    pub cut_off: bool,
}

fn reply_text(reply: &Value, api: Api) -> Result<Reply, String> {
    let choice = &reply["choices"][0];
    let text = match api {
        Api::Chat => choice["message"]["content"].as_str(),
        Api::Completions => choice["text"].as_str(),
    };
    let text = text.ok_or_else(|| {
        let shown: String = reply.to_string().chars().take(200).collect();
        format!("the answer holds no choices[0] text: {shown}")
    })?;
    Ok(Reply {
        text: text.to_string(),
        cut_off: choice["finish_reason"] == "length",
    })
}

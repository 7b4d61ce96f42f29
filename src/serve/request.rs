//! Reading a request body: JSON, then typed fields (a wrong type names its field), then the
//! sampling settings every generation endpoint shares, checked against the server's limits.

use super::catalog::Served;
use super::decode::BatchRow;
use super::error::ApiError;
use super::state::AppState;
use crate::model::SamplingParams;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// The body as a JSON object.
pub fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid_body(format!(
            "We could not parse the JSON body of your request: {e}"
        ))
    })?;
    if !value.is_object() {
        return Err(ApiError::invalid_body(
            "The request body must be a JSON object",
        ));
    }
    Ok(value)
}

/// The fields `T` declares, read from the body; the error names the field at fault.
pub fn fields<T: DeserializeOwned>(body: &Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let param = match inner.strip_prefix("missing field `") {
            Some(rest) => {
                let field = rest.split('`').next().unwrap_or_default();
                if path == "." {
                    field.to_string()
                } else {
                    format!("{path}.{field}")
                }
            }
            None => path,
        };
        ApiError::invalid(param.clone(), format!("Invalid '{param}': {inner}"))
    })
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum StopField {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    pub include_usage: Option<bool>,
}

/// The fields of /v1/chat/completions and /v1/completions that set how text is generated.
#[derive(Debug, Deserialize)]
pub struct Common {
    pub model: String,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    /// Not in OpenAI's API; vLLM's extension.
    pub top_k: Option<u64>,
    pub max_tokens: Option<u64>,
    pub max_completion_tokens: Option<u64>,
    pub stop: Option<StopField>,
    pub seed: Option<i64>,
    pub n: Option<u64>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    /// vLLM's extension: generate exactly max_tokens (benchmarks want fixed lengths).
    pub ignore_eos: Option<bool>,
    pub frequency_penalty: Option<f64>,
    pub presence_penalty: Option<f64>,
    pub logit_bias: Option<serde_json::Map<String, Value>>,
}

/// A generation request, checked: what the handlers queue.
#[derive(Debug, Clone)]
pub struct Settings {
    pub served: Served,
    pub model_id: String,
    pub params: SamplingParams,
    /// max_tokens as asked; None: as many as the context leaves (up to the server's limit).
    pub max_tokens: Option<usize>,
    pub n: usize,
    pub stop: Vec<String>,
    pub stream: bool,
    pub include_usage: bool,
    pub ignore_eos: bool,
}

/// OpenAI refuses more than four stop sequences.
const MAX_STOPS: usize = 4;

impl Common {
    pub fn settings(self, state: &AppState) -> Result<Settings, ApiError> {
        let served = state
            .catalog
            .resolve(&self.model)
            .ok_or_else(|| ApiError::model_not_found(&self.model, &state.catalog.ids()))?;
        let temperature = self.temperature.unwrap_or(1.0);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(ApiError::invalid(
                "temperature",
                format!("temperature must be between 0 and 2, got {temperature}"),
            ));
        }
        if let Some(p) = self.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            return Err(ApiError::invalid(
                "top_p",
                format!("top_p must be in (0, 1], got {p}"),
            ));
        }
        if self.top_k == Some(0) {
            return Err(ApiError::invalid("top_k", "top_k must be at least 1"));
        }
        let (param, asked) = match (self.max_completion_tokens, self.max_tokens) {
            (Some(m), _) => ("max_completion_tokens", Some(m)),
            (None, m) => ("max_tokens", m),
        };
        let limit = state.limits.max_tokens;
        match asked {
            Some(0) => {
                return Err(ApiError::invalid(
                    param,
                    format!("{param} must be at least 1"),
                ))
            }
            Some(m) if m > limit as u64 => {
                return Err(ApiError::invalid(
                    param,
                    format!("{param} is {m}; this server allows at most {limit}"),
                ))
            }
            _ => {}
        }
        let n = self.n.unwrap_or(1);
        let max_n = state.limits.max_batch;
        if n == 0 || n > max_n as u64 {
            return Err(ApiError::invalid(
                "n",
                format!("n must be between 1 and {max_n} (the server's --max-batch), got {n}"),
            ));
        }
        let stop = match self.stop {
            None => vec![],
            Some(StopField::One(s)) => vec![s],
            Some(StopField::Many(list)) => list,
        };
        if stop.len() > MAX_STOPS {
            return Err(ApiError::invalid(
                "stop",
                format!(
                    "stop holds at most {MAX_STOPS} sequences, got {}",
                    stop.len()
                ),
            ));
        }
        for (param, value) in [
            ("frequency_penalty", self.frequency_penalty),
            ("presence_penalty", self.presence_penalty),
        ] {
            if value.is_some_and(|v| v != 0.0) {
                return Err(ApiError::unsupported(param, param));
            }
        }
        if self.logit_bias.is_some_and(|b| !b.is_empty()) {
            return Err(ApiError::unsupported("logit_bias", "logit_bias"));
        }
        let stream = self.stream.unwrap_or(false);
        Ok(Settings {
            served,
            model_id: state.catalog.name(served).to_string(),
            params: SamplingParams {
                temperature,
                top_p: self.top_p,
                top_k: self.top_k.map(|k| k as usize),
                // OpenAI's seed is any 64-bit integer; without one each request draws its own.
                seed: self.seed.map_or_else(rand::random, |s| s as u64),
                max_tokens: asked.unwrap_or(limit as u64) as usize,
                constraint: None,
            },
            max_tokens: asked.map(|m| m as usize),
            n: n as usize,
            stop,
            stream,
            include_usage: stream
                && self
                    .stream_options
                    .and_then(|o| o.include_usage)
                    .unwrap_or(false),
            ignore_eos: self.ignore_eos.unwrap_or(false),
        })
    }
}

impl Settings {
    /// The batch rows for `prompts`: n choices of each, choice i of a prompt seeded
    /// seed + i. A prompt that leaves no room in the context for the tokens asked is
    /// refused, as OpenAI refuses it.
    pub fn rows(
        &self,
        prompts: &[Vec<u32>],
        param: &str,
        context: usize,
        max_batch: usize,
    ) -> Result<Vec<BatchRow>, ApiError> {
        let rows = prompts.len() * self.n;
        if rows > max_batch {
            return Err(ApiError::invalid(
                param,
                format!(
                    "{} prompts × n = {rows} replies; this server generates at most {max_batch} \
                     for one request (--max-batch)",
                    prompts.len()
                ),
            ));
        }
        let mut out = Vec::with_capacity(rows);
        for prompt in prompts {
            let room = context.saturating_sub(prompt.len());
            let wanted = self.max_tokens.unwrap_or(1);
            if prompt.is_empty() {
                return Err(ApiError::invalid(param, "The prompt is empty"));
            }
            if room == 0 || wanted > room {
                return Err(ApiError::invalid(
                    param,
                    format!(
                        "This model's maximum context length is {context} tokens. However, you \
                         requested {} tokens ({} in the prompt, {wanted} in the completion)",
                        prompt.len() + wanted,
                        prompt.len()
                    ),
                )
                .with_code("context_length_exceeded"));
            }
            for i in 0..self.n {
                let mut params = self.params.clone();
                params.seed = params.seed.wrapping_add(i as u64);
                params.max_tokens = params.max_tokens.min(room);
                out.push(BatchRow {
                    prompt: prompt.clone(),
                    params,
                });
            }
        }
        Ok(out)
    }
}

//! A model's numbers on a few prompts, as JSON, for comparing it with other runtimes (PEFT,
//! transformers, llama.cpp) on the same token ids: the prompt ids, the last position's logits
//! and a greedy continuation that stops at the model's stop ids.

use crate::model::generate::{generate, SamplingParams, StopReason};
use crate::model::LoadedModel;
use anyhow::Result;
use candle_core::Tensor;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct PromptProbe {
    pub prompt: String,
    /// The token ids the model saw (chat template applied unless raw).
    pub ids: Vec<u32>,
    /// Logits of the last prompt position, f32, one per vocabulary entry.
    pub last_logits: Vec<f32>,
    /// Greedy continuation, without the stop token that ended it.
    pub greedy_ids: Vec<u32>,
    pub greedy_text: String,
    /// Whether the reply ended at a stop id (rather than at the length asked for).
    pub greedy_stopped: bool,
}

pub fn probe(
    loaded: &LoadedModel,
    prompt: &str,
    raw: bool,
    greedy_tokens: usize,
) -> Result<PromptProbe> {
    let ids = if raw {
        loaded.tokenizer.encode(prompt)?
    } else {
        loaded.chat_prompt(None, prompt)?
    };
    let model = &loaded.model;
    let input = Tensor::new(ids.as_slice(), model.device())?.unsqueeze(0)?;
    let last_logits = model
        .forward_last(&input, 0, None)?
        .flatten_all()?
        .to_vec1()?;
    let params = SamplingParams {
        temperature: 0.0,
        top_p: None,
        top_k: None,
        seed: 0,
        max_tokens: greedy_tokens,
        constraint: None,
    };
    let out = generate(
        model,
        &loaded.tokenizer,
        &ids,
        &params,
        &loaded.stop_ids,
        |_| Ok(true),
    )?;
    Ok(PromptProbe {
        prompt: prompt.to_string(),
        ids,
        last_logits,
        greedy_stopped: out.stop == StopReason::EndToken,
        greedy_ids: out.tokens,
        greedy_text: out.text,
    })
}

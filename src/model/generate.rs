//! Text generation with a KV cache: greedy or sampled (temperature, top-k, top-p, seed),
//! stopping at the model's end tokens, streaming text as it is decoded.

use super::constrain::{ConstrainedRow, Constraint};
use super::tokenizer::TextTokenizer;
use super::transformer::{KvCache, Transformer};
use anyhow::{bail, Result};
use candle_core::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;

#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy.
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    pub seed: u64,
    pub max_tokens: usize,
    /// Only tokens that keep the reply within this grammar are sampled.
    pub constraint: Option<Constraint>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_p: None,
            top_k: None,
            seed: 42,
            max_tokens: 256,
            constraint: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// An end-of-sequence or end-of-turn token was produced.
    EndToken,
    /// max_tokens were produced.
    Length,
    /// The streaming callback asked to stop.
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct GenerationOutput {
    /// Generated ids, without the stop token.
    pub tokens: Vec<u32>,
    pub text: String,
    pub stop: StopReason,
    /// The end token that stopped it (with StopReason::EndToken, unless a constraint ended it).
    pub end_token: Option<u32>,
    pub prompt_tokens: usize,
    pub prefill_secs: f64,
    pub decode_secs: f64,
    /// Of decode_secs, the time spent computing the constraint's token masks.
    pub constraint_secs: f64,
}

impl GenerationOutput {
    /// Decode speed: tokens generated after the first, per second.
    pub fn decode_tokens_per_sec(&self) -> f64 {
        let n = self.tokens.len().saturating_sub(1) as f64;
        if self.decode_secs > 0.0 {
            n / self.decode_secs
        } else {
            0.0
        }
    }
}

/// Picks the next token from a logits vector.
pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
}

impl Sampler {
    pub fn new(params: &SamplingParams) -> Result<Self> {
        if !(params.temperature >= 0.0 && params.temperature.is_finite()) {
            bail!(
                "temperature must be a finite number >= 0, got {}",
                params.temperature
            );
        }
        if let Some(p) = params.top_p {
            if !(p > 0.0 && p <= 1.0) {
                bail!("top_p must be in (0, 1], got {p}");
            }
        }
        if params.top_k == Some(0) {
            bail!("top_k must be at least 1");
        }
        Ok(Self {
            params: params.clone(),
            rng: StdRng::seed_from_u64(params.seed),
        })
    }

    pub fn sample(&mut self, logits: &[f32]) -> Result<u32> {
        if logits.iter().any(|x| x.is_nan()) {
            bail!("the model produced NaN logits");
        }
        if self.params.temperature == 0.0 {
            return Ok(argmax(logits));
        }
        let t = self.params.temperature as f32;
        let mut order: Vec<u32> = (0..logits.len() as u32).collect();
        order.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
        if let Some(k) = self.params.top_k {
            order.truncate(k);
        }
        let max = logits[order[0] as usize] / t;
        let mut probs: Vec<f32> = order
            .iter()
            .map(|&i| (logits[i as usize] / t - max).exp())
            .collect();
        let total: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        if let Some(top_p) = self.params.top_p {
            let mut mass = 0.0;
            let keep = probs
                .iter()
                .position(|p| {
                    mass += p;
                    mass >= top_p as f32
                })
                .map_or(probs.len(), |i| i + 1);
            probs.truncate(keep);
            order.truncate(keep);
        }
        let total: f32 = probs.iter().sum();
        let mut r = self.rng.random::<f32>() * total;
        for (p, id) in probs.iter().zip(&order) {
            r -= p;
            if r <= 0.0 {
                return Ok(*id);
            }
        }
        Ok(*order.last().unwrap_or(&0))
    }
}

/// Index of the largest value; the lowest index wins a tie.
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best as u32
}

/// Generates after `prompt_ids`. `on_text` receives each new piece of decoded text and
/// returns false to stop early.
pub fn generate(
    model: &Transformer,
    tokenizer: &TextTokenizer,
    prompt_ids: &[u32],
    params: &SamplingParams,
    stop_ids: &[u32],
    mut on_text: impl FnMut(&str) -> Result<bool>,
) -> Result<GenerationOutput> {
    let mut outputs = generate_batch(
        model,
        tokenizer,
        &[prompt_ids.to_vec()],
        params,
        stop_ids,
        |_, piece| on_text(piece),
    )?;
    Ok(outputs.remove(0))
}

/// One prompt's progress inside a batch.
struct Row {
    sampler: Sampler,
    prompt_tokens: usize,
    max_new: usize,
    tokens: Vec<u32>,
    text: String,
    stop: Option<StopReason>,
    end_token: Option<u32>,
    decode_secs: f64,
    constrained: Option<ConstrainedRow>,
}

impl Row {
    /// Decodes the tokens so far and returns the text added since the last call, if any. A
    /// multi-byte character split across tokens decodes to U+FFFD until it completes.
    fn new_text(&mut self, tokenizer: &TextTokenizer) -> Result<Option<String>> {
        let decoded = tokenizer.decode(&self.tokens, true)?;
        if decoded.ends_with('\u{FFFD}')
            || decoded.len() <= self.text.len()
            || !decoded.starts_with(&self.text)
        {
            return Ok(None);
        }
        let piece = decoded[self.text.len()..].to_string();
        self.text = decoded;
        Ok(Some(piece))
    }
}

/// Generates after each of `prompts` together, as one left-padded batch sharing a KV cache;
/// a row leaves the batch when it stops. With greedy decoding each reply is the one
/// `generate` gives for that prompt alone. `on_text(row, piece)` streams each row's text and
/// returns false to stop that row. Row r samples with seed `params.seed + r`.
pub fn generate_batch(
    model: &Transformer,
    tokenizer: &TextTokenizer,
    prompts: &[Vec<u32>],
    params: &SamplingParams,
    stop_ids: &[u32],
    mut on_text: impl FnMut(usize, &str) -> Result<bool>,
) -> Result<Vec<GenerationOutput>> {
    let context = model.config().max_position_embeddings;
    let grammar = match &params.constraint {
        Some(_) => Some(tokenizer.grammar_factory(stop_ids)?),
        None => None,
    };
    let mut rows = Vec::with_capacity(prompts.len());
    for (r, prompt) in prompts.iter().enumerate() {
        if prompt.is_empty() {
            bail!("the prompt is empty");
        }
        if prompt.len() >= context {
            bail!(
                "the prompt has {} tokens; the model's context is {context}",
                prompt.len()
            );
        }
        let seeded = SamplingParams {
            seed: params.seed.wrapping_add(r as u64),
            ..params.clone()
        };
        rows.push(Row {
            sampler: Sampler::new(&seeded)?,
            prompt_tokens: prompt.len(),
            max_new: params.max_tokens.min(context - prompt.len()),
            tokens: Vec::new(),
            text: String::new(),
            stop: (params.max_tokens == 0).then_some(StopReason::Length),
            end_token: None,
            decode_secs: 0.0,
            constrained: match (&grammar, &params.constraint) {
                (Some(g), Some(c)) => Some(ConstrainedRow::new(g, c)?),
                _ => None,
            },
        });
    }
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let device = model.device();
    let mut cache = KvCache::new(model.config().num_hidden_layers);
    // Rows still generating, by index into `rows`, and their left padding.
    let mut active: Vec<usize> = (0..rows.len())
        .filter(|&r| rows[r].stop.is_none())
        .collect();
    let mut pads: Vec<usize> = active.iter().map(|&r| longest - prompts[r].len()).collect();

    let started = Instant::now();
    let mut logits = if active.is_empty() {
        None
    } else {
        let ids: Vec<u32> = active
            .iter()
            .zip(&pads)
            .flat_map(|(&r, &pad)| std::iter::repeat_n(0, pad).chain(prompts[r].iter().copied()))
            .collect();
        let input = Tensor::from_vec(ids, (active.len(), longest), device)?;
        Some(model.forward_last_padded(&input, 0, &pads, Some(&mut cache))?)
    };
    let prefill_secs = started.elapsed().as_secs_f64();
    let decode_started = Instant::now();
    let mut columns = longest;
    while let Some(batch_logits) = logits.take() {
        let mut batch_logits = batch_logits.to_vec2::<f32>()?;
        let mut next_ids = Vec::with_capacity(active.len());
        for (&r, row_logits) in active.iter().zip(&mut batch_logits) {
            let row = &mut rows[r];
            let allowed = match row.constrained.as_mut() {
                Some(c) => c.mask(row_logits)?,
                None => true,
            };
            let next = row.sampler.sample(row_logits)?;
            next_ids.push(next);
            if stop_ids.contains(&next) || !allowed {
                row.stop = Some(StopReason::EndToken);
                row.end_token = stop_ids.contains(&next).then_some(next);
            } else {
                row.tokens.push(next);
                if let Some(c) = row.constrained.as_mut() {
                    if c.consume(next)? {
                        row.stop = Some(StopReason::EndToken);
                    }
                }
                if let Some(piece) = row.new_text(tokenizer)? {
                    if !on_text(r, &piece)? {
                        row.stop = Some(StopReason::Cancelled);
                    }
                }
                if row.stop.is_none() && row.tokens.len() == row.max_new {
                    row.stop = Some(StopReason::Length);
                }
            }
            if row.stop.is_some() {
                row.decode_secs = decode_started.elapsed().as_secs_f64();
            }
        }
        let keep: Vec<usize> = (0..active.len())
            .filter(|&i| rows[active[i]].stop.is_none())
            .collect();
        if keep.is_empty() {
            break;
        }
        if keep.len() < active.len() {
            cache.keep_rows(&keep)?;
            active = keep.iter().map(|&i| active[i]).collect();
            pads = keep.iter().map(|&i| pads[i]).collect();
            next_ids = keep.iter().map(|&i| next_ids[i]).collect();
        }
        let input = Tensor::from_vec(next_ids, (active.len(), 1), device)?;
        logits = Some(model.forward_last_padded(&input, columns, &pads, Some(&mut cache))?);
        columns += 1;
    }

    let mut outputs = Vec::with_capacity(rows.len());
    for (r, mut row) in rows.into_iter().enumerate() {
        let text = tokenizer.decode(&row.tokens, true)?;
        if text.len() > row.text.len() && text.starts_with(&row.text) {
            on_text(r, &text[row.text.len()..])?;
        }
        row.text = text;
        outputs.push(GenerationOutput {
            tokens: row.tokens,
            text: row.text,
            stop: row.stop.unwrap_or(StopReason::Length),
            end_token: row.end_token,
            prompt_tokens: row.prompt_tokens,
            prefill_secs,
            decode_secs: row.decode_secs,
            constraint_secs: row.constrained.as_ref().map_or(0.0, |c| c.mask_secs),
        });
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.1, 3.0, 3.0, -1.0]), 1);
    }

    #[test]
    fn top_k_one_is_greedy_and_seeds_repeat() {
        let logits = [0.5f32, 2.0, 1.9, -4.0];
        let params = SamplingParams {
            temperature: 1.0,
            top_k: Some(1),
            ..Default::default()
        };
        assert_eq!(Sampler::new(&params).unwrap().sample(&logits).unwrap(), 1);
        let params = SamplingParams {
            temperature: 1.0,
            seed: 7,
            ..Default::default()
        };
        let draw = |p: &SamplingParams| {
            let mut s = Sampler::new(p).unwrap();
            (0..20)
                .map(|_| s.sample(&logits).unwrap())
                .collect::<Vec<_>>()
        };
        let a = draw(&params);
        assert_eq!(a, draw(&params));
        assert!(
            a.iter().any(|&t| t != a[0]),
            "sampling at T=1 should vary: {a:?}"
        );
    }

    #[test]
    fn top_p_keeps_only_the_nucleus() {
        // p(0) ≈ 0.88: with top_p 0.5 only token 0 survives.
        let logits = [4.0f32, 2.0, 0.0];
        let params = SamplingParams {
            temperature: 1.0,
            top_p: Some(0.5),
            ..Default::default()
        };
        let mut s = Sampler::new(&params).unwrap();
        assert!((0..50).all(|_| s.sample(&logits).unwrap() == 0));
    }

    #[test]
    fn bad_parameters_are_rejected() {
        let bad = SamplingParams {
            temperature: -1.0,
            ..Default::default()
        };
        assert!(Sampler::new(&bad).is_err());
        let bad = SamplingParams {
            top_p: Some(1.5),
            ..Default::default()
        };
        assert!(Sampler::new(&bad).is_err());
    }
}

//! The server's batched decode loop: one left-padded batch over the model's padded forward
//! and KV cache, as `generate_batch` runs it, but with what a server needs per row: its own
//! sampling parameters (each request brings its own), the end of each row reported the step
//! it happens (a short reply is answered while longer ones in its batch go on), and a check
//! every step that its client still waits (a disconnect frees the row at once).

use crate::model::constrain::ConstrainedRow;
use crate::model::generate::{Sampler, SamplingParams};
use crate::model::{KvCache, TextTokenizer, Transformer};
use anyhow::{bail, Result};
use candle_core::Tensor;

/// One prompt to continue.
#[derive(Debug, Clone)]
pub struct BatchRow {
    pub prompt: Vec<u32>,
    pub params: SamplingParams,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowEnd {
    /// A stop id (end of sequence or of turn) came.
    EndToken,
    /// max_tokens, or the model's context, ran out.
    Length,
    /// The sink ended it: a stop sequence, or its client left.
    Halted,
}

/// Where a batch's text goes.
pub trait RowSink {
    /// New text of `row`; false ends the row.
    fn text(&mut self, row: usize, piece: &str) -> bool;
    /// Whether someone still waits for `row`; asked before every step.
    fn wanted(&self, row: usize) -> bool;
    /// `row` ended after `tokens` generated tokens (the stop id not counted).
    fn finished(&mut self, row: usize, end: RowEnd, tokens: usize);
}

struct Row {
    sampler: Sampler,
    /// The grammar of a request with a response_format.
    constrained: Option<ConstrainedRow>,
    max_new: usize,
    tokens: Vec<u32>,
    /// The text released so far.
    text: String,
    /// Incremental detokenization: the text of tokens[prefix..read] was already released;
    /// decoding from `prefix` keeps the context a tokenizer's decoder needs for spaces.
    prefix: usize,
    read: usize,
}

impl Row {
    /// The text the last token completed, if any: a character split across tokens waits
    /// (decodes to U+FFFD) until its last byte comes.
    fn new_text(&mut self, tokenizer: &TextTokenizer) -> Result<Option<String>> {
        let before = tokenizer.decode(&self.tokens[self.prefix..self.read], true)?;
        let now = tokenizer.decode(&self.tokens[self.prefix..], true)?;
        if now.len() <= before.len()
            || now.ends_with('\u{FFFD}')
            || !now.is_char_boundary(before.len())
        {
            return Ok(None);
        }
        self.prefix = self.read;
        self.read = self.tokens.len();
        let piece = now[before.len()..].to_string();
        self.text.push_str(&piece);
        Ok(Some(piece))
    }

    /// What the whole reply decodes to beyond the text released: the tail a split character
    /// or the decoder's lookahead kept back.
    fn rest(&self, tokenizer: &TextTokenizer) -> Result<String> {
        let full = tokenizer.decode(&self.tokens, true)?;
        Ok(match full.strip_prefix(self.text.as_str()) {
            Some(rest) => rest.to_string(),
            None => String::new(),
        })
    }
}

/// Continues every row together until each has ended; `stop_ids` end a row (empty: only
/// length does).
pub fn decode_batch(
    model: &Transformer,
    tokenizer: &TextTokenizer,
    batch: &[BatchRow],
    stop_ids: &[u32],
    sink: &mut dyn RowSink,
) -> Result<()> {
    let context = model.config().max_position_embeddings;
    let grammar = match batch.iter().any(|r| r.params.constraint.is_some()) {
        true => Some(tokenizer.grammar_factory(stop_ids)?),
        false => None,
    };
    let mut rows = Vec::with_capacity(batch.len());
    for row in batch {
        if row.prompt.is_empty() || row.prompt.len() >= context {
            bail!(
                "a prompt of {} tokens does not fit the context of {context}",
                row.prompt.len()
            );
        }
        rows.push(Row {
            sampler: Sampler::new(&row.params)?,
            constrained: match (&grammar, &row.params.constraint) {
                (Some(g), Some(c)) => Some(ConstrainedRow::new(g, c)?),
                _ => None,
            },
            max_new: row.params.max_tokens.min(context - row.prompt.len()),
            tokens: Vec::new(),
            text: String::new(),
            prefix: 0,
            read: 0,
        });
    }
    let longest = batch.iter().map(|r| r.prompt.len()).max().unwrap_or(0);
    let mut active: Vec<usize> = (0..rows.len()).collect();
    let mut pads: Vec<usize> = batch.iter().map(|r| longest - r.prompt.len()).collect();
    let device = model.device();
    let mut cache = KvCache::new(model.config().num_hidden_layers);
    let ids: Vec<u32> = batch
        .iter()
        .zip(&pads)
        .flat_map(|(r, &pad)| std::iter::repeat_n(0, pad).chain(r.prompt.iter().copied()))
        .collect();
    let input = Tensor::from_vec(ids, (batch.len(), longest), device)?;
    let mut logits = model.forward_last_padded(&input, 0, &pads, Some(&mut cache))?;
    let mut columns = longest;
    while !active.is_empty() {
        let mut all_logits = logits.to_vec2::<f32>()?;
        let mut next_ids = Vec::with_capacity(active.len());
        let mut keep = Vec::with_capacity(active.len());
        for (i, (&r, row_logits)) in active.iter().zip(&mut all_logits).enumerate() {
            let allowed = match rows[r].constrained.as_mut() {
                Some(c) => c.mask(row_logits)?,
                None => true,
            };
            let next = rows[r].sampler.sample(row_logits)?;
            let end = match allowed {
                true => step_row(&mut rows[r], r, next, stop_ids, tokenizer, sink)?,
                false => Some(RowEnd::EndToken),
            };
            match end {
                Some(end) => {
                    if end != RowEnd::Halted {
                        let rest = rows[r].rest(tokenizer)?;
                        if !rest.is_empty() {
                            sink.text(r, &rest);
                        }
                    }
                    sink.finished(r, end, rows[r].tokens.len());
                }
                None => {
                    keep.push(i);
                    next_ids.push(next);
                }
            }
        }
        if keep.is_empty() {
            break;
        }
        if keep.len() < active.len() {
            cache.keep_rows(&keep)?;
            active = keep.iter().map(|&i| active[i]).collect();
            pads = keep.iter().map(|&i| pads[i]).collect();
        }
        let input = Tensor::from_vec(next_ids, (active.len(), 1), device)?;
        logits = model.forward_last_padded(&input, columns, &pads, Some(&mut cache))?;
        columns += 1;
    }
    Ok(())
}

/// Takes the sampled token into `row` (number `r`), releases its text, and says whether the
/// row ends here.
fn step_row(
    row: &mut Row,
    r: usize,
    next: u32,
    stop_ids: &[u32],
    tokenizer: &TextTokenizer,
    sink: &mut dyn RowSink,
) -> Result<Option<RowEnd>> {
    if !sink.wanted(r) {
        return Ok(Some(RowEnd::Halted));
    }
    if stop_ids.contains(&next) {
        return Ok(Some(RowEnd::EndToken));
    }
    row.tokens.push(next);
    let complete = match row.constrained.as_mut() {
        Some(c) => c.consume(next)?,
        None => false,
    };
    if let Some(piece) = row.new_text(tokenizer)? {
        if !sink.text(r, &piece) {
            return Ok(Some(RowEnd::Halted));
        }
    }
    if complete {
        return Ok(Some(RowEnd::EndToken));
    }
    Ok((row.tokens.len() >= row.max_new).then_some(RowEnd::Length))
}

//! Text to token ids and back, with the tokenizers crate. Built from `tokenizer.json` where
//! the model has one, otherwise from the GGUF's own vocabulary: a byte-level BPE (`gpt2`: its
//! merges and pre-tokenizer name), or the Gemma family's SentencePiece BPE (`llama`: merges
//! derived from the vocabulary, as transformers' GGUF converter does).

use super::constrain::GrammarFactory;
use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file;
use std::path::Path;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::replace::Replace;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

/// GGUF token types (llama.cpp's `llama_token_type`).
const TOKEN_TYPE_NORMAL: i32 = 1;
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;
const TOKEN_TYPE_UNUSED: i32 = 5;

/// Architectures whose `llama` (SentencePiece) vocabulary is built the Gemma way, as in
/// transformers' `GGUF_SENTENCEPIECE_BUILDERS`.
const GEMMA_ARCHITECTURES: &[&str] = &["gemma", "gemma2", "gemma3"];

/// SentencePiece's word-boundary mark, which stands for a space inside tokens.
const SPM_SPACE: char = '\u{2581}';

/// The pre-tokenizer names this engine reads and writes, first name first where two share a
/// pipeline.
const PRE_TOKENIZER_NAMES: &[&str] = &["smollm", "gpt2", "llama-bpe"];

/// A tokenizer as GGUF's `tokenizer.ggml.*` keys describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufVocab {
    /// `tokenizer.ggml.model`: "gpt2" (byte-level BPE) or "llama" (SentencePiece).
    pub model: String,
    /// `tokenizer.ggml.pre`, llama.cpp's name for the pre-tokenizer.
    pub pre: String,
    pub tokens: Vec<String>,
    pub token_types: Vec<i32>,
    /// "a b" pairs, in rank order (byte-level BPE only).
    pub merges: Vec<String>,
    /// SentencePiece's piece scores, which llama.cpp merges by.
    pub scores: Option<Vec<f32>>,
}

/// A SentencePiece vocabulary as a GGUF stored it, kept to write it back on export.
#[derive(Debug, Clone)]
struct SentencePieceVocab {
    tokens: Vec<String>,
    scores: Vec<f32>,
    types: Vec<i32>,
}

/// Llama 3's pre-tokenizer regex, as in its tokenizer.json and llama.cpp's "llama-bpe".
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

pub struct TextTokenizer {
    inner: Tokenizer,
    /// Set when built from a GGUF's SentencePiece vocabulary.
    sentencepiece: Option<std::sync::Arc<SentencePieceVocab>>,
    /// The vocabulary compiled for constrained decoding, on first use.
    grammar: std::sync::OnceLock<std::result::Result<std::sync::Arc<GrammarFactory>, String>>,
}

impl TextTokenizer {
    /// Loads a Hugging Face `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let inner = Tokenizer::from_file(path)
            .map_err(|e| anyhow::anyhow!("{}: not a valid tokenizer.json: {e}", path.display()))?;
        Ok(Self {
            inner,
            sentencepiece: None,
            grammar: Default::default(),
        })
    }

    /// Builds the tokenizer a GGUF describes (`tokenizer.ggml.*` keys).
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self> {
        let md = &content.metadata;
        let get = |key: &str| {
            md.get(key)
                .with_context(|| format!("metadata key {key} is missing"))
        };
        let model = get("tokenizer.ggml.model")?.to_string()?.clone();
        match model.as_str() {
            "gpt2" => Self::from_gguf_byte_level(content),
            "llama" => Self::from_gguf_sentencepiece(content),
            _ => bail!(
                "tokenizer.ggml.model '{model}' is not supported from GGUF (supported: gpt2-style \
                 BPE, and the Gemma family's SentencePiece 'llama'); use a Hugging Face folder \
                 with tokenizer.json"
            ),
        }
    }

    /// A byte-level BPE (`tokenizer.ggml.model = "gpt2"`): vocabulary, merges and the
    /// pre-tokenizer `tokenizer.ggml.pre` names.
    fn from_gguf_byte_level(content: &gguf_file::Content) -> Result<Self> {
        let md = &content.metadata;
        let get = |key: &str| {
            md.get(key)
                .with_context(|| format!("metadata key {key} is missing"))
        };
        let pre = md
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok().cloned())
            .unwrap_or_else(|| "default".into());
        let tokens: Vec<String> = get("tokenizer.ggml.tokens")?
            .to_vec()?
            .iter()
            .map(|v| v.to_string().cloned())
            .collect::<candle_core::Result<_>>()
            .context("tokenizer.ggml.tokens holds a non-string")?;
        let merges: Vec<(String, String)> = get("tokenizer.ggml.merges")?
            .to_vec()?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let m = v
                    .to_string()
                    .context("tokenizer.ggml.merges holds a non-string")?;
                let (a, b) = m
                    .split_once(' ')
                    .with_context(|| format!("tokenizer.ggml.merges[{i}] '{m}' is not 'a b'"))?;
                Ok((a.to_string(), b.to_string()))
            })
            .collect::<Result<_>>()?;
        let types: Vec<i32> = match md.get("tokenizer.ggml.token_type") {
            Some(v) => v
                .to_vec()?
                .iter()
                .map(|t| t.to_i32())
                .collect::<candle_core::Result<_>>()?,
            None => vec![1; tokens.len()],
        };
        if types.len() != tokens.len() {
            bail!(
                "tokenizer.ggml.token_type has {} entries for {} tokens",
                types.len(),
                tokens.len()
            );
        }
        let vocab = vocab_of(&tokens)?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| anyhow::anyhow!("building the BPE model: {e}"))?;
        let mut inner = Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(pre_tokenizer(&pre)?));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        let specials: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(_, &t)| t == TOKEN_TYPE_CONTROL || t == TOKEN_TYPE_USER_DEFINED)
            .map(|(tok, _)| AddedToken::from(tok.clone(), true))
            .collect();
        inner.add_special_tokens(&specials);
        Ok(Self {
            inner,
            sentencepiece: None,
            grammar: Default::default(),
        })
    }

    /// The Gemma family's SentencePiece BPE with byte fallback (`tokenizer.ggml.model =
    /// "llama"`), built as transformers 5's GGUF converter builds it (`gemma_tokenizer` in
    /// integrations/gguf/gguf_tokenizer_mapping.py, with `GemmaTokenizer`'s pipeline):
    /// - tokens made only of whitespace that hold a space (Gemma stores runs of spaces as real
    ///   spaces) are respelled as that many `▁`, the spelling the normalizer produces;
    /// - the file has no merges, so they are derived from the vocabulary: every split of a
    ///   token into two vocabulary tokens, ranked by the token's position in the file (earlier
    ///   first; Gemma's scores do not follow its merge order), then by longer left piece;
    /// - normalizer Replace(" ", "▁"), pre-tokenizer Split(" ", merged with previous), BPE with
    ///   byte fallback and unk `<unk>`, decoder Replace("▁", " ") + ByteFallback + Fuse;
    /// - control tokens (type 3) become special added tokens, user-defined ones (type 4) plain
    ///   added tokens (when the respelled vocabulary holds them), neither normalized;
    /// - with `tokenizer.ggml.add_bos_token` (default true) a post-processor puts BOS first
    ///   when special tokens are asked for ([`Self::encode`] never asks).
    ///
    /// `add_space_prefix` is not read: transformers' Gemma pipeline never prepends a space.
    fn from_gguf_sentencepiece(content: &gguf_file::Content) -> Result<Self> {
        let md = &content.metadata;
        let arch = md
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if !GEMMA_ARCHITECTURES.contains(&arch.as_str()) {
            bail!(
                "a SentencePiece ('llama') tokenizer is supported from GGUF for the Gemma family \
                 only ({}), not for architecture '{arch}'; use a Hugging Face folder with \
                 tokenizer.json",
                GEMMA_ARCHITECTURES.join(", ")
            );
        }
        let (tokens, types) = read_tokens(md)?;
        let spelled: Vec<String> = tokens.iter().map(|t| respell_spaces(t)).collect();
        let vocab = vocab_of(&spelled)?;
        let merges = merges_by_position(&spelled, &vocab);
        let token_name = |key: &str, default: &str| -> String {
            md.get(key)
                .and_then(|v| v.to_u32().ok())
                .and_then(|id| spelled.get(id as usize).cloned())
                .unwrap_or_else(|| default.to_string())
        };
        let unk = token_name("tokenizer.ggml.unknown_token_id", "<unk>");
        let bos = md
            .get("tokenizer.ggml.bos_token_id")
            .and_then(|v| v.to_u32().ok())
            .filter(|&id| (id as usize) < spelled.len());
        let add_bos = md
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.to_bool().ok())
            .unwrap_or(true);
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .unk_token(unk)
            .fuse_unk(true)
            .byte_fallback(true)
            .build()
            .map_err(|e| anyhow::anyhow!("building the BPE model: {e}"))?;
        let mut inner = Tokenizer::new(bpe);
        let space = SPM_SPACE.to_string();
        inner.with_normalizer(Some(
            Replace::new(" ", space.as_str()).map_err(|e| anyhow::anyhow!("normalizer: {e}"))?,
        ));
        inner.with_pre_tokenizer(Some(
            Split::new(
                SplitPattern::String(" ".into()),
                SplitDelimiterBehavior::MergedWithPrevious,
                false,
            )
            .map_err(|e| anyhow::anyhow!("pre-tokenizer: {e}"))?,
        ));
        inner.with_decoder(Some(DecoderSequence::new(vec![
            DecoderWrapper::Replace(
                Replace::new(space.as_str(), " ").map_err(|e| anyhow::anyhow!("decoder: {e}"))?,
            ),
            DecoderWrapper::ByteFallback(ByteFallback::new()),
            DecoderWrapper::Fuse(Fuse::new()),
        ])));
        if let (true, Some(id)) = (add_bos, bos) {
            let name = spelled[id as usize].clone();
            let post = TemplateProcessing::builder()
                .try_single(format!("{name} $A"))
                .and_then(|b| b.try_pair(format!("{name} $A {name}:1 $B:1")))
                .map_err(|e| anyhow::anyhow!("post-processor: {e}"))?
                .special_tokens(vec![(name, id)])
                .build()
                .map_err(|e| anyhow::anyhow!("post-processor: {e}"))?;
            inner.with_post_processor(Some(post));
        }
        let control: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(_, &t)| t == TOKEN_TYPE_CONTROL)
            .map(|(tok, _)| AddedToken::from(tok.clone(), true))
            .collect();
        inner.add_special_tokens(&control);
        let user_defined: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(tok, &t)| t == TOKEN_TYPE_USER_DEFINED && inner.token_to_id(tok).is_some())
            .map(|(tok, _)| AddedToken::from(tok.clone(), false).normalized(false))
            .collect();
        inner.add_tokens(&user_defined);
        let scores = read_scores(md, tokens.len())?;
        Ok(Self {
            inner,
            grammar: Default::default(),
            sentencepiece: Some(std::sync::Arc::new(SentencePieceVocab {
                tokens,
                scores,
                types,
            })),
        })
    }

    /// Token ids for `text`. Special-token strings in the text become their special tokens;
    /// no BOS is added (chat templates write their own markers).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| anyhow::anyhow!("detokenizing: {e}"))
    }

    /// The tokenizers-crate tokenizer underneath (its vocabulary and decoder).
    pub(crate) fn hf(&self) -> &Tokenizer {
        &self.inner
    }

    /// The vocabulary as constrained decoding sees it, built on the first call: `stop_ids`
    /// (the model's, the same on every call) end a reply once its grammar is complete.
    pub fn grammar_factory(&self, stop_ids: &[u32]) -> Result<std::sync::Arc<GrammarFactory>> {
        if stop_ids.is_empty() {
            bail!("a constrained reply needs a stop token to end on");
        }
        self.grammar
            .get_or_init(|| {
                GrammarFactory::new(self, stop_ids)
                    .map(std::sync::Arc::new)
                    .map_err(|e| format!("{e:#}"))
            })
            .clone()
            .map_err(|e| anyhow::anyhow!(e))
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The GGUF description of this tokenizer (the inverse of [`Self::from_gguf`]): a byte-level
    /// BPE's vocabulary, merges, token types and pre-tokenizer name. The vocabulary is padded
    /// with unused `[PAD<id>]` tokens up to `vocab_size`, the model's embedding rows, as
    /// llama.cpp's converter does.
    pub fn gguf_vocab(&self, vocab_size: usize) -> Result<GgufVocab> {
        if let Some(spm) = &self.sentencepiece {
            if spm.tokens.len() != vocab_size {
                bail!(
                    "the tokenizer has {} tokens but the model's vocabulary is {vocab_size}",
                    spm.tokens.len()
                );
            }
            return Ok(GgufVocab {
                model: "llama".into(),
                pre: "default".into(),
                tokens: spm.tokens.clone(),
                token_types: spm.types.clone(),
                merges: Vec::new(),
                scores: Some(spm.scores.clone()),
            });
        }
        let json: serde_json::Value = serde_json::from_str(
            &self
                .inner
                .to_string(false)
                .map_err(|e| anyhow::anyhow!("serializing the tokenizer: {e}"))?,
        )?;
        let model = &json["model"];
        if model["type"] != "BPE" {
            bail!(
                "tokenizer model {} cannot be written to GGUF (supported: byte-level BPE)",
                model["type"]
            );
        }
        if model["byte_fallback"] == true || !json["normalizer"].is_null() {
            bail!(
                "a SentencePiece-style tokenizer (byte fallback, '▁' for spaces) can be written \
                 to GGUF only when it came from one (its scores are not in tokenizer.json)"
            );
        }
        let pre = PRE_TOKENIZER_NAMES
            .iter()
            .find(|name| {
                pre_tokenizer(name)
                    .ok()
                    .and_then(|p| serde_json::to_value(p).ok())
                    .is_some_and(|p| p == json["pre_tokenizer"])
            })
            .with_context(|| {
                format!(
                    "the tokenizer's pre-tokenizer {} has no llama.cpp name (supported: {})",
                    json["pre_tokenizer"],
                    PRE_TOKENIZER_NAMES.join(", ")
                )
            })?;
        let n = vocab_size.max(self.vocab_size());
        let mut tokens: Vec<Option<String>> = vec![None; n];
        let mut token_types = vec![TOKEN_TYPE_NORMAL; n];
        let vocab = model["vocab"].as_object().context("tokenizer vocab")?;
        let added = json["added_tokens"].as_array().cloned().unwrap_or_default();
        let entries = vocab
            .iter()
            .map(|(t, id)| (t.clone(), id.as_u64(), None))
            .chain(added.iter().map(|a| {
                let special = a["special"].as_bool().unwrap_or(false);
                let content = a["content"].as_str().unwrap_or_default().to_string();
                (content, a["id"].as_u64(), Some(special))
            }));
        for (text, id, special) in entries {
            let id = id.context("a tokenizer entry has no id")? as usize;
            if id >= n {
                bail!("token id {id} is outside the model's vocabulary of {n}");
            }
            tokens[id] = Some(text);
            if let Some(special) = special {
                token_types[id] = if special {
                    TOKEN_TYPE_CONTROL
                } else {
                    TOKEN_TYPE_USER_DEFINED
                };
            }
        }
        let tokens = tokens
            .into_iter()
            .enumerate()
            .map(|(id, t)| {
                t.unwrap_or_else(|| {
                    token_types[id] = TOKEN_TYPE_UNUSED;
                    format!("[PAD{id}]")
                })
            })
            .collect();
        let merges = model["merges"]
            .as_array()
            .context("tokenizer merges")?
            .iter()
            .map(|m| match m {
                serde_json::Value::String(s) => Ok(s.clone()),
                serde_json::Value::Array(pair) => match (
                    pair.first().and_then(|v| v.as_str()),
                    pair.get(1).and_then(|v| v.as_str()),
                ) {
                    (Some(a), Some(b)) => Ok(format!("{a} {b}")),
                    _ => bail!("tokenizer merge {m} is not a pair of strings"),
                },
                _ => bail!("tokenizer merge {m} is not a pair of strings"),
            })
            .collect::<Result<_>>()?;
        Ok(GgufVocab {
            model: "gpt2".into(),
            pre: pre.to_string(),
            tokens,
            token_types,
            merges,
            scores: None,
        })
    }

    /// Writes the tokenizer as a Hugging Face `tokenizer.json`.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.inner
            .save(path, false)
            .map_err(|e| anyhow::anyhow!("{}: cannot write tokenizer: {e}", path.display()))
    }
}

/// `tokenizer.ggml.scores` (all 0 when absent).
fn read_scores(
    md: &std::collections::HashMap<String, gguf_file::Value>,
    n: usize,
) -> Result<Vec<f32>> {
    let Some(v) = md.get("tokenizer.ggml.scores") else {
        return Ok(vec![0.0; n]);
    };
    let scores: Vec<f32> = v
        .to_vec()?
        .iter()
        .map(|s| s.to_f32())
        .collect::<candle_core::Result<_>>()
        .context("tokenizer.ggml.scores holds a non-number")?;
    if scores.len() != n {
        bail!(
            "tokenizer.ggml.scores has {} entries for {n} tokens",
            scores.len()
        );
    }
    Ok(scores)
}

/// `tokenizer.ggml.tokens` and `tokenizer.ggml.token_type` (all normal when absent).
fn read_tokens(
    md: &std::collections::HashMap<String, gguf_file::Value>,
) -> Result<(Vec<String>, Vec<i32>)> {
    let tokens: Vec<String> = md
        .get("tokenizer.ggml.tokens")
        .context("metadata key tokenizer.ggml.tokens is missing")?
        .to_vec()?
        .iter()
        .map(|v| v.to_string().cloned())
        .collect::<candle_core::Result<_>>()
        .context("tokenizer.ggml.tokens holds a non-string")?;
    let types: Vec<i32> = match md.get("tokenizer.ggml.token_type") {
        Some(v) => v
            .to_vec()?
            .iter()
            .map(|t| t.to_i32())
            .collect::<candle_core::Result<_>>()?,
        None => vec![TOKEN_TYPE_NORMAL; tokens.len()],
    };
    if types.len() != tokens.len() {
        bail!(
            "tokenizer.ggml.token_type has {} entries for {} tokens",
            types.len(),
            tokens.len()
        );
    }
    Ok((tokens, types))
}

/// A token of whitespace only that holds a space, spelled as that many `▁` (Python's
/// `" " in t and not t.strip()`); any other token unchanged.
fn respell_spaces(token: &str) -> String {
    // Python's str.isspace also counts the four separators U+001C..U+001F.
    let python_space = |c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c);
    if token.contains(' ') && token.chars().all(python_space) {
        std::iter::repeat_n(SPM_SPACE, token.chars().count()).collect()
    } else {
        token.to_string()
    }
}

/// The merges a SentencePiece BPE vocabulary implies, best first: for each token in file order,
/// every split into two vocabulary tokens, the longer left piece first. This is the order
/// transformers' `generate_merges` gives with the negated positions as scores (its sort key
/// is score, then left length, then right length, all descending), found in O(V·L) lookups
/// instead of a sort.
fn merges_by_position(tokens: &[String], vocab: &Vocab) -> Vec<(String, String)> {
    let mut merges = Vec::new();
    for token in tokens {
        let bounds: Vec<usize> = token.char_indices().map(|(i, _)| i).skip(1).collect();
        for &at in bounds.iter().rev() {
            let (left, right) = token.split_at(at);
            if vocab.contains_key(left) && vocab.contains_key(right) {
                merges.push((left.to_string(), right.to_string()));
            }
        }
    }
    merges
}

/// Token → id, refusing a list that names a token twice.
fn vocab_of(tokens: &[String]) -> Result<Vocab> {
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    if vocab.len() != tokens.len() {
        bail!("tokenizer.ggml.tokens holds duplicate tokens");
    }
    Ok(vocab)
}

/// The pre-tokenizer llama.cpp names by `tokenizer.ggml.pre`, as the matching tokenizer.json has it.
fn pre_tokenizer(pre: &str) -> Result<PreTokenizerWrapper> {
    let byte_level =
        |use_regex| PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, use_regex));
    Ok(match pre {
        // GPT-2's regex, with digits split one by one first (SmolLM, StarCoder).
        "smollm" | "starcoder" => PreTokenizerWrapper::Sequence(Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            byte_level(true),
        ])),
        "gpt2" | "default" => byte_level(true),
        "llama-bpe" | "llama3" => {
            let split = Split::new(
                SplitPattern::Regex(LLAMA3_PATTERN.into()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| anyhow::anyhow!("pre-tokenizer regex: {e}"))?;
            PreTokenizerWrapper::Sequence(Sequence::new(vec![
                PreTokenizerWrapper::Split(split),
                byte_level(false),
            ]))
        }
        other => bail!(
            "tokenizer.ggml.pre '{other}' is not supported (supported: smollm, starcoder, gpt2, default, llama-bpe)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gguf_file::Value;

    fn strings(items: &[&str]) -> Value {
        Value::Array(items.iter().map(|s| Value::String(s.to_string())).collect())
    }

    /// A GGUF header holding only tokenizer metadata.
    fn spm_content(architecture: &str, tokens: &[&str], types: &[i32]) -> gguf_file::Content {
        let metadata = [
            ("general.architecture", Value::String(architecture.into())),
            ("tokenizer.ggml.model", Value::String("llama".into())),
            ("tokenizer.ggml.tokens", strings(tokens)),
            (
                "tokenizer.ggml.token_type",
                Value::Array(types.iter().map(|&t| Value::I32(t)).collect()),
            ),
            ("tokenizer.ggml.unknown_token_id", Value::U32(3)),
            ("tokenizer.ggml.bos_token_id", Value::U32(2)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        gguf_file::Content {
            magic: gguf_file::VersionedMagic::GgufV3,
            metadata,
            tensor_infos: Default::default(),
            tensor_data_offset: 0,
        }
    }

    #[test]
    fn merges_follow_file_position_then_longer_left_piece() {
        let tokens: Vec<String> = ["ab", "abc", "a", "b", "c", "bc", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            merges_by_position(&tokens, &vocab),
            [
                pair("a", "b"),
                pair("ab", "c"),
                pair("a", "bc"),
                pair("b", "c")
            ]
        );
        // Splits fall on characters, not bytes.
        let tokens: Vec<String> = ["é▁", "é", "▁"].iter().map(|s| s.to_string()).collect();
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        assert_eq!(merges_by_position(&tokens, &vocab), [pair("é", "▁")]);
    }

    #[test]
    fn space_runs_are_respelled_like_the_normalizer_writes_them() {
        assert_eq!(respell_spaces("   "), "▁▁▁");
        assert_eq!(respell_spaces(" \t"), "▁▁");
        assert_eq!(respell_spaces("\n\n"), "\n\n");
        assert_eq!(respell_spaces("\t"), "\t");
        assert_eq!(respell_spaces(" a"), " a");
        assert_eq!(respell_spaces("▁the"), "▁the");
    }

    #[test]
    fn a_small_gemma_vocabulary_tokenizes_with_merges_byte_fallback_and_specials() {
        let mut tokens = vec![
            "<pad>",
            "<eos>",
            "<bos>",
            "<unk>",
            "<start_of_turn>",
            "\n",
            "  ",
            "h",
            "i",
            "▁",
            "hi",
            "▁hi",
        ];
        let mut types = vec![3, 3, 3, 3, 3, 4, 4, 1, 1, 1, 1, 1];
        let bytes: Vec<String> = (0..=255u8).map(|b| format!("<0x{b:02X}>")).collect();
        tokens.extend(bytes.iter().map(String::as_str));
        types.extend([6; 256]);
        let t = TextTokenizer::from_gguf(&spm_content("gemma3", &tokens, &types)).unwrap();
        let id = |s: &str| t.token_to_id(s).unwrap();
        // "▁hi" merges whole; "  " is the respelled "▁▁" (a vocabulary token, not an added one).
        assert_eq!(t.encode("hi hi").unwrap(), [id("hi"), id("▁hi")]);
        assert_eq!(t.token_to_id("  "), None);
        assert_eq!(t.encode("  ").unwrap(), [6]);
        assert_eq!(t.encode("<start_of_turn>\n").unwrap(), [4, 5]);
        // "é" is not in the vocabulary: its UTF-8 bytes.
        assert_eq!(t.encode("é").unwrap(), [id("<0xC3>"), id("<0xA9>")]);
        for text in ["hi hi", "  é\nhi", "<start_of_turn>hi"] {
            assert_eq!(t.decode(&t.encode(text).unwrap(), false).unwrap(), text);
        }
        // Written back to GGUF as read: the original spellings, types and (absent: 0) scores.
        let vocab = t.gguf_vocab(tokens.len()).unwrap();
        assert_eq!(vocab.model, "llama");
        assert_eq!(vocab.tokens, tokens);
        assert_eq!(vocab.token_types, types);
        assert_eq!(vocab.scores, Some(vec![0.0; tokens.len()]));
        assert!(vocab.merges.is_empty());
        assert!(t.gguf_vocab(tokens.len() + 1).is_err());
    }

    #[test]
    fn sentencepiece_outside_the_gemma_family_is_refused() {
        let err = TextTokenizer::from_gguf(&spm_content("llama", &["a"], &[1]))
            .err()
            .unwrap();
        let err = format!("{err:#}");
        assert!(
            err.contains("Gemma family") && err.contains("'llama'"),
            "{err}"
        );
    }
}

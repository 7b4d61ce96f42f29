//! Text to token ids and back, with the tokenizers crate. Built from `tokenizer.json` where
//! the model has one, otherwise from the GGUF's own vocabulary, merges and pre-tokenizer name.

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file;
use std::path::Path;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

/// GGUF token types (llama.cpp's `llama_token_type`).
const TOKEN_TYPE_NORMAL: i32 = 1;
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;
const TOKEN_TYPE_UNUSED: i32 = 5;

/// The pre-tokenizer names this engine reads and writes, first name first where two share a
/// pipeline.
const PRE_TOKENIZER_NAMES: &[&str] = &["smollm", "gpt2", "llama-bpe"];

/// A tokenizer as GGUF's `tokenizer.ggml.*` keys describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufVocab {
    /// `tokenizer.ggml.pre`, llama.cpp's name for the pre-tokenizer.
    pub pre: String,
    pub tokens: Vec<String>,
    pub token_types: Vec<i32>,
    /// "a b" pairs, in rank order.
    pub merges: Vec<String>,
}

/// Llama 3's pre-tokenizer regex, as in its tokenizer.json and llama.cpp's "llama-bpe".
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

pub struct TextTokenizer {
    inner: Tokenizer,
}

impl TextTokenizer {
    /// Loads a Hugging Face `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let inner = Tokenizer::from_file(path)
            .map_err(|e| anyhow::anyhow!("{}: not a valid tokenizer.json: {e}", path.display()))?;
        Ok(Self { inner })
    }

    /// Builds the tokenizer a GGUF describes (`tokenizer.ggml.*` keys).
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self> {
        let md = &content.metadata;
        let get = |key: &str| {
            md.get(key)
                .with_context(|| format!("metadata key {key} is missing"))
        };
        let model = get("tokenizer.ggml.model")?.to_string()?.clone();
        if model != "gpt2" {
            bail!(
                "tokenizer.ggml.model '{model}' is not supported from GGUF (supported: gpt2-style BPE); \
                 use a Hugging Face folder with tokenizer.json"
            );
        }
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
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        if vocab.len() != tokens.len() {
            bail!("tokenizer.ggml.tokens holds duplicate tokens");
        }
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
        Ok(Self { inner })
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
            pre: pre.to_string(),
            tokens,
            token_types,
            merges,
        })
    }

    /// Writes the tokenizer as a Hugging Face `tokenizer.json`.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.inner
            .save(path, false)
            .map_err(|e| anyhow::anyhow!("{}: cannot write tokenizer: {e}", path.display()))
    }
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

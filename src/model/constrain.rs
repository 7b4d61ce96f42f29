//! Grammar-constrained decoding with llguidance (the library llama.cpp uses): any JSON object,
//! or a JSON Schema, compiled against the model's own vocabulary into the set of tokens each
//! step may take. A constrained reply always parses, and always matches its schema unless it
//! was cut by max_tokens.

use super::tokenizer::TextTokenizer;
use anyhow::{anyhow, bail, Context, Result};
use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tokenizers::DecoderWrapper;
use toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};

/// What a reply must be.
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    /// Any JSON object.
    Json,
    /// A JSON value this schema accepts.
    Schema(Arc<Value>),
}

impl Constraint {
    fn grammar(&self) -> TopLevelGrammar {
        match self {
            Self::Json => TopLevelGrammar::from_json_schema(with_options(
                &serde_json::json!({"type": "object"}),
            )),
            Self::Schema(schema) => TopLevelGrammar::from_json_schema(with_options(schema)),
        }
    }

    /// Reads a schema file into a constraint, failing if llguidance cannot compile it.
    pub fn schema_file(path: &Path, factory: &GrammarFactory) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let schema: Value = serde_json::from_str(&text)
            .map_err(|e| anyhow!("{}: not valid JSON: {e}", path.display()))?;
        let constraint = Self::Schema(Arc::new(schema));
        factory
            .matcher(&constraint)
            .with_context(|| path.display().to_string())?;
        Ok(constraint)
    }
}

/// The schema with llguidance's options: compact JSON (`{"a":1,"b":[2,3]}`, as training
/// data is usually written; free whitespace lets a small model loop on newlines), and `oneOf`
/// read as `anyOf` (llguidance cannot exclude the other branches; the eval's schema check
/// still applies `oneOf` exactly). A schema's own `x-guidance` options win.
fn with_options(schema: &Value) -> Value {
    let mut schema = schema.clone();
    if let Value::Object(map) = &mut schema {
        map.entry("x-guidance").or_insert_with(
            || serde_json::json!({"coerce_one_of": true, "whitespace_flexible": false}),
        );
    }
    schema
}

/// A `--constrain` value: `none`, `json` (any object), `schema` (the eval case's own schema)
/// or `schema=FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstrainArg {
    None,
    Json,
    CaseSchema,
    SchemaFile(std::path::PathBuf),
}

impl std::str::FromStr for ConstrainArg {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim() {
            "none" | "" => Ok(Self::None),
            "json" => Ok(Self::Json),
            "schema" => Ok(Self::CaseSchema),
            other => match other.strip_prefix("schema=") {
                Some(file) if !file.is_empty() => Ok(Self::SchemaFile(file.into())),
                _ => Err(format!(
                    "'{other}': expected none, json, schema or schema=FILE"
                )),
            },
        }
    }
}

/// The vocabulary as llguidance sees it, and the parsers it makes; built once per model.
pub struct GrammarFactory {
    factory: ParserFactory,
}

impl GrammarFactory {
    /// `stop_ids` are the tokens that end a reply: allowed once the grammar is complete.
    pub fn new(tokenizer: &TextTokenizer, stop_ids: &[u32]) -> Result<Self> {
        let env = VocabEnv::new(tokenizer, stop_ids)?;
        let env: TokEnv = Arc::new(env);
        let mut factory = ParserFactory::new_simple(&env)?;
        factory.quiet();
        Ok(Self { factory })
    }

    /// A fresh matcher for one reply; an error if the grammar does not compile.
    pub fn matcher(&self, constraint: &Constraint) -> Result<Matcher> {
        let parser = self
            .factory
            .create_parser(constraint.grammar())
            .map_err(|e| anyhow!("the constraint does not compile: {e}"))?;
        Ok(Matcher::new(Ok(parser)))
    }

    pub fn vocab_size(&self) -> usize {
        self.factory.tok_env().tok_trie().vocab_size()
    }
}

/// One reply's place in its grammar.
pub struct ConstrainedRow {
    matcher: Matcher,
    /// Time spent computing this reply's token masks.
    pub mask_secs: f64,
}

impl ConstrainedRow {
    pub fn new(factory: &GrammarFactory, constraint: &Constraint) -> Result<Self> {
        Ok(Self {
            matcher: factory.matcher(constraint)?,
            mask_secs: 0.0,
        })
    }

    /// Rules out of `logits` every token the grammar does not allow next; false when it
    /// allows none.
    pub fn mask(&mut self, logits: &mut [f32]) -> Result<bool> {
        let started = std::time::Instant::now();
        let mask = self
            .matcher
            .compute_mask()
            .map_err(|e| anyhow!("constrained decoding: {e}"))?;
        let mut any = false;
        for (id, logit) in logits.iter_mut().enumerate() {
            if id < mask.len() && mask.is_allowed(id as u32) {
                any = true;
            } else {
                *logit = f32::NEG_INFINITY;
            }
        }
        self.mask_secs += started.elapsed().as_secs_f64();
        Ok(any)
    }

    /// Advances past `token`; true when the grammar is then complete and admits no more.
    pub fn consume(&mut self, token: u32) -> Result<bool> {
        self.matcher
            .consume_token(token)
            .map_err(|e| anyhow!("constrained decoding: {e}"))?;
        Ok(self.matcher.is_stopped())
    }
}

/// Our tokenizer behind llguidance's trait: each token's bytes, and tokenization of bytes.
struct VocabEnv {
    trie: TokTrie,
    tokenizer: tokenizers::Tokenizer,
}

impl VocabEnv {
    fn new(tokenizer: &TextTokenizer, stop_ids: &[u32]) -> Result<Self> {
        let hf = tokenizer.hf();
        let words = token_bytes(tokenizer)?;
        let Some(&eos) = stop_ids.first() else {
            bail!("the model has no stop token to end a constrained reply");
        };
        let info = TokRxInfo::new(words.len() as u32, eos);
        let trie = TokTrie::from(&info, &words).with_eos_tokens(stop_ids);
        Ok(Self {
            trie,
            tokenizer: hf.clone(),
        })
    }
}

impl TokenizerEnv for VocabEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        self.trie.tokenize_with_greedy_fallback(s, |text| {
            self.tokenizer
                .encode(text, false)
                .map(|e| e.get_ids().to_vec())
                .unwrap_or_default()
        })
    }
}

/// How the decoder turns a token's string into bytes.
#[derive(Debug, Default)]
struct DecoderKind {
    /// GPT-2's byte-to-character table (SmolLM2, Llama 3, Qwen).
    byte_level: bool,
    /// SentencePiece's `<0xAB>` byte tokens (Gemma, Llama 2, Mistral, Phi-3).
    byte_fallback: bool,
    /// The character standing for a space (SentencePiece's ▁).
    space: Option<char>,
}

fn decoder_kind(d: &DecoderWrapper, kind: &mut DecoderKind) -> Result<()> {
    match d {
        DecoderWrapper::ByteLevel(_) => kind.byte_level = true,
        DecoderWrapper::ByteFallback(_) => kind.byte_fallback = true,
        DecoderWrapper::Metaspace(_) => kind.space = Some('▁'),
        DecoderWrapper::Replace(r) => {
            // The pattern has no accessor; its serialized form names it.
            let v = serde_json::to_value(r)?;
            let one_char = v["pattern"]["String"]
                .as_str()
                .filter(|p| p.chars().count() == 1);
            if v["content"] == " " {
                kind.space = one_char.and_then(|p| p.chars().next()).or(kind.space);
            }
        }
        DecoderWrapper::Sequence(seq) => {
            for d in seq.get_decoders() {
                decoder_kind(d, kind)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Every token's bytes as the decoder writes them; special tokens carry the trie's marker
/// ([`TokTrie::SPECIAL_TOKEN_MARKER`], then the token's text).
pub fn token_bytes(tokenizer: &TextTokenizer) -> Result<Vec<Vec<u8>>> {
    let hf = tokenizer.hf();
    let mut kind = DecoderKind::default();
    if let Some(d) = hf.get_decoder() {
        decoder_kind(d, &mut kind)?;
    }
    if !kind.byte_level && !kind.byte_fallback && kind.space.is_none() {
        bail!("constrained decoding needs a byte-level or SentencePiece tokenizer");
    }
    let specials: HashMap<u32, String> = hf
        .get_added_tokens_decoder()
        .into_iter()
        .filter(|(_, t)| t.special)
        .map(|(id, t)| (id, t.content))
        .collect();
    let chars = byte_level_chars();
    let size = hf.get_vocab_size(true) as u32;
    let mut words = Vec::with_capacity(size as usize);
    for id in 0..size {
        let name = hf.id_to_token(id).unwrap_or_default();
        let bytes = if let Some(content) = specials.get(&id) {
            [&[TokTrie::SPECIAL_TOKEN_MARKER], content.as_bytes()].concat()
        } else if kind.byte_level {
            // A string outside the table (an added plain token) stands for itself.
            name.chars()
                .map(|c| chars.get(&c).copied())
                .collect::<Option<Vec<u8>>>()
                .unwrap_or_else(|| name.clone().into_bytes())
        } else if let Some(byte) = fallback_byte(&name) {
            vec![byte]
        } else {
            let space = kind.space.unwrap_or('▁');
            name.replace(space, " ").into_bytes()
        };
        words.push(bytes);
    }
    Ok(words)
}

/// `<0xAB>` → 0xAB.
fn fallback_byte(name: &str) -> Option<u8> {
    let hex = name.strip_prefix("<0x")?.strip_suffix('>')?;
    (hex.len() == 2).then(|| u8::from_str_radix(hex, 16).ok())?
}

/// GPT-2's table from the printable characters byte-level BPE writes back to bytes.
fn byte_level_chars() -> HashMap<char, u8> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut next = 256u32;
    (0..=255u8)
        .map(|b| {
            let c = if printable(b) {
                char::from(b)
            } else {
                next += 1;
                char::from_u32(next - 1).expect("below the surrogates")
            };
            (c, b)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constrain_arguments_parse_or_say_what_is_expected() {
        assert_eq!("json".parse(), Ok(ConstrainArg::Json));
        assert_eq!("schema".parse(), Ok(ConstrainArg::CaseSchema));
        assert_eq!(
            "schema=a/b.json".parse(),
            Ok(ConstrainArg::SchemaFile("a/b.json".into()))
        );
        let e = "yaml".parse::<ConstrainArg>().unwrap_err();
        assert!(e.contains("schema=FILE"), "{e}");
        assert!("schema=".parse::<ConstrainArg>().is_err());
    }

    #[test]
    fn byte_level_table_is_gpt2s() {
        let t = byte_level_chars();
        assert_eq!(t.len(), 256);
        assert_eq!(t[&'Ġ'], b' ');
        assert_eq!(t[&'Ċ'], b'\n');
        assert_eq!(t[&'a'], b'a');
        assert_eq!(t[&'ÿ'], 0xFF);
    }

    #[test]
    fn fallback_bytes_parse_only_their_form() {
        assert_eq!(fallback_byte("<0x0A>"), Some(10));
        assert_eq!(fallback_byte("<0xZZ>"), None);
        assert_eq!(fallback_byte("<0x0A0>"), None);
        assert_eq!(fallback_byte("hello"), None);
    }
}

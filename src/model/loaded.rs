//! A model ready to use: weights, tokenizer, chat template and stop tokens, from any source.

use super::chat_template::{
    family_template, ChatMessage, ChatTemplate, TemplateOrigin, CHATML_TEMPLATE,
};
use super::config::ModelConfig;
use super::gguf::GgufStore;
use super::safetensors_weights::SafetensorsStore;
use super::source::{LocalModel, ModelSource};
use super::tokenizer::TextTokenizer;
use super::transformer::Transformer;
use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file;
use candle_core::Device;
use std::collections::HashMap;
use std::path::Path;

pub struct LoadedModel {
    pub model: Transformer,
    pub tokenizer: TextTokenizer,
    pub template: ChatTemplate,
    /// Where the template came from: the model, its family's built-in turn format (a Gemma 3
    /// GGUF without one), or the ChatML fallback.
    pub template_origin: TemplateOrigin,
    /// Ids that end a reply: EOS and the template's end-of-turn token.
    pub stop_ids: Vec<u32>,
    /// The token raw prompts start with, when the tokenizer adds one.
    pub bos_id: Option<u32>,
    pub local: LocalModel,
}

impl LoadedModel {
    pub fn load(
        source: &ModelSource,
        device: &Device,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Self> {
        let local = source.resolve(progress)?;
        Self::load_local(local, device)
    }

    pub fn load_local(local: LocalModel, device: &Device) -> Result<Self> {
        let parts = match &local {
            LocalModel::Gguf(path) => from_gguf(path, device)?,
            LocalModel::HfFolder(path) => from_hf_folder(path, device)?,
        };
        let (model, tokenizer, template_source, eos_ids, bos, eos, add_bos) = parts;
        let path = local.path().display().to_string();
        let model_vocab = model.config().vocab_size;
        if tokenizer.vocab_size() > model_vocab {
            bail!(
                "{path}: the tokenizer has {} tokens but the model's vocabulary is {model_vocab}",
                tokenizer.vocab_size()
            );
        }
        if template_source
            .as_ref()
            .is_some_and(|(t, _)| t.trim().is_empty())
        {
            bail!(
                "{path}: the model's chat template is empty, so every prompt would render as \
                 nothing; set one, or remove the key to use ChatML"
            );
        }
        let (template_source, template_origin) = template_source
            .unwrap_or_else(|| (CHATML_TEMPLATE.to_string(), TemplateOrigin::ChatMlFallback));
        let template =
            ChatTemplate::new(&template_source, &bos, &eos).map_err(|e| naming(e, local.path()))?;
        let bos_id = tokenizer.token_to_id(&bos).filter(|_| add_bos);
        let mut stop_ids = eos_ids;
        if let Some(id) = template
            .end_of_turn()
            .and_then(|t| tokenizer.token_to_id(t))
        {
            stop_ids.push(id);
        }
        stop_ids.sort_unstable();
        stop_ids.dedup();
        if stop_ids.is_empty() {
            bail!("{path}: the model names no end-of-sequence token");
        }
        Ok(Self {
            model,
            tokenizer,
            template,
            template_origin,
            stop_ids,
            bos_id,
            local,
        })
    }

    /// Ids of raw text (no chat template), after the BOS token the model's tokenizer asks for
    /// (Gemma's does; its answers degrade without it).
    pub fn raw_prompt(&self, text: &str) -> Result<Vec<u32>> {
        Ok(with_bos(self.bos_id, self.tokenizer.encode(text)?))
    }

    /// Prompt ids for one user turn (with an optional system turn), ending where the reply starts.
    pub fn chat_prompt(&self, system: Option<&str>, user: &str) -> Result<Vec<u32>> {
        if user.trim().is_empty() {
            bail!("the prompt is empty");
        }
        let mut messages = Vec::new();
        if let Some(s) = system {
            messages.push(ChatMessage::new("system", s));
        }
        messages.push(ChatMessage::new("user", user));
        let text = self.template.render(&messages, true)?;
        self.tokenizer.encode(&text)
    }
}

/// `ids` after `bos` when there is one (an empty prompt stays empty, so it is still refused).
pub fn with_bos(bos: Option<u32>, ids: Vec<u32>) -> Vec<u32> {
    match bos {
        Some(bos) if !ids.is_empty() => std::iter::once(bos).chain(ids).collect(),
        _ => ids,
    }
}

/// What a model folder or file gives, before the checks that `load_local` makes.
type Parts = (
    Transformer,
    TextTokenizer,
    Option<(String, TemplateOrigin)>,
    Vec<u32>,
    String,
    String,
    bool,
);

fn from_gguf(path: &Path, device: &Device) -> Result<Parts> {
    let (store, config) = GgufStore::open(path, device)?;
    let content = store.content();
    let tokenizer = TextTokenizer::from_gguf(content).map_err(|e| naming(e, path))?;
    let token_id = |key: &str| content.metadata.get(key).and_then(|v| v.to_u32().ok());
    let template = gguf_chat_template(&content.metadata);
    let eos_id = token_id("tokenizer.ggml.eos_token_id");
    let name = |id: Option<u32>| {
        id.and_then(|i| tokenizer.id_to_token(i))
            .unwrap_or_default()
    };
    let bos = name(token_id("tokenizer.ggml.bos_token_id"));
    let eos = name(eos_id);
    let add_bos = content
        .metadata
        .get("tokenizer.ggml.add_bos_token")
        .and_then(|v| v.to_bool().ok())
        .unwrap_or(false);
    check_vocab(path, content, &config)?;
    let model = Transformer::load(&store, config, device).map_err(|e| naming(e, path))?;
    Ok((
        model,
        tokenizer,
        template,
        eos_id.into_iter().collect(),
        bos,
        eos,
        add_bos,
    ))
}

/// A GGUF's chat template: its own `tokenizer.chat_template`, else its family's built-in turn
/// format where `general.architecture` has one (Gemma 3's base GGUFs ship none); `None` leaves
/// the ChatML fallback.
pub fn gguf_chat_template(
    metadata: &HashMap<String, gguf_file::Value>,
) -> Option<(String, TemplateOrigin)> {
    let md_string = |key: &str| metadata.get(key).and_then(|v| v.to_string().ok()).cloned();
    match md_string("tokenizer.chat_template") {
        Some(t) => Some((t, TemplateOrigin::Model)),
        None => family_template(&md_string("general.architecture").unwrap_or_default())
            .map(|(name, source)| (source.to_string(), TemplateOrigin::Family(name))),
    }
}

fn check_vocab(path: &Path, content: &gguf_file::Content, config: &ModelConfig) -> Result<()> {
    let tokens = content
        .metadata
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.to_vec().ok())
        .map_or(0, |v| v.len());
    if tokens != config.vocab_size {
        bail!(
            "{}: the tokenizer has {tokens} tokens but the model's vocabulary is {}",
            path.display(),
            config.vocab_size
        );
    }
    Ok(())
}

fn from_hf_folder(folder: &Path, device: &Device) -> Result<Parts> {
    let config = ModelConfig::from_hf_json(&folder.join("config.json"))?;
    let tokenizer = TextTokenizer::from_file(&folder.join("tokenizer.json"))?;
    let tok_config = read_json_if_present(&folder.join("tokenizer_config.json"))?;
    let gen_config = read_json_if_present(&folder.join("generation_config.json"))?;
    let token_text = |key: &str| -> String {
        match tok_config.get(key) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v
                .get("content")
                .and_then(|c| c.as_str())
                .unwrap_or("")
                .to_string(),
            None => String::new(),
        }
    };
    let (bos, eos) = (token_text("bos_token"), token_text("eos_token"));
    let template = match tok_config.get("chat_template") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
            .and_then(|t| t.get("template")?.as_str().map(str::to_string)),
        _ => None,
    };
    let mut eos_ids: Vec<u32> = match gen_config.get("eos_token_id") {
        Some(serde_json::Value::Number(n)) => n.as_u64().map(|n| n as u32).into_iter().collect(),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_u64().map(|n| n as u32))
            .collect(),
        _ => vec![],
    };
    eos_ids.extend(tokenizer.token_to_id(&eos));
    let store = SafetensorsStore::open(folder, device)?;
    let model = Transformer::load(&store, config, device).map_err(|e| naming(e, folder))?;
    let template = template.map(|t| (t, TemplateOrigin::Model));
    let add_bos = tok_config.get("add_bos_token").and_then(|v| v.as_bool()) == Some(true);
    Ok((model, tokenizer, template, eos_ids, bos, eos, add_bos))
}

fn read_json_if_present(path: &Path) -> Result<serde_json::Value> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{}: not valid JSON", path.display())),
        Err(_) => Ok(serde_json::Value::Null),
    }
}

/// The error with the model's path before it, unless a cause already names it (the weight
/// stores do): a path said twice reads as two files.
fn naming(e: anyhow::Error, path: &Path) -> anyhow::Error {
    let shown = path.display().to_string();
    if format!("{e:#}").contains(&shown) {
        e
    } else {
        e.context(shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::chat_template::GEMMA_TEMPLATE;
    use gguf_file::Value;

    fn metadata(pairs: &[(&str, &str)]) -> HashMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect()
    }

    #[test]
    fn a_gemma3_gguf_without_a_template_gets_the_gemma_turn_format() {
        let gemma = metadata(&[("general.architecture", "gemma3")]);
        assert_eq!(
            gguf_chat_template(&gemma),
            Some((
                GEMMA_TEMPLATE.to_string(),
                TemplateOrigin::Family("Gemma 3")
            ))
        );
        // The file's own template wins; other families without one keep the ChatML fallback.
        let own = metadata(&[
            ("general.architecture", "gemma3"),
            ("tokenizer.chat_template", "{{ messages }}"),
        ]);
        assert_eq!(
            gguf_chat_template(&own),
            Some(("{{ messages }}".to_string(), TemplateOrigin::Model))
        );
        assert_eq!(
            gguf_chat_template(&metadata(&[("general.architecture", "llama")])),
            None
        );
        assert_eq!(gguf_chat_template(&HashMap::new()), None);
    }
}

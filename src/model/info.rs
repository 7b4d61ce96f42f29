//! `tunelab model info`: what a model is and what it costs in memory.

use super::chat_template::TemplateOrigin;
use super::linear::{ggml_type_name, BaseWeight};
use super::loaded::LoadedModel;
use super::rope_scaling::RopeScaling;
use super::transformer::WeightRef;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub path: String,
    pub architecture: String,
    pub layers: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub context_length: usize,
    pub rope_theta: f64,
    /// What the family's attention adds to the plain kind: RoPE scaling, sliding windows.
    pub attention: String,
    pub tied_embeddings: bool,
    pub parameters: usize,
    /// Storage type -> number of weight matrices stored that way.
    pub tensor_types: BTreeMap<String, usize>,
    /// Bytes the weights occupy in memory (the tied head is not counted twice).
    pub bytes_in_memory: usize,
    pub chat_template: String,
    pub stop_tokens: Vec<String>,
}

fn weight_type(w: &BaseWeight) -> (String, usize) {
    match w {
        BaseWeight::Quantized(q) => (
            ggml_type_name(q.dtype()).to_string(),
            q.storage_size_in_bytes(),
        ),
        BaseWeight::Dense(t) => (
            format!("{:?}", t.dtype()).to_uppercase(),
            t.elem_count() * t.dtype().size_in_bytes(),
        ),
    }
}

/// The RoPE scaling and sliding windows of `c`, in a few words ("" for plain attention).
fn attention_notes(c: &super::config::ModelConfig) -> String {
    let mut notes = Vec::new();
    match &c.rope_scaling {
        RopeScaling::None => {}
        RopeScaling::Linear { factor } => notes.push(format!("RoPE scaled linearly ×{factor}")),
        RopeScaling::Llama3 { factor, .. } => notes.push(format!("RoPE scaled llama3 ×{factor}")),
        RopeScaling::PerFrequency(_) => notes.push("RoPE scaled per frequency (rope_freqs)".into()),
    }
    if let Some(window) = c.sliding_window {
        let sliding = (0..c.num_hidden_layers)
            .filter(|&i| c.window_of(i).is_some())
            .count();
        let mut text = format!(
            "{sliding} of {} layers see {window} tokens back",
            c.num_hidden_layers
        );
        if let Some(local) = c.rope_local_theta {
            text.push_str(&format!(" (their rope theta {local})"));
        }
        notes.push(text);
    }
    notes.join("; ")
}

impl ModelInfo {
    pub fn of(loaded: &LoadedModel) -> Self {
        let m = &loaded.model;
        let c = m.config();
        let mut types = BTreeMap::new();
        let mut bytes = 0;
        let mut count = |(ty, b): (String, usize)| {
            *types.entry(ty).or_insert(0) += 1;
            bytes += b;
        };
        for (_, w) in m.weights() {
            match w {
                WeightRef::Linear(l) => count(weight_type(l.weight())),
                WeightRef::Embedding(e) => count(weight_type(e)),
                // Norm scales and biases are kept in f32.
                WeightRef::Norm(_) | WeightRef::Vector(_) => {
                    count(("F32".into(), w.shape().iter().product::<usize>() * 4))
                }
            }
        }
        Self {
            path: loaded.local.path().display().to_string(),
            architecture: loaded.model.config().family.name().into(),
            layers: c.num_hidden_layers,
            hidden_size: c.hidden_size,
            intermediate_size: c.intermediate_size,
            heads: c.num_attention_heads,
            kv_heads: c.num_key_value_heads,
            head_dim: c.head_dim(),
            vocab_size: c.vocab_size,
            context_length: c.max_position_embeddings,
            rope_theta: c.rope_theta,
            attention: attention_notes(c),
            tied_embeddings: c.tie_word_embeddings,
            parameters: m.parameter_count(),
            tensor_types: types,
            bytes_in_memory: bytes,
            chat_template: match loaded.template_origin {
                TemplateOrigin::Model => "from the model".to_string(),
                TemplateOrigin::Family(name) => {
                    format!("{name} turn format (built in: the file has none)")
                }
                TemplateOrigin::ChatMlFallback => "ChatML (fallback)".to_string(),
            },
            stop_tokens: loaded
                .stop_ids
                .iter()
                .map(|&id| {
                    format!(
                        "{} ({id})",
                        loaded.tokenizer.id_to_token(id).unwrap_or_default()
                    )
                })
                .collect(),
        }
    }
}

impl fmt::Display for ModelInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let types: Vec<String> = self
            .tensor_types
            .iter()
            .map(|(t, n)| format!("{t} ×{n}"))
            .collect();
        writeln!(f, "model           {}", self.path)?;
        writeln!(f, "architecture    {}", self.architecture)?;
        writeln!(f, "layers          {}", self.layers)?;
        writeln!(
            f,
            "hidden size     {} (MLP {})",
            self.hidden_size, self.intermediate_size
        )?;
        writeln!(
            f,
            "heads           {} query, {} key/value (head dim {})",
            self.heads, self.kv_heads, self.head_dim
        )?;
        writeln!(f, "vocabulary      {}", self.vocab_size)?;
        writeln!(f, "context length  {}", self.context_length)?;
        writeln!(f, "rope theta      {}", self.rope_theta)?;
        if !self.attention.is_empty() {
            writeln!(f, "attention       {}", self.attention)?;
        }
        writeln!(
            f,
            "embeddings      {}",
            if self.tied_embeddings {
                "tied"
            } else {
                "untied"
            }
        )?;
        writeln!(
            f,
            "parameters      {} ({:.1} M)",
            self.parameters,
            self.parameters as f64 / 1e6
        )?;
        writeln!(f, "tensor types    {}", types.join(", "))?;
        writeln!(
            f,
            "in memory       {} bytes ({:.1} MiB)",
            self.bytes_in_memory,
            self.bytes_in_memory as f64 / (1 << 20) as f64
        )?;
        writeln!(f, "chat template   {}", self.chat_template)?;
        write!(f, "stop tokens     {}", self.stop_tokens.join(", "))
    }
}

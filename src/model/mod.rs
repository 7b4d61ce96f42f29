//! Loading and running decoder-only transformer models (Llama, Qwen, Gemma families): sources, weights, tokenizer, chat template, generation.

pub mod block;
pub mod catalog;
pub mod chat_template;
pub mod config;
pub mod constrain;
pub mod family;
pub mod fetch;
pub mod fused;
pub mod generate;
pub mod gguf;
mod gguf_checks;
pub mod hub;
pub mod info;
pub mod known;
mod layer_pass;
pub mod linear;
pub mod loaded;
pub mod lora;
mod mask;
pub mod peft;
pub mod quantized_matmul;
pub mod rope_scaling;
pub mod safetensors_weights;
pub mod source;
pub mod tokenizer;
pub mod transformer;
pub mod weights;

pub use chat_template::{ChatMessage, ChatTemplate};
pub use config::ModelConfig;
pub use generate::{generate, generate_batch, GenerationOutput, SamplingParams};
pub use loaded::LoadedModel;
pub use source::ModelSource;
pub use tokenizer::TextTokenizer;
pub use transformer::{KvCache, Transformer};

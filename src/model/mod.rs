//! Loading and running Llama-family models: sources, weights, tokenizer, chat template, generation.

pub mod chat_template;
pub mod config;
pub mod fetch;
pub mod fused;
pub mod generate;
pub mod gguf;
mod gguf_checks;
pub mod hub;
pub mod info;
mod layer_pass;
pub mod linear;
pub mod llama;
pub mod loaded;
pub mod lora;
pub mod peft;
pub mod quantized_matmul;
pub mod safetensors_weights;
pub mod source;
pub mod tokenizer;
pub mod weights;

pub use chat_template::{ChatMessage, ChatTemplate};
pub use config::LlamaConfig;
pub use generate::{generate, generate_batch, GenerationOutput, SamplingParams};
pub use llama::{KvCache, Llama};
pub use loaded::LoadedModel;
pub use source::ModelSource;
pub use tokenizer::TextTokenizer;

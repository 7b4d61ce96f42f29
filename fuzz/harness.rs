//! One function per fuzz target, shared by the cargo-fuzz targets (fuzz/fuzz_targets/*.rs)
//! and by the stable regression test that replays the corpora (tests/fuzz_corpora.rs).
//!
//! Each function feeds `data` to a real library entry point and ignores the `Result`: an
//! error is the expected answer to bad input; a panic, abort, hang or huge allocation is a
//! bug. The library's loaders take paths, so the bytes are written to a file in a temp
//! folder of this thread (under /dev/shm where it exists), reused from one input to the next.
#![allow(dead_code)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor};
use tunelab::model::chat_template::{ChatMessage, ChatTemplate};
use tunelab::model::linear::{BaseWeight, Linear};
use tunelab::model::source::LocalModel;
use tunelab::model::weights::WeightStore;
use tunelab::model::{LoadedModel, ModelConfig, TextTokenizer, Transformer};

/// A scratch folder for this thread, removed when the thread ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

fn scratch_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    SCRATCH.with(|s| {
        s.borrow_mut()
            .get_or_insert_with(|| {
                let shm = Path::new("/dev/shm");
                let root = if shm.is_dir() {
                    shm.to_path_buf()
                } else {
                    std::env::temp_dir()
                };
                let dir = root.join(format!(
                    "tunelab-fuzz-{}-{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&dir).expect("creating the fuzz scratch folder");
                Scratch(dir)
            })
            .0
            .clone()
    })
}

/// Writes `data` to `name` in this thread's scratch folder and returns the file's path.
fn write_file(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch_dir().join(name);
    std::fs::write(&path, data).expect("writing the fuzz input");
    path
}

/// A GGUF file: its header, tensor table and metadata; then the tokenizer and the chat
/// template built from it, as `LoadedModel` does; then the whole load path.
pub fn gguf(data: &[u8]) {
    let path = write_file("model.gguf", data);
    if let Ok((content, _file, _size)) = tunelab::model::gguf::read_header(&path) {
        if let Ok(tok) = TextTokenizer::from_gguf(&content) {
            let _ = tok.encode("<s>hi there</s> 123");
        }
        let template = content
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok());
        if let Some(src) = template {
            render_template(src);
        }
    }
    let _ = LoadedModel::load_local(LocalModel::Gguf(path), &Device::Cpu);
}

fn render_template(src: &str) {
    if let Ok(t) = ChatTemplate::new(src, "<s>", "</s>") {
        let _ = t.render(&[ChatMessage::new("user", "hi")], true);
        let _ = t.end_of_turn();
    }
}

/// A chat template's source (lossy UTF-8), compiled and rendered.
pub fn chat_template(data: &[u8]) {
    let src = String::from_utf8_lossy(data);
    if let Ok(t) = ChatTemplate::new(&src, "<s>", "</s>") {
        let _ = t.render(&[ChatMessage::new("user", "hi")], true);
        let _ = t.render(
            &[
                ChatMessage::new("system", "be brief"),
                ChatMessage::new("user", "hi"),
                ChatMessage::new("assistant", "hello"),
            ],
            false,
        );
    }
}

/// A tiny random-free Llama (all weights constant), built once in memory.
struct TinyStore;

const TINY: (usize, usize, usize, usize, usize) = (16, 8, 16, 2, 1); // vocab, hidden, ffn, heads, kv heads

fn tiny_config() -> ModelConfig {
    let (vocab, hidden, ffn, heads, kv) = TINY;
    ModelConfig {
        vocab_size: vocab,
        hidden_size: hidden,
        intermediate_size: ffn,
        num_hidden_layers: 2,
        num_attention_heads: heads,
        num_key_value_heads: kv,
        rope_theta: 10000.0,
        rms_norm_eps: 1e-5,
        max_position_embeddings: 16,
        tie_word_embeddings: true,
        ..ModelConfig::default()
    }
}

impl TinyStore {
    fn shape(name: &str) -> (usize, usize) {
        let (vocab, hidden, ffn, heads, kv) = TINY;
        let kv_dim = hidden / heads * kv;
        let part = name.rsplit('.').next().unwrap_or(name);
        match part {
            "q_proj" | "o_proj" => (hidden, hidden),
            "k_proj" | "v_proj" => (kv_dim, hidden),
            "gate_proj" | "up_proj" => (ffn, hidden),
            "down_proj" => (hidden, ffn),
            _ => (vocab, hidden),
        }
    }
}

impl WeightStore for TinyStore {
    fn linear(&self, name: &str) -> anyhow::Result<Linear> {
        let t = Tensor::full(0.01f32, Self::shape(name), &Device::Cpu)?;
        Linear::new(BaseWeight::Dense(t))
    }
    fn vector(&self, _name: &str) -> anyhow::Result<Tensor> {
        Ok(Tensor::ones(TINY.1, DType::F32, &Device::Cpu)?)
    }
    fn embedding(&self, name: &str) -> anyhow::Result<BaseWeight> {
        let t = Tensor::full(0.01f32, Self::shape(name), &Device::Cpu)?;
        Ok(BaseWeight::Dense(t))
    }
    fn contains(&self, name: &str) -> bool {
        name != "lm_head"
    }
    fn activation_dtype(&self, _device: &Device) -> DType {
        DType::F32
    }
}

fn tiny_model() -> Transformer {
    static MODEL: OnceLock<Transformer> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            Transformer::load(&TinyStore, tiny_config(), &Device::Cpu)
                .expect("building the tiny model")
        })
        .clone()
}

/// A PEFT adapter folder: the first 4 bytes (little-endian, taken modulo the rest's length
/// plus one) are the length of adapter_config.json; the bytes after it are
/// adapter_model.safetensors. Loaded onto a tiny Llama.
pub fn adapter(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let (head, rest) = data.split_at(4);
    let n = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize % (rest.len() + 1);
    let (json, weights) = rest.split_at(n);
    let config = write_file("adapter_config.json", json);
    write_file("adapter_model.safetensors", weights);
    let dir = config.parent().expect("a scratch folder").to_path_buf();
    let mut model = tiny_model();
    let _ = tunelab::model::peft::load_adapter(&mut model, &dir);
}

/// An SFT data file (JSONL), loaded and validated.
pub fn sft_data(data: &[u8]) {
    let path = write_file("sft.jsonl", data);
    let _ = tunelab::data::sft::load_sft_file(&path);
    let _ = tunelab::data::sft::validate_sft_file(&path);
}

/// A preference (DPO) data file (JSONL).
pub fn preference_data(data: &[u8]) {
    let path = write_file("preference.jsonl", data);
    let _ = tunelab::data::preference::load_preference_file(&path);
}

/// An eval cases file (JSONL).
pub fn eval_cases(data: &[u8]) {
    let path = write_file("eval.jsonl", data);
    let _ = tunelab::eval::cases::load_eval_file(&path);
}

/// A run config: the first byte picks the file name (even: config.toml, odd: config.json),
/// the rest is the file.
pub fn config(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let name = if first % 2 == 0 {
        "config.toml"
    } else {
        "config.json"
    };
    let path = write_file(name, rest);
    if let Ok(c) = tunelab::config::RunConfig::load(&path) {
        let _ = c.validate();
        let _ = c.stage_configs();
        let _ = c.lora();
    }
}

/// A training run's events.jsonl.
pub fn events(data: &[u8]) {
    let path = write_file("events.jsonl", data);
    let _ = tunelab::train::events::read_events(&path);
}

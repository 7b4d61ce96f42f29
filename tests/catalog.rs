//! What a model is before it is loaded (the workbench's model picker and memory estimate): the
//! known shapes against the bundled GGUFs' headers, parameter counts against the weights
//! themselves, and the catalog of a cache.

mod common;

use tunelab::model::catalog::{describe, parameter_count, Catalog};
use tunelab::model::family::Family;
use tunelab::model::known;

/// The fields a memory estimate reads, to compare two configs by.
fn shape(c: &tunelab::model::ModelConfig) -> (Family, [usize; 7], bool) {
    let dims = [
        c.vocab_size,
        c.hidden_size,
        c.intermediate_size,
        c.num_hidden_layers,
        c.num_attention_heads,
        c.num_key_value_heads,
        c.head_dim(),
    ];
    (c.family, dims, c.tie_word_embeddings)
}

#[test]
fn the_bundled_models_known_shapes_are_their_headers() {
    for (short, gguf) in [
        ("smollm2-135m", common::default_gguf()),
        ("gemma3-270m", common::gemma3_gguf()),
    ] {
        let entry = describe(gguf.to_str().unwrap()).unwrap();
        let known = known::by_short(short).unwrap().config();
        assert_eq!(shape(&entry.config), shape(&known), "{short}");
        assert!(entry.cached, "{short}");
        // The header's tensor table counted element by element, against the formula.
        assert_eq!(entry.parameters, parameter_count(&entry.config), "{short}");
        let file = std::fs::metadata(&gguf).unwrap().len();
        assert!(
            entry.weight_bytes <= file && entry.weight_bytes > file * 9 / 10,
            "{short}: {} of a {file}-byte file",
            entry.weight_bytes
        );
    }
}

#[test]
fn parameter_counts_equal_each_familys_safetensors() {
    for family in ["llama3", "mistral", "qwen2", "qwen3", "gemma3", "phi3"] {
        let dir = common::fixture(&format!("families/{family}/base"));
        let weights = candle_core::safetensors::load(
            dir.join("model.safetensors"),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let stored: usize = weights.values().map(|t| t.elem_count()).sum();
        let entry = describe(dir.to_str().unwrap()).unwrap();
        assert_eq!(entry.parameters, stored as u64, "{family}");
        // A dense folder is quantized to Q4_1 on load: 20 bytes per 32 weights.
        assert_eq!(entry.weight_bytes, stored as u64 * 20 / 32, "{family}");
        assert_eq!(entry.storage, "F32", "{family}");
    }
}

#[test]
fn a_cache_lists_each_model_once_the_configs_first() {
    // The Hub cache layout hf-hub reads: refs/main names the snapshot holding config.json.
    let home = common::scratch_dir("catalog_hf_home");
    let repo = home.join("hub/models--acme--tiny-qwen");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "abc123").unwrap();
    let snapshot = repo.join("snapshots/abc123");
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::copy(
        common::fixture("families/qwen2/base/config.json"),
        snapshot.join("config.json"),
    )
    .unwrap();
    std::env::set_var("HF_HOME", &home);

    let own = common::fixture("families/qwen3/base");
    let catalog = Catalog::scan(own.to_str().unwrap());
    let names: Vec<&str> = catalog.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names[0], own.to_str().unwrap());
    for expected in [
        "smollm2-135m",
        "gemma3-270m",
        "acme/tiny-qwen",
        "meta-llama/Llama-3.1-8B-Instruct",
    ] {
        let found = names.iter().filter(|n| **n == expected).count();
        assert_eq!(found, 1, "{expected} in {names:?}");
    }
    let hub = &catalog.entries[names.iter().position(|n| *n == "acme/tiny-qwen").unwrap()];
    assert!(hub.cached);
    assert_eq!(hub.config.family, Family::Qwen2);
    let big = &catalog.entries[names
        .iter()
        .position(|n| *n == "meta-llama/Llama-3.1-8B-Instruct")
        .unwrap()];
    assert!(!big.cached);
    assert_eq!(big.storage, "BF16");
    assert_eq!(
        names[1], "smollm2-135m",
        "the bundled models next, the default first"
    );
}

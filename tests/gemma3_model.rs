//! The real Gemma 3 270M Q4_K_M GGUF (tensors in Q4_K, Q5_0, Q6_K, Q8_0 and F32) against
//! transformers on the same file (tests/reference/make_gemma3_logits_fixture.py): next-token
//! logits and greedy text; and LoRA gradients through its mixed quantized base equal to those
//! through the same weights dequantized.

mod common;

use candle_core::{DType, Device, Tensor};
use std::sync::OnceLock;
use tunelab::model::linear::{BaseWeight, Linear};
use tunelab::model::lora::LoraConfig;
use tunelab::model::source::LocalModel;
use tunelab::model::{generate, LoadedModel, SamplingParams};
use tunelab::train::loss::causal_lm_loss;

fn gemma() -> &'static LoadedModel {
    static MODEL: OnceLock<LoadedModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        LoadedModel::load_local(LocalModel::Gguf(common::gemma3_gguf()), &Device::Cpu)
            .expect("loading gemma3-270m")
    })
}

fn cases() -> Vec<serde_json::Value> {
    let r = common::read_json("logits_gemma3.json");
    r["cases"].as_array().unwrap().clone()
}

fn ids_of(case: &serde_json::Value, key: &str) -> Vec<u32> {
    serde_json::from_value(case[key].clone()).unwrap()
}

#[test]
fn next_token_logits_match_transformers() {
    let model = &gemma().model;
    let mut worst = 0f32;
    for case in cases() {
        let ids = ids_of(&case, "ids");
        let t = Tensor::new(ids.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits: Vec<f32> = model
            .forward_last(&t, 0, None)
            .unwrap()
            .get(0)
            .unwrap()
            .to_vec1()
            .unwrap();
        let top: Vec<u32> = ids_of(&case, "top_ids");
        let values: Vec<f32> = serde_json::from_value(case["top_logits"].clone()).unwrap();
        for (id, want) in top.iter().zip(&values) {
            worst = worst.max((logits[*id as usize] - want).abs());
        }
        let best = (0..logits.len())
            .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
            .unwrap();
        assert_eq!(best as u32, top[0], "{}: top token", case["text"]);
    }
    // Measured: 3.9e-5 (transformers dequantizes to f32 as this engine's CPU matmul does).
    assert!(worst < 1e-3, "logits differ by up to {worst}");
}

#[test]
fn greedy_text_matches_transformers() {
    let loaded = gemma();
    let params = SamplingParams {
        max_tokens: 16,
        ..SamplingParams::default()
    };
    for case in cases() {
        let ids = ids_of(&case, "ids");
        let out = generate(&loaded.model, &loaded.tokenizer, &ids, &params, &[], |_| {
            Ok(true)
        })
        .unwrap();
        assert_eq!(out.tokens, ids_of(&case, "greedy_ids"), "{}", case["text"]);
        assert_eq!(
            out.text,
            case["greedy_text"].as_str().unwrap(),
            "{}",
            case["text"]
        );
    }
}

/// Each quantized type of the file carries LoRA gradients exactly as its dequantized weight
/// does: training dequantizes every block type transiently, it never requantizes.
#[test]
fn lora_gradients_through_every_quant_type_equal_the_dequantized_ones() {
    let loaded =
        LoadedModel::load_local(LocalModel::Gguf(common::gemma3_gguf()), &Device::Cpu).unwrap();
    let mut quantized = loaded.model;
    quantized.layers.truncate(2);
    let lora = LoraConfig {
        r: 4,
        lora_alpha: 8.0,
        target_modules: vec!["all-linear".into()],
        ..LoraConfig::default()
    };
    quantized.attach_lora(&lora, 7).unwrap();
    // B starts at zero (so A gets no gradient); give it values so both factors are checked.
    for (_, layer) in quantized.lora_layers() {
        let b = (layer.b.as_tensor().ones_like().unwrap() * 0.01).unwrap();
        layer.b.set(&b).unwrap();
    }
    let mut dense = quantized.clone();
    let mut types = std::collections::BTreeSet::new();
    for (_, linear) in dense.named_linears_mut() {
        types.insert(linear.storage_type());
        let w = linear.dequantized(DType::F32).unwrap();
        let adapter = linear.lora().cloned();
        *linear = Linear::new(BaseWeight::Dense(w)).unwrap();
        linear.set_lora(adapter);
    }
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        ["Q4_K", "Q5_0", "Q6_K", "Q8_0"]
    );
    let ids = Tensor::new(
        &[[2u32, 818, 5279, 529, 7001, 563, 9079, 236761]],
        &Device::Cpu,
    )
    .unwrap();
    let labels = Tensor::new(
        &[[-100i64, -100, -100, -100, 5279, 529, 7001, 563]],
        &Device::Cpu,
    )
    .unwrap();
    let grads = |model: &tunelab::model::Transformer| {
        model.adapters().set_training(true);
        let hidden = model.forward_hidden(&ids, 0, None).unwrap();
        let loss = causal_lm_loss(model.lm_head(), &hidden, &labels).unwrap();
        let store = model.backward(&loss).unwrap();
        model
            .lora_layers()
            .into_iter()
            .flat_map(|(name, l)| {
                [
                    (format!("{name} A"), store.get(&l.a).unwrap().clone()),
                    (format!("{name} B"), store.get(&l.b).unwrap().clone()),
                ]
            })
            .collect::<Vec<_>>()
    };
    let (gq, gd) = (grads(&quantized), grads(&dense));
    assert_eq!(gq.len(), 28);
    for ((name, a), (_, b)) in gq.iter().zip(&gd) {
        assert!(common::max_abs(b) > 0.0, "{name}: no gradient");
        let d = common::rel_diff(a, b);
        assert!(
            d < 1e-4,
            "{name}: quantized vs dequantized gradient differs by {d}"
        );
    }
}

/// Raw prompts start with BOS where the tokenizer adds one, as transformers' tokenizer does
/// for Gemma; SmolLM2's adds none.
#[test]
fn raw_prompts_start_with_bos_where_the_tokenizer_adds_one() {
    for case in cases() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(
            gemma().raw_prompt(text).unwrap(),
            ids_of(&case, "ids"),
            "{text}"
        );
    }
    let smollm = common::default_model();
    let text = "The capital of France is";
    assert_eq!(
        smollm.raw_prompt(text).unwrap(),
        smollm.tokenizer.encode(text).unwrap()
    );
}

/// Exported as GGUF (SentencePiece vocabulary, scores and types as the file had them; norms
/// as 1 + w) and as a Hugging Face folder (norms as w, BOS asked for), Gemma reads back and
/// answers as before.
#[test]
fn gguf_and_hf_exports_read_back_and_answer_the_same() {
    use tunelab::export::{export, ExportFormat, ExportRequest, FloatType};
    let dir = common::scratch_dir("gemma3_export");
    let case = &cases()[0];
    let params = SamplingParams {
        max_tokens: 8,
        ..SamplingParams::default()
    };
    for (format, out) in [
        (ExportFormat::Gguf, dir.join("gemma.gguf")),
        (ExportFormat::Hf, dir.join("gemma-hf")),
    ] {
        let req = ExportRequest {
            adapter: None,
            model: Some(common::gemma3_gguf().display().to_string()),
            format,
            out: out.clone(),
            dtype: Some(FloatType::F32),
            quant: None,
        };
        export(&req, &mut |_| {}).unwrap_or_else(|e| panic!("{format:?}: {e:#}"));
        let local = match format {
            ExportFormat::Gguf => LocalModel::Gguf(out),
            _ => LocalModel::HfFolder(out),
        };
        let back = LoadedModel::load_local(local, &Device::Cpu).unwrap();
        let text = case["text"].as_str().unwrap();
        let ids = back.raw_prompt(text).unwrap();
        assert_eq!(ids, ids_of(case, "ids"), "{format:?}: prompt ids");
        let out = generate(&back.model, &back.tokenizer, &ids, &params, &[], |_| {
            Ok(true)
        })
        .unwrap();
        assert_eq!(
            out.tokens,
            ids_of(case, "greedy_ids")[..8],
            "{format:?}: greedy tokens"
        );
        assert_eq!(
            back.template.source(),
            gemma().template.source(),
            "{format:?}"
        );
    }
}

/// `model info` counts every tensor the file holds (109 of them F32: Gemma's six norms a layer
/// and more) and says which layers slide.
#[test]
fn model_info_shows_the_family_and_its_windows() {
    let info = tunelab::model::info::ModelInfo::of(gemma());
    assert_eq!(info.architecture, "gemma3");
    assert_eq!(info.tensor_types["F32"], 109);
    assert_eq!(info.tensor_types.values().sum::<usize>(), 236);
    assert_eq!(
        info.attention,
        "15 of 18 layers see 512 tokens back (their rope theta 10000)"
    );
}

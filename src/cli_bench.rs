//! `tunelab bench`: one JSON line of training-step speed and peak device memory, the same
//! fields bench/peft_baseline.py prints for transformers + PEFT.

use anyhow::{bail, Result};
use candle_core::quantized::GgmlDType;
use serde_json::json;
use tunelab::bench::run::{run, BenchSpec};
use tunelab::bench::synthetic;
use tunelab::config::{GradientCheckpointing, Stage};
use tunelab::device::{self, DeviceChoice};
use tunelab::hw::peak::PeakSampler;
use tunelab::model::lora::LoraConfig;
use tunelab::model::{LoadedModel, ModelSource};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// A GGUF file, a Hugging Face folder or a Hub repo id (default: SmolLM2-135M-Instruct Q4_1).
    #[arg(long, conflicts_with = "synthetic")]
    model: Option<String>,
    /// Random weights of a named shape instead of a model file: smollm2-135m or llama-1b.
    #[arg(long)]
    synthetic: Option<String>,
    /// Synthetic weights' storage: q4_1 (the default, a 4-bit base as QLoRA trains), q4_k or bf16.
    #[arg(long, default_value = "q4_1")]
    quant: String,
    #[arg(long, value_enum, default_value_t = Stage::Sft)]
    stage: Stage,
    /// Sequences per step (SFT) or pairs per step (DPO).
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 256)]
    seq: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    #[arg(long, default_value_t = 16)]
    lora_r: usize,
    #[arg(long, default_value_t = 16.0)]
    lora_alpha: f64,
    #[arg(long, default_value_t = 0.05)]
    lora_dropout: f64,
    /// Comma-separated projections, or all-linear (all seven).
    #[arg(long, default_value = "all-linear")]
    targets: String,
    /// Layers whose activations the backward recomputes: true (all), false (none) or a number
    /// of layers, counted from the first.
    #[arg(long, default_value = "true")]
    gradient_checkpointing: GradientCheckpointing,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
    /// Also time each phase of a step (forward, backward, clip, optimizer), waiting for the
    /// device after each: where the time goes.
    #[arg(long)]
    phases: bool,
}

fn quant(name: &str) -> Result<Option<GgmlDType>> {
    Ok(match name {
        "q4_1" => Some(GgmlDType::Q4_1),
        "q4_k" => Some(GgmlDType::Q4K),
        "bf16" => None,
        other => bail!("--quant {other}: use q4_1, q4_k or bf16"),
    })
}

pub fn run_bench(args: BenchArgs) -> Result<()> {
    // Sampled from before the process touches the GPU, so the peak includes the CUDA context,
    // as the PEFT side's does.
    let memory = PeakSampler::start(0);
    let device = device::open(args.device)?;
    let (mut model, model_name, base) = match &args.synthetic {
        Some(name) => {
            let q = quant(&args.quant)?;
            let model = synthetic::model(name, q, &device)?;
            let base = if q.is_some() { &args.quant } else { "bf16" };
            (model, format!("{name} (synthetic)"), base.to_uppercase())
        }
        None => {
            let source = ModelSource::parse(args.model.as_deref())?;
            let loaded = LoadedModel::load(&source, &device, &mut |line| eprintln!("{line}"))?;
            let mut model = loaded.model;
            model.quantize_linears(GgmlDType::Q4_1)?;
            let base = model
                .named_linears()
                .next()
                .map(|(_, l)| l.storage_type())
                .unwrap_or_default();
            (model, loaded.local.path().display().to_string(), base)
        }
    };
    if device.is_cuda() {
        model.set_activation_dtype(candle_core::DType::BF16);
    }
    let layers = model.config().num_hidden_layers;
    model.set_checkpointed_layers(args.gradient_checkpointing.layers(layers));
    let lora = LoraConfig {
        r: args.lora_r,
        lora_alpha: args.lora_alpha,
        lora_dropout: args.lora_dropout,
        target_modules: args
            .targets
            .split(',')
            .map(|t| t.trim().to_string())
            .collect(),
        use_rslora: false,
    };
    let spec = BenchSpec {
        stage: args.stage,
        batch: args.batch,
        seq: args.seq,
        steps: args.steps,
        warmup: args.warmup,
        lora: lora.clone(),
        seed: 0,
        phases: args.phases,
    };
    let times = run(&mut model, &spec)?;
    let peak = memory.map(|m| m.finish(0).run_peak_bytes() as f64 / (1u64 << 30) as f64);
    let gpu = if device.is_cuda() {
        tunelab::hw::probe()
            .gpus
            .first()
            .and_then(|g| g.name.clone())
    } else {
        None
    };
    let mut line = json!({
        "impl": "tunelab",
        "model": model_name,
        "base": base,
        "stage": args.stage.name(),
        "batch": args.batch,
        "seq": args.seq,
        "steps": args.steps,
        "warmup": args.warmup,
        "lora_r": lora.r,
        "lora_alpha": lora.lora_alpha,
        "lora_dropout": lora.lora_dropout,
        "checkpointed_layers": model.checkpointed_layers(),
        "targets": lora.targets()?,
        "device": device::describe(&device),
        "gpu": gpu,
        "peak_mem_gib": peak,
    });
    if let (Some(obj), serde_json::Value::Object(t)) = (line.as_object_mut(), json!(times)) {
        obj.extend(t);
    }
    println!("{line}");
    Ok(())
}

//! `tunelab export` and `tunelab logits`: adapters out into the ecosystem, and the numbers to
//! check them against other runtimes.

use anyhow::Result;
use std::path::PathBuf;
use tunelab::export::{export, probe, ExportFormat, ExportRequest, FloatType, QuantType};
use tunelab::model::peft::{check_adapter_base, load_adapter};
use tunelab::model::{LoadedModel, ModelSource};

#[derive(clap::Args)]
pub struct ExportArgs {
    /// A PEFT adapter folder (e.g. output_dir/adapter). Without it, hf and gguf convert the base alone.
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// The base model (default: the one the adapter names, else the default model).
    #[arg(long)]
    model: Option<String>,
    #[arg(long, value_enum)]
    to: ExportFormat,
    /// The folder to create (peft, hf) or the NAME.gguf file (gguf); never overwritten.
    #[arg(long)]
    out: PathBuf,
    /// Weight type (hf default bf16, gguf default f16).
    #[arg(long, value_enum)]
    dtype: Option<FloatType>,
    /// Quantize a gguf export.
    #[arg(long, value_enum)]
    quant: Option<QuantType>,
}

#[derive(clap::Args)]
pub struct LogitsArgs {
    #[arg(long)]
    model: Option<String>,
    /// A PEFT adapter folder applied on the model.
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// A user turn (chat template applied unless --raw); repeat for several prompts.
    #[arg(long, required = true)]
    prompt: Vec<String>,
    #[arg(long)]
    raw: bool,
    /// Length of the greedy reply.
    #[arg(long, default_value_t = 32)]
    greedy: usize,
}

pub fn run_export(a: ExportArgs, progress: &mut dyn FnMut(&str)) -> Result<()> {
    let request = ExportRequest {
        adapter: a.adapter,
        model: a.model,
        format: a.to,
        out: a.out,
        dtype: a.dtype,
        quant: a.quant,
    };
    let done = export(&request, progress)?;
    for note in &done.notes {
        eprintln!("{note}");
    }
    println!("exported {} (base {})", done.out.display(), done.base);
    Ok(())
}

/// Always on the CPU in f32, so that the numbers do not depend on the machine.
pub fn run_logits(a: LogitsArgs, progress: &mut dyn FnMut(&str)) -> Result<()> {
    let source = ModelSource::parse(a.model.as_deref())?;
    if let Some(dir) = &a.adapter {
        check_adapter_base(dir, &source)?;
    }
    let mut loaded = LoadedModel::load(&source, &candle_core::Device::Cpu, progress)?;
    if let Some(dir) = &a.adapter {
        load_adapter(&mut loaded.model, dir)?;
    }
    let probes = a
        .prompt
        .iter()
        .map(|p| probe::probe(&loaded, p, a.raw, a.greedy))
        .collect::<Result<Vec<_>>>()?;
    println!("{}", serde_json::to_string(&probes)?);
    Ok(())
}

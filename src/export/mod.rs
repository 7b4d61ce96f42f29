//! Adapters out into the ecosystem: the adapter as a PEFT folder, or the merged model
//! (W + s·B A, base dequantized) as a Hugging Face folder or a GGUF file. Every check on the
//! inputs runs before anything is written; outputs appear whole or not at all; the base model
//! file is only read.

pub mod gguf_writer;
pub mod hf;
pub mod merge;
pub mod probe;

use crate::fsutil::{set_default_permissions, write_dir_atomically};
use crate::model::fetch::DEFAULT_MODEL_FILE;
use crate::model::linear::ggml_type_name;
use crate::model::peft::{
    self, base_name, check_adapter_base, recorded_base, CONFIG_FILE, WEIGHTS_FILE,
};
use crate::model::{LoadedModel, ModelSource};
use anyhow::{bail, Context, Result};
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// The adapter folder as PEFT loads it (adapter_config.json + adapter_model.safetensors).
    Peft,
    /// The merged model as a Hugging Face folder (safetensors, config, tokenizer).
    Hf,
    /// The merged model as one GGUF file for llama.cpp.
    Gguf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FloatType {
    Bf16,
    F16,
    F32,
}

impl FloatType {
    pub fn dtype(self) -> DType {
        match self {
            Self::Bf16 => DType::BF16,
            Self::F16 => DType::F16,
            Self::F32 => DType::F32,
        }
    }

    fn ggml(self) -> GgmlDType {
        match self {
            Self::Bf16 => GgmlDType::BF16,
            Self::F16 => GgmlDType::F16,
            Self::F32 => GgmlDType::F32,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QuantType {
    #[value(name = "q8_0")]
    Q8_0,
    #[value(name = "q4_k")]
    Q4K,
    #[value(name = "q4_1")]
    Q4_1,
}

impl QuantType {
    fn ggml(self) -> GgmlDType {
        match self {
            Self::Q8_0 => GgmlDType::Q8_0,
            Self::Q4K => GgmlDType::Q4K,
            Self::Q4_1 => GgmlDType::Q4_1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// A PEFT adapter folder; None exports the base model alone (hf, gguf).
    pub adapter: Option<PathBuf>,
    /// The base (`--model`); None: the base the adapter names, else the default model.
    pub model: Option<String>,
    pub format: ExportFormat,
    pub out: PathBuf,
    /// Float type of the weights (hf: default bf16; gguf: default f16, unless `quant`).
    pub dtype: Option<FloatType>,
    /// GGUF only: quantize the matrices.
    pub quant: Option<QuantType>,
}

/// What an export wrote, for the closing message.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub out: PathBuf,
    pub base: String,
    /// Share of the adapter's weight change that survived rounding (hf, gguf with an adapter).
    pub adapter_kept: Option<f64>,
    pub notes: Vec<String>,
}

pub fn export(req: &ExportRequest, progress: &mut dyn FnMut(&str)) -> Result<ExportSummary> {
    check_flags(req)?;
    let recorded = match &req.adapter {
        Some(dir) => recorded_base(dir)?,
        None => None,
    };
    let source = match (&req.model, &recorded) {
        (Some(m), _) => ModelSource::parse(Some(m))?,
        (None, Some(name)) if name == DEFAULT_MODEL_FILE => ModelSource::Default,
        (None, Some(name)) => ModelSource::parse(Some(name))
            .context("the adapter's base_model_name_or_path; pass --model to name the base")?,
        (None, None) => ModelSource::Default,
    };
    let base = base_name(&source);
    if let Some(dir) = &req.adapter {
        check_adapter_base(dir, &source)?;
    }
    let mut loaded = LoadedModel::load(&source, &Device::Cpu, progress)?;
    if let Some(dir) = &req.adapter {
        peft::load_adapter(&mut loaded.model, dir)
            .with_context(|| format!("{}: does not fit the base {base}", dir.display()))?;
        progress(&format!(
            "adapter {} fits {base} ({} adapted projections)",
            dir.display(),
            loaded.model.lora_layers().len()
        ));
    }
    let (mut notes, mut kept) = (vec![], None);
    match req.format {
        ExportFormat::Peft => {
            let dir = req
                .adapter
                .as_deref()
                .context("peft export needs --adapter")?;
            write_peft(dir, &req.out, recorded.as_deref().unwrap_or(&base))?;
        }
        ExportFormat::Hf => {
            let dtype = req.dtype.unwrap_or(FloatType::Bf16).dtype();
            let k = hf::write_hf_folder(&loaded, &req.out, dtype, hf::MAX_SHARD_BYTES, progress)?;
            notes.extend(k.note(hf::torch_dtype_name(dtype)));
            kept = k.fraction();
        }
        ExportFormat::Gguf => {
            let target = match (req.quant, req.dtype) {
                (Some(q), _) => q.ggml(),
                (None, f) => f.unwrap_or(FloatType::F16).ggml(),
            };
            let name = output_stem(&req.out);
            let (types, k) = gguf_writer::write_gguf(&loaded, &req.out, target, &name, progress)?;
            notes = types;
            notes.extend(k.note(ggml_type_name(target)));
            kept = k.fraction();
        }
    }
    Ok(ExportSummary {
        out: req.out.clone(),
        base,
        adapter_kept: kept,
        notes,
    })
}

fn check_flags(req: &ExportRequest) -> Result<()> {
    if req.out.exists() {
        bail!("{}: already exists; choose a new path", req.out.display());
    }
    match req.format {
        ExportFormat::Peft if req.adapter.is_none() => bail!("--to peft needs --adapter DIR"),
        ExportFormat::Peft if req.dtype.is_some() || req.quant.is_some() => {
            bail!("--dtype and --quant apply to hf and gguf exports, not peft")
        }
        ExportFormat::Hf if req.quant.is_some() => {
            bail!("--quant applies to gguf exports; hf folders hold --dtype floats")
        }
        ExportFormat::Gguf if req.quant.is_some() && req.dtype.is_some() => {
            bail!("give --dtype or --quant for a gguf export, not both")
        }
        ExportFormat::Gguf if req.out.extension().is_none_or(|e| e != "gguf") => bail!(
            "{}: a gguf export is one file; name it NAME.gguf",
            req.out.display()
        ),
        _ => {}
    }
    if let Some(dir) = &req.adapter {
        for file in [CONFIG_FILE, WEIGHTS_FILE] {
            if !dir.join(file).is_file() {
                bail!(
                    "{}: not a PEFT adapter folder ({file} is missing)",
                    dir.display()
                );
            }
        }
    }
    Ok(())
}

fn output_stem(out: &Path) -> String {
    out.file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "model".into())
}

/// Copies the adapter's two PEFT files, recording the base in adapter_config.json.
fn write_peft(adapter: &Path, out: &Path, base: &str) -> Result<()> {
    let path = adapter.join(CONFIG_FILE);
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    config["base_model_name_or_path"] = serde_json::Value::String(base.to_string());
    write_dir_atomically(out, |tmp| {
        std::fs::write(
            tmp.join(CONFIG_FILE),
            serde_json::to_string_pretty(&config)?,
        )?;
        std::fs::copy(adapter.join(WEIGHTS_FILE), tmp.join(WEIGHTS_FILE))
            .with_context(|| format!("{}: cannot copy", adapter.join(WEIGHTS_FILE).display()))?;
        set_default_permissions(&tmp.join(WEIGHTS_FILE))
    })
}

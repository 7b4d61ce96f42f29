//! LoRA adapters in PEFT's folder format: `adapter_config.json` and
//! `adapter_model.safetensors` with keys like
//! `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight` (A: r × in, B: out × r).

use super::fetch::DEFAULT_MODEL_FILE;
use super::lora::{targets_module, LoraConfig, LoraLayer};
use super::source::ModelSource;
use super::transformer::Transformer;
use crate::fsutil::write_dir_atomically;
use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// The fields of PEFT's adapter_config.json this engine writes and reads; PEFT's many
/// other fields are ignored on reading.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AdapterConfigFile {
    peft_type: String,
    #[serde(default)]
    task_type: Option<String>,
    r: usize,
    lora_alpha: f64,
    #[serde(default)]
    lora_dropout: f64,
    target_modules: serde_json::Value,
    #[serde(default)]
    use_rslora: bool,
    #[serde(default)]
    use_dora: bool,
    #[serde(default = "no_bias")]
    bias: String,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default)]
    base_model_name_or_path: Option<String>,
    #[serde(default)]
    inference_mode: bool,
}

fn no_bias() -> String {
    "none".into()
}

fn key(module: &str, matrix: &str) -> String {
    format!("base_model.model.{module}.lora_{matrix}.weight")
}

/// Writes the model's adapters as a PEFT folder, atomically.
pub fn save_adapter(
    model: &Transformer,
    config: &LoraConfig,
    base_model: Option<&str>,
    dir: &Path,
) -> Result<()> {
    write_dir_atomically(dir, |tmp| {
        write_adapter_files(model, config, base_model, tmp)
    })
    .with_context(|| format!("{}: saving the adapter", dir.display()))
}

/// Writes adapter_config.json and adapter_model.safetensors into an existing folder (one that
/// is being written atomically, such as a checkpoint's).
pub fn write_adapter_files(
    model: &Transformer,
    config: &LoraConfig,
    base_model: Option<&str>,
    dir: &Path,
) -> Result<()> {
    let layers = model.lora_layers();
    if layers.is_empty() {
        bail!("the model has no LoRA adapters to save");
    }
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let mut targets: Vec<String> = Vec::new();
    for (module, lora) in &layers {
        tensors.insert(key(module, "A"), lora.a.as_tensor().clone());
        tensors.insert(key(module, "B"), lora.b.as_tensor().clone());
        let short = module.rsplit('.').next().unwrap_or_default().to_string();
        if !targets.contains(&short) {
            targets.push(short);
        }
    }
    let file = AdapterConfigFile {
        peft_type: "LORA".into(),
        task_type: Some("CAUSAL_LM".into()),
        r: config.r,
        lora_alpha: config.lora_alpha,
        lora_dropout: config.lora_dropout,
        target_modules: serde_json::json!(targets),
        use_rslora: config.use_rslora,
        use_dora: false,
        bias: "none".into(),
        fan_in_fan_out: false,
        base_model_name_or_path: base_model.map(str::to_string),
        inference_mode: true,
    };
    std::fs::write(dir.join(CONFIG_FILE), serde_json::to_string_pretty(&file)?)?;
    candle_core::safetensors::save(&tensors, dir.join(WEIGHTS_FILE))?;
    crate::fsutil::set_default_permissions(&dir.join(WEIGHTS_FILE))?;
    Ok(())
}

/// Reads a PEFT LoRA folder onto the model (replacing any adapters) and returns its config.
pub fn load_adapter(model: &mut Transformer, dir: &Path) -> Result<LoraConfig> {
    let config_path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("{}: cannot read", config_path.display()))?;
    let file: AdapterConfigFile = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a PEFT adapter config", config_path.display()))?;
    let unsupported = |field: &str, value: &dyn std::fmt::Display| {
        anyhow::anyhow!(
            "{}: field {field} = {value} is not supported",
            config_path.display()
        )
    };
    if file.peft_type != "LORA" {
        return Err(unsupported("peft_type", &file.peft_type));
    }
    if file.use_dora {
        return Err(unsupported("use_dora", &true));
    }
    if file.bias != "none" {
        return Err(unsupported("bias", &file.bias));
    }
    if file.fan_in_fan_out {
        return Err(unsupported("fan_in_fan_out", &true));
    }
    let target_modules: Vec<String> = serde_json::from_value(file.target_modules.clone())
        .map_err(|_| unsupported("target_modules", &file.target_modules))?;
    let config = LoraConfig {
        r: file.r,
        lora_alpha: file.lora_alpha,
        lora_dropout: file.lora_dropout,
        target_modules,
        use_rslora: file.use_rslora,
    };
    let targets = config
        .targets()
        .with_context(|| format!("{}", config_path.display()))?;
    let weights_path = dir.join(WEIGHTS_FILE);
    let mut tensors = candle_core::safetensors::load(&weights_path, model.device())
        .map_err(|e| anyhow::anyhow!("{}: corrupt or missing: {e}", weights_path.display()))?;
    let switch = model.adapters().clone();
    for (id, (module, linear)) in model.named_linears_mut().enumerate() {
        if !targets.iter().any(|t| targets_module(t, &module)) {
            linear.set_lora(None);
            continue;
        }
        let mut take = |m: &str, shape: (usize, usize)| -> Result<Tensor> {
            let k = key(&module, m);
            let t = tensors
                .remove(&k)
                .with_context(|| format!("{}: tensor {k} is missing", weights_path.display()))?;
            if t.dims2()? != shape {
                bail!(
                    "{}: tensor {k} has shape {:?}, expected {shape:?}",
                    weights_path.display(),
                    t.dims()
                );
            }
            if !all_finite(&t)? {
                bail!(
                    "{}: tensor {k} holds NaN or infinite values (the run that wrote it \
                     diverged; use an earlier checkpoint)",
                    weights_path.display()
                );
            }
            Ok(t)
        };
        let a = take("A", (config.r, linear.in_features()))?;
        let b = take("B", (linear.out_features(), config.r))?;
        linear.set_lora(Some(LoraLayer::from_tensors(
            a, b, &config, &switch, id as u64,
        )?));
    }
    if let Some(extra) = tensors.keys().min() {
        bail!(
            "{}: tensor {extra} matches no module of this model",
            weights_path.display()
        );
    }
    Ok(config)
}

fn all_finite(t: &Tensor) -> Result<bool> {
    let values = t
        .flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()?;
    Ok(values.iter().all(|v| v.is_finite()))
}

/// The adapter's `base_model_name_or_path`, if it records one.
pub fn recorded_base(dir: &Path) -> Result<Option<String>> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let config: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    Ok(config["base_model_name_or_path"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string))
}

/// Refuses an adapter whose recorded base is another model than `base`: its weights would
/// load (the shapes may even fit) and answer nonsense.
pub fn check_adapter_base(dir: &Path, base: &ModelSource) -> Result<()> {
    let Some(recorded) = recorded_base(dir)? else {
        return Ok(());
    };
    let given = base_name(base);
    if identity(&recorded) != identity(&given) {
        bail!(
            "{}: base_model_name_or_path is {recorded:?} but the base given is {given:?}; an \
             adapter only fits the base it was trained on (name that one as the model)",
            dir.join(CONFIG_FILE).display()
        );
    }
    Ok(())
}

/// The base's name as training records it in base_model_name_or_path.
pub fn base_name(source: &ModelSource) -> String {
    match source {
        ModelSource::Default => DEFAULT_MODEL_FILE.to_string(),
        ModelSource::Gguf(p) | ModelSource::HfFolder(p) => p.display().to_string(),
        ModelSource::HubRepo(id) => id.clone(),
    }
}

/// What two names of a base must share: the file, folder or repo name, without folders and
/// case (the same GGUF may sit in another folder; a different file name is a different base).
fn identity(name: &str) -> String {
    let trimmed = name.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_identity_ignores_folders_and_case_only() {
        assert_eq!(
            identity("/cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"),
            identity("SmolLM2-135M-Instruct.Q4_1.gguf")
        );
        assert_eq!(identity("runs/base/"), identity("/elsewhere/base"));
        assert_ne!(
            identity("meta-llama/Llama-3.2-1B"),
            identity("meta-llama/Llama-3.2-1B-Instruct")
        );
    }
}

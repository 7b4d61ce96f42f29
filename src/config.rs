//! A training run's configuration, in TOML or JSON, with the key names TRL and PEFT use.
//! Paths are relative to the config file's folder. An unknown key is an error that names the
//! nearest valid one.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// A GGUF file, a Hugging Face folder or a Hub repo id; empty for the default model.
    pub model_name: String,
    pub train_file: PathBuf,
    pub eval_file: Option<PathBuf>,
    pub system_prompt: Option<String>,
    pub output_dir: PathBuf,
    pub learning_rate: f64,
    pub num_train_epochs: f64,
    /// Overrides num_train_epochs when set.
    pub max_steps: Option<usize>,
    pub per_device_train_batch_size: usize,
    pub gradient_accumulation_steps: usize,
    pub warmup_ratio: f64,
    /// Overrides warmup_ratio when set.
    pub warmup_steps: Option<usize>,
    pub lr_scheduler_type: crate::train::schedule::ScheduleKind,
    pub weight_decay: f64,
    pub adam_beta1: f64,
    pub adam_beta2: f64,
    pub adam_epsilon: f64,
    pub max_grad_norm: f64,
    pub max_seq_length: usize,
    pub group_by_length: bool,
    pub lora_r: usize,
    pub lora_alpha: f64,
    pub lora_dropout: f64,
    pub lora_target_modules: Vec<String>,
    pub use_rslora: bool,
    pub seed: u64,
    pub logging_steps: usize,
    pub save_steps: usize,
    pub eval_steps: Option<usize>,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            model_name: String::new(),
            train_file: PathBuf::new(),
            eval_file: None,
            system_prompt: None,
            output_dir: PathBuf::from("runs/run"),
            learning_rate: 2e-4,
            num_train_epochs: 3.0,
            max_steps: None,
            per_device_train_batch_size: 8,
            gradient_accumulation_steps: 1,
            warmup_ratio: 0.0,
            warmup_steps: None,
            lr_scheduler_type: crate::train::schedule::ScheduleKind::Linear,
            weight_decay: 0.0,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            max_grad_norm: 1.0,
            max_seq_length: 1024,
            group_by_length: false,
            lora_r: 16,
            lora_alpha: 32.0,
            lora_dropout: 0.05,
            lora_target_modules: vec!["all-linear".into()],
            use_rslora: false,
            seed: 42,
            logging_steps: 10,
            save_steps: 500,
            eval_steps: None,
        }
    }
}

/// Every key a config may hold, for the "did you mean" hint.
fn known_keys() -> Vec<String> {
    match serde_json::to_value(RunConfig::default()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => vec![],
    }
}

impl RunConfig {
    /// Reads a .toml or .json config; relative paths are resolved against its folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let value: serde_json::Value = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text)
                .with_context(|| format!("{}: not valid JSON", path.display()))?
        } else {
            let table: toml::Value = toml::from_str(&text)
                .with_context(|| format!("{}: not valid TOML", path.display()))?;
            serde_json::to_value(table)?
        };
        let serde_json::Value::Object(map) = &value else {
            bail!("{}: the config must be a table of keys", path.display());
        };
        let known = known_keys();
        for key in map.keys() {
            if !known.contains(key) {
                let nearest = known
                    .iter()
                    .min_by_key(|k| edit_distance(k, key))
                    .cloned()
                    .unwrap_or_default();
                bail!(
                    "{}: unknown key '{key}' (did you mean '{nearest}'?)",
                    path.display()
                );
            }
        }
        let mut config: Self = serde_json::from_value(value)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let join = |p: &Path| {
            if p.is_relative() {
                base.join(p)
            } else {
                p.to_path_buf()
            }
        };
        self.train_file = join(&self.train_file);
        self.eval_file = self.eval_file.as_deref().map(join);
        self.output_dir = join(&self.output_dir);
        let model = Path::new(&self.model_name);
        if !self.model_name.is_empty() && model.is_relative() && base.join(model).exists() {
            self.model_name = base.join(model).display().to_string();
        }
    }

    pub fn validate(&self) -> Result<()> {
        let positive = [
            (
                "per_device_train_batch_size",
                self.per_device_train_batch_size,
            ),
            (
                "gradient_accumulation_steps",
                self.gradient_accumulation_steps,
            ),
            ("max_seq_length", self.max_seq_length),
            ("lora_r", self.lora_r),
            ("logging_steps", self.logging_steps),
            ("save_steps", self.save_steps),
        ];
        for (name, v) in positive {
            if v == 0 {
                bail!("{name} must be at least 1");
            }
        }
        if self.train_file.as_os_str().is_empty() {
            bail!("train_file is required");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            bail!("learning_rate must be positive, got {}", self.learning_rate);
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            bail!("warmup_ratio must be in [0, 1), got {}", self.warmup_ratio);
        }
        if self.max_steps.is_none() && self.num_train_epochs <= 0.0 {
            bail!("num_train_epochs must be positive (or set max_steps)");
        }
        self.lora().targets()?;
        Ok(())
    }

    pub fn lora(&self) -> crate::model::lora::LoraConfig {
        crate::model::lora::LoraConfig {
            r: self.lora_r,
            lora_alpha: self.lora_alpha,
            lora_dropout: self.lora_dropout,
            target_modules: self.lora_target_modules.clone(),
            use_rslora: self.use_rslora,
        }
    }
}

/// Levenshtein distance, for suggesting the key a typo meant.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tunelab-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn unknown_key_names_the_nearest() {
        let path = write(
            "typo.toml",
            "train_file = \"a.jsonl\"\nlearning_rte = 1e-4\n",
        );
        let err = RunConfig::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("unknown key 'learning_rte' (did you mean 'learning_rate'?)"),
            "{err}"
        );
    }

    #[test]
    fn reads_toml_and_resolves_paths() {
        let path = write(
            "ok.toml",
            "train_file = \"data/sft.jsonl\"\nlr_scheduler_type = \"cosine\"\nlora_target_modules = [\"q_proj\", \"v_proj\"]\n",
        );
        let c = RunConfig::load(&path).unwrap();
        assert_eq!(c.train_file, path.parent().unwrap().join("data/sft.jsonl"));
        assert_eq!(
            c.lr_scheduler_type,
            crate::train::schedule::ScheduleKind::Cosine
        );
        assert_eq!(c.lora().targets().unwrap(), vec!["q_proj", "v_proj"]);
        let bad = write(
            "bad.toml",
            "train_file = \"a\"\nlora_target_modules = [\"qproj\"]\n",
        );
        let err = RunConfig::load(&bad).unwrap_err().to_string();
        assert!(err.contains("'qproj' is not a module"), "{err}");
    }
}

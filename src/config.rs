//! A training run's configuration, in TOML or JSON, with the key names TRL and PEFT use.
//! Paths are relative to the config file's folder. An unknown key is an error that names the
//! nearest valid one.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A training stage: supervised fine-tuning, preference optimisation, or online RL on
/// verifiable rewards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    #[default]
    Sft,
    Dpo,
    Grpo,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Sft, Stage::Dpo, Stage::Grpo];

    pub fn name(self) -> &'static str {
        match self {
            Self::Sft => "sft",
            Self::Dpo => "dpo",
            Self::Grpo => "grpo",
        }
    }
}

/// `loss_type`: DPO's losses and GRPO's, by TRL's names; each stage takes its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LossType {
    #[default]
    Sigmoid,
    Ipo,
    Hinge,
    /// GRPO: each completion's mean token loss, averaged over completions.
    Grpo,
    /// GRPO: the token losses summed over the batch, divided by completions ×
    /// max_completion_length (Dr. GRPO).
    DrGrpo,
    /// GRPO: the token losses summed, divided by the tokens of the whole accumulated batch.
    Dapo,
    /// GRPO: the token losses summed, divided by the micro-batch's tokens.
    Bnpo,
}

impl LossType {
    /// The stage whose loss this is.
    pub fn stage(self) -> Stage {
        match self {
            Self::Sigmoid | Self::Ipo | Self::Hinge => Stage::Dpo,
            Self::Grpo | Self::DrGrpo | Self::Dapo | Self::Bnpo => Stage::Grpo,
        }
    }
}

/// GRPO `scale_rewards`: what a group's advantages are divided by (TRL's values; `true` and
/// `false` mean "group" and "none", as TRL reads them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", try_from = "serde_json::Value")]
pub enum ScaleRewards {
    /// The standard deviation of the rewards within the prompt's group.
    #[default]
    Group,
    /// The standard deviation of every reward of the batch.
    Batch,
    /// Nothing (Dr. GRPO).
    None,
}

impl TryFrom<serde_json::Value> for ScaleRewards {
    type Error = String;

    fn try_from(value: serde_json::Value) -> std::result::Result<Self, String> {
        match &value {
            serde_json::Value::Bool(true) => Ok(Self::Group),
            serde_json::Value::Bool(false) => Ok(Self::None),
            serde_json::Value::String(s) if s == "group" => Ok(Self::Group),
            serde_json::Value::String(s) if s == "batch" => Ok(Self::Batch),
            serde_json::Value::String(s) if s == "none" => Ok(Self::None),
            other => Err(format!("{other}: use \"group\", \"batch\" or \"none\"")),
        }
    }
}

/// A built-in GRPO reward, scored from a prompt's checks (`reward_funcs`). Each is missing
/// (not 0) for a prompt without its check, and a prompt's reward sums the ones it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardFunc {
    /// 1 when the completion is one JSON value, else 0 (prompts with expect_json or schema).
    JsonValid,
    /// 1 when the completion's JSON satisfies the prompt's schema.
    SchemaValid,
    /// The share of expect_json's leaf fields the completion has with the same value.
    ExpectJsonFields,
    /// 1 when the completion's JSON equals expect_json.
    ExpectJsonExact,
    /// 1 when must_contain, any_of and must_not_contain all hold.
    TextPass,
    /// −(completion tokens / max_completion_length): shorter is better, for every prompt.
    LengthPenalty,
}

impl RewardFunc {
    pub fn name(self) -> &'static str {
        match self {
            Self::JsonValid => "json_valid",
            Self::SchemaValid => "schema_valid",
            Self::ExpectJsonFields => "expect_json_fields",
            Self::ExpectJsonExact => "expect_json_exact",
            Self::TextPass => "text_pass",
            Self::LengthPenalty => "length_penalty",
        }
    }
}

/// Which layers a training step checkpoints, recomputing their activations in the backward
/// instead of holding them from the forward: `true` every layer (the least memory, the
/// default), `false` none (the fastest), or a number of layers counted from the first (the
/// rest keep theirs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, try_from = "serde_json::Value")]
pub enum GradientCheckpointing {
    Flag(bool),
    Layers(usize),
}

impl Default for GradientCheckpointing {
    fn default() -> Self {
        Self::Flag(true)
    }
}

impl GradientCheckpointing {
    /// How many of a model's `total` layers are checkpointed.
    pub fn layers(self, total: usize) -> usize {
        match self {
            Self::Flag(true) => total,
            Self::Flag(false) => 0,
            Self::Layers(n) => n.min(total),
        }
    }
}

impl TryFrom<serde_json::Value> for GradientCheckpointing {
    type Error = String;

    fn try_from(value: serde_json::Value) -> std::result::Result<Self, String> {
        match &value {
            serde_json::Value::Bool(b) => Ok(Self::Flag(*b)),
            serde_json::Value::Number(n) if n.as_u64().is_some() => {
                Ok(Self::Layers(n.as_u64().unwrap_or_default() as usize))
            }
            serde_json::Value::String(s) => s.parse(),
            other => Err(format!(
                "{other}: use true (every layer), false (none) or a number of layers"
            )),
        }
    }
}

impl std::str::FromStr for GradientCheckpointing {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "true" => Ok(Self::Flag(true)),
            "false" => Ok(Self::Flag(false)),
            n => n.parse().map(Self::Layers).map_err(|_| {
                format!("'{s}': use true (every layer), false (none) or a number of layers")
            }),
        }
    }
}

/// Keys whose values are paths, resolved against the config file's folder.
const PATH_KEYS: [&str; 6] = [
    "train_file",
    "eval_file",
    "preference_file",
    "prompt_file",
    "output_dir",
    "init_adapter",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// The stage this config trains.
    pub stage: Stage,
    /// A pipeline: these stages in order, each in output_dir/<stage>, DPO starting from the SFT
    /// stage's adapter. Empty means just `stage`.
    pub stages: Vec<Stage>,
    /// Keys that apply to one stage of a pipeline only (a `[sft]` or `[dpo]` table).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub sft: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub dpo: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub grpo: serde_json::Map<String, serde_json::Value>,
    /// A GGUF file, a Hugging Face folder or a Hub repo id; empty for the default model.
    pub model_name: String,
    /// SFT data (and DPO's, when preference_file is not set).
    pub train_file: PathBuf,
    /// DPO's preference pairs.
    pub preference_file: Option<PathBuf>,
    /// GRPO's prompts with their checks, in the eval-case format.
    pub prompt_file: Option<PathBuf>,
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
    pub gradient_checkpointing: GradientCheckpointing,
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
    /// Live eval during training: how many eval cases are answered at each eval.
    pub eval_max_cases: usize,
    /// Eval generation: the most tokens of a reply.
    pub eval_max_new_tokens: usize,
    /// Eval generation: how many cases are answered together, as one batch.
    pub eval_batch_size: usize,
    /// Eval: whether a reply that is one fenced ```json block counts as JSON.
    pub eval_allow_fenced_json: bool,
    /// The strength of the pull towards the reference: DPO's (default 0.1) or GRPO's KL
    /// coefficient (default 0: no reference pass).
    pub beta: Option<f64>,
    /// DPO: sigmoid (default), ipo, hinge; GRPO: dapo (default), grpo, dr_grpo, bnpo.
    pub loss_type: Option<LossType>,
    /// DPO sigmoid loss: the assumed share of flipped labels (conservative DPO), in [0, 0.5).
    pub label_smoothing: f64,
    /// DPO: weight of the chosen replies' NLL added to the loss (RPO).
    pub rpo_alpha: Option<f64>,
    /// A PEFT adapter folder to start from; for DPO also the reference model (base + adapter).
    pub init_adapter: Option<PathBuf>,
    /// DPO and GRPO: the prompt keeps its last this many tokens.
    pub max_prompt_length: Option<usize>,
    /// GRPO: completions sampled per prompt (G), at least 2.
    pub num_generations: usize,
    /// GRPO: the most tokens of a completion.
    pub max_completion_length: usize,
    /// GRPO sampling; the log-probs are taken at the same temperature, as TRL does.
    pub temperature: f64,
    pub top_p: f64,
    /// 0 keeps every token.
    pub top_k: usize,
    /// GRPO: the ratio clip, 1 − epsilon below and 1 + epsilon_high (default epsilon) above.
    pub epsilon: f64,
    pub epsilon_high: Option<f64>,
    pub scale_rewards: ScaleRewards,
    /// GRPO: optimiser steps taken on each batch of completions (μ).
    pub num_iterations: usize,
    /// GRPO: truncated completions carry no loss.
    pub mask_truncated_completions: bool,
    /// GRPO: the built-in rewards, scored from each prompt's checks.
    pub reward_funcs: Vec<RewardFunc>,
    /// GRPO: a command that scores completions (JSON lines in, one number per line out),
    /// counted after reward_funcs under the name "command".
    pub reward_command: Option<String>,
    /// GRPO: seconds the reward command may take for one batch.
    pub reward_timeout_s: f64,
    /// GRPO: one weight per reward (reward_funcs, then the command); default all 1.
    pub reward_weights: Option<Vec<f64>>,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            stage: Stage::Sft,
            stages: Vec::new(),
            sft: serde_json::Map::new(),
            dpo: serde_json::Map::new(),
            grpo: serde_json::Map::new(),
            model_name: String::new(),
            train_file: PathBuf::new(),
            preference_file: None,
            prompt_file: None,
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
            gradient_checkpointing: GradientCheckpointing::default(),
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
            eval_max_cases: 8,
            eval_max_new_tokens: 256,
            eval_batch_size: 8,
            eval_allow_fenced_json: false,
            beta: None,
            loss_type: None,
            label_smoothing: 0.0,
            rpo_alpha: None,
            init_adapter: None,
            max_prompt_length: None,
            num_generations: 8,
            max_completion_length: 512,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            epsilon: 0.2,
            epsilon_high: None,
            scale_rewards: ScaleRewards::Group,
            num_iterations: 1,
            mask_truncated_completions: false,
            reward_funcs: vec![
                RewardFunc::JsonValid,
                RewardFunc::SchemaValid,
                RewardFunc::ExpectJsonFields,
                RewardFunc::TextPass,
            ],
            reward_command: None,
            reward_timeout_s: 60.0,
            reward_weights: None,
        }
    }
}

/// Every key a config may hold, for the "did you mean" hint.
/// The `[sweep]` table of a config file, if it has one.
pub fn sweep_table(path: &Path) -> Result<Option<serde_json::Value>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let value = parse_text(&text, path.extension().is_some_and(|e| e == "json"))
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(value.get("sweep").cloned())
}

/// Every key a config takes at its top level (stage tables take the same but the stage ones).
pub fn known_keys() -> Vec<String> {
    let mut keys = match serde_json::to_value(RunConfig::default()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => vec![],
    };
    keys.extend(Stage::ALL.map(|s| s.name().to_string()));
    keys
}

/// An unknown key is an error naming the nearest known one.
fn check_keys(
    map: &serde_json::Map<String, serde_json::Value>,
    known: &[String],
    path: &Path,
    table: &str,
) -> Result<()> {
    for key in map.keys() {
        if !known.contains(key) {
            let nearest = known
                .iter()
                .min_by_key(|k| edit_distance(k, key))
                .cloned()
                .unwrap_or_default();
            bail!(
                "{}: unknown key '{table}{key}' (did you mean '{nearest}'?)",
                path.display()
            );
        }
    }
    Ok(())
}

impl RunConfig {
    /// Reads a .toml or .json config; relative paths are resolved against its folder.
    pub fn load(path: &Path) -> Result<Self> {
        if path.is_dir() {
            bail!(
                "{}: is a folder; give the config file in it",
                path.display()
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let value = parse_text(&text, path.extension().is_some_and(|e| e == "json"))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let serde_json::Value::Object(mut map) = value else {
            bail!("{}: the config must be a table of keys", path.display());
        };
        if map.is_empty() {
            bail!(
                "{}: the config is empty (it needs at least train_file)",
                path.display()
            );
        }
        // The [sweep] table is `tunelab sweep`'s (sweep_table); a run ignores it.
        map.remove("sweep");
        let known = known_keys();
        check_keys(&map, &known, path, "")?;
        // Absolute, so that paths stored in a checkpoint mean the same from any folder.
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
        let base = std::path::absolute(folder.unwrap_or(Path::new(".")))
            .with_context(|| format!("{}: cannot resolve its folder", path.display()))?;
        let base = base.as_path();
        let stage_keys: Vec<String> = known
            .iter()
            .filter(|k| !matches!(k.as_str(), "stage" | "stages" | "sft" | "dpo" | "grpo"))
            .cloned()
            .collect();
        for stage in Stage::ALL.map(Stage::name) {
            match map.get_mut(stage) {
                None => {}
                Some(serde_json::Value::Object(table)) => {
                    check_keys(table, &stage_keys, path, &format!("{stage}."))?;
                    resolve_path_values(table, base);
                }
                Some(_) => bail!("{}: '{stage}' must be a table of keys", path.display()),
            }
        }
        let mut config: Self =
            from_table(map).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config.resolve_paths(base);
        // Each stage table checked now, not when its stage starts.
        config
            .validate()
            .and_then(|()| config.stage_configs().map(drop))
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let join = |p: &Path| {
            // An empty path stays empty, for validate to name the missing key.
            if p.is_relative() && !p.as_os_str().is_empty() {
                base.join(p)
            } else {
                p.to_path_buf()
            }
        };
        self.train_file = join(&self.train_file);
        self.eval_file = self.eval_file.as_deref().map(join);
        self.preference_file = self.preference_file.as_deref().map(join);
        self.prompt_file = self.prompt_file.as_deref().map(join);
        self.init_adapter = self.init_adapter.as_deref().map(join);
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
            ("eval_max_new_tokens", self.eval_max_new_tokens),
            ("eval_batch_size", self.eval_batch_size),
        ];
        for (name, v) in positive {
            if v == 0 {
                bail!("{name} must be at least 1");
            }
        }
        if self.data_file().as_os_str().is_empty() {
            bail!(
                "{} is required",
                if self.stage == Stage::Grpo {
                    "prompt_file (or train_file)"
                } else {
                    "train_file"
                }
            );
        }
        if self.max_steps == Some(0) {
            bail!(
                "max_steps must be at least 1 (a run of 0 steps would write an untrained adapter)"
            );
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
        let wrong_loss = self.loss_type.filter(|l| l.stage() != self.stage);
        if let Some(loss) = wrong_loss.filter(|_| self.stage != Stage::Sft) {
            let takes = match self.stage {
                Stage::Grpo => "dapo, grpo, dr_grpo or bnpo",
                _ => "sigmoid, ipo or hinge",
            };
            bail!(
                "loss_type \"{}\" is a {} loss; the {} stage takes {takes}",
                serde_json::to_value(loss)?.as_str().unwrap_or_default(),
                loss.stage().name().to_uppercase(),
                self.stage.name().to_uppercase()
            );
        }
        let beta = self.beta();
        let beta_ok = match self.stage {
            Stage::Grpo => beta >= 0.0,
            _ => beta > 0.0,
        };
        if !(beta_ok && beta.is_finite()) {
            bail!(
                "beta must be {}, got {beta}",
                if self.stage == Stage::Grpo {
                    "zero or positive"
                } else {
                    "positive"
                }
            );
        }
        if !(0.0..0.5).contains(&self.label_smoothing) {
            bail!(
                "label_smoothing must be in [0, 0.5), got {}",
                self.label_smoothing
            );
        }
        if self.label_smoothing > 0.0 && self.loss() != LossType::Sigmoid {
            bail!("label_smoothing applies to loss_type = \"sigmoid\" only");
        }
        if self.rpo_alpha.is_some_and(|a| !(a >= 0.0 && a.is_finite())) {
            bail!("rpo_alpha must be zero or positive");
        }
        if self.max_prompt_length == Some(0) {
            bail!("max_prompt_length must be at least 1");
        }
        if self.stage == Stage::Grpo {
            self.validate_grpo()?;
        }
        self.lora().targets()?;
        Ok(())
    }

    /// The GRPO keys, checked before any stage of a pipeline starts.
    fn validate_grpo(&self) -> Result<()> {
        let g = self.num_generations;
        if g < 2 {
            bail!(
                "num_generations must be at least 2: a group of one completion has no \
                 advantage to learn from, got {g}"
            );
        }
        let completions = self.per_device_train_batch_size * self.gradient_accumulation_steps;
        if !completions.is_multiple_of(g) {
            bail!(
                "per_device_train_batch_size × gradient_accumulation_steps ({completions} \
                 completions a step) must be a multiple of num_generations ({g})"
            );
        }
        for (name, v) in [
            ("max_completion_length", self.max_completion_length),
            ("num_iterations", self.num_iterations),
        ] {
            if v == 0 {
                bail!("{name} must be at least 1");
            }
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            bail!(
                "temperature must be positive for GRPO's sampling, got {}",
                self.temperature
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            bail!("top_p must be in (0, 1], got {}", self.top_p);
        }
        for (name, e) in [
            ("epsilon", Some(self.epsilon)),
            ("epsilon_high", self.epsilon_high),
        ] {
            if e.is_some_and(|e| !(e > 0.0 && e.is_finite())) {
                bail!("{name} must be positive");
            }
        }
        if !(self.reward_timeout_s > 0.0 && self.reward_timeout_s.is_finite()) {
            bail!("reward_timeout_s must be positive");
        }
        let rewards = self.reward_funcs.len() + usize::from(self.reward_command.is_some());
        if rewards == 0 {
            bail!("GRPO needs a reward: list reward_funcs or set reward_command");
        }
        if let Some(weights) = &self.reward_weights {
            if weights.len() != rewards {
                bail!(
                    "reward_weights has {} weights for {rewards} rewards (reward_funcs, then \
                     reward_command)",
                    weights.len()
                );
            }
        }
        Ok(())
    }

    /// beta, or the stage's default: DPO's 0.1, GRPO's 0 (TRL's).
    pub fn beta(&self) -> f64 {
        self.beta
            .unwrap_or(if self.stage == Stage::Grpo { 0.0 } else { 0.1 })
    }

    /// loss_type, or the stage's default: DPO's sigmoid, GRPO's dapo (TRL's).
    pub fn loss(&self) -> LossType {
        self.loss_type.unwrap_or(if self.stage == Stage::Grpo {
            LossType::Dapo
        } else {
            LossType::Sigmoid
        })
    }

    /// The data file the stage trains on.
    pub fn data_file(&self) -> &Path {
        match (self.stage, &self.preference_file, &self.prompt_file) {
            (Stage::Dpo, Some(file), _) | (Stage::Grpo, _, Some(file)) => file,
            _ => &self.train_file,
        }
    }

    /// The stages this config runs, each a complete single-stage config: a pipeline's stage
    /// gets its table's keys, its own output_dir/<stage>, and a DPO or GRPO stage starts from
    /// (and takes as its reference) the adapter of the stage before it unless init_adapter
    /// says otherwise.
    pub fn stage_configs(&self) -> Result<Vec<RunConfig>> {
        if self.stages.is_empty() {
            let mut single = self.clone();
            single.sft.clear();
            single.dpo.clear();
            single.grpo.clear();
            return Ok(vec![single]);
        }
        let serde_json::Value::Object(mut base) = serde_json::to_value(self)? else {
            bail!("a config serialises to a table");
        };
        for key in ["stages", "sft", "dpo", "grpo"] {
            base.remove(key);
        }
        let mut out: Vec<RunConfig> = Vec::new();
        for &stage in &self.stages {
            let overrides = match stage {
                Stage::Sft => &self.sft,
                Stage::Dpo => &self.dpo,
                Stage::Grpo => &self.grpo,
            };
            let mut merged = base.clone();
            merged.extend(overrides.clone());
            merged.insert("stage".into(), serde_json::to_value(stage)?);
            let mut config =
                from_table(merged).map_err(|e| anyhow::anyhow!("[{}]: {e}", stage.name()))?;
            if !overrides.contains_key("output_dir") {
                config.output_dir = self.output_dir.join(stage.name());
            }
            if stage != Stage::Sft && !overrides.contains_key("init_adapter") {
                if let Some(before) = out.last() {
                    config.init_adapter = Some(before.output_dir.join("adapter"));
                }
            }
            config
                .validate()
                .map_err(|e| anyhow::anyhow!("[{}]: {e:#}", stage.name()))?;
            out.push(config);
        }
        Ok(out)
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

/// A config's text as a table of values: JSON, or TOML (whose errors are kept whole, with
/// their line, and whose nan/inf values are refused by key before JSON would turn them into
/// null).
fn parse_text(text: &str, json: bool) -> std::result::Result<serde_json::Value, String> {
    if json {
        return serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"));
    }
    let table: toml::Value = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        match line {
            Some(line) => format!("line {line}: {}", e.message().trim()),
            None => format!("not valid TOML: {}", e.message().trim()),
        }
    })?;
    if let Some(key) = non_finite_key(&table, "") {
        return Err(format!("'{key}' is nan or inf; give a finite number"));
    }
    serde_json::to_value(table).map_err(|e| e.to_string())
}

/// The dotted key of the first nan or inf value in a TOML value, if any.
fn non_finite_key(value: &toml::Value, at: &str) -> Option<String> {
    let child = |key: &str| {
        if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        }
    };
    match value {
        toml::Value::Float(f) if !f.is_finite() => Some(at.to_string()),
        toml::Value::Table(t) => t.iter().find_map(|(k, v)| non_finite_key(v, &child(k))),
        toml::Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| non_finite_key(v, &child(&i.to_string()))),
        _ => None,
    }
}

/// A table of keys as a config; a value of the wrong type names its key.
fn from_table(
    table: serde_json::Map<String, serde_json::Value>,
) -> std::result::Result<RunConfig, String> {
    serde_path_to_error::deserialize(serde_json::Value::Object(table)).map_err(
        |e: serde_path_to_error::Error<serde_json::Error>| format!("'{}': {}", e.path(), e.inner()),
    )
}

/// Resolves the path-valued keys of a stage table against the config file's folder.
fn resolve_path_values(table: &mut serde_json::Map<String, serde_json::Value>, base: &Path) {
    for key in PATH_KEYS {
        if let Some(serde_json::Value::String(p)) = table.get_mut(key) {
            if Path::new(p.as_str()).is_relative() {
                *p = base.join(p.as_str()).display().to_string();
            }
        }
    }
}

/// Levenshtein distance, for suggesting the key a typo meant.
pub fn edit_distance(a: &str, b: &str) -> usize {
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

    fn load_err(name: &str, text: &str) -> String {
        format!("{:#}", RunConfig::load(&write(name, text)).unwrap_err())
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_key() {
        let cases = [
            (
                "t1.toml",
                "train_file = \"a\"\nlearning_rate = \"abc\"\n",
                "'learning_rate': invalid type: string",
            ),
            (
                "t2.toml",
                "train_file = \"a\"\nper_device_train_batch_size = -1\n",
                "'per_device_train_batch_size': invalid value: integer `-1`",
            ),
            (
                "t3.toml",
                "train_file = \"a\"\nlora_r = 2.5\n",
                "'lora_r': invalid type: floating point",
            ),
            (
                "t4.toml",
                "train_file = \"a\"\ngradient_checkpointing = \"maybe\"\n",
                "'gradient_checkpointing': 'maybe': use true",
            ),
            (
                "t5.toml",
                "train_file = \"a\"\nlearning_rate = nan\n",
                "'learning_rate' is nan or inf",
            ),
            (
                "t6.toml",
                "train_file = \"a\"\n[dpo]\nbeta = -inf\n",
                "'dpo.beta' is nan or inf",
            ),
            (
                "t7.json",
                "{\"train_file\": \"a\", \"seed\": \"x\"}",
                "'seed': invalid type: string",
            ),
            (
                "t8.toml",
                "train_file = \"a\"\nbeta = 0.1\nbeta = 0.2\n",
                "line 3: duplicate key",
            ),
            ("t9.toml", "", "the config is empty"),
            (
                "t10.toml",
                "learning_rate = 1e-4\n",
                "train_file is required",
            ),
            (
                "t11.toml",
                "train_file = \"a\"\nmax_steps = 0\n",
                "max_steps must be at least 1",
            ),
            (
                "t12.toml",
                "stages = [\"sft\", \"dpo\"]\ntrain_file = \"a\"\n[dpo]\nbeta = \"x\"\n",
                "[dpo]: 'beta': invalid type",
            ),
        ];
        for (name, text, expected) in cases {
            let err = load_err(name, text);
            assert!(err.contains(expected), "{name}: {err}");
            assert_eq!(err.matches(name).count(), 1, "{name}: the path once: {err}");
        }
        let dir = write("t13.toml", "").parent().unwrap().to_path_buf();
        let err = format!("{:#}", RunConfig::load(&dir).unwrap_err());
        assert!(err.contains("is a folder"), "{err}");
    }

    #[test]
    fn paths_are_absolute_from_a_relative_config_path() {
        let dir = Path::new("target").join(format!("config-rel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "train_file = \"d/sft.jsonl\"\noutput_dir = \"runs/x\"\n",
        )
        .unwrap();
        let c = RunConfig::load(&path).unwrap();
        let here = std::env::current_dir().unwrap();
        assert_eq!(c.train_file, here.join(&dir).join("d/sft.jsonl"));
        assert_eq!(c.output_dir, here.join(&dir).join("runs/x"));
        std::fs::remove_dir_all(&dir).unwrap();
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

    #[test]
    fn a_pipeline_gives_each_stage_its_folder_keys_and_start_point() {
        let path = write(
            "pipeline.toml",
            "stages = [\"sft\", \"dpo\"]\ntrain_file = \"sft.jsonl\"\npreference_file = \"pref.jsonl\"\n\
             output_dir = \"runs/x\"\nlearning_rate = 2e-4\n[dpo]\nlearning_rate = 5e-5\nbeta = 0.2\n",
        );
        let dir = path.parent().unwrap();
        let stages = RunConfig::load(&path).unwrap().stage_configs().unwrap();
        assert_eq!(stages.len(), 2);
        let (sft, dpo) = (&stages[0], &stages[1]);
        assert_eq!((sft.stage, dpo.stage), (Stage::Sft, Stage::Dpo));
        assert_eq!(sft.output_dir, dir.join("runs/x/sft"));
        assert_eq!(dpo.output_dir, dir.join("runs/x/dpo"));
        assert_eq!((sft.learning_rate, dpo.learning_rate), (2e-4, 5e-5));
        assert_eq!(dpo.beta(), 0.2);
        assert_eq!(sft.init_adapter, None);
        assert_eq!(dpo.init_adapter, Some(dir.join("runs/x/sft/adapter")));
        assert_eq!(dpo.data_file(), dir.join("pref.jsonl"));
        assert_eq!(sft.data_file(), dir.join("sft.jsonl"));

        let typo = write(
            "pipeline_typo.toml",
            "stages = [\"sft\", \"dpo\"]\ntrain_file = \"a\"\n[dpo]\nbetta = 0.2\n",
        );
        let err = RunConfig::load(&typo).unwrap_err().to_string();
        assert!(
            err.contains("unknown key 'dpo.betta' (did you mean 'beta'?)"),
            "{err}"
        );
        let bad = write(
            "bad_smoothing.toml",
            "train_file = \"a\"\nloss_type = \"ipo\"\nlabel_smoothing = 0.1\n",
        );
        let err = RunConfig::load(&bad).unwrap_err().to_string();
        assert!(
            err.contains("label_smoothing applies to loss_type = \"sigmoid\" only"),
            "{err}"
        );
    }

    #[test]
    fn the_presets_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data");
        for preset in ["camara_qod", "oilgas", "edu", "bgp"] {
            let config = RunConfig::load(&root.join(preset).join("config.toml")).unwrap();
            let stages = config.stage_configs().unwrap();
            let expected = if matches!(preset, "camara_qod" | "oilgas") {
                2
            } else {
                1
            };
            assert_eq!(stages.len(), expected, "{preset}");
            for stage in &stages {
                assert!(
                    stage.data_file().is_file(),
                    "{preset}: {}",
                    stage.data_file().display()
                );
            }
        }
        let grpo = RunConfig::load(&root.join("camara_qod/grpo.toml")).unwrap();
        let stages = grpo.stage_configs().unwrap();
        assert_eq!(stages[1].stage, Stage::Grpo);
        assert_eq!(stages[1].data_file(), root.join("camara_qod/prompts.jsonl"));
        assert_eq!(
            stages[1].init_adapter,
            Some(stages[0].output_dir.join("adapter"))
        );
        for stage in &stages {
            stage.validate().unwrap();
        }
    }

    #[test]
    fn grpo_keys_take_trls_names_defaults_and_limits() {
        let dir = std::env::temp_dir().join(format!("tunelab-grpo-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let load = |text: &str| {
            let path = dir.join("c.toml");
            std::fs::write(
                &path,
                format!("stage = \"grpo\"\nprompt_file = \"p.jsonl\"\n{text}"),
            )
            .unwrap();
            RunConfig::load(&path).and_then(|c| c.validate().map(|_| c))
        };
        let c = load("").unwrap();
        assert_eq!((c.beta(), c.loss()), (0.0, LossType::Dapo));
        assert_eq!(c.data_file(), dir.join("p.jsonl"));
        let c = load("scale_rewards = false\nloss_type = \"dr_grpo\"\n").unwrap();
        assert_eq!(
            (c.scale_rewards, c.loss()),
            (ScaleRewards::None, LossType::DrGrpo)
        );
        let err = |text: &str| format!("{:#}", load(text).unwrap_err());
        for (text, want) in [
            (
                "num_generations = 1\n",
                "num_generations must be at least 2",
            ),
            (
                "num_generations = 3\n",
                "(8 completions a step) must be a multiple of num_generations (3)",
            ),
            (
                "loss_type = \"sigmoid\"\n",
                "the GRPO stage takes dapo, grpo",
            ),
            ("temperature = 0.0\n", "temperature must be positive"),
            ("reward_funcs = []\n", "GRPO needs a reward"),
            (
                "reward_weights = [1.0]\n",
                "reward_weights has 1 weights for 4 rewards",
            ),
            (
                "scale_rewards = \"sometimes\"\n",
                "use \"group\", \"batch\" or \"none\"",
            ),
            ("beta = -0.1\n", "beta must be zero or positive"),
        ] {
            assert!(err(text).contains(want), "{text}: {}", err(text));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

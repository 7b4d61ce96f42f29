//! LoRA adapters on the model's linear layers: y = W x + s · B A dropout(x), with A (r × in)
//! Kaiming-uniform, B (out × r) zero, s = alpha / r (alpha / √r with rsLoRA). The base output
//! is never scaled. One switch turns every adapter off at run time, so the same weights serve
//! as the reference model and as the base in comparisons.

use super::fused::lora_linear::{Dropout, LoraLinear};
use super::linear::BaseWeight;
use anyhow::{bail, Result};
use candle_core::{DType, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The projections a LoRA can target, by their PEFT names, every family's (Phi-3 has
/// qkv_proj and gate_up_proj where the others have q, k, v and gate, up); `all-linear` is all of
/// them that the model has.
pub const TARGET_MODULES: [&str; 9] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "qkv_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "gate_up_proj",
    "down_proj",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    pub r: usize,
    pub lora_alpha: f64,
    #[serde(default)]
    pub lora_dropout: f64,
    /// PEFT names, or ["all-linear"].
    pub target_modules: Vec<String>,
    #[serde(default)]
    pub use_rslora: bool,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            r: 16,
            lora_alpha: 16.0,
            lora_dropout: 0.05,
            target_modules: vec!["all-linear".into()],
            use_rslora: false,
        }
    }
}

impl LoraConfig {
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.lora_alpha / (self.r as f64).sqrt()
        } else {
            self.lora_alpha / self.r as f64
        }
    }

    /// The targeted modules, "all-linear" expanded, each checked against the known names: a
    /// module's name (`q_proj`) or, as PEFT also writes them, a path ending in one
    /// (`model.layers.0.self_attn.q_proj`).
    pub fn targets(&self) -> Result<Vec<String>> {
        if self.r == 0 {
            bail!("lora r must be at least 1");
        }
        if !(0.0..1.0).contains(&self.lora_dropout) {
            bail!("lora_dropout must be in [0, 1), got {}", self.lora_dropout);
        }
        if self.target_modules.iter().any(|t| t == "all-linear") {
            return Ok(TARGET_MODULES.iter().map(|m| m.to_string()).collect());
        }
        for t in &self.target_modules {
            let last = t.rsplit('.').next().unwrap_or(t);
            if !TARGET_MODULES.contains(&last) {
                bail!(
                    "target_modules: '{t}' is not a module of this model (known: {}, or all-linear)",
                    TARGET_MODULES.join(", ")
                );
            }
        }
        if self.target_modules.is_empty() {
            bail!("target_modules is empty");
        }
        Ok(self.target_modules.clone())
    }
}

/// Whether PEFT's target `target` selects the module named `module`: the whole name, or its
/// last dotted parts.
pub fn targets_module(target: &str, module: &str) -> bool {
    module == target
        || module
            .strip_suffix(target)
            .is_some_and(|head| head.ends_with('.'))
}

/// Shared by every adapter of a model: whether adapters apply, whether dropout is on, and the
/// seed of the current micro-batch's dropout masks (set by the trainer from the run's seed and
/// the micro-batch's index, so masks repeat exactly on resume).
#[derive(Debug, Clone)]
pub struct AdapterSwitch {
    enabled: Arc<AtomicBool>,
    training: Arc<AtomicBool>,
    dropout_seed: Arc<AtomicU64>,
    /// Adapter gradients computed inside checkpointed layers, (parameter, gradient), until
    /// `Llama::backward` collects them.
    grads: Arc<Mutex<Vec<(Tensor, Tensor)>>>,
}

impl Default for AdapterSwitch {
    fn default() -> Self {
        Self {
            enabled: Arc::new(AtomicBool::new(true)),
            training: Arc::new(AtomicBool::new(false)),
            dropout_seed: Arc::new(AtomicU64::new(0)),
            grads: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl AdapterSwitch {
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn set_training(&self, on: bool) {
        self.training.store(on, Ordering::Relaxed);
    }

    pub fn training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }

    pub fn set_dropout_seed(&self, seed: u64) {
        self.dropout_seed.store(seed, Ordering::Relaxed);
    }

    fn dropout_seed(&self) -> u64 {
        self.dropout_seed.load(Ordering::Relaxed)
    }

    fn push_grad(&self, parameter: &Tensor, grad: Tensor) {
        self.grads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((parameter.clone(), grad));
    }

    /// The adapter gradients handed over since the last call.
    pub fn take_grads(&self) -> Vec<(Tensor, Tensor)> {
        std::mem::take(&mut *self.grads.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// SplitMix64: spreads nearby seeds (step numbers, layer ids) into unrelated ones.
pub fn mix_seed(a: u64, b: u64) -> u64 {
    let mut z = a
        .wrapping_add(b.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One adapter: trainable A and B in f32, whatever the base's dtype.
#[derive(Debug, Clone)]
pub struct LoraLayer {
    pub a: Var,
    pub b: Var,
    scale: f64,
    dropout: f64,
    switch: AdapterSwitch,
    /// Distinguishes this layer's dropout mask from the others'.
    id: u64,
}

impl LoraLayer {
    /// PEFT's initialisation: A ~ U(−1/√in, 1/√in) (Kaiming-uniform with a = √5), B = 0.
    pub fn init(
        (in_features, out_features): (usize, usize),
        config: &LoraConfig,
        rng: &mut StdRng,
        device: &candle_core::Device,
        switch: &AdapterSwitch,
        id: u64,
    ) -> Result<Self> {
        let bound = 1.0 / (in_features as f32).sqrt();
        let a: Vec<f32> = (0..config.r * in_features)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        let a = Tensor::from_vec(a, (config.r, in_features), device)?;
        let b = Tensor::zeros((out_features, config.r), DType::F32, device)?;
        Self::from_tensors(a, b, config, switch, id)
    }

    pub fn from_tensors(
        a: Tensor,
        b: Tensor,
        config: &LoraConfig,
        switch: &AdapterSwitch,
        id: u64,
    ) -> Result<Self> {
        Ok(Self {
            a: Var::from_tensor(&a.to_dtype(DType::F32)?)?,
            b: Var::from_tensor(&b.to_dtype(DType::F32)?)?,
            scale: config.scale(),
            dropout: config.lora_dropout,
            switch: switch.clone(),
            id,
        })
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// This layer's dropout in the current micro-batch, or None when dropout is off: its
    /// mask is drawn from the micro-batch's seed and this layer's id, the same on every device,
    /// so a resumed run repeats the masks of an uninterrupted one.
    fn dropout(&self) -> Option<Dropout> {
        if self.dropout == 0.0 || !self.switch.training() {
            return None;
        }
        Some(Dropout {
            keep: (1.0 - self.dropout) as f32,
            seed: mix_seed(self.switch.dropout_seed(), self.id),
        })
    }

    /// The fused projection for `weight` with this adapter and its (detached) A and B, or
    /// None while adapters are switched off.
    pub fn op(&self, weight: &BaseWeight) -> Option<(LoraLinear, Tensor, Tensor)> {
        if !self.switch.enabled() {
            return None;
        }
        let op = LoraLinear::new(weight.clone(), self.dropout(), self.scale);
        Some((op, self.a.as_tensor().detach(), self.b.as_tensor().detach()))
    }

    /// Records A's and B's gradients from a backward that ran outside candle's autograd.
    pub fn hand_over_grads(&self, grad_a: Tensor, grad_b: Tensor) {
        self.switch.push_grad(self.a.as_tensor(), grad_a);
        self.switch.push_grad(self.b.as_tensor(), grad_b);
    }

    /// s · B A, the dense update that merging adds to W.
    pub fn merged_delta(&self) -> Result<Tensor> {
        Ok((self.b.as_tensor().matmul(self.a.as_tensor())? * self.scale)?)
    }
}

/// A seeded generator for adapter initialisation.
pub fn init_rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

#[cfg(test)]
mod target_tests {
    use super::*;

    /// PEFT's matching: a name or a path, never a mere suffix of a name.
    #[test]
    fn targets_match_whole_names_and_paths() {
        let m = "model.layers.0.self_attn.q_proj";
        assert!(targets_module("q_proj", m));
        assert!(targets_module("self_attn.q_proj", m));
        assert!(targets_module(m, m));
        assert!(!targets_module("_proj", m));
        assert!(!targets_module("model.layers.1.self_attn.q_proj", m));
        let paths = LoraConfig {
            target_modules: vec![m.into()],
            ..LoraConfig::default()
        };
        assert_eq!(paths.targets().unwrap(), [m]);
        let bad = LoraConfig {
            target_modules: vec!["model.layers.0.self_attn.qkvo_proj".into()],
            ..LoraConfig::default()
        };
        assert!(bad.targets().unwrap_err().to_string().contains("qkvo_proj"));
    }
}

//! RoPE frequency scaling: the base frequencies 1/θ^(2i/d), stretched for long contexts as
//! transformers' `rope_type` names the schemes (`_compute_llama3_parameters` and
//! `_compute_linear_scaling_rope_parameters` in modeling_rope_utils.py).

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub enum RopeScaling {
    #[default]
    None,
    /// Every frequency divided by `factor` (Gemma 3 4B+'s global layers).
    Linear { factor: f64 },
    /// Llama 3.1+: long wavelengths divided by `factor`, short ones kept, a smooth blend
    /// between.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
    /// Each frequency divided by its own factor: how llama.cpp stores Llama 3's scaling (the
    /// `rope_freqs` tensor of a GGUF file).
    PerFrequency(Vec<f64>),
}

/// The schemes a config may name, for messages.
const SUPPORTED: &str = "default, linear, llama3";

impl RopeScaling {
    /// Reads a `rope_scaling` / `rope_parameters` object (`rope_type`, or the older `type`).
    pub fn from_hf(v: &serde_json::Value) -> Result<Self> {
        let kind = v
            .get("rope_type")
            .or_else(|| v.get("type"))
            .and_then(|t| t.as_str())
            .unwrap_or("default");
        let num = |key: &str| -> Result<f64> {
            match v.get(key).and_then(|x| x.as_f64()) {
                Some(x) => Ok(x),
                None => bail!("RoPE scaling '{kind}' needs a numeric {key}"),
            }
        };
        let scaling = match kind {
            "default" => Self::None,
            "linear" => Self::Linear {
                factor: num("factor")?,
            },
            "llama3" => Self::Llama3 {
                factor: num("factor")?,
                low_freq_factor: num("low_freq_factor")?,
                high_freq_factor: num("high_freq_factor")?,
                original_max_position_embeddings: num("original_max_position_embeddings")?,
            },
            other => bail!("RoPE scaling '{other}' is not supported yet (supported: {SUPPORTED})"),
        };
        scaling.validate()?;
        Ok(scaling)
    }

    /// Reads llama.cpp's `{arch}.rope.scaling.*` keys. (Llama 3's scaling is not among them:
    /// llama.cpp stores it as the `rope_freqs` tensor, which the model reads.)
    pub fn from_gguf(kind: Option<&str>, factor: Option<f64>) -> Result<Self> {
        match kind {
            None | Some("none") => Ok(Self::None),
            Some("linear") => Ok(Self::Linear {
                factor: factor.unwrap_or(1.0),
            }),
            Some(other) => {
                bail!("RoPE scaling '{other}' is not supported yet (supported: {SUPPORTED})")
            }
        }
    }

    /// The `rope_scaling` object transformers reads (null without scaling); transformers has
    /// no form for per-frequency factors.
    pub fn to_hf(&self) -> Result<serde_json::Value> {
        Ok(match *self {
            Self::None => serde_json::Value::Null,
            Self::PerFrequency(_) => bail!(
                "this model's RoPE scaling came as llama.cpp's rope_freqs factors, which a \
                 config.json cannot state; export the adapter (peft) instead"
            ),
            Self::Linear { factor } => serde_json::json!({"rope_type": "linear", "factor": factor}),
            Self::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => serde_json::json!({
                "rope_type": "llama3",
                "factor": factor,
                "low_freq_factor": low_freq_factor,
                "high_freq_factor": high_freq_factor,
                "original_max_position_embeddings": original_max_position_embeddings,
            }),
        })
    }

    pub fn validate(&self) -> Result<()> {
        let ok = match *self {
            Self::None => true,
            Self::PerFrequency(ref factors) => factors.iter().all(|&f| f > 0.0 && f.is_finite()),
            Self::Linear { factor } => factor > 0.0,
            Self::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                factor > 0.0
                    && low_freq_factor > 0.0
                    && high_freq_factor > low_freq_factor
                    && original_max_position_embeddings > 0.0
            }
        };
        if !ok {
            bail!("RoPE scaling {self:?} has a non-positive or inverted factor");
        }
        Ok(())
    }

    /// The inverse frequencies of a `dim`-wide head with base `theta`, scaled.
    pub fn inv_freq(&self, theta: f64, dim: usize) -> Vec<f64> {
        let base = (0..dim / 2).map(|i| 1.0 / theta.powf(2.0 * i as f64 / dim as f64));
        match *self {
            Self::None => base.collect(),
            Self::PerFrequency(ref factors) => base.zip(factors).map(|(f, k)| f / k).collect(),
            Self::Linear { factor } => base.map(|f| f / factor).collect(),
            Self::Llama3 {
                factor,
                low_freq_factor: low,
                high_freq_factor: high,
                original_max_position_embeddings: context,
            } => base
                .map(|f| {
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    if wavelen < context / high {
                        f
                    } else if wavelen > context / low {
                        f / factor
                    } else {
                        let smooth = (context / wavelen - low) / (high - low);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Llama 3.1 8B's scaling (factor 8, 1, 4, 8192) at head_dim 128, θ 500000: the first
    /// frequencies (wavelength < 2048) stay, the last (wavelength > 8192) are divided by 8.
    #[test]
    fn llama3_keeps_short_and_divides_long_wavelengths() {
        let s = RopeScaling::from_hf(&serde_json::json!({
            "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192
        }))
        .unwrap();
        let plain = RopeScaling::None.inv_freq(500_000.0, 128);
        let scaled = s.inv_freq(500_000.0, 128);
        assert_eq!(scaled[0], plain[0]);
        assert!((scaled[63] - plain[63] / 8.0).abs() < 1e-18);
        let blended = (0..64).filter(|&i| scaled[i] != plain[i] && scaled[i] != plain[i] / 8.0);
        assert!(blended.count() > 0);
    }

    #[test]
    fn unknown_schemes_are_refused_by_name() {
        let err = RopeScaling::from_hf(&serde_json::json!({"rope_type": "yarn", "factor": 4.0}))
            .unwrap_err();
        assert!(err.to_string().contains("'yarn'"), "{err}");
        assert_eq!(
            RopeScaling::from_hf(&serde_json::json!({"rope_type": "default"})).unwrap(),
            RopeScaling::None
        );
    }
}

//! One decoder layer's parts, loaded by their Hugging Face names for the layer's family:
//! projections (with Qwen2's biases), norms (with Gemma's extra ones and q/k norms), and the
//! per-layer attention settings (scale, sliding window, which RoPE table).

use super::config::ModelConfig;
use super::linear::Linear;
use super::transformer::RmsNorm;
use super::weights::WeightStore;
use anyhow::{bail, Result};

#[derive(Debug, Clone)]
pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    /// RMSNorm over head_dim on queries and keys before RoPE (Qwen3, Gemma 3).
    pub(crate) q_norm: Option<RmsNorm>,
    pub(crate) k_norm: Option<RmsNorm>,
    pub(crate) num_heads: usize,
    pub(crate) num_kv_heads: usize,
    pub(crate) scale: f64,
    /// Keys a query sees, itself included, on a sliding-window layer.
    pub(crate) window: Option<usize>,
    /// Whether this layer rotates with the local RoPE table (Gemma 3's sliding layers).
    pub(crate) local_rope: bool,
}

#[derive(Debug, Clone)]
pub struct Mlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
    /// GELU (tanh) gating instead of SiLU.
    pub(crate) gelu_gate: bool,
}

#[derive(Debug, Clone)]
pub struct DecoderLayer {
    pub self_attn: Attention,
    pub mlp: Mlp,
    /// Before the attention and before the MLP.
    pub(crate) attn_norm: RmsNorm,
    pub(crate) mlp_norm: RmsNorm,
    /// On the attention's and the MLP's outputs (Gemma 3's sandwich norms).
    pub(crate) attn_out_norm: Option<RmsNorm>,
    pub(crate) mlp_out_norm: Option<RmsNorm>,
}

/// The projections of a layer under their Hugging Face names, in the order of `linears()`.
pub const LINEAR_NAMES: [&str; 7] = [
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
];

impl DecoderLayer {
    /// The seven projections, in PEFT's target-module order.
    pub fn linears(&self) -> [&Linear; 7] {
        let (a, m) = (&self.self_attn, &self.mlp);
        [
            &a.q_proj,
            &a.k_proj,
            &a.v_proj,
            &a.o_proj,
            &m.gate_proj,
            &m.up_proj,
            &m.down_proj,
        ]
    }

    pub(crate) fn linears_mut(&mut self) -> [&mut Linear; 7] {
        let (a, m) = (&mut self.self_attn, &mut self.mlp);
        [
            &mut a.q_proj,
            &mut a.k_proj,
            &mut a.v_proj,
            &mut a.o_proj,
            &mut m.gate_proj,
            &mut m.up_proj,
            &mut m.down_proj,
        ]
    }

    /// Every norm with its name inside the layer (`input_layernorm`, `self_attn.q_norm`).
    pub fn norms(&self, names: super::family::NormNames) -> Vec<(&'static str, &RmsNorm)> {
        let a = &self.self_attn;
        let mut out = vec![(names.attn_in, &self.attn_norm)];
        out.extend(a.q_norm.as_ref().map(|n| ("self_attn.q_norm", n)));
        out.extend(a.k_norm.as_ref().map(|n| ("self_attn.k_norm", n)));
        out.extend(names.attn_out.zip(self.attn_out_norm.as_ref()));
        out.push((names.mlp_in, &self.mlp_norm));
        out.extend(names.mlp_out.zip(self.mlp_out_norm.as_ref()));
        out
    }

    /// Layer `i` of a model of `config`, from `store`.
    pub fn load(store: &dyn WeightStore, c: &ModelConfig, i: usize) -> Result<Self> {
        let block = c.family.block();
        let names = c.family.norm_names();
        let p = format!("model.layers.{i}");
        let (h, hd) = (c.hidden_size, c.head_dim());
        let (q, kv) = (c.num_attention_heads * hd, c.num_key_value_heads * hd);
        let norm = |name: &str, width: usize| load_norm(store, c, &format!("{p}.{name}"), width);
        let linear = |name: &str, out: usize, inp: usize| {
            let name = format!("{p}.{name}");
            checked(store.linear(&name)?, &name, out, inp)
        };
        let biased = |name: &str, out: usize| -> Result<Linear> {
            let l = linear(name, out, h)?;
            if !block.qkv_bias {
                return Ok(l);
            }
            l.with_bias(store.bias(&format!("{p}.{name}"))?)
        };
        let qk_norm = |name: &str| block.qk_norm.then(|| norm(name, hd)).transpose();
        let sandwich = |name: Option<&str>| match (block.sandwich_norms, name) {
            (true, Some(n)) => norm(n, h).map(Some),
            _ => Ok(None),
        };
        let window = c.window_of(i);
        Ok(Self {
            self_attn: Attention {
                q_proj: biased("self_attn.q_proj", q)?,
                k_proj: biased("self_attn.k_proj", kv)?,
                v_proj: biased("self_attn.v_proj", kv)?,
                o_proj: linear("self_attn.o_proj", h, q)?,
                q_norm: qk_norm("self_attn.q_norm")?,
                k_norm: qk_norm("self_attn.k_norm")?,
                num_heads: c.num_attention_heads,
                num_kv_heads: c.num_key_value_heads,
                scale: c.attention_scale(),
                window,
                local_rope: window.is_some() && c.rope_local_theta.is_some(),
            },
            mlp: Mlp {
                gate_proj: linear("mlp.gate_proj", c.intermediate_size, h)?,
                up_proj: linear("mlp.up_proj", c.intermediate_size, h)?,
                down_proj: linear("mlp.down_proj", h, c.intermediate_size)?,
                gelu_gate: block.gelu_gate,
            },
            attn_norm: norm(names.attn_in, h)?,
            mlp_norm: norm(names.mlp_in, h)?,
            attn_out_norm: sandwich(names.attn_out)?,
            mlp_out_norm: sandwich(names.mlp_out)?,
        })
    }
}

/// A norm of `width` scales by its Hugging Face name, in the form it applies.
pub(crate) fn load_norm(
    store: &dyn WeightStore,
    c: &ModelConfig,
    name: &str,
    width: usize,
) -> Result<RmsNorm> {
    let weight = store.vector(name)?;
    if weight.dims() != [width] {
        bail!(
            "tensor {name} has shape {:?}, expected [{width}]",
            weight.dims()
        );
    }
    let plus_one = c.family.block().norm_plus_one;
    let hf_offset = if plus_one { 1.0 } else { 0.0 };
    let weight = if plus_one && !store.norms_applied_form() {
        (weight + 1.0)?
    } else {
        weight
    };
    Ok(RmsNorm::new(weight, c.rms_norm_eps, hf_offset))
}

pub(crate) fn checked(linear: Linear, name: &str, out: usize, inp: usize) -> Result<Linear> {
    if (linear.out_features(), linear.in_features()) != (out, inp) {
        bail!(
            "tensor {name} has shape ({}, {}), the config says ({out}, {inp})",
            linear.out_features(),
            linear.in_features()
        );
    }
    Ok(linear)
}

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
    /// GELU (tanh) gating instead of SiLU.
    pub(crate) gelu_gate: bool,
    /// The width of the gate (and of up): where a fused gate_up_proj's output splits.
    pub(crate) intermediate: usize,
}

#[derive(Debug, Clone)]
pub struct DecoderLayer {
    pub self_attn: Attention,
    pub mlp: Mlp,
    /// The projections in `layout`'s order.
    projections: Vec<Linear>,
    pub(crate) layout: Layout,
    /// Before the attention and before the MLP.
    pub(crate) attn_norm: RmsNorm,
    pub(crate) mlp_norm: RmsNorm,
    /// On the attention's and the MLP's outputs (Gemma 3's sandwich norms).
    pub(crate) attn_out_norm: Option<RmsNorm>,
    pub(crate) mlp_out_norm: Option<RmsNorm>,
}

/// The projections of a plain layer under their Hugging Face names, in PEFT's order.
pub const LINEAR_NAMES: [&str; 7] = [
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
];

/// Phi-3's: q, k and v in one product, gate and up in another.
pub const FUSED_LINEAR_NAMES: [&str; 4] = [
    "self_attn.qkv_proj",
    "self_attn.o_proj",
    "mlp.gate_up_proj",
    "mlp.down_proj",
];

/// Where each projection sits in a layer's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// q, k, v, o, gate, up, down.
    Separate,
    /// qkv, o, gate_up, down.
    Fused,
}

impl Layout {
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Self::Separate => &LINEAR_NAMES,
            Self::Fused => &FUSED_LINEAR_NAMES,
        }
    }

    /// The indices of the products that make q, k and v (one when fused).
    pub(crate) fn qkv(self) -> std::ops::Range<usize> {
        match self {
            Self::Separate => 0..3,
            Self::Fused => 0..1,
        }
    }

    pub(crate) fn o(self) -> usize {
        self.qkv().end
    }

    /// The indices of the products that make the gate and up (one when fused).
    pub(crate) fn gate_up(self) -> std::ops::Range<usize> {
        match self {
            Self::Separate => 4..6,
            Self::Fused => 2..3,
        }
    }

    pub(crate) fn down(self) -> usize {
        self.gate_up().end
    }
}

impl DecoderLayer {
    /// The projections, in PEFT's target-module order (`names()` gives their names).
    pub fn linears(&self) -> Vec<&Linear> {
        self.projections.iter().collect()
    }

    pub(crate) fn linears_mut(&mut self) -> impl Iterator<Item = &mut Linear> {
        self.projections.iter_mut()
    }

    /// The projections' names inside the layer (`self_attn.q_proj`), in `linears()`'s order.
    pub fn linear_names(&self) -> &'static [&'static str] {
        self.layout.names()
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
        let (h, hd, inter) = (c.hidden_size, c.head_dim(), c.intermediate_size);
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
        let (layout, projections) = if block.fused_projections {
            let list = vec![
                linear("self_attn.qkv_proj", q + 2 * kv, h)?,
                linear("self_attn.o_proj", h, q)?,
                linear("mlp.gate_up_proj", 2 * inter, h)?,
                linear("mlp.down_proj", h, inter)?,
            ];
            (Layout::Fused, list)
        } else {
            let list = vec![
                biased("self_attn.q_proj", q)?,
                biased("self_attn.k_proj", kv)?,
                biased("self_attn.v_proj", kv)?,
                linear("self_attn.o_proj", h, q)?,
                linear("mlp.gate_proj", inter, h)?,
                linear("mlp.up_proj", inter, h)?,
                linear("mlp.down_proj", h, inter)?,
            ];
            (Layout::Separate, list)
        };
        let qk_norm = |name: &str| block.qk_norm.then(|| norm(name, hd)).transpose();
        let sandwich = |name: Option<&str>| match (block.sandwich_norms, name) {
            (true, Some(n)) => norm(n, h).map(Some),
            _ => Ok(None),
        };
        let window = c.window_of(i);
        Ok(Self {
            self_attn: Attention {
                q_norm: qk_norm("self_attn.q_norm")?,
                k_norm: qk_norm("self_attn.k_norm")?,
                num_heads: c.num_attention_heads,
                num_kv_heads: c.num_key_value_heads,
                scale: c.attention_scale(),
                window,
                local_rope: window.is_some() && c.rope_local_theta.is_some(),
            },
            mlp: Mlp {
                gelu_gate: block.gelu_gate,
                intermediate: inter,
            },
            projections,
            layout,
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

//! A decoder layer's forward pass, written once over the fused ops' own forward functions, and
//! its backward over their backward functions.
//!
//! Inference runs the pass directly (no autograd graph at all). Training runs each layer as
//! one graph node, so candle's autograd sees one edge per layer instead of dozens (each of
//! which it sums into a fresh zero tensor). A node either keeps only the layer's input and
//! recomputes the rest in backward (gradient checkpointing: a layer's activations are alive
//! one layer at a time), or keeps what the backward needs from the forward (no second
//! forward, more memory held). The adapters' gradients, which are not inputs of that node, go to the
//! AdapterSwitch; `Llama::backward` collects them.

use super::block::{DecoderLayer, Layout, Mlp};
use super::fused::attention::Attention as AttentionOp;
use super::fused::geglu::GeGlu;
use super::fused::kernels::add;
use super::fused::lora_linear::LoraLinear;
use super::fused::rope::{merge, split, Rope as RopeOp};
use super::fused::swiglu::SwiGlu;
use super::fused::{self, Fused};
use super::linear::Linear;
use super::mask::LayerMask;
use super::transformer::{RmsNorm, RopeTables};
use candle_core::{Result, Tensor, D};

/// A projection's adapter op with its A and B (None: the base alone), made once per pass so
/// that the backward reuses the weight the forward dequantized.
type Prepared = Option<(LoraLinear, Tensor, Tensor)>;

/// What the backward needs of a forward pass.
pub struct Saved {
    /// The projections' adapter ops, as `DecoderLayer::linears` orders them.
    projections: Vec<Prepared>,
    /// The normalised inputs of the attention and of the MLP.
    h1: Tensor,
    h2: Tensor,
    /// The residual stream between attention and MLP.
    x2: Tensor,
    /// Queries and keys split into heads before their norms, when the layer has q/k norms.
    qk_heads: Option<(Tensor, Tensor)>,
    /// Queries and keys after RoPE, values, each (batch, heads, seq, head_dim).
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attention: AttentionOp,
    /// The attention's output with heads merged: o_proj's input.
    merged: Tensor,
    /// o_proj's and down_proj's outputs, when norms follow them (Gemma's sandwich norms).
    attn_out: Option<Tensor>,
    mlp_out: Option<Tensor>,
    gate: Tensor,
    up: Tensor,
    /// act(gate)·up: down_proj's input.
    hidden: Tensor,
}

/// A norm's op forward on one tensor.
fn normed(norm: &RmsNorm, x: &Tensor) -> Result<Tensor> {
    norm.op().forward(std::slice::from_ref(x))
}

/// A norm's input gradient from its output's `g`.
fn normed_backward(norm: &RmsNorm, x: &Tensor, g: &Tensor) -> Result<Tensor> {
    one(norm.op().backward(std::slice::from_ref(x), g, g)?)
}

/// The single gradient of a fused backward (which do not read their `out` argument).
fn one(grads: Vec<Option<Tensor>>) -> Result<Tensor> {
    grads
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(|| candle_core::Error::msg("a fused backward gave no gradient"))
}

impl Mlp {
    fn gate_forward(&self, gate: &Tensor, up: &Tensor) -> Result<Tensor> {
        let args = [gate.clone(), up.clone()];
        if self.gelu_gate {
            GeGlu.forward(&args)
        } else {
            SwiGlu.forward(&args)
        }
    }

    fn gate_backward(&self, gate: &Tensor, up: &Tensor, g: &Tensor) -> Result<(Tensor, Tensor)> {
        let args = [gate.clone(), up.clone()];
        let mut grads = if self.gelu_gate {
            GeGlu.backward(&args, g, g)?
        } else {
            SwiGlu.backward(&args, g, g)?
        };
        let g_up = grads.pop().flatten();
        let g_gate = grads.pop().flatten();
        match (g_gate, g_up) {
            (Some(a), Some(b)) => Ok((a, b)),
            _ => candle_core::bail!("the MLP gate gave no gradient"),
        }
    }
}

impl DecoderLayer {
    /// q, k and v of the attention's input, through `project(i)` (the layer's i-th product):
    /// three products, or one split in three.
    fn qkv(&self, project: &dyn Fn(usize) -> Result<Tensor>) -> Result<[Tensor; 3]> {
        match self.layout {
            Layout::Separate => Ok([project(0)?, project(1)?, project(2)?]),
            Layout::Fused => {
                let all = project(0)?;
                let a = &self.self_attn;
                let d = all.dim(D::Minus1)? / (a.num_heads + 2 * a.num_kv_heads);
                let (q, kv) = (a.num_heads * d, a.num_kv_heads * d);
                let part = |from: usize, len: usize| all.narrow(D::Minus1, from, len)?.contiguous();
                Ok([part(0, q)?, part(q, kv)?, part(q + kv, kv)?])
            }
        }
    }

    /// The gate and up of the MLP's input: two products, or one split in halves.
    fn gate_up(&self, project: &dyn Fn(usize) -> Result<Tensor>) -> Result<[Tensor; 2]> {
        match self.layout {
            Layout::Separate => Ok([project(4)?, project(5)?]),
            Layout::Fused => {
                let all = project(2)?;
                let n = self.mlp.intermediate;
                let part = |from: usize| all.narrow(D::Minus1, from, n)?.contiguous();
                Ok([part(0)?, part(n)?])
            }
        }
    }

    /// Queries or keys (batch, seq, heads·head_dim) as rotated heads, through the head norm
    /// when the layer has one; with it, also the heads before the norm.
    fn heads(
        &self,
        x: &Tensor,
        heads: usize,
        norm: Option<&RmsNorm>,
        rope: &RopeOp,
    ) -> Result<(Tensor, Option<Tensor>)> {
        match norm {
            None => Ok((rope.split_heads(x, heads)?, None)),
            Some(n) => {
                let split = split(x, heads)?;
                let rotated = rope.forward(&[normed(n, &split)?])?;
                Ok((rotated, Some(split)))
            }
        }
    }

    /// The gradient of `heads`' input from its output's `g`.
    fn heads_backward(
        &self,
        g: &Tensor,
        norm: Option<&RmsNorm>,
        before_norm: Option<&Tensor>,
        rope: &RopeOp,
    ) -> Result<Tensor> {
        match (norm, before_norm) {
            (Some(n), Some(x)) => {
                let g = one(rope.backward(&[], g, g)?)?;
                merge(&normed_backward(n, x, &g)?)
            }
            _ => rope.merge_heads_backward(g),
        }
    }

    /// The layer's output for `x`, and what its backward needs. With a cache, keys and
    /// values are appended to it.
    pub(crate) fn pass(
        &self,
        x: &Tensor,
        mask: &LayerMask,
        rope: &RopeTables,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> Result<(Tensor, Saved)> {
        let a = &self.self_attn;
        let seq = x.dim(1)?;
        let p: Vec<Prepared> = self.linears().iter().map(|l| l.lora_op()).collect();
        let linears = self.linears();
        let project = |i: usize, x: &Tensor| linears[i].apply_with(&p[i], x);
        let layout = self.layout;
        let h1 = normed(&self.attn_norm, x)?;
        let rope_op = rope.op()?;
        let [qp, kp, vp] = self.qkv(&|i| project(i, &h1))?;
        let (q, q_heads) = self.heads(&qp, a.num_heads, a.q_norm.as_ref(), &rope_op)?;
        let (mut k, k_heads) = self.heads(&kp, a.num_kv_heads, a.k_norm.as_ref(), &rope_op)?;
        let mut v = split(&vp, a.num_kv_heads)?;
        if let Some(slot) = cache {
            if let Some((pk, pv)) = slot.as_ref() {
                k = Tensor::cat(&[pk, &k], 2)?;
                v = Tensor::cat(&[pv, &v], 2)?;
            }
            *slot = Some((k.clone(), v.clone()));
        }
        let attention = AttentionOp {
            causal_offset: mask.causal.then(|| k.dim(2).unwrap_or(seq) - seq),
            mask: mask.tensor.clone(),
            scale: a.scale,
        };
        let merged = merge(&attention.forward(&[q.clone(), k.clone(), v.clone()])?)?;
        let o = project(layout.o(), &merged)?;
        let (x2, attn_out) = match &self.attn_out_norm {
            Some(n) => (add(x, &normed(n, &o)?)?, Some(o)),
            None => (add(x, &o)?, None),
        };
        let h2 = normed(&self.mlp_norm, &x2)?;
        let [gate, up] = self.gate_up(&|i| project(i, &h2))?;
        let hidden = self.mlp.gate_forward(&gate, &up)?;
        let m = project(layout.down(), &hidden)?;
        let (y, mlp_out) = match &self.mlp_out_norm {
            Some(n) => (add(&x2, &normed(n, &m)?)?, Some(m)),
            None => (add(&x2, &m)?, None),
        };
        let saved = Saved {
            projections: p,
            h1,
            h2,
            x2,
            qk_heads: q_heads.zip(k_heads),
            q,
            k,
            v,
            attention,
            merged,
            attn_out,
            mlp_out,
            gate,
            up,
            hidden,
        };
        Ok((y, saved))
    }

    /// The gradient of the layer's input `x` from its output's `gy`, given the forward's
    /// `saved` activations; the adapters' gradients go to their switch.
    pub(crate) fn pass_backward(
        &self,
        x: &Tensor,
        s: &Saved,
        rope: &RopeTables,
        gy: &Tensor,
    ) -> Result<Tensor> {
        let a = &self.self_attn;
        let linears = self.linears();
        // A projection's input gradient, plus a sibling's of the same input (accumulated into
        // it on the GPU).
        let back = |i: usize, x: &Tensor, g: &Tensor, acc: Option<Tensor>| {
            linears[i].apply_backward_with(&s.projections[i], x, g, acc)
        };
        // A residual branch's output gradient through its trailing norm, if it has one.
        let through = |norm: &Option<RmsNorm>, out: &Option<Tensor>, g: &Tensor| match (norm, out) {
            (Some(n), Some(o)) => normed_backward(n, o, g),
            _ => Ok(g.clone()),
        };
        // MLP: y = x2 + [norm](down(act(gate(h2)) · up(h2))).
        let layout = self.layout;
        let g_m = through(&self.mlp_out_norm, &s.mlp_out, gy)?;
        let g_hidden = back(layout.down(), &s.hidden, &g_m, None)?;
        let (g_gate, g_up) = self.mlp.gate_backward(&s.gate, &s.up, &g_hidden)?;
        let g_h2 = match layout {
            Layout::Separate => back(5, &s.h2, &g_up, Some(back(4, &s.h2, &g_gate, None)?))?,
            Layout::Fused => back(2, &s.h2, &Tensor::cat(&[&g_gate, &g_up], D::Minus1)?, None)?,
        };
        let g_x2 = add(gy, &normed_backward(&self.mlp_norm, &s.x2, &g_h2)?)?;
        // Attention: x2 = x + [norm](o(attention(rope(q(h1)), rope(k(h1)), v(h1)))).
        let g_o = through(&self.attn_out_norm, &s.attn_out, &g_x2)?;
        let g_merged = back(layout.o(), &s.merged, &g_o, None)?;
        let g_heads = split(&g_merged, a.num_heads)?;
        let qkv = [s.q.clone(), s.k.clone(), s.v.clone()];
        let mut g = s.attention.backward(&qkv, gy, &g_heads)?.into_iter();
        let mut next = || {
            g.next()
                .flatten()
                .ok_or_else(|| candle_core::Error::msg("attention gave no gradient"))
        };
        let (g_q, g_k, g_v) = (next()?, next()?, next()?);
        let rope_op = rope.op()?;
        let (q_heads, k_heads) = match &s.qk_heads {
            Some((q, k)) => (Some(q), Some(k)),
            None => (None, None),
        };
        let g_q = self.heads_backward(&g_q, a.q_norm.as_ref(), q_heads, &rope_op)?;
        let g_k = self.heads_backward(&g_k, a.k_norm.as_ref(), k_heads, &rope_op)?;
        let g_v = merge(&g_v)?;
        let g_h1 = match layout {
            Layout::Separate => {
                let g_h1 = back(0, &s.h1, &g_q, None)?;
                let g_h1 = back(1, &s.h1, &g_k, Some(g_h1))?;
                back(2, &s.h1, &g_v, Some(g_h1))?
            }
            Layout::Fused => back(
                0,
                &s.h1,
                &Tensor::cat(&[&g_q, &g_k, &g_v], D::Minus1)?,
                None,
            )?,
        };
        add(&g_x2, &normed_backward(&self.attn_norm, x, &g_h1)?)
    }
}

/// A decoder layer as one training node (see the module's notes).
pub struct LayerNode {
    pub layer: DecoderLayer,
    pub mask: LayerMask,
    pub rope: RopeTables,
    /// None: the backward recomputes the activations (gradient checkpointing). Some: the
    /// forward leaves them here for the backward, which is faster and holds them meanwhile.
    kept: Option<fused::Handoff<Saved>>,
}

impl Fused for LayerNode {
    fn name(&self) -> &'static str {
        "decoder-layer"
    }

    fn forward(&self, args: &[Tensor]) -> Result<Tensor> {
        let (y, saved) = self.layer.pass(&args[0], &self.mask, &self.rope, None)?;
        if let Some(slot) = &self.kept {
            slot.put(saved.lightened())?;
        }
        Ok(y)
    }

    /// Takes the kept activations, or recomputes the forward (the same dropout masks: they
    /// are seeded), then walks back.
    fn backward(
        &self,
        args: &[Tensor],
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        let kept = match &self.kept {
            Some(slot) => slot.take()?,
            None => None,
        };
        let saved = match kept {
            Some(saved) => saved,
            None => self.layer.pass(&args[0], &self.mask, &self.rope, None)?.1,
        };
        let gx = self
            .layer
            .pass_backward(&args[0], &saved, &self.rope, &grad.contiguous()?)?;
        Ok(vec![Some(gx)])
    }
}

impl Saved {
    /// Without what is cheaper to make again than to hold from the forward to the backward:
    /// the dequantized weights and the adapters' dropout inputs.
    fn lightened(mut self) -> Self {
        for (op, _, _) in self.projections.iter_mut().flatten() {
            op.forget_pass_caches();
        }
        self
    }
}

/// Runs `layer` on `x` as one graph node; `recompute` picks gradient checkpointing (the
/// backward recomputes the activations) over keeping them from the forward.
pub fn training_node(
    layer: &DecoderLayer,
    x: &Tensor,
    mask: &LayerMask,
    rope: &RopeTables,
    recompute: bool,
) -> Result<Tensor> {
    let op = LayerNode {
        layer: layer.clone(),
        mask: mask.clone(),
        rope: rope.clone(),
        kept: (!recompute).then(fused::Handoff::default),
    };
    // candle runs a node's backward only if some input leads to a variable. The first
    // layer's input (the embeddings) leads to none, so one of the layer's own adapter
    // weights goes in as a second input, which the node reads nothing from and gives no
    // gradient (its gradients go through the switch).
    let anchor = layer
        .linears()
        .iter()
        .find_map(|l| l.lora())
        .map(|l| l.a.as_tensor().clone());
    match &anchor {
        Some(a) => fused::apply(op, &[x, a]),
        None => fused::apply(op, &[x]),
    }
}

impl Linear {
    /// x Wᵀ plus the adapter's update while adapters are on, on a detached x: no graph.
    pub(crate) fn apply(&self, x: &Tensor) -> Result<Tensor> {
        self.apply_with(&self.lora_op(), x)
    }

    /// As `apply`, with the adapter op made beforehand.
    fn apply_with(&self, prepared: &Prepared, x: &Tensor) -> Result<Tensor> {
        let y = match prepared {
            Some((op, a, b)) => op.forward(&[x.clone(), a.clone(), b.clone()])?,
            None => self.base_forward(x)?,
        };
        self.add_bias(y)
    }

    /// The gradient of `apply_with`'s input from its output's `g`, plus `acc` (a tensor no one
    /// else holds); the adapter's own gradients go to the adapter switch.
    fn apply_backward_with(
        &self,
        prepared: &Prepared,
        x: &Tensor,
        g: &Tensor,
        acc: Option<Tensor>,
    ) -> Result<Tensor> {
        let Some((op, a, b)) = prepared else {
            return self.base_backward(g, acc);
        };
        let grads = op.backward_into(&[x.clone(), a.clone(), b.clone()], g, acc)?;
        let mut grads = grads.into_iter();
        let gx = grads.next().flatten();
        let (ga, gb) = (grads.next().flatten(), grads.next().flatten());
        let (Some(gx), Some(ga), Some(gb)) = (gx, ga, gb) else {
            candle_core::bail!("the LoRA backward gave no gradient");
        };
        if let Some(lora) = self.lora() {
            lora.hand_over_grads(ga, gb);
        }
        Ok(gx)
    }
}

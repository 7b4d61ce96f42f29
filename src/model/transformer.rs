//! The decoder every family runs: RMSNorm, RoPE, grouped-query attention, a gated MLP, tied
//! or untied output head, with the variations `family::Block` switches on (biases, q/k norms,
//! sandwich norms, GELU gating, scaled embeddings, sliding windows). Built only from ops that
//! have a backward pass, so the same forward serves generation and training.

use super::block::{checked, load_norm, DecoderLayer};
use super::config::ModelConfig;
use super::fused;
use super::layer_pass::training_node;
use super::linear::{BaseWeight, Linear};
use super::lora::{init_rng, targets_module, AdapterSwitch, LoraConfig, LoraLayer};
use super::mask::Masks;
use super::weights::{embed, tied_head, WeightStore};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};

#[derive(Debug, Clone)]
pub struct RmsNorm {
    /// The scale as applied: Gemma's (1 + w), everyone else's w.
    weight: Tensor,
    eps: f64,
    /// What the Hugging Face file's weight lacks of `weight`: 1 for Gemma, else 0.
    hf_offset: f64,
}

impl RmsNorm {
    pub(crate) fn new(weight: Tensor, eps: f64, hf_offset: f64) -> Self {
        Self {
            weight,
            eps,
            hf_offset,
        }
    }

    /// The scale as applied (llama.cpp stores this form for every family).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The scale as a Hugging Face file stores it.
    pub fn hf_weight(&self) -> Result<Tensor> {
        Ok((&self.weight - self.hf_offset)?)
    }

    /// x / sqrt(mean(x²) + eps) · w, normalised in f32 as Hugging Face does.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(fused::apply(self.op(), &[x])?)
    }

    /// The fused op this norm runs as.
    pub(crate) fn op(&self) -> fused::rms_norm::RmsNorm {
        fused::rms_norm::RmsNorm {
            weight: self.weight.clone(),
            eps: self.eps,
        }
    }
}

/// Positions whose cos/sin rows are computed once at load; rows past them are computed per
/// pass. A table for the whole context would cost max_position_embeddings × head_dim floats
/// twice over: 0.5 GB for a 1M-token context, gigabytes for a hostile header.
const ROPE_TABLE_POSITIONS: usize = 8192;

/// cos/sin tables for rotary embeddings in the Hugging Face (half-split) layout.
#[derive(Debug, Clone)]
struct Rope {
    /// 1 / theta^(2i/dim), shape (1, head_dim/2).
    inv_freq: Tensor,
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    /// The tables of the plain frequencies of `config` (its global layers' base, unscaled).
    #[cfg(test)]
    fn new(config: &ModelConfig, device: &Device) -> Result<Self> {
        let inv_freq =
            super::rope_scaling::RopeScaling::None.inv_freq(config.rope_theta, config.head_dim());
        Self::from_inv_freq(&inv_freq, config.max_position_embeddings, device)
    }

    /// The tables for these inverse frequencies, up to `context` positions.
    fn from_inv_freq(inv_freq: &[f64], context: usize, device: &Device) -> Result<Self> {
        let half = inv_freq.len();
        let inv_freq: Vec<f32> = inv_freq.iter().map(|&f| f as f32).collect();
        let inv_freq = Tensor::from_vec(inv_freq, (1, half), device)?;
        let stored = context.min(ROPE_TABLE_POSITIONS);
        let positions = Tensor::arange(0u32, stored as u32, device)?;
        let (cos, sin) = Self::compute(&inv_freq, &positions)?;
        Ok(Self { inv_freq, cos, sin })
    }

    /// cos/sin rows of shape (positions, head_dim/2) for u32 positions.
    fn compute(inv_freq: &Tensor, positions: &Tensor) -> Result<(Tensor, Tensor)> {
        let freqs = positions
            .to_dtype(DType::F32)?
            .unsqueeze(1)?
            .broadcast_mul(inv_freq)?;
        Ok((freqs.cos()?, freqs.sin()?))
    }

    /// The rows of the given positions (flat u32), from the table when they lie in it.
    fn rows(&self, positions: &[u32]) -> Result<(Tensor, Tensor)> {
        let device = self.cos.device();
        let index = Tensor::new(positions, device)?;
        let stored = self.cos.dim(0)?;
        if positions.iter().all(|&p| (p as usize) < stored) {
            return Ok((
                self.cos.index_select(&index, 0)?,
                self.sin.index_select(&index, 0)?,
            ));
        }
        Self::compute(&self.inv_freq, &index)
    }

    /// The cos/sin rows for one forward pass: positions offset..offset+seq shared by every
    /// row, or with left padding each row's own positions (a padded column gets position 0).
    fn tables(
        &self,
        batch: usize,
        seq: usize,
        offset: usize,
        pads: &[usize],
    ) -> Result<RopeTables> {
        if pads.iter().all(|&p| p == 0) {
            if offset + seq <= self.cos.dim(0)? {
                return Ok(RopeTables {
                    cos: self.cos.narrow(0, offset, seq)?,
                    sin: self.sin.narrow(0, offset, seq)?,
                });
            }
            let positions: Vec<u32> = (offset..offset + seq).map(|p| p as u32).collect();
            let (cos, sin) = self.rows(&positions)?;
            return Ok(RopeTables { cos, sin });
        }
        let positions: Vec<u32> = pads
            .iter()
            .flat_map(|&pad| (offset..offset + seq).map(move |c| c.saturating_sub(pad) as u32))
            .collect();
        let (cos, sin) = self.rows(&positions)?;
        let shape = |t: Tensor| -> Result<Tensor> {
            let half = t.dim(1)?;
            Ok(t.reshape((batch, 1, seq, half))?)
        };
        Ok(RopeTables {
            cos: shape(cos)?,
            sin: shape(sin)?,
        })
    }
}

/// cos/sin of shape (seq, head_dim/2), or (batch, 1, seq, head_dim/2) with per-row positions.
#[derive(Debug, Clone)]
pub(crate) struct RopeTables {
    cos: Tensor,
    sin: Tensor,
}

impl RopeTables {
    /// The op that rotates x of shape (batch, heads, seq, head_dim).
    pub(crate) fn op(&self) -> candle_core::Result<fused::rope::Rope> {
        let flat = |t: &Tensor| -> candle_core::Result<Tensor> {
            Ok(match t.dims() {
                [b, 1, s, half] => t.reshape((*b, *s, *half))?,
                _ => t.clone(),
            })
        };
        Ok(fused::rope::Rope {
            cos: flat(&self.cos)?,
            sin: flat(&self.sin)?,
        })
    }
}

/// Keys and values of past positions, one entry per layer.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
}

impl KvCache {
    pub fn new(num_layers: usize) -> Self {
        Self {
            layers: vec![None; num_layers],
        }
    }

    /// Number of positions already cached.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map_or(0, |(k, _)| k.dim(2).unwrap_or(0))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps only these batch rows, in this order: generation drops the rows that finished.
    pub fn keep_rows(&mut self, rows: &[usize]) -> Result<()> {
        let Some(device) = self
            .layers
            .iter()
            .flatten()
            .next()
            .map(|(k, _)| k.device().clone())
        else {
            return Ok(());
        };
        let index: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        let index = Tensor::from_vec(index, rows.len(), &device)?;
        for (k, v) in self.layers.iter_mut().flatten() {
            *k = k.index_select(&index, 0)?;
            *v = v.index_select(&index, 0)?;
        }
        Ok(())
    }
}

/// The global RoPE table (scaled as the config says) and, when some layers use another base,
/// theirs.
fn ropes(c: &ModelConfig, device: &Device) -> Result<(Rope, Option<Rope>)> {
    let dim = c.head_dim();
    let inv_freq = c.rope_scaling.inv_freq(c.rope_theta, dim);
    let context = c.max_position_embeddings;
    let global = Rope::from_inv_freq(&inv_freq, context, device)?;
    let local = match c.rope_local_theta {
        Some(theta) => {
            let plain = super::rope_scaling::RopeScaling::None.inv_freq(theta, dim);
            Some(Rope::from_inv_freq(&plain, context, device)?)
        }
        None => None,
    };
    Ok((global, local))
}

#[derive(Debug, Clone)]
pub struct Transformer {
    config: ModelConfig,
    embed_tokens: BaseWeight,
    pub layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    lm_head: Linear,
    /// The global layers' RoPE table, and the local one of Gemma 3's sliding layers.
    rope: Rope,
    rope_local: Option<Rope>,
    dtype: DType,
    device: Device,
    adapters: AdapterSwitch,
    /// How many layers, from the first, a training step checkpoints (recomputes in backward);
    /// the rest keep their activations from the forward. The last layers are the ones kept:
    /// the backward frees them first, before any recomputed layer's activations exist.
    checkpointed_layers: usize,
}

impl Transformer {
    pub fn load(store: &dyn WeightStore, mut config: ModelConfig, device: &Device) -> Result<Self> {
        config.validate()?;
        config.tie_word_embeddings = !store.contains("lm_head");
        let c = &config;
        // Not `with_capacity(num_hidden_layers)`: the count comes from the file's header, and a
        // corrupt one (up to 2^24 layers pass `validate`) would reserve gigabytes up front.
        let mut layers = Vec::new();
        for i in 0..c.num_hidden_layers {
            layers.push(DecoderLayer::load(store, c, i)?);
        }
        let embed_tokens = store.embedding("model.embed_tokens")?;
        let h = c.hidden_size;
        let embed_head = checked(
            tied_head(&embed_tokens)?,
            "model.embed_tokens",
            c.vocab_size,
            h,
        )?;
        let lm_head = if c.tie_word_embeddings {
            embed_head
        } else {
            checked(store.linear("lm_head")?, "lm_head", c.vocab_size, h)?
        };
        let (rope, rope_local) = ropes(c, device)?;
        Ok(Self {
            rope,
            rope_local,
            adapters: AdapterSwitch::default(),
            checkpointed_layers: c.num_hidden_layers,
            norm: load_norm(store, c, "model.norm", h)?,
            dtype: store.activation_dtype(device),
            device: device.clone(),
            embed_tokens,
            layers,
            lm_head,
            config,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Runs the hidden states in `dtype` (bf16 for training on CUDA); weights are unchanged.
    pub fn set_activation_dtype(&mut self, dtype: DType) {
        self.dtype = dtype;
    }

    /// How many layers, from the first, training checkpoints (all of them by default; see
    /// `GradientCheckpointing`).
    pub fn set_checkpointed_layers(&mut self, layers: usize) {
        self.checkpointed_layers = layers.min(self.layers.len());
    }

    pub fn checkpointed_layers(&self) -> usize {
        self.checkpointed_layers
    }

    /// Turns every LoRA adapter on or off, and dropout on or off.
    pub fn adapters(&self) -> &AdapterSwitch {
        &self.adapters
    }

    /// Each projection with its Hugging Face name (`model.layers.3.self_attn.q_proj`).
    pub fn named_linears_mut(&mut self) -> impl Iterator<Item = (String, &mut Linear)> {
        self.layers.iter_mut().enumerate().flat_map(|(i, layer)| {
            let names = layer.linear_names();
            names
                .iter()
                .zip(layer.linears_mut())
                .map(move |(name, l)| (format!("model.layers.{i}.{name}"), l))
        })
    }

    /// Each projection with its Hugging Face name, read-only.
    pub fn named_linears(&self) -> impl Iterator<Item = (String, &Linear)> {
        self.layers.iter().enumerate().flat_map(|(i, layer)| {
            layer
                .linear_names()
                .iter()
                .zip(layer.linears())
                .map(move |(name, l)| (format!("model.layers.{i}.{name}"), l))
        })
    }

    /// Puts fresh adapters (PEFT's initialisation, seeded) on the targeted projections.
    pub fn attach_lora(&mut self, config: &LoraConfig, seed: u64) -> Result<()> {
        let targets = config.targets()?;
        let mut rng = init_rng(seed);
        let (device, switch) = (self.device.clone(), self.adapters.clone());
        let mut adapted = 0;
        for (id, (name, linear)) in self.named_linears_mut().enumerate() {
            let targeted = targets.iter().any(|t| targets_module(t, &name));
            adapted += usize::from(targeted);
            let lora = if targeted {
                let shape = (linear.in_features(), linear.out_features());
                Some(LoraLayer::init(
                    shape, config, &mut rng, &device, &switch, id as u64,
                )?)
            } else {
                None
            };
            linear.set_lora(lora);
        }
        if adapted == 0 {
            let names = self.layers.first().map(|l| l.linear_names().join(", "));
            bail!(
                "target_modules {:?} match no projection of this model (its projections: {})",
                config.target_modules,
                names.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Quantizes every projection (not the embeddings or norms) to `dtype`.
    pub fn quantize_linears(&mut self, dtype: candle_core::quantized::GgmlDType) -> Result<()> {
        for (name, linear) in self.named_linears_mut() {
            linear
                .quantize(dtype)
                .with_context(|| format!("quantizing {name}"))?;
        }
        Ok(())
    }

    /// The trainable adapter weights, by Hugging Face module name, in layer order.
    pub fn lora_layers(&self) -> Vec<(String, &LoraLayer)> {
        self.named_linears()
            .filter_map(|(name, l)| l.lora().map(|lora| (name, lora)))
            .collect()
    }

    /// Every adapter's A and B, in layer order: what the optimiser trains.
    pub fn lora_vars(&self) -> Vec<candle_core::Var> {
        self.lora_layers()
            .iter()
            .flat_map(|(_, l)| [l.a.clone(), l.b.clone()])
            .collect()
    }

    pub fn embed_tokens(&self) -> &BaseWeight {
        &self.embed_tokens
    }

    pub fn lm_head(&self) -> &Linear {
        &self.lm_head
    }

    /// Final hidden states (batch, seq, hidden) for `ids` (batch, seq) at positions
    /// offset..offset+seq. With a cache, keys and values are appended to it.
    pub fn forward_hidden(
        &self,
        ids: &Tensor,
        offset: usize,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        self.forward_hidden_padded(ids, offset, &[], cache)
    }

    /// As `forward_hidden`, for a left-padded batch: row r's first `pads[r]` columns (of the
    /// cache and `ids` together) are padding, which no token attends to, and its tokens take
    /// positions from 0 at column pads[r]. Empty `pads` means no padding.
    pub fn forward_hidden_padded(
        &self,
        ids: &Tensor,
        offset: usize,
        pads: &[usize],
        mut cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let (batch, seq) = ids.dims2()?;
        if !pads.is_empty() && pads.len() != batch {
            bail!("{} padding lengths for a batch of {batch}", pads.len());
        }
        let shortest_pad = pads.iter().copied().min().unwrap_or(0);
        if (offset + seq).saturating_sub(shortest_pad) > self.config.max_position_embeddings {
            bail!(
                "sequence of {} tokens exceeds the model's context length {}",
                (offset + seq).saturating_sub(shortest_pad),
                self.config.max_position_embeddings
            );
        }
        let vocab = self.config.vocab_size as u32;
        if let Some(bad) = ids
            .flatten_all()?
            .to_vec1::<u32>()?
            .into_iter()
            .find(|&t| t >= vocab)
        {
            bail!("token id {bad} is outside the model's vocabulary of {vocab}");
        }
        let masks = Masks::new(&self.layers, seq, offset, pads, &self.device)?;
        // Training steps (adapters learning) run each layer as a graph node, the first
        // `checkpointed_layers` of them checkpointed; everything else runs the layers without
        // a graph.
        let training = self.adapters.training();
        let rope = self.rope.tables(batch, seq, offset, pads)?;
        let rope_local = match &self.rope_local {
            Some(r) => Some(r.tables(batch, seq, offset, pads)?),
            None => None,
        };
        let mut x = embed(&self.embed_tokens, ids, self.dtype)?;
        if self.config.family.block().scaled_embeddings {
            // As Gemma does: √hidden rounded to the activations' dtype first.
            let scale = Tensor::new(self.config.hidden_size as f32, &self.device)?
                .sqrt()?
                .to_dtype(self.dtype)?;
            x = x.broadcast_mul(&scale)?;
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| {
                if c.layers.len() != self.layers.len() {
                    c.layers = vec![None; self.layers.len()];
                }
                &mut c.layers[i]
            });
            let rope = match (&rope_local, layer.self_attn.local_rope) {
                (Some(local), true) => local,
                _ => &rope,
            };
            let mask = masks.of(layer);
            x = match layer_cache {
                None if training => {
                    let recompute = i < self.checkpointed_layers;
                    training_node(layer, &x, mask, rope, recompute)?
                }
                cache => layer.pass(&x, mask, rope, cache)?.0,
            };
        }
        self.norm.forward(&x)
    }

    /// The gradients of `loss` (a scalar computed from a forward in training mode): candle's
    /// backward, plus the adapter gradients the checkpointed layers handed to the switch.
    pub fn backward(&self, loss: &Tensor) -> Result<candle_core::backprop::GradStore> {
        drop(self.adapters.take_grads()); // anything left by a step that failed midway
        let mut store = loss.backward()?;
        for (var, grad) in self.adapters.take_grads() {
            let sum = match store.remove(&var) {
                Some(earlier) => (earlier + grad)?,
                None => grad,
            };
            store.insert(&var, sum);
        }
        Ok(store)
    }

    /// Logits for hidden states of shape (…, hidden), in the activation dtype: the losses
    /// turn them to f32 a chunk at a time.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        self.lm_head.forward(hidden)
    }

    /// Logits (batch, seq, vocab) for every position, in the activation dtype.
    pub fn forward(
        &self,
        ids: &Tensor,
        offset: usize,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let hidden = self.forward_hidden(ids, offset, cache)?;
        self.logits(&hidden)
    }

    /// Logits (batch, vocab), f32, of the last position only: what generation needs.
    pub fn forward_last(
        &self,
        ids: &Tensor,
        offset: usize,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        self.forward_last_padded(ids, offset, &[], cache)
    }

    /// As `forward_last`, for a left-padded batch (see `forward_hidden_padded`).
    pub fn forward_last_padded(
        &self,
        ids: &Tensor,
        offset: usize,
        pads: &[usize],
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let hidden = self.forward_hidden_padded(ids, offset, pads, cache)?;
        let seq = hidden.dim(1)?;
        let last = self.logits(&hidden.narrow(1, seq - 1, 1)?.squeeze(1)?)?;
        Ok(last.to_dtype(DType::F32)?)
    }

    /// Every weight as stored, under its Hugging Face name (`model.layers.0.mlp.up_proj.weight`),
    /// in file order; the tied head is left out, as Hugging Face files leave it out.
    pub fn weights(&self) -> Vec<(String, WeightRef<'_>)> {
        let mut out = vec![(
            "model.embed_tokens.weight".to_string(),
            WeightRef::Embedding(&self.embed_tokens),
        )];
        let norm_names = self.config.family.norm_names();
        for (i, layer) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{i}");
            for (name, l) in layer.linear_names().iter().zip(layer.linears()) {
                out.push((format!("{p}.{name}.weight"), WeightRef::Linear(l)));
                if let Some(b) = l.bias() {
                    out.push((format!("{p}.{name}.bias"), WeightRef::Vector(b)));
                }
            }
            for (name, n) in layer.norms(norm_names) {
                out.push((format!("{p}.{name}.weight"), WeightRef::Norm(n)));
            }
        }
        out.push(("model.norm.weight".into(), WeightRef::Norm(&self.norm)));
        if !self.config.tie_word_embeddings {
            out.push(("lm_head.weight".into(), WeightRef::Linear(&self.lm_head)));
        }
        out
    }

    /// Every weight as a dense tensor of `dtype`, under its Hugging Face name (quantized weights
    /// are dequantized; adapters are not merged).
    pub fn dense_weights(&self, dtype: DType) -> Result<Vec<(String, Tensor)>> {
        self.weights()
            .into_iter()
            .map(|(name, w)| Ok((name, w.dense(dtype)?)))
            .collect()
    }

    /// Parameters of the model, counted from its tensors.
    pub fn parameter_count(&self) -> usize {
        self.weights()
            .iter()
            .map(|(_, w)| w.shape().iter().product::<usize>())
            .sum()
    }
}

/// One stored weight of the model.
#[derive(Debug, Clone, Copy)]
pub enum WeightRef<'a> {
    /// A projection, with its adapter if it has one.
    Linear(&'a Linear),
    /// The token embedding table (vocab, hidden).
    Embedding(&'a BaseWeight),
    /// A norm's scale.
    Norm(&'a RmsNorm),
    /// A bias.
    Vector(&'a Tensor),
}

impl WeightRef<'_> {
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Self::Linear(l) => vec![l.out_features(), l.in_features()],
            Self::Embedding(BaseWeight::Quantized(q)) => q.shape().dims().to_vec(),
            Self::Embedding(BaseWeight::Dense(t)) => t.dims().to_vec(),
            Self::Norm(n) => n.weight().dims().to_vec(),
            Self::Vector(t) => t.dims().to_vec(),
        }
    }

    /// The base weight as a dense tensor of `dtype` (no adapter merged), as a Hugging Face
    /// file stores it.
    pub fn dense(&self, dtype: DType) -> Result<Tensor> {
        match self {
            Self::Linear(l) => l.dequantized(dtype),
            Self::Embedding(table) => Linear::new((*table).clone())?.dequantized(dtype),
            Self::Norm(n) => Ok(n.hf_weight()?.to_dtype(dtype)?),
            Self::Vector(t) => Ok(t.to_dtype(dtype)?),
        }
    }

    /// As `dense`, with norms in the form they apply (as llama.cpp stores them).
    pub fn dense_applied(&self, dtype: DType) -> Result<Tensor> {
        match self {
            Self::Norm(n) => Ok(n.weight().to_dtype(dtype)?),
            other => other.dense(dtype),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store without any tensor.
    struct Empty;

    impl WeightStore for Empty {
        fn linear(&self, name: &str) -> Result<Linear> {
            bail!("tensor {name} is missing")
        }
        fn vector(&self, name: &str) -> Result<Tensor> {
            bail!("tensor {name} is missing")
        }
        fn embedding(&self, name: &str) -> Result<BaseWeight> {
            bail!("tensor {name} is missing")
        }
        fn contains(&self, _name: &str) -> bool {
            false
        }
        fn activation_dtype(&self, _device: &Device) -> DType {
            DType::F32
        }
    }

    /// A header claiming 2^24 layers fails at the first missing tensor, without reserving
    /// room for 2^24 layers first (found by fuzz/ target gguf: a 4.9 GB allocation).
    #[test]
    fn huge_layer_count_fails_without_reserving_it() {
        let config = ModelConfig {
            vocab_size: 16,
            hidden_size: 8,
            intermediate_size: 16,
            num_hidden_layers: 1 << 24,
            num_attention_heads: 2,
            num_key_value_heads: 1,
            rope_theta: 10_000.0,
            rms_norm_eps: 1e-5,
            max_position_embeddings: 16,
            tie_word_embeddings: true,
            ..ModelConfig::default()
        };
        let err = Transformer::load(&Empty, config, &Device::Cpu).unwrap_err();
        assert!(format!("{err:#}").contains("model.layers.0"), "{err:#}");
    }

    fn rope_config(context: usize) -> ModelConfig {
        ModelConfig {
            vocab_size: 16,
            hidden_size: 8,
            intermediate_size: 16,
            num_hidden_layers: 1,
            num_attention_heads: 1,
            num_key_value_heads: 1,
            rope_theta: 10_000.0,
            rms_norm_eps: 1e-5,
            max_position_embeddings: context,
            tie_word_embeddings: true,
            ..ModelConfig::default()
        }
    }

    /// A 2^24-token context keeps an 8192-row table (found by fuzz/ target gguf: building the
    /// whole table took minutes and gigabytes), and rows past the table are the ones a whole
    /// table would hold: cos/sin of position × 10000^(-2i/8).
    #[test]
    fn rope_rows_past_the_table_are_computed_exactly() {
        let rope = Rope::new(&rope_config(1 << 24), &Device::Cpu).unwrap();
        assert_eq!(rope.cos.dim(0).unwrap(), ROPE_TABLE_POSITIONS);
        let at = |offset: usize, pads: &[usize]| {
            let t = rope.tables(pads.len().max(1), 2, offset, pads).unwrap();
            let flat = |x: &Tensor| x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (flat(&t.cos), flat(&t.sin))
        };
        for (offset, pads) in [(8190usize, &[][..]), (100_000, &[]), (100_000, &[0, 1])] {
            let (cos, sin) = at(offset, pads);
            let rows = pads.len().max(1);
            for r in 0..rows {
                for s in 0..2 {
                    let p = (offset + s - pads.get(r).copied().unwrap_or(0)) as f32;
                    for i in 0..4 {
                        let freq = p * (1.0 / 10_000f64.powf(2.0 * i as f64 / 8.0) as f32);
                        let k = (r * 2 + s) * 4 + i;
                        assert!((cos[k] - freq.cos()).abs() < 1e-6, "cos at {p}, {i}");
                        assert!((sin[k] - freq.sin()).abs() < 1e-6, "sin at {p}, {i}");
                    }
                }
            }
        }
    }
}

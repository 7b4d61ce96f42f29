//! The linear layer every projection of the model uses: a frozen base weight, stored either
//! quantized (GGUF blocks, kept as they are) or dense (bf16/f32 from safetensors).
//!
//! It is a type of the engine's own so that a LoRA adapter can wrap it without the model code
//! knowing whether the base is 4-bit or dense.

use super::fused::low_rank::product_plus;
use super::lora::LoraLayer;
use super::quantized_matmul::quantized_matmul;
use anyhow::Result;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Module, Tensor};
use std::sync::Arc;

/// A frozen weight of shape (out_features, in_features).
#[derive(Debug, Clone)]
pub enum BaseWeight {
    /// GGUF blocks as stored (Q4_1, Q8_0, …); multiplied with candle's quantized matmul.
    Quantized(Arc<QTensor>),
    /// A plain tensor (f32 or bf16).
    Dense(Tensor),
}

impl BaseWeight {
    /// The weight as a dense (out, in) matrix of `dtype` on `device`: a transient copy for a
    /// quantized weight. On the GPU, bf16 from the block types of the default models comes
    /// straight from the blocks (kernels.cu); other 16-bit targets go through candle's f16
    /// dequantize kernels, which write half the bytes of the f32 ones; the rest, and the
    /// CPU, go through f32.
    pub fn dense(&self, dtype: DType, device: &candle_core::Device) -> candle_core::Result<Tensor> {
        self.dense_with(dtype, device, None)
    }

    /// `dense` in `x`'s dtype on `x`'s device, for an activation `x` (which also serves the
    /// GPU kernel as the tensor a launch needs, so none is made for it).
    pub fn dense_for(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.dense_with(x.dtype(), x.device(), Some(x))
    }

    fn dense_with(
        &self,
        dtype: DType,
        device: &candle_core::Device,
        anchor: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        match self {
            BaseWeight::Quantized(q) => {
                if dtype == DType::BF16 && q.device().same_device(device) {
                    if let Some(w) = super::fused::kernels::dequantize_bf16(q, anchor)? {
                        return Ok(w);
                    }
                }
                let half = device.is_cuda() && matches!(dtype, DType::BF16 | DType::F16);
                let w = match half.then(|| q.dequantize_f16(device)) {
                    Some(Ok(w)) => w,
                    _ => q.dequantize(device)?,
                };
                w.to_dtype(dtype)
            }
            BaseWeight::Dense(w) => w.to_device(device)?.to_dtype(dtype),
        }
    }

    /// The gradient of x Wᵀ's input from its output's `g` (…, out): g W, as one (rows, out)
    /// · (out, in) product (a broadcast matmul would copy W once per batch row).
    pub fn input_grad(&self, g: &Tensor) -> candle_core::Result<Tensor> {
        self.input_grad_into(g, None)
    }

    /// `input_grad` plus `acc` when given (a tensor no one else holds; see
    /// `low_rank::product_plus`).
    pub fn input_grad_into(&self, g: &Tensor, acc: Option<Tensor>) -> candle_core::Result<Tensor> {
        let w = self.dense_for(g)?;
        let n = g.dim(candle_core::D::Minus1)?;
        let mut dims = g.dims().to_vec();
        *dims.last_mut().expect("g has dims") = w.dim(1)?;
        let g = g.contiguous()?.reshape(((), n))?;
        product_plus(&g, &w, acc)?.reshape(dims)
    }
}

#[derive(Debug, Clone)]
pub struct Linear {
    weight: BaseWeight,
    out_features: usize,
    in_features: usize,
    /// Added to the output (Qwen2's q, k and v projections); frozen, f32.
    bias: Option<Tensor>,
    lora: Option<LoraLayer>,
}

impl Linear {
    pub fn new(weight: BaseWeight) -> Result<Self> {
        let (out_features, in_features) = match &weight {
            BaseWeight::Quantized(q) => q.shape().dims2()?,
            BaseWeight::Dense(t) => t.dims2()?,
        };
        Ok(Self {
            weight,
            out_features,
            in_features,
            bias: None,
            lora: None,
        })
    }

    /// The layer with a bias of shape (out_features).
    pub fn with_bias(mut self, bias: Tensor) -> Result<Self> {
        if bias.dims() != [self.out_features] {
            anyhow::bail!(
                "bias of shape {:?} for a projection of {} outputs",
                bias.dims(),
                self.out_features
            );
        }
        self.bias = Some(bias.to_dtype(DType::F32)?);
        Ok(self)
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// `y` plus the bias, if the layer has one.
    pub(crate) fn add_bias(&self, y: Tensor) -> candle_core::Result<Tensor> {
        match &self.bias {
            Some(b) => y.broadcast_add(&b.to_dtype(y.dtype())?),
            None => Ok(y),
        }
    }

    pub fn lora(&self) -> Option<&LoraLayer> {
        self.lora.as_ref()
    }

    /// Wraps the layer with an adapter, replacing any it had.
    pub fn set_lora(&mut self, lora: Option<LoraLayer>) {
        self.lora = lora;
    }

    pub fn out_features(&self) -> usize {
        self.out_features
    }

    pub fn in_features(&self) -> usize {
        self.in_features
    }

    pub fn weight(&self) -> &BaseWeight {
        &self.weight
    }

    /// Replaces a dense weight by its quantized form (a quantized one stays as it is): how a
    /// bf16/f32 base becomes a 4-bit QLoRA base.
    pub fn quantize(&mut self, dtype: GgmlDType) -> Result<()> {
        if let BaseWeight::Dense(w) = &self.weight {
            let q = QTensor::quantize(&w.to_dtype(DType::F32)?, dtype)?;
            self.weight = BaseWeight::Quantized(Arc::new(q));
        }
        Ok(())
    }

    /// The storage type of the weight, for reports ("Q4_1", "BF16", …).
    pub fn storage_type(&self) -> String {
        match &self.weight {
            BaseWeight::Quantized(q) => ggml_type_name(q.dtype()).to_string(),
            BaseWeight::Dense(t) => format!("{:?}", t.dtype()).to_uppercase(),
        }
    }

    /// Bytes the weight occupies in memory.
    pub fn bytes(&self) -> usize {
        match &self.weight {
            BaseWeight::Quantized(q) => q.storage_size_in_bytes(),
            BaseWeight::Dense(t) => t.elem_count() * t.dtype().size_in_bytes(),
        }
    }

    /// The weight as a dense tensor of `dtype` (a transient copy for quantized weights).
    pub fn dequantized(&self, dtype: DType) -> Result<Tensor> {
        let device = match &self.weight {
            BaseWeight::Quantized(q) => q.device(),
            BaseWeight::Dense(t) => t.device().clone(),
        };
        Ok(self.weight.dense(dtype, &device)?)
    }

    /// The adapter's fused projection with A and B, while it applies.
    pub(crate) fn lora_op(
        &self,
    ) -> Option<(super::fused::lora_linear::LoraLinear, Tensor, Tensor)> {
        self.lora.as_ref().and_then(|l| l.op(&self.weight))
    }

    /// x Wᵀ without the adapter.
    pub(crate) fn base_forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match &self.weight {
            BaseWeight::Quantized(q) => quantized_matmul(q, x),
            BaseWeight::Dense(w) => x.broadcast_matmul(&w.to_dtype(x.dtype())?.t()?),
        }
    }

    /// The gradient of `base_forward`'s input from its output's `g`: g W, plus `acc`.
    pub(crate) fn base_backward(
        &self,
        g: &Tensor,
        acc: Option<Tensor>,
    ) -> candle_core::Result<Tensor> {
        self.weight.input_grad_into(g, acc)
    }

    /// y = x Wᵀ for x of shape (…, in_features), differentiable with respect to x.
    ///
    /// Quantized weights go through [`quantized_matmul`], which keeps x in full precision.
    /// candle's quantized kernel (kept as `forward_quantized_kernel`) quantizes the activations
    /// to Q8_1, and that error adds up over the layers: on SmolLM2-135M Q4_1 it moves logits
    /// by up to ~1.5 and changes greedy answers.
    ///
    /// With an adapter, its update is added, but A and B get no gradient here: training
    /// goes through the checkpointed layers (layer_pass.rs), which hand theirs over.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.apply(x)?)
    }

    pub fn forward_quantized_kernel(&self, x: &Tensor) -> Result<Tensor> {
        match &self.weight {
            BaseWeight::Quantized(q) => Ok(QMatMul::QTensor(q.clone()).forward(&x.contiguous()?)?),
            BaseWeight::Dense(_) => self.forward(x),
        }
    }
}

/// Formats a GGML storage type the way llama.cpp prints it.
pub fn ggml_type_name(dtype: GgmlDType) -> &'static str {
    match dtype {
        GgmlDType::F32 => "F32",
        GgmlDType::F16 => "F16",
        GgmlDType::BF16 => "BF16",
        GgmlDType::Q4_0 => "Q4_0",
        GgmlDType::Q4_1 => "Q4_1",
        GgmlDType::Q5_0 => "Q5_0",
        GgmlDType::Q5_1 => "Q5_1",
        GgmlDType::Q8_0 => "Q8_0",
        GgmlDType::Q8_1 => "Q8_1",
        GgmlDType::Q2K => "Q2_K",
        GgmlDType::Q3K => "Q3_K",
        GgmlDType::Q4K => "Q4_K",
        GgmlDType::Q5K => "Q5_K",
        GgmlDType::Q6K => "Q6_K",
        GgmlDType::Q8K => "Q8_K",
    }
}

//! The SFT loss: mean next-token cross-entropy over the completion tokens only.

use crate::model::fused::{self, label_logps::HeadLabelLogps};
use crate::model::linear::Linear;
use anyhow::{bail, Result};
use candle_core::{DType, Tensor};

/// The label of a position that carries no loss (prompt, padding), as transformers uses it.
pub const IGNORE_INDEX: i64 = -100;

/// Mean cross-entropy of the logits that `head` makes of `hidden` (batch, seq, hidden)
/// against `labels` (batch, seq; i64, the input ids with IGNORE_INDEX on masked positions). Position t predicts label t+1, exactly as
/// transformers' causal-LM loss shifts them. Computed without a read from the device, so
/// training can queue the backward while the forward still runs: a batch whose labels are all
/// masked gives NaN (callers skip such batches, whose loss tokens they count on the host).
pub fn causal_lm_loss(head: &Linear, hidden: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let (picked, mask) = label_log_probs(head, hidden, labels)?;
    let count = mask.sum_all()?;
    Ok(((picked * mask)?.sum_all()?.neg()? / count)?)
}

/// The log-probability each position gives the next label, (batch, seq − 1) f32, and the mask
/// (1 where that label counts, 0 on IGNORE_INDEX), the same shape. The logits are `head`
/// applied to `hidden` (batch, seq, hidden), made a chunk of rows at a time and never kept
/// (log-softmax in f32).
pub fn label_log_probs(
    head: &Linear,
    hidden: &Tensor,
    labels: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let (b, s, h) = hidden.dims3()?;
    let v = head.out_features();
    if labels.dims2()? != (b, s) {
        bail!(
            "labels {:?} do not match hidden states {:?}",
            labels.dims(),
            hidden.dims()
        );
    }
    if s < 2 {
        bail!("a sequence needs at least 2 tokens to predict one");
    }
    // Label t+1 for position t; the last position predicts nothing. Shifting the labels
    // rather than the logits keeps the logits as they are: no copy of the largest tensor.
    let labels = labels.to_dtype(DType::I64)?;
    let last = Tensor::full(IGNORE_INDEX, (b, 1), labels.device())?;
    let next = Tensor::cat(&[labels.narrow(1, 1, s - 1)?, last], 1)?;
    let mask = next.ne(IGNORE_INDEX)?.to_dtype(DType::F32)?;
    let targets = next
        .clamp(0i64, v as i64 - 1)?
        .to_dtype(DType::U32)?
        .flatten_all()?;
    // Training (a hidden state on the graph) has the forward make the gradient too.
    let op = HeadLabelLogps::new(head.weight().clone(), targets, hidden.track_op());
    let picked = fused::apply(op, &[&hidden.reshape((b * s, h))?])?.reshape((b, s))?;
    Ok((picked.narrow(1, 0, s - 1)?, mask.narrow(1, 0, s - 1)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::linear::BaseWeight;
    use candle_core::Device;

    #[test]
    fn masked_positions_carry_no_loss() {
        let dev = Device::Cpu;
        // A zero head makes uniform logits over 4 tokens: every predicted token costs ln 4.
        let head = Tensor::zeros((4, 2), DType::F32, &dev).unwrap();
        let head = Linear::new(BaseWeight::Dense(head)).unwrap();
        let hidden = Tensor::ones((1, 3, 2), DType::F32, &dev).unwrap();
        let labels = Tensor::new(&[[IGNORE_INDEX, 2, IGNORE_INDEX]], &dev).unwrap();
        let loss = causal_lm_loss(&head, &hidden, &labels)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((loss - 4f32.ln()).abs() < 1e-6);
        let all_masked = Tensor::new(&[[IGNORE_INDEX; 3]], &dev).unwrap();
        let loss = causal_lm_loss(&head, &hidden, &all_masked).unwrap();
        assert!(loss.to_scalar::<f32>().unwrap().is_nan());
    }
}

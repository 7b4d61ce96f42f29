//! Attention masks for one forward pass: plain causal, with left padding, and through a
//! sliding window, built once per pass and shared by the layers that use each.

use super::block::DecoderLayer;
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};

/// What one layer's attention may see.
#[derive(Debug, Clone)]
pub struct LayerMask {
    /// Additive f32 mask, or None when every key is visible (one query, no padding).
    pub tensor: Option<Tensor>,
    /// Whether the mask is plain causal (query i sees keys up to offset + i), which the GPU's
    /// softmax kernels apply without reading it.
    pub causal: bool,
}

/// The masks of a pass: the full one, and one per sliding window that hides some key.
pub struct Masks {
    full: LayerMask,
    windowed: Vec<(usize, LayerMask)>,
}

impl Masks {
    pub fn new(
        layers: &[DecoderLayer],
        seq: usize,
        offset: usize,
        pads: &[usize],
        device: &Device,
    ) -> Result<Self> {
        let padded = pads.iter().any(|&p| p > 0);
        let full = LayerMask {
            tensor: attention_mask(seq, offset, pads, None, device)?,
            causal: !padded,
        };
        let mut windowed: Vec<(usize, LayerMask)> = Vec::new();
        for layer in layers {
            let Some(window) = layer.self_attn.window else {
                continue;
            };
            // A window at least as long as the whole sequence hides nothing.
            if window >= offset + seq || windowed.iter().any(|(w, _)| *w == window) {
                continue;
            }
            let tensor = attention_mask(seq, offset, pads, Some(window), device)?;
            windowed.push((
                window,
                LayerMask {
                    tensor,
                    causal: false,
                },
            ));
        }
        Ok(Self { full, windowed })
    }

    pub fn of(&self, layer: &DecoderLayer) -> &LayerMask {
        layer
            .self_attn
            .window
            .and_then(|w| self.windowed.iter().find(|(x, _)| *x == w))
            .map_or(&self.full, |(_, m)| m)
    }
}

/// Additive mask, -inf where a query may not look: at a later position, (with left padding)
/// at a padded column, or (with a window) `window` or more columns back, as transformers'
/// sliding-window overlay hides them. Shape (seq, offset + seq) without padding, else
/// (batch, 1, seq, offset + seq). A padded query still sees itself, so its softmax row is
/// never all -inf; nothing reads what it computes.
fn attention_mask(
    seq: usize,
    offset: usize,
    pads: &[usize],
    window: Option<usize>,
    device: &Device,
) -> Result<Option<Tensor>> {
    let padded = pads.iter().any(|&p| p > 0);
    if seq <= 1 && !padded && window.is_none() {
        return Ok(None);
    }
    let total = offset + seq;
    let window = window.unwrap_or(usize::MAX);
    let rows: &[usize] = if padded { pads } else { &[0] };
    let data: Vec<f32> = rows
        .iter()
        .flat_map(|&pad| {
            (0..seq).flat_map(move |i| {
                let query = i + offset;
                (0..total).map(move |j| {
                    let hidden = j > query || (j < pad && j != query) || query - j >= window;
                    if hidden {
                        f32::NEG_INFINITY
                    } else {
                        0.0
                    }
                })
            })
        })
        .collect();
    let mask = if padded {
        Tensor::from_vec(data, (pads.len(), 1, seq, total), device)
    } else {
        Tensor::from_vec(data, (seq, total), device)
    };
    Ok(Some(mask.context("building the attention mask")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Query 4 of a window of 3 sees keys 2, 3 and 4 only.
    #[test]
    fn a_window_hides_keys_that_far_back() {
        let m = attention_mask(5, 0, &[], Some(3), &Device::Cpu)
            .unwrap()
            .unwrap();
        let row: Vec<f32> = m.get(4).unwrap().to_vec1().unwrap();
        let seen: Vec<bool> = row.iter().map(|v| v.is_finite()).collect();
        assert_eq!(seen, [false, false, true, true, true]);
        let one = attention_mask(1, 6, &[], Some(3), &Device::Cpu)
            .unwrap()
            .unwrap();
        let seen: Vec<bool> = one
            .get(0)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.is_finite())
            .collect();
        assert_eq!(seen, [false, false, false, false, true, true, true]);
    }
}

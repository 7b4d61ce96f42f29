//! AdamW (torch.optim.AdamW's update, decoupled weight decay) whose state can be saved and
//! restored for resume, and global-norm gradient clipping.

use anyhow::{bail, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWParams {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWParams {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

pub struct AdamW {
    params: AdamWParams,
    step_t: usize,
    /// (parameter, first moment, second moment), moments in f32.
    state: Vec<(Var, Tensor, Tensor)>,
}

impl AdamW {
    pub fn new(vars: Vec<Var>, params: AdamWParams) -> Result<Self> {
        let state = vars
            .into_iter()
            .map(|v| {
                let zeros = Tensor::zeros(v.shape(), DType::F32, v.device())?;
                Ok((v, zeros.clone(), zeros))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            params,
            step_t: 0,
            state,
        })
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.params.lr = lr;
    }

    pub fn steps_taken(&self) -> usize {
        self.step_t
    }

    /// p ← p·(1 − lr·wd); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
    /// p ← p − lr · m̂ / (√v̂ + ε), with m̂, v̂ bias-corrected.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step_t += 1;
        let p = self.params;
        let bias1 = 1.0 - p.beta1.powi(self.step_t as i32);
        let bias2 = 1.0 - p.beta2.powi(self.step_t as i32);
        for (var, m, v) in self.state.iter_mut() {
            let Some(g) = grads.get(var) else { continue };
            let g = g.to_dtype(DType::F32)?;
            *m = ((&*m * p.beta1)? + (&g * (1.0 - p.beta1))?)?;
            *v = ((&*v * p.beta2)? + (g.sqr()? * (1.0 - p.beta2))?)?;
            let update = ((&*m / bias1)? / ((&*v / bias2)?.sqrt()? + p.eps)?)?;
            let decayed = (var.as_tensor() * (1.0 - p.lr * p.weight_decay))?;
            var.set(&(decayed - (update * p.lr)?)?)?;
        }
        Ok(())
    }

    /// Moments as named tensors ("m.0", "v.0", …, in parameter order) for a checkpoint.
    pub fn state_tensors(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (i, (_, m, v)) in self.state.iter().enumerate() {
            out.insert(format!("m.{i}"), m.clone());
            out.insert(format!("v.{i}"), v.clone());
        }
        out
    }

    /// Restores what `state_tensors` saved, after `steps` optimiser steps.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, steps: usize) -> Result<()> {
        for (i, (var, m, v)) in self.state.iter_mut().enumerate() {
            for (name, slot) in [("m", &mut *m), ("v", &mut *v)] {
                let t = tensors
                    .get(&format!("{name}.{i}"))
                    .with_context(|| format!("optimizer state {name}.{i} is missing"))?;
                if t.shape() != var.shape() {
                    bail!(
                        "optimizer state {name}.{i} has shape {:?}, expected {:?}",
                        t.dims(),
                        var.dims()
                    );
                }
                *slot = t.to_device(var.device())?.to_dtype(DType::F32)?;
            }
        }
        self.step_t = steps;
        Ok(())
    }
}

/// Scales the gradients of `vars` so their global L2 norm is at most `max_norm` (as
/// torch.nn.utils.clip_grad_norm_: factor max_norm / (norm + 1e-6) when the norm exceeds
/// it). Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    let mut total = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v) {
            total += g
                .to_dtype(DType::F64)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f64>()?;
        }
    }
    let norm = total.sqrt();
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        for v in vars {
            if let Some(g) = grads.remove(v) {
                grads.insert(v, (g * factor)?);
            }
        }
    }
    Ok(norm)
}

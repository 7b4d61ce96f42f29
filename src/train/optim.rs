//! AdamW (torch.optim.AdamW's update, decoupled weight decay) whose state can be saved and
//! restored for resume, and global-norm gradient clipping.

use crate::model::fused::kernels::TensorList;
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

/// Elements per partial sum of the gradient norm.
const NORM_ROW: usize = 4096;

/// The gradients of a list of parameters, in its order, as one flat f32 vector: clipping and
/// the optimiser then run a handful of kernels over it instead of a dozen per parameter (a
/// LoRA on every projection of a 30-layer model has 420 parameters).
pub struct FlatGrads {
    flat: Tensor,
    shapes: Vec<candle_core::Shape>,
}

impl FlatGrads {
    /// Concatenates each var's gradient; a var without one contributes zeros. On the GPU
    /// one kernel copies them all.
    pub fn gather(grads: &GradStore, vars: &[Var]) -> Result<Self> {
        let shapes = vars.iter().map(|v| v.shape().clone()).collect();
        let device = vars.first().context("no parameters to optimise")?.device();
        let list: Vec<_> = vars
            .iter()
            .map(|v| (grads.get(v), v.elem_count()))
            .collect();
        if let Some(list) = TensorList::new(&list, device)? {
            return Ok(Self {
                flat: list.gather()?,
                shapes,
            });
        }
        let parts = vars
            .iter()
            .map(|v| match grads.get(v) {
                Some(g) => g.to_dtype(DType::F32)?.flatten_all(),
                None => Tensor::zeros(v.elem_count(), DType::F32, v.device()),
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            flat: Tensor::cat(&parts, 0)?,
            shapes,
        })
    }

    /// The gradient of parameter `i`.
    pub fn part(&self, i: usize) -> Result<Tensor> {
        let start: usize = self.shapes[..i].iter().map(|s| s.elem_count()).sum();
        let shape = &self.shapes[i];
        Ok(self
            .flat
            .narrow(0, start, shape.elem_count())?
            .reshape(shape)?)
    }

    /// Scales the gradients so their global L2 norm is at most `max_norm`, as
    /// torch.nn.utils.clip_grad_norm_ does (factor max_norm / (norm + 1e-6) when the norm
    /// exceeds it). Returns the norm before clipping as an f64 scalar still on the device, so
    /// the optimiser step is queued before anything waits for it.
    pub fn clip(&mut self, max_norm: f64) -> Result<Tensor> {
        // Row sums of squares in f32 (a reduction over all of a long vector at once runs on
        // one block of the GPU), then their total in f64.
        let n = self.flat.elem_count();
        let cols = NORM_ROW.min(n);
        let full = n / cols * cols;
        let mut squares = self
            .flat
            .narrow(0, 0, full)?
            .reshape((full / cols, cols))?
            .sqr()?
            .sum(1)?;
        if full < n {
            let tail = self.flat.narrow(0, full, n - full)?.sqr()?.sum_keepdim(0)?;
            squares = Tensor::cat(&[squares, tail], 0)?;
        }
        let norm = squares.to_dtype(DType::F64)?.sum_all()?.sqrt()?;
        let factor = ((norm.affine(1.0, 1e-6)?.recip()? * max_norm)?.clamp(0.0, 1.0))?;
        self.flat = self.flat.broadcast_mul(&factor.to_dtype(DType::F32)?)?;
        Ok(norm)
    }
}

/// Splits a flat vector into tensors of `vars`' shapes.
fn split(flat: &Tensor, vars: &[Var]) -> Result<Vec<Tensor>> {
    let mut start = 0;
    let mut out = Vec::with_capacity(vars.len());
    for v in vars {
        let n = v.elem_count();
        out.push(flat.narrow(0, start, n)?.reshape(v.shape())?);
        start += n;
    }
    Ok(out)
}

pub struct AdamW {
    params: AdamWParams,
    step_t: usize,
    vars: Vec<Var>,
    /// First and second moments of every parameter, flat in `vars` order, f32.
    m: Tensor,
    v: Tensor,
    /// The parameters for the one-kernel step on the GPU (None on the CPU). Their addresses
    /// hold: a Var's storage is written in place, never replaced.
    params_list: Option<TensorList>,
}

impl AdamW {
    pub fn new(vars: Vec<Var>, params: AdamWParams) -> Result<Self> {
        let total: usize = vars.iter().map(|v| v.elem_count()).sum();
        let device = vars.first().context("no parameters to optimise")?.device();
        let list: Vec<_> = vars
            .iter()
            .map(|v| (Some(v.as_tensor()), v.elem_count()))
            .collect();
        let list = TensorList::new(&list, device)?;
        // Two tensors: the GPU step updates them in place.
        Ok(Self {
            params,
            step_t: 0,
            m: Tensor::zeros(total, DType::F32, device)?,
            v: Tensor::zeros(total, DType::F32, device)?,
            vars,
            params_list: list,
        })
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.params.lr = lr;
    }

    pub fn steps_taken(&self) -> usize {
        self.step_t
    }

    /// p ← p·(1 − lr·wd); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
    /// p ← p − lr · m̂ / (√v̂ + ε), with m̂, v̂ bias-corrected. All parameters at once, on
    /// the flat vectors.
    pub fn step(&mut self, grads: &FlatGrads) -> Result<()> {
        self.step_t += 1;
        let p = self.params;
        let bias1 = 1.0 - p.beta1.powi(self.step_t as i32);
        let bias2 = 1.0 - p.beta2.powi(self.step_t as i32);
        let g = &grads.flat;
        if let Some(list) = self.params_list.as_ref().filter(|_| g.device().is_cuda()) {
            let hyper = [p.lr, p.beta1, p.beta2, p.eps, p.weight_decay, bias1, bias2];
            list.adamw(g, &self.m, &self.v, hyper.map(|x| x as f32))?;
            return Ok(());
        }
        self.m = ((&self.m * p.beta1)? + (g * (1.0 - p.beta1))?)?;
        self.v = ((&self.v * p.beta2)? + (g.sqr()? * (1.0 - p.beta2))?)?;
        let denom = ((&self.v / bias2)?.sqrt()? + p.eps)?;
        let update = ((&self.m / (bias1 / p.lr))? / denom)?;
        let flat_params = self
            .vars
            .iter()
            .map(|v| v.as_tensor().flatten_all())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let decayed = (Tensor::cat(&flat_params, 0)? * (1.0 - p.lr * p.weight_decay))?;
        let updated = (decayed - update)?;
        for (var, new) in self.vars.iter().zip(split(&updated, &self.vars)?) {
            var.set(&new)?;
        }
        Ok(())
    }

    /// Moments as named tensors ("m.0", "v.0", …, in parameter order) for a checkpoint.
    pub fn state_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (name, flat) in [("m", &self.m), ("v", &self.v)] {
            for (i, t) in split(flat, &self.vars)?.into_iter().enumerate() {
                out.insert(format!("{name}.{i}"), t);
            }
        }
        Ok(out)
    }

    /// Restores what `state_tensors` saved, after `steps` optimiser steps.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, steps: usize) -> Result<()> {
        let device = self.m.device().clone();
        for name in ["m", "v"] {
            let mut parts = Vec::with_capacity(self.vars.len());
            for (i, var) in self.vars.iter().enumerate() {
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
                parts.push(t.to_device(&device)?.to_dtype(DType::F32)?.flatten_all()?);
            }
            let flat = Tensor::cat(&parts, 0)?;
            match name {
                "m" => self.m = flat,
                _ => self.v = flat,
            }
        }
        self.step_t = steps;
        Ok(())
    }
}

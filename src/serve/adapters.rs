//! Several adapters on one copy of the base weights. Each adapter's LoRA layers are loaded
//! once and kept; choosing an adapter puts its layers on the model's projections (no copy of
//! any tensor), and the base runs with the model's adapter switch off.

use super::catalog::Served;
use crate::model::lora::LoraLayer;
use crate::model::peft::load_adapter;
use crate::model::Transformer;
use anyhow::{Context, Result};
use std::path::PathBuf;

pub struct AdapterBank {
    /// Per adapter, the LoRA layer of each projection (in `named_linears` order), if any.
    layers: Vec<Vec<Option<LoraLayer>>>,
    /// The adapter whose layers the model holds now.
    on_model: Option<usize>,
}

impl AdapterBank {
    /// Loads each adapter (whose base was checked) and keeps its layers.
    pub fn load(model: &mut Transformer, dirs: &[PathBuf]) -> Result<Self> {
        let mut layers = Vec::with_capacity(dirs.len());
        for dir in dirs {
            load_adapter(model, dir).with_context(|| format!("loading {}", dir.display()))?;
            layers.push(
                model
                    .named_linears()
                    .map(|(_, linear)| linear.lora().cloned())
                    .collect(),
            );
        }
        model.adapters().set_training(false);
        Ok(Self {
            on_model: layers.len().checked_sub(1),
            layers,
        })
    }

    /// Makes the model run as `served`.
    pub fn select(&mut self, model: &mut Transformer, served: Served) {
        match served {
            Served::Base => model.adapters().set_enabled(false),
            Served::Adapter(i) => {
                if self.on_model != Some(i) {
                    for ((_, linear), lora) in model.named_linears_mut().zip(&self.layers[i]) {
                        linear.set_lora(lora.clone());
                    }
                    self.on_model = Some(i);
                }
                model.adapters().set_enabled(true);
            }
        }
    }
}

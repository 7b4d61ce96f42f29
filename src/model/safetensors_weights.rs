//! Weights from a Hugging Face folder: `*.safetensors` files with Hugging Face tensor names.

use super::linear::{BaseWeight, Linear};
use super::weights::WeightStore;
use anyhow::{bail, Context, Result};
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use std::path::{Path, PathBuf};

pub struct SafetensorsStore {
    files: Vec<PathBuf>,
    tensors: MmapedSafetensors,
    device: Device,
    dtype: DType,
}

impl SafetensorsStore {
    /// Maps every `*.safetensors` file of `folder`. Weights load as bf16 on CUDA, f32 on CPU.
    pub fn open(folder: &Path, device: &Device) -> Result<Self> {
        let dtype = if device.is_cuda() {
            DType::BF16
        } else {
            DType::F32
        };
        Self::open_as(folder, device, dtype)
    }

    /// The same, with weights and activations in `dtype`.
    pub fn open_as(folder: &Path, device: &Device, dtype: DType) -> Result<Self> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
            .with_context(|| format!("{}: cannot read folder", folder.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("{}: no *.safetensors files", folder.display());
        }
        // SAFETY: the files are mapped read-only; the engine never writes to a model file.
        let tensors = unsafe { MmapedSafetensors::multi(&files) }.map_err(|e| {
            anyhow::anyhow!(
                "{}: corrupt or truncated safetensors: {e}",
                folder.display()
            )
        })?;
        Ok(Self {
            files,
            tensors,
            device: device.clone(),
            dtype,
        })
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    fn load(&self, name: &str) -> Result<Tensor> {
        self.load_full(&format!("{name}.weight"))
    }

    fn load_full(&self, full: &str) -> Result<Tensor> {
        let t = self.tensors.load(full, &self.device).with_context(|| {
            format!(
                "{}: tensor {full}",
                self.files[0].parent().unwrap_or(Path::new(".")).display()
            )
        })?;
        Ok(t)
    }
}

impl WeightStore for SafetensorsStore {
    fn linear(&self, name: &str) -> Result<Linear> {
        Linear::new(BaseWeight::Dense(self.load(name)?.to_dtype(self.dtype)?))
    }

    fn vector(&self, name: &str) -> Result<Tensor> {
        Ok(self.load(name)?.to_dtype(DType::F32)?)
    }

    fn embedding(&self, name: &str) -> Result<BaseWeight> {
        Ok(BaseWeight::Dense(self.load(name)?.to_dtype(self.dtype)?))
    }

    fn bias(&self, name: &str) -> Result<Tensor> {
        Ok(self
            .load_full(&format!("{name}.bias"))?
            .to_dtype(DType::F32)?)
    }

    fn contains(&self, name: &str) -> bool {
        self.tensors.get(&format!("{name}.weight")).is_ok()
    }

    fn activation_dtype(&self, _device: &Device) -> DType {
        self.dtype
    }
}

//! Choosing where tensors live: the CPU, or a CUDA device when this binary was built with `cuda`.

use anyhow::{bail, Result};
use candle_core::Device;

/// What the user asked for on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DeviceChoice {
    /// CUDA when built with it and a GPU answers, the CPU otherwise.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

/// Whether this binary was compiled with CUDA support.
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

/// Opens the device for `choice`. `Cuda` fails with a clear reason; `Auto` never fails.
pub fn open(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda => {
            if !CUDA_BUILT {
                bail!("--device cuda: this tunelab was built without CUDA (rebuild with `--features cuda`)");
            }
            cuda(0).map_err(|e| anyhow::anyhow!("--device cuda: no usable CUDA device: {e}"))
        }
        DeviceChoice::Auto => Ok(if CUDA_BUILT {
            cuda(0).unwrap_or(Device::Cpu)
        } else {
            Device::Cpu
        }),
    }
}

/// GPU `ordinal` with one stream of its own, which every thread's work goes to (the TUI loads
/// on one thread and trains on another). With one stream, cudarc's per-allocation events,
/// which order work across streams, are pure cost — a few microseconds on each of the
/// thousands of ops a training step launches — so they are turned off.
fn cuda(ordinal: usize) -> candle_core::Result<Device> {
    let device = Device::new_cuda_with_stream(ordinal)?;
    #[cfg(feature = "cuda")]
    if let Device::Cuda(gpu) = &device {
        // SAFETY: all work on this device is queued on its one stream, in program order, so
        // no slice is used or freed on one stream while another still works on it.
        unsafe { gpu.disable_event_tracking() };
    }
    Ok(device)
}

/// A short name for messages: "cpu" or "cuda:0".
pub fn describe(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

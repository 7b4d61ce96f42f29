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
            new_cuda().map_err(|e| anyhow::anyhow!("--device cuda: no usable CUDA device: {e}"))
        }
        DeviceChoice::Auto => Ok(if CUDA_BUILT {
            new_cuda().unwrap_or(Device::Cpu)
        } else {
            Device::Cpu
        }),
    }
}

/// GPU 0, set up for many small allocations on one stream.
fn new_cuda() -> Result<Device> {
    let device = Device::new_cuda(0)?;
    #[cfg(feature = "cuda")]
    if let Device::Cuda(cuda) = &device {
        use candle_core::cuda_backend::cudarc::driver::{result, sys};
        // cudarc gives every allocation two events for ordering uses across streams; tunelab
        // runs on one stream, so they are pure cost (thousands of allocations a step).
        // SAFETY: every tensor of this device lives and is used on its one stream.
        unsafe { cuda.disable_event_tracking() };
        // Keep freed blocks in the driver's pool across synchronisations instead of giving
        // them back at each one (the default), which re-maps memory at every training step.
        let mut keep_all = u64::MAX;
        // SAFETY: the pool of a device cuDeviceGet returned; the attribute takes a u64.
        unsafe {
            let pool = result::device::get_default_mem_pool(result::device::get(0)?)?;
            sys::cuMemPoolSetAttribute(
                pool,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                (&mut keep_all as *mut u64).cast(),
            )
            .result()?;
        }
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

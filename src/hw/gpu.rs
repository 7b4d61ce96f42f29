//! Reading NVIDIA GPUs through NVML. Every call that can fail gives `None` (or an empty list),
//! so a GPU that answers only some questions still shows what it can.

use super::probe::{GpuInfo, GpuProcess, NvmlStatus};
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};
use std::sync::OnceLock;

/// What the driver says about itself and its GPUs, read once at probe time.
pub(super) struct DriverReading {
    pub status: NvmlStatus,
    pub driver_version: Option<String>,
    pub cuda_driver_version: Option<String>,
    pub gpus: Vec<GpuInfo>,
}

/// NVML, opened on first use and kept for the life of the process: nvmlInit costs
/// hundreds of milliseconds with a driver, too much to repeat on every once-a-second refresh.
/// nvml-wrapper loads libnvidia-ml at run time, so a machine without a driver gets the
/// reason here instead of a link failure.
fn nvml() -> Result<&'static Nvml, &'static str> {
    static NVML: OnceLock<Result<Nvml, String>> = OnceLock::new();
    NVML.get_or_init(|| Nvml::init().map_err(|e| why_nvml_failed(&e)))
        .as_ref()
        .map_err(String::as_str)
}

fn why_nvml_failed(error: &NvmlError) -> String {
    match error {
        // The loader's own message names the file; users need the cause.
        NvmlError::LibloadingError(_) => "NVML library not found (no NVIDIA driver)".into(),
        NvmlError::DriverNotLoaded => "the NVIDIA kernel driver is not loaded".into(),
        NvmlError::NoPermission => "no permission to talk to the NVIDIA driver".into(),
        other => format!("NVML did not start: {other}"),
    }
}

pub(super) fn read_driver() -> DriverReading {
    let nvml = match nvml() {
        Ok(nvml) => nvml,
        Err(reason) => return DriverReading::without_nvml(reason.to_string()),
    };
    let count = match nvml.device_count() {
        Ok(count) => count,
        Err(e) => return DriverReading::without_nvml(format!("NVML could not count GPUs: {e}")),
    };
    DriverReading {
        status: NvmlStatus {
            available: true,
            reason: None,
        },
        driver_version: nvml.sys_driver_version().ok(),
        cuda_driver_version: nvml.sys_cuda_driver_version().ok().map(|v| {
            format!(
                "{}.{}",
                nvml_wrapper::cuda_driver_version_major(v),
                nvml_wrapper::cuda_driver_version_minor(v)
            )
        }),
        gpus: (0..count).map(|index| read_gpu(nvml, index)).collect(),
    }
}

impl DriverReading {
    fn without_nvml(reason: String) -> Self {
        DriverReading {
            status: NvmlStatus {
                available: false,
                reason: Some(reason),
            },
            driver_version: None,
            cuda_driver_version: None,
            gpus: Vec::new(),
        }
    }
}

fn read_gpu(nvml: &Nvml, index: u32) -> GpuInfo {
    let mut gpu = GpuInfo::unread(index);
    // A GPU NVML counts but cannot open (lost off the bus, no permission) stays listed with
    // every field empty, so the user sees it exists.
    if let Ok(device) = nvml.device_by_index(index) {
        gpu.name = device.name().ok();
        gpu.uuid = device.uuid().ok();
        gpu.memory_total_bytes = device.memory_info().ok().map(|m| m.total);
        gpu.power_limit_w = device.enforced_power_limit().ok().map(milliwatts_to_watts);
        gpu.compute_capability = device
            .cuda_compute_capability()
            .ok()
            .map(|cc| format!("{}.{}", cc.major, cc.minor));
        gpu.pcie_gen = device.current_pcie_link_gen().ok();
        gpu.pcie_width = device.current_pcie_link_width().ok();
        read_changing(&device, &mut gpu);
    }
    gpu
}

/// Re-reads the fields that change while a job runs. Without NVML the report is left as it is.
pub(super) fn refresh_gpus(gpus: &mut [GpuInfo]) {
    let Ok(nvml) = nvml() else { return };
    for gpu in gpus {
        match nvml.device_by_index(gpu.index) {
            Ok(device) => read_changing(&device, gpu),
            Err(_) => gpu.clear_changing(),
        }
    }
}

fn read_changing(device: &Device, gpu: &mut GpuInfo) {
    let memory = device.memory_info().ok();
    gpu.memory_used_bytes = memory.as_ref().map(|m| m.used);
    gpu.memory_free_bytes = memory.as_ref().map(|m| m.free);
    gpu.utilization_percent = device.utilization_rates().ok().map(|u| u.gpu);
    gpu.temperature_c = device.temperature(TemperatureSensor::Gpu).ok();
    gpu.power_draw_w = device.power_usage().ok().map(milliwatts_to_watts);
    gpu.processes = processes(device);
}

/// Compute and graphics processes together, each pid once: a process that does both is
/// listed by both calls, with the same memory.
fn processes(device: &Device) -> Vec<GpuProcess> {
    let compute = device.running_compute_processes().unwrap_or_default();
    let graphics = device.running_graphics_processes().unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    compute
        .into_iter()
        .chain(graphics)
        .filter(|p| seen.insert(p.pid))
        .map(|p| GpuProcess {
            pid: p.pid,
            used_memory_bytes: match p.used_gpu_memory {
                UsedGpuMemory::Used(bytes) => Some(bytes),
                UsedGpuMemory::Unavailable => None,
            },
        })
        .collect()
}

fn milliwatts_to_watts(milliwatts: u32) -> f64 {
    f64::from(milliwatts) / 1000.0
}

/// Device memory in use on GPU `index` (all processes), or None without NVML.
pub(super) fn memory_used(index: u32) -> Option<u64> {
    let nvml = nvml().ok()?;
    Some(nvml.device_by_index(index).ok()?.memory_info().ok()?.used)
}

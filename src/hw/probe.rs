//! The hardware report: its schema, and reading it from this machine.
//!
//! The JSON form (`tunelab hw --json`) is a stable schema: every key below is always present
//! (an unknown value is `null`, never a missing key), sizes are bytes, power is watts,
//! temperature is degrees Celsius. Keys may be added; none are renamed or removed.

use super::gpu;
use crate::device::CUDA_BUILT;
use crate::model::fetch;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Everything `tunelab hw` knows about the machine a run would train on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HardwareReport {
    /// Whether NVML (the NVIDIA driver's management library) answered, and if not, why.
    pub nvml: NvmlStatus,
    /// The NVIDIA driver's version, e.g. "580.65.06"; `null` without NVML.
    pub driver_version: Option<String>,
    /// The newest CUDA version the driver supports, e.g. "13.0"; `null` without NVML.
    pub cuda_driver_version: Option<String>,
    /// The GPUs NVML sees, in NVML's order (PCI bus order); empty without NVML.
    pub gpus: Vec<GpuInfo>,
    pub cpu: CpuInfo,
    pub memory: MemoryInfo,
    /// Where models are cached (`$TUNELAB_HOME`, else `$XDG_CACHE_HOME/tunelab`,
    /// else `~/.cache/tunelab`); it may not exist yet.
    pub cache_dir: String,
    /// Free space for an unprivileged user on the filesystem that holds (or will hold)
    /// `cache_dir`; `null` when that filesystem cannot be identified.
    pub cache_disk_free_bytes: Option<u64>,
    /// Whether this binary was compiled with the `cuda` feature.
    pub cuda_built: bool,
    /// For each GPU in `gpus` (by its index), whether candle opens it as a CUDA device.
    /// Empty when `cuda_built` is false or there are no GPUs.
    pub candle_cuda_devices: Vec<CandleCudaDevice>,
    /// One line saying where `--device auto` trains, and why not on a GPU when it can't.
    pub cpu_path_note: String,
}

/// `available` is true when NVML started; `reason` says why not, and is `null` when it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmlStatus {
    pub available: bool,
    pub reason: Option<String>,
}

/// One NVIDIA GPU. Every `Option` is `null` when the driver does not answer that question
/// for this GPU (unsupported, no permission, or the GPU fell off the bus).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuInfo {
    /// NVML's index. It equals the CUDA ordinal only when `CUDA_DEVICE_ORDER=PCI_BUS_ID`
    /// and `CUDA_VISIBLE_DEVICES` is unset.
    pub index: u32,
    pub name: Option<String>,
    pub uuid: Option<String>,
    pub memory_total_bytes: Option<u64>,
    pub memory_used_bytes: Option<u64>,
    pub memory_free_bytes: Option<u64>,
    /// Percent of the last sample period in which a kernel ran.
    pub utilization_percent: Option<u32>,
    pub temperature_c: Option<u32>,
    pub power_draw_w: Option<f64>,
    /// The power cap the driver enforces now.
    pub power_limit_w: Option<f64>,
    /// CUDA compute capability as "major.minor", e.g. "9.0" for an H100.
    pub compute_capability: Option<String>,
    /// The PCIe link's current generation and lane count; they drop when the GPU idles.
    pub pcie_gen: Option<u32>,
    pub pcie_width: Option<u32>,
    /// Processes holding memory on this GPU; empty when none or when the driver won't say.
    pub processes: Vec<GpuProcess>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuProcess {
    pub pid: u32,
    /// `null` where the driver does not account per-process memory (e.g. under WDDM).
    pub used_memory_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuInfo {
    /// The model name from /proc/cpuinfo; `null` where it has none (many ARM CPUs) or off Linux.
    pub model: Option<String>,
    /// Logical CPUs this process may use (affinity and cgroup quota applied), at least 1.
    pub cores: usize,
}

/// Host RAM from /proc/meminfo; `null` off Linux.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryInfo {
    pub total_bytes: Option<u64>,
    /// What can be allocated without swapping (MemAvailable), not merely what is free.
    pub available_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandleCudaDevice {
    /// The CUDA ordinal tried (the NVML index of the GPU it was tried for).
    pub index: u32,
    pub opens: bool,
    /// The first line of candle's error, or the panic message, when it does not open.
    pub error: Option<String>,
}

impl GpuInfo {
    /// A GPU known only by its index, before (or instead of) reading it.
    pub(super) fn unread(index: u32) -> Self {
        GpuInfo {
            index,
            name: None,
            uuid: None,
            memory_total_bytes: None,
            memory_used_bytes: None,
            memory_free_bytes: None,
            utilization_percent: None,
            temperature_c: None,
            power_draw_w: None,
            power_limit_w: None,
            compute_capability: None,
            pcie_gen: None,
            pcie_width: None,
            processes: Vec::new(),
        }
    }

    /// Forgets the fast-changing readings, so a GPU that stops answering shows no stale values.
    pub(super) fn clear_changing(&mut self) {
        self.memory_used_bytes = None;
        self.memory_free_bytes = None;
        self.utilization_percent = None;
        self.temperature_c = None;
        self.power_draw_w = None;
        self.processes.clear();
    }
}

/// Reads the whole report. Never fails: what cannot be read is `None`, empty, or explained
/// in `nvml.reason`. With a CUDA build it opens a CUDA context on each GPU, so it takes
/// a second or so there; poll with [`refresh`] instead.
pub fn probe() -> HardwareReport {
    let driver = gpu::read_driver();
    let cache_dir = fetch::cache_dir();
    let candle_cuda_devices = open_with_candle(&driver.gpus);
    let cpu_path_note = where_training_runs(&driver.status, &driver.gpus, &candle_cuda_devices);
    HardwareReport {
        nvml: driver.status,
        driver_version: driver.driver_version,
        cuda_driver_version: driver.cuda_driver_version,
        gpus: driver.gpus,
        cpu: read_cpu(),
        memory: read_memory(),
        cache_disk_free_bytes: disk_free_bytes(&cache_dir),
        cache_dir: cache_dir.to_string_lossy().into_owned(),
        cuda_built: CUDA_BUILT,
        candle_cuda_devices,
        cpu_path_note,
    }
}

/// Re-reads what changes while a job runs: each GPU's memory use, utilisation, temperature,
/// power draw and processes, and the host's available RAM. Cheap enough to call once a
/// second: NVML is already open and nothing else is re-discovered.
pub fn refresh(report: &mut HardwareReport) {
    gpu::refresh_gpus(&mut report.gpus);
    report.memory.available_bytes = read_memory().available_bytes;
}

/// Tries candle on each GPU NVML found, the same way `--device cuda` opens one.
fn open_with_candle(gpus: &[GpuInfo]) -> Vec<CandleCudaDevice> {
    if !CUDA_BUILT {
        return Vec::new();
    }
    gpus.iter()
        .map(|gpu| {
            let ordinal = gpu.index as usize;
            // cudarc panics, rather than erring, when it cannot load libcuda; the report
            // must survive that.
            let opened = std::panic::catch_unwind(|| {
                candle_core::Device::new_cuda(ordinal).map_err(|e| first_line(&e.to_string()))
            });
            let error = match opened {
                Ok(Ok(_device)) => None,
                Ok(Err(message)) => Some(message),
                Err(panic) => Some(panic_message(panic.as_ref())),
            };
            CandleCudaDevice {
                index: gpu.index,
                opens: error.is_none(),
                error,
            }
        })
        .collect()
}

/// candle appends a backtrace to its messages when RUST_BACKTRACE is set.
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_string()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    format!("panicked: {}", first_line(text))
}

/// Mirrors `device::open(DeviceChoice::Auto)`: CUDA device 0 when it opens, else the CPU.
fn where_training_runs(nvml: &NvmlStatus, gpus: &[GpuInfo], candle: &[CandleCudaDevice]) -> String {
    if gpus.is_empty() {
        let why = nvml.reason.as_deref().unwrap_or("NVML found no devices");
        return format!("No NVIDIA GPU: {why}; training runs on the CPU.");
    }
    if !CUDA_BUILT {
        return "This tunelab was built without CUDA; training runs on the CPU \
                (rebuild with `--features cuda` to train on the GPU)."
            .into();
    }
    match candle.first() {
        Some(CandleCudaDevice { opens: true, .. }) => "Training runs on GPU cuda:0.".into(),
        Some(CandleCudaDevice {
            error: Some(error), ..
        }) => format!("CUDA device 0 does not open ({error}); training runs on the CPU."),
        _ => "CUDA device 0 does not open; training runs on the CPU.".into(),
    }
}

fn read_cpu() -> CpuInfo {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok();
    // available_parallelism honours CPU affinity and cgroup quotas, which /proc/cpuinfo
    // ignores; it is also what rayon sizes candle's thread pool by.
    let cores = std::thread::available_parallelism()
        .map(usize::from)
        .ok()
        .or_else(|| cpuinfo.as_deref().map(count_processors))
        .filter(|&n| n > 0)
        .unwrap_or(1);
    CpuInfo {
        model: cpuinfo.as_deref().and_then(cpu_model),
        cores,
    }
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == "model name")
        .map(|(_, value)| value.trim().to_string())
        .filter(|model| !model.is_empty())
}

fn count_processors(cpuinfo: &str) -> usize {
    cpuinfo
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(key, _)| key.trim() == "processor")
        .count()
}

fn read_memory() -> MemoryInfo {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    MemoryInfo {
        total_bytes: meminfo_bytes(&meminfo, "MemTotal"),
        available_bytes: meminfo_bytes(&meminfo, "MemAvailable"),
    }
}

/// A /proc/meminfo value ("MemTotal:   24684096 kB") in bytes; the kernel's "kB" is KiB.
fn meminfo_bytes(meminfo: &str, key: &str) -> Option<u64> {
    meminfo
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| *name == key)
        .and_then(|(_, value)| value.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

/// Free space on the filesystem holding `dir`, found through its nearest existing ancestor
/// (the cache may not exist before the first download).
fn disk_free_bytes(dir: &Path) -> Option<u64> {
    let absolute = std::path::absolute(dir).ok()?;
    let existing = absolute
        .ancestors()
        .find(|p| p.exists())?
        .canonicalize()
        .ok()?;
    let refresh = sysinfo::DiskRefreshKind::nothing().with_storage();
    let disks = sysinfo::Disks::new_with_refreshed_list_specifics(refresh).ok()?;
    let disk = disks
        .iter()
        .filter(|disk| existing.starts_with(disk.mount_point()))
        .max_by_key(|disk| disk.mount_point().components().count())?;
    // sysinfo skips some filesystems (network mounts, for one), so the longest listed
    // prefix can be a parent filesystem; a wrong number is worse than none.
    same_filesystem(&existing, disk.mount_point()).then(|| disk.available_space())
}

#[cfg(unix)]
fn same_filesystem(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_filesystem(_: &Path, _: &Path) -> bool {
    // Without device ids the longest mount prefix is the best evidence there is.
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_values_are_kib() {
        let meminfo = "MemTotal:       24684096 kB\nMemFree:  1 kB\nMemAvailable:   23828720 kB\n";
        assert_eq!(meminfo_bytes(meminfo, "MemTotal"), Some(24684096 * 1024));
        assert_eq!(
            meminfo_bytes(meminfo, "MemAvailable"),
            Some(23828720 * 1024)
        );
        assert_eq!(meminfo_bytes(meminfo, "SwapTotal"), None);
    }

    #[test]
    fn cpu_model_is_the_model_name_line() {
        let x86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel\t\t: 17\nmodel name\t: AMD EPYC 9654\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 9654\n";
        assert_eq!(cpu_model(x86).as_deref(), Some("AMD EPYC 9654"));
        assert_eq!(count_processors(x86), 2);
        let arm = "processor\t: 0\nBogoMIPS\t: 2000.00\nCPU implementer\t: 0x41\n";
        assert_eq!(cpu_model(arm), None);
    }
}

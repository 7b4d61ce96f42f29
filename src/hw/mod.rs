//! What hardware a run would train on: NVIDIA GPUs (through NVML, when a driver is installed),
//! the CPU, RAM and the model cache's disk. `tunelab hw` prints it; the workbench polls it.
//!
//! The readable form is here; the schema and the reading are in `probe`.

pub mod calibration;
pub mod estimate;
mod gpu;
pub mod peak;
mod probe;

pub use probe::{
    probe, refresh, CandleCudaDevice, CpuInfo, GpuInfo, GpuProcess, HardwareReport, MemoryInfo,
    NvmlStatus,
};

use std::fmt::{self, Display, Formatter};

impl Display for HardwareReport {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.gpus.is_empty() {
            // The note already says there is no GPU and why, in one line.
            writeln!(f, "{}", self.cpu_path_note)?;
        } else {
            writeln!(
                f,
                "NVIDIA driver {}, CUDA {}",
                known(&self.driver_version),
                known(&self.cuda_driver_version)
            )?;
            for gpu in &self.gpus {
                let candle = self
                    .candle_cuda_devices
                    .iter()
                    .find(|c| c.index == gpu.index);
                write_gpu(f, gpu, candle)?;
            }
            writeln!(f, "{}", self.cpu_path_note)?;
        }
        writeln!(
            f,
            "CPU:         {}, {} cores",
            self.cpu.model.as_deref().unwrap_or("unknown model"),
            self.cpu.cores
        )?;
        writeln!(
            f,
            "RAM:         {} total, {} available",
            known(&self.memory.total_bytes.map(gib)),
            known(&self.memory.available_bytes.map(gib))
        )?;
        writeln!(
            f,
            "Model cache: {} ({} free)",
            self.cache_dir,
            known(&self.cache_disk_free_bytes.map(gib))
        )?;
        write!(
            f,
            "CUDA build:  {}",
            if self.cuda_built { "yes" } else { "no" }
        )
    }
}

fn write_gpu(
    f: &mut Formatter<'_>,
    gpu: &GpuInfo,
    candle: Option<&CandleCudaDevice>,
) -> fmt::Result {
    writeln!(
        f,
        "GPU {}: {} (compute {}, PCIe gen {} x{})",
        gpu.index,
        known(&gpu.name),
        known(&gpu.compute_capability),
        known(&gpu.pcie_gen),
        known(&gpu.pcie_width)
    )?;
    writeln!(
        f,
        "  memory     {} of {} used, {} free",
        known(&gpu.memory_used_bytes.map(gib)),
        known(&gpu.memory_total_bytes.map(gib)),
        known(&gpu.memory_free_bytes.map(gib))
    )?;
    writeln!(
        f,
        "  load       {}%, {} °C, {} W of {} W",
        known(&gpu.utilization_percent),
        known(&gpu.temperature_c),
        known(&gpu.power_draw_w.map(|w| format!("{w:.0}"))),
        known(&gpu.power_limit_w.map(|w| format!("{w:.0}")))
    )?;
    let processes: Vec<String> = gpu
        .processes
        .iter()
        .map(|p| format!("{} ({})", p.pid, known(&p.used_memory_bytes.map(gib))))
        .collect();
    writeln!(
        f,
        "  processes  {}",
        if processes.is_empty() {
            "none".to_string()
        } else {
            processes.join(", ")
        }
    )?;
    match candle {
        Some(CandleCudaDevice { opens: true, .. }) => writeln!(f, "  candle     opens"),
        Some(CandleCudaDevice { error, .. }) => writeln!(
            f,
            "  candle     does not open: {}",
            error.as_deref().unwrap_or("no reason given")
        ),
        // A build without CUDA does not try; the note line says so.
        None => Ok(()),
    }
}

/// "?" marks what the driver would not say.
fn known<T: Display>(value: &Option<T>) -> String {
    value.as_ref().map_or_else(|| "?".into(), T::to_string)
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

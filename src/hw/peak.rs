//! The peak device memory of a run, sampled from the driver (NVML) every 10 ms on a
//! background thread, so a training run can record what it really used next to the estimate.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

// Short enough to catch the peak of a training step lasting tens of milliseconds.
const INTERVAL: Duration = Duration::from_millis(10);

/// What a finished sampling saw, in bytes of device memory in use (all processes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeakReading {
    /// Before the run allocated anything.
    pub baseline_used_bytes: u64,
    pub peak_used_bytes: u64,
}

impl PeakReading {
    /// What the run itself added at its peak.
    pub fn run_peak_bytes(&self) -> u64 {
        self.peak_used_bytes
            .saturating_sub(self.baseline_used_bytes)
    }
}

pub struct PeakSampler {
    baseline: u64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PeakSampler {
    /// Starts sampling GPU `index`; None when the driver cannot be read (no NVML, no GPU).
    pub fn start(index: u32) -> Option<Self> {
        let baseline = super::gpu::memory_used(index)?;
        let peak = Arc::new(AtomicU64::new(baseline));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("tunelab-memory".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    if let Some(used) = super::gpu::memory_used(index) {
                        p.fetch_max(used, Ordering::Relaxed);
                    }
                    std::thread::sleep(INTERVAL);
                }
            })
            .ok()?;
        Some(Self {
            baseline,
            peak,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops sampling (one last sample first) and returns the reading.
    pub fn finish(mut self, index: u32) -> PeakReading {
        if let Some(used) = super::gpu::memory_used(index) {
            self.peak.fetch_max(used, Ordering::Relaxed);
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        PeakReading {
            baseline_used_bytes: self.baseline,
            peak_used_bytes: self.peak.load(Ordering::Relaxed),
        }
    }
}

impl Drop for PeakSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

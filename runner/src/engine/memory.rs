//! Peak memory probes: what is in use on the GPU, or the process's peak resident set.

use candle_core::Device;

/// Bytes in use on the device now (GPU only).
#[cfg(feature = "cuda")]
pub fn device_used(device: &Device) -> Option<i64> {
    if !device.is_cuda() {
        return None;
    }
    let (free, total) = candle_core::cuda_backend::cudarc::driver::result::mem_get_info().ok()?;
    Some((total - free) as i64)
}

#[cfg(not(feature = "cuda"))]
pub fn device_used(_device: &Device) -> Option<i64> {
    None
}

/// Resets the kernel's peak-RSS mark for this process (Linux `clear_refs` 5), so VmHWM measures from now.
pub fn reset_process_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub fn process_peak() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The most device memory seen in use while a variant runs, against what was in use before it loaded.
#[derive(Debug, Clone)]
pub struct DevicePeak {
    before: Option<i64>,
    peak: Option<i64>,
}

impl DevicePeak {
    /// Reads what is in use now, before the session loads.
    pub fn start(device: &Device) -> Self {
        let before = device_used(device);
        Self {
            before,
            peak: before,
        }
    }

    /// Takes another reading (outside the timed region).
    pub fn sample(&mut self, device: &Device) {
        if let Some(used) = device_used(device) {
            self.peak = Some(self.peak.map_or(used, |p| p.max(used)));
        }
    }

    /// How much more than before was in use at the peak (GPU only).
    pub fn growth(&self) -> Option<i64> {
        self.peak
            .zip(self.before)
            .map(|(peak, before)| peak - before)
    }
}

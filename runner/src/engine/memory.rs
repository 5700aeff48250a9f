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

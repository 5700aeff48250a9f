//! What a runner process sets up before its threads start, so that a benchmark measures the engine on the
//! threads it reports, not the kernel's page faults or other cores.
//!
//! The allocator: glibc's, asked to keep freed memory. Every operator of kiln's engine returns a fresh tensor; glibc serves a block above its mmap
//! threshold (128 KiB, then at most 32 MiB as it adapts) with a fresh mapping and gives it back on free,
//! so every run faults every page of its activations in again: on the bench CNN at batch 8 that was a third
//! of the run (3.4 ms against 2.2 ms with the settings below). Keeping freed blocks in the heap for reuse
//! is what an inference engine's arena does (ONNX Runtime keeps one per session); the resident peak is the
//! same, as the runs' activations were resident at their peak either way.

/// Serves blocks of up to 32 MiB (glibc's largest threshold on 64-bit) from the heap and keeps up to 2 GiB
/// of freed memory for reuse, unless the
/// environment already tunes either (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`, `GLIBC_TUNABLES`).
/// Call in `main` before other threads start.
pub fn keep_freed_memory_for_reuse() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tuned = [
            "MALLOC_MMAP_THRESHOLD_",
            "MALLOC_TRIM_THRESHOLD_",
            "GLIBC_TUNABLES",
        ]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
        if tuned {
            return;
        }
        // SAFETY: mallopt only sets parameters of the allocator; called before other threads exist.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        }
    }
}

/// Sizes the pools kiln's engine computes on to `threads`: candle's elementwise pool and gemm's
/// parallelism read `CANDLE_NUM_THREADS` and `RAYON_NUM_THREADS` once, at first use; without them a runner
/// told one thread measured on every core.
///
/// # Safety
/// Sets environment variables: call while the process has one thread (first in `main`).
pub unsafe fn size_compute_pools(threads: usize) {
    // SAFETY: the caller guarantees no other thread reads or writes the environment.
    unsafe {
        std::env::set_var("CANDLE_NUM_THREADS", threads.to_string());
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
}

/// The machine's name: what a runner and a serving process are listed as unless named.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "kiln-runner".to_owned())
}

//! glibc's allocator gives each thread that contends for it an arena of its own, up to eight per core,
//! and keeps what each arena freed for reuse by that arena. A server whose requests hop between actix
//! workers and the database's blocking threads then grows its resident memory for as long as it runs
//! while its live heap stays flat: the 10-minute soak (scripts/soak.sh) went from 57 to 114 MiB with a
//! heap that heaptrack measured at under 40 MiB at its peak, and stayed at 71-75 MiB with two arenas.

/// Caps the arenas at the cores (2 to 8) unless `MALLOC_ARENA_MAX` already says how many. Call first in
/// `main`, before any thread starts.
pub fn bound_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let arenas = cores.clamp(2, 8) as libc::c_int;
        // SAFETY: mallopt only sets a parameter of the allocator; called before other threads exist.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

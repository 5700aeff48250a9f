//! How much memory the engine, an answer and the requests in flight may take: a request that would need
//! more is refused naming the limit, where without one the kernel's OOM killer would end the process and
//! every request in it (a 60 MB request of 10,000 rows asked one corpus model for 24 GB; a few dozen
//! concurrent large requests would pass a pod's limit on their bodies alone).

use std::path::Path;

/// The shares of the memory available at start that, by default, the engine may hold, one run's outputs
/// may hold, and the requests in flight may hold together (their bodies, decoded inputs, outputs and
/// answers: `request_memory`). The engine's arena at its limit and the requests in flight at theirs leave
/// an eighth for the process itself. One answer's share is part of the requests' and bounds a single run,
/// whose outputs are copied out of the engine before they are counted.
const ENGINE_SHARE: (u64, u64) = (5, 8);
const RESPONSE_SHARE: (u64, u64) = (1, 16);
const IN_FLIGHT_SHARE: (u64, u64) = (1, 4);

/// Limits in bytes; `None` is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// What ONNX Runtime may hold on the CPU (`--max-engine-memory-mib`).
    pub engine: Option<u64>,
    /// What one run's outputs may hold (`--max-response-mib`).
    pub response: Option<u64>,
    /// What the requests in flight may hold together (`--max-in-flight-mib`).
    pub in_flight: Option<u64>,
}

/// The limits from their flags, in MiB: `Some(0)` is no limit, `None` the default share of the memory
/// available now (read once for all).
pub fn limits(
    engine_mib: Option<u64>,
    response_mib: Option<u64>,
    in_flight_mib: Option<u64>,
) -> Limits {
    let available = [engine_mib, response_mib, in_flight_mib]
        .contains(&None)
        .then(available)
        .flatten();
    Limits {
        engine: limit(engine_mib, available, ENGINE_SHARE),
        response: limit(response_mib, available, RESPONSE_SHARE),
        in_flight: limit(in_flight_mib, available, IN_FLIGHT_SHARE),
    }
}

fn limit(flag_mib: Option<u64>, available: Option<u64>, default: (u64, u64)) -> Option<u64> {
    match flag_mib {
        Some(0) => None,
        Some(mib) => Some(mib.saturating_mul(1 << 20)),
        None => available.map(|bytes| share(bytes, default)),
    }
}

fn share(available: u64, (numerator, denominator): (u64, u64)) -> u64 {
    available / denominator * numerator
}

/// What this process may still allocate: the host's available memory, or its cgroup's headroom when
/// that is lower (a container's memory limit, which is what the OOM killer enforces in a pod).
pub fn available() -> Option<u64> {
    let host = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| meminfo_available(&text));
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| cgroup_headroom(&text, Path::new("/sys/fs/cgroup")));
    match (host, cgroup) {
        (Some(h), Some(c)) => Some(h.min(c)),
        (h, c) => h.or(c),
    }
}

fn meminfo_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// `memory.max - memory.current` of the cgroup (v2) that `/proc/self/cgroup` names, under `root`;
/// `None` without a limit ("max") or without cgroup v2.
fn cgroup_headroom(proc_self_cgroup: &str, root: &Path) -> Option<u64> {
    let path = proc_self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .trim_start_matches('/');
    let dir = root.join(path);
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).ok();
    let max: u64 = read("memory.max")?.trim().parse().ok()?;
    let current: u64 = read("memory.current")
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    Some(max.saturating_sub(current))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flags_in_mib_zero_for_none_else_a_share_of_what_is_available() {
        assert_eq!(
            limits(Some(512), Some(0), Some(64)),
            Limits {
                engine: Some(512 << 20),
                response: None,
                in_flight: Some(64 << 20)
            }
        );
        assert_eq!(share(4 << 30, ENGINE_SHARE), 2560 << 20);
        assert_eq!(share(4 << 30, RESPONSE_SHARE), 256 << 20);
        assert_eq!(share(4 << 30, IN_FLIGHT_SHARE), 1 << 30);
        let available = available().expect("Linux reports MemAvailable");
        let Limits {
            engine,
            response,
            in_flight,
        } = limits(None, None, None);
        let (engine, response, in_flight) =
            (engine.unwrap(), response.unwrap(), in_flight.unwrap());
        assert!(engine + in_flight < available);
        assert!(response < in_flight);
    }

    #[test]
    fn meminfo_gives_the_available_line_in_bytes() {
        let text =
            "MemTotal:       24000000 kB\nMemFree:         1000 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(meminfo_available(text), Some(20_000_000 * 1024));
        assert_eq!(meminfo_available("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn a_cgroup_limit_leaves_its_headroom_and_none_without_a_limit() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("kubepods/pod1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.max"), "2147483648\n").unwrap();
        std::fs::write(dir.join("memory.current"), "536870912\n").unwrap();
        assert_eq!(
            cgroup_headroom("0::/kubepods/pod1\n", root.path()),
            Some(2147483648 - 536870912)
        );
        std::fs::write(dir.join("memory.max"), "max\n").unwrap();
        assert_eq!(cgroup_headroom("0::/kubepods/pod1\n", root.path()), None);
        assert_eq!(cgroup_headroom("1:name=systemd:/\n", root.path()), None);
    }
}

//! What the runner measures on: the candle device and how it describes itself to the server.

use candle_core::Device;
use kiln_core::runners::{EngineInfo, RunnerRegistration};

use crate::engine::Engine;

/// The device as registered and as reported with every measurement.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// `cpu` or `cuda:N`.
    pub device: String,
    pub device_name: String,
    pub driver: Option<String>,
    pub memory_bytes: Option<i64>,
    pub threads: Option<u32>,
}

fn proc_field(file: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

impl DeviceInfo {
    pub fn cpu(threads: usize) -> Self {
        let memory_bytes = proc_field("/proc/meminfo", "MemTotal")
            .and_then(|v| v.split_whitespace().next()?.parse::<i64>().ok())
            .map(|kib| kib * 1024);
        Self {
            device: "cpu".to_owned(),
            device_name: proc_field("/proc/cpuinfo", "model name")
                .unwrap_or_else(|| std::env::consts::ARCH.to_owned()),
            driver: None,
            memory_bytes,
            threads: Some(threads as u32),
        }
    }

    /// A GPU, described by `nvidia-smi` when it is there (name, driver, memory).
    pub fn cuda(ordinal: usize) -> Self {
        let queried = std::process::Command::new("nvidia-smi")
            .args([
                "--query-gpu=name,driver_version,memory.total",
                "--format=csv,noheader,nounits",
                "-i",
                &ordinal.to_string(),
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        let fields: Vec<String> = queried
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(|f| f.trim().to_owned())
            .collect();
        let field = |i: usize| fields.get(i).filter(|f| !f.is_empty()).cloned();
        Self {
            device: format!("cuda:{ordinal}"),
            device_name: field(0).unwrap_or_else(|| format!("CUDA device {ordinal}")),
            driver: field(1).map(|d| format!("driver {d}")),
            memory_bytes: field(2)
                .and_then(|m| m.parse::<i64>().ok())
                .map(|mib| mib * 1024 * 1024),
            threads: None,
        }
    }

    /// What the runner registers: this device and the engines it measures with.
    pub fn registration(&self, name: &str, engines: &[Engine]) -> RunnerRegistration {
        let engines: Vec<EngineInfo> = engines.iter().map(|e| e.info(&self.device)).collect();
        let described: Vec<String> = engines
            .iter()
            .map(|e| format!("{} {}", e.name, e.version))
            .collect();
        let mut capabilities = vec!["benchmark".to_owned()];
        if self.device != "cpu" {
            capabilities.push("numerical-check".to_owned());
        }
        RunnerRegistration {
            name: name.to_owned(),
            device: self.device.clone(),
            device_name: self.device_name.clone(),
            memory_bytes: self.memory_bytes,
            driver: self.driver.clone(),
            engine: described.join(", "),
            kiln_version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities,
            threads: self.threads,
            engines,
        }
    }
}

/// Opens `cpu` or `cuda:N`. A CUDA device needs the binary built with `--features cuda`.
pub fn open(spec: &str, threads: usize) -> Result<(Device, DeviceInfo), String> {
    if spec == "cpu" {
        return Ok((Device::Cpu, DeviceInfo::cpu(threads)));
    }
    let ordinal: usize = spec
        .strip_prefix("cuda:")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("--device {spec:?}: use cpu or cuda:N (e.g. cuda:0)"))?;
    if !cfg!(feature = "cuda") {
        return Err(format!(
            "--device {spec}: this kiln-runner was built without CUDA; build it with scripts/build-cuda-runner.sh (docs/gpu.md)"
        ));
    }
    let device = Device::new_cuda(ordinal)
        .map_err(|e| format!("--device {spec}: no usable CUDA device ({e})"))?;
    Ok((device, DeviceInfo::cuda(ordinal)))
}

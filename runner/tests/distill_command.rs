//! `kiln-runner distill` killed with SIGKILL part-way continues from its last checkpoint when run again,
//! and ends where it would have.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn command(teacher: &Path, out: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiln-runner"));
    command
        .arg("distill")
        .arg(teacher)
        .arg("--out")
        .arg(out)
        .args([
            "--student",
            "layers=2",
            "--steps",
            "400",
            "--sequence-length",
            "16",
        ])
        .args(["--checkpoint-every", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[test]
fn a_killed_distillation_continues_from_its_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let teacher = dir.path().join("teacher");
    kiln_onnx::sample_models::gpt2(64, 32, 4, 4)
        .unwrap()
        .write_safetensors(&teacher)
        .unwrap();
    let out = dir.path().join("out");
    let state = out.join("state.safetensors");

    let mut first = command(&teacher, &out).spawn().unwrap();
    let started = Instant::now();
    while !state.is_file() {
        assert!(
            first.try_wait().unwrap().is_none(),
            "the run ended before its first checkpoint"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint in 120 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    first.kill().unwrap(); // SIGKILL: nothing is flushed or cleaned up
    first.wait().unwrap();
    assert!(!out.join("report.json").exists());

    let second = command(&teacher, &out).output().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(stderr.contains("continuing from"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["steps"], 400);
    let resumed = report["resumed_at"].as_array().unwrap();
    assert_eq!(resumed.len(), 1, "{report}");
    assert!(resumed[0].as_u64().unwrap() >= 1);
    assert!(out.join("student/model.safetensors").is_file());
    assert!(
        !state.exists(),
        "a finished run leaves no state to continue from"
    );
}

#[test]
fn bad_settings_are_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_kiln-runner"))
        .args(["distill", "nowhere", "--out"])
        .arg(dir.path())
        .args(["--student", "depth=2"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("layers=N or keep="), "{stderr}");
}

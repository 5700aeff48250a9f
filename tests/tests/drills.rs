//! Fault drill: the server killed (SIGKILL) at a random moment while pushes, pipeline jobs and alias moves
//! are under way, restarted, and checked: every version it lists holds exactly the files pushed (digests
//! and sizes, and the store's bytes against their digests), the versions of the trial pull byte for byte,
//! and every alias's manifest and every ready version's manifest verify.
//!
//! The suite runs a short form (KILN_TEST_DRILL_TRIALS, default 5, on the embedded default);
//! scripts/drill.sh runs the long one (100 trials, on both backends).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use kiln_tests::{Backend, Server, assert_ok, same_bytes, settled, write_mlp, write_pseudo_random};
use serde_json::Value;

/// A small deterministic generator: each trial is reproducible from its number.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

fn trials() -> usize {
    std::env::var("KILN_TEST_DRILL_TRIALS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5)
}

fn backend() -> Backend {
    match std::env::var("KILN_TEST_DRILL_BACKEND").as_deref() {
        Ok("postgres") => Backend::PostgresS3,
        _ => Backend::Embedded,
    }
}

/// The model's versions, as the API lists them (one page of up to 1,000); none before the first push
/// committed.
fn listed(server: &Server) -> Vec<Value> {
    let (status, body) = server.get_json("/api/v1/models/acme/m/versions?limit=1000");
    if status == 404 {
        return Vec::new();
    }
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

fn spawn_kiln(server: &Server, args: &[&str]) -> Child {
    let mut command = server.kiln_command(args);
    command.stdout(Stdio::null()).stderr(Stdio::null());
    command.spawn().expect("kiln runs")
}

/// What each pushed reference should hold: its folder.
type Pushed = BTreeMap<String, PathBuf>;

fn folder_for(work: &Path, trial: usize, n: usize, dice: &mut Dice) -> PathBuf {
    let folder = work.join(format!("t{trial}-{n}"));
    if dice.roll(3) == 0 {
        // An ONNX model: the pipeline converts, optimizes and validates it (jobs to kill mid-way).
        write_mlp(&folder, dice.roll(2) == 0);
        write_pseudo_random(
            &folder.join("extra.bin"),
            1000 + dice.roll(4000) as usize,
            (trial * 10 + n) as u64,
        );
    } else {
        std::fs::create_dir_all(&folder).unwrap();
        for f in 0..1 + dice.roll(3) {
            let size = 1 + dice.roll(12 * 1024 * 1024) as usize;
            write_pseudo_random(
                &folder.join(format!("f{f}.bin")),
                size,
                (trial * 100 + n * 10) as u64 + f,
            );
        }
    }
    folder
}

/// Digest and size of every file in a folder, by relative path.
fn expected_files(folder: &Path) -> BTreeMap<String, (String, u64)> {
    use sha2::Digest;
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let digest: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        files.insert(
            path.file_name().unwrap().to_string_lossy().into_owned(),
            (format!("sha256:{digest}"), bytes.len() as u64),
        );
    }
    files
}

/// After a restart: what the server lists is exactly what was pushed, and its manifests verify.
fn check(server: &Server, pushed: &Pushed, this_trial: &[String], work: &Path) {
    let versions: Vec<String> = listed(server)
        .iter()
        .map(|v| format!("acme/m:{}", v["version"].as_str().unwrap()))
        .collect();
    for reference in &versions {
        let folder = pushed
            .get(reference)
            .unwrap_or_else(|| panic!("{reference} is listed but was never pushed"));
        let detail = settled(server, reference);
        assert_eq!(detail["status"], "ready", "{reference}: {detail}");
        let held: BTreeMap<String, (String, u64)> = detail["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["path"].as_str().unwrap().to_owned(),
                    (
                        f["digest"].as_str().unwrap().to_owned(),
                        f["size"].as_u64().unwrap(),
                    ),
                )
            })
            .collect();
        assert_eq!(
            held,
            expected_files(folder),
            "{reference} holds exactly what was pushed"
        );
        assert_ok(&server.kiln(&["verify", reference]));
        if this_trial.contains(reference) {
            let out = work.join(format!("pull-{}", reference.replace([':', '/'], "-")));
            assert_ok(&server.kiln(&["pull", reference, "-o", out.to_str().unwrap()]));
            for name in expected_files(folder).keys() {
                assert!(
                    same_bytes(&folder.join(name), &out.join(name)),
                    "{reference}/{name}"
                );
            }
        }
    }
    if versions.is_empty() {
        return;
    }
    for alias in server
        .kiln_json(&["alias", "ls", "acme/m"])
        .as_array()
        .unwrap()
    {
        let name = alias["name"].as_str().or(alias["alias"].as_str()).unwrap();
        assert_ok(&server.kiln(&["verify", &format!("acme/m@{name}")]));
    }
    // The store's bytes against their digests.
    let fsck = server.kiln_json(&["admin", "fsck", "--verify"]);
    assert_eq!(fsck["problem_count"], 0, "{fsck}");
}

#[test]
fn the_server_killed_at_random_moments_loses_and_invents_nothing() {
    let mut server = Server::start(backend());
    let work = tempfile::tempdir().unwrap();
    let mut pushed = Pushed::new();
    let mut dice = Dice(0x5eed);
    let mut ready: Vec<String> = Vec::new();
    for trial in 0..trials() {
        // Under way at the kill: one or two pushes, and an alias move when a version is ready.
        let mut this_trial = Vec::new();
        let mut running = Vec::new();
        for n in 0..1 + dice.roll(2) as usize {
            let reference = format!("acme/m:{trial}.{n}");
            let folder = folder_for(work.path(), trial, n, &mut dice);
            running.push(spawn_kiln(
                &server,
                &["push", folder.to_str().unwrap(), &reference],
            ));
            pushed.insert(reference.clone(), folder);
            this_trial.push(reference);
        }
        if !ready.is_empty() {
            let target = ready[dice.roll(ready.len() as u64) as usize].clone();
            let version = target.rsplit(':').next().unwrap().to_owned();
            running.push(spawn_kiln(
                &server,
                &["alias", "set", "acme/m", "production", &version],
            ));
        }
        std::thread::sleep(Duration::from_millis(dice.roll(2500)));
        server.kill();
        for mut child in running {
            child.wait().ok();
        }
        server.restart();
        check(&server, &pushed, &this_trial, work.path());
        ready = listed(&server)
            .iter()
            .filter(|v| v["status"] == "ready")
            .map(|v| format!("acme/m:{}", v["version"].as_str().unwrap()))
            .collect();
        eprintln!("trial {trial}: {} version(s) listed", ready.len());
    }
}

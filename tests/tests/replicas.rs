//! kiln in its production shape (scripts/replicas.sh): two kiln-server replicas behind HAProxy, on
//! PostgreSQL and a 3-node Garage cluster (replication factor 3). Everything goes through the balancer:
//! pushes, pulls, pipeline jobs, a runner, manifests and their re-issue, an upload that continues on the
//! other replica after the first is killed mid-chunk, and a Garage node stopped and started again.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kiln_tests::{assert_ok, binary, stdout, write_mlp, write_pseudo_random};
use serde_json::{Value, json};

const BALANCER: &str = "http://127.0.0.1:18080";

fn replica_url(n: u32) -> String {
    format!("http://127.0.0.1:{}", 18080 + n)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The fleet, stopped (every process, the state folder) when dropped.
struct Fleet {
    token: String,
    home: tempfile::TempDir,
}

impl Fleet {
    fn start() -> Self {
        let bin = binary("kiln-server").parent().unwrap().to_owned();
        // Manifests valid 30 s: the refresher re-issues them within the test.
        let output = script(
            &["start", "2"],
            &[
                ("KILN_BIN", bin.to_str().unwrap()),
                ("KILN_REPLICA_ENV", "KILN_MANIFEST_VALIDITY_SECS=30"),
            ],
        );
        assert_ok(&output);
        let printed = stdout(&output);
        let token = printed
            .split_whitespace()
            .find_map(|w| w.strip_prefix("BALANCER_TOKEN="))
            .unwrap_or_else(|| panic!("no token printed: {printed}"))
            .to_owned();
        Fleet {
            token,
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn kiln(&self, args: &[&str]) -> Output {
        Command::new(binary("kiln"))
            .args(args)
            .env("KILN_SERVER", BALANCER)
            .env("KILN_TOKEN", &self.token)
            .env("HOME", self.home.path())
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::null())
            .output()
            .expect("kiln runs")
    }

    fn kiln_json(&self, args: &[&str]) -> Value {
        let mut with_flag = args.to_vec();
        with_flag.push("--json");
        let output = self.kiln(&with_flag);
        assert_ok(&output);
        serde_json::from_str(&stdout(&output)).unwrap()
    }

    fn settled(&self, reference: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let detail = self.kiln_json(&["show", reference]);
            let running = detail["pipeline"].as_array().is_some_and(|jobs| {
                jobs.iter()
                    .any(|j| j["state"] == "queued" || j["state"] == "running")
            });
            if (detail["status"] == "ready" && !running) || detail["status"] == "failed" {
                return detail;
            }
            assert!(
                Instant::now() < deadline,
                "the pipeline did not settle: {detail}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn pull_matches(&self, reference: &str, original: &Path) {
        let out = self
            .home
            .path()
            .join(format!("pull-{}", reference.replace(['/', ':', '@'], "-")));
        assert_ok(&self.kiln(&["pull", reference, "-o", out.to_str().unwrap()]));
        let name = original.file_name().unwrap();
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            std::fs::read(original).unwrap(),
            "{reference} pulls byte for byte"
        );
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        script(&["stop"], &[]);
    }
}

fn script(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(root().join("scripts/replicas.sh"))
        .args(args)
        .envs(env.iter().copied())
        .env(
            "PATH",
            format!(
                "{}:{}/.cargo/bin",
                std::env::var("PATH").unwrap_or_default(),
                std::env::var("HOME").unwrap_or_default()
            ),
        )
        .output()
        .expect("scripts/replicas.sh runs")
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn runner(fleet: &Fleet, token: &str) -> Child {
    let cache = fleet.home.path().join("runner-cache");
    Command::new(binary("kiln-runner"))
        .args([
            "--server",
            BALANCER,
            "--token",
            token,
            "--device",
            "cpu",
            "--name",
            "fleet-runner",
        ])
        .args(["--threads", "1", "--cache", cache.to_str().unwrap()])
        .env_remove("KILN_RUNNER_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(fleet.home.path().join("runner.log")).unwrap())
        .spawn()
        .expect("kiln-runner starts")
}

/// Uploads `data` as one blob: the first part to replica 1, the rest to replica 1 as a chunk that stalls
/// half-way while replica 1 is killed (SIGKILL), then from the offset the session reports, through the
/// balancer (so replica 2). Returns the committed digest.
fn upload_across_a_killed_replica(fleet: &Fleet, data: &[u8]) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let digest = format!("sha256:{}", sha256_hex(data));
        let session: Value = http
            .post(format!("{BALANCER}/api/v1/uploads"))
            .bearer_auth(&fleet.token)
            .json(&json!({ "digest": digest, "size": data.len() }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = session["id"].as_str().unwrap().to_owned();
        let part = session["part_size"].as_u64().unwrap() as usize;
        assert!(data.len() >= 3 * part, "the blob spans three parts");
        let patch = |base: String, start: usize, body: reqwest::Body, end: usize| {
            http.patch(format!("{base}/api/v1/uploads/{id}"))
                .bearer_auth(&fleet.token)
                .header(
                    "content-range",
                    format!("bytes {start}-{}/{}", end - 1, data.len()),
                )
                .header("content-type", "application/octet-stream")
                .body(body)
                .send()
        };
        let first = patch(replica_url(1), 0, data[..part].to_vec().into(), part)
            .await
            .unwrap();
        assert_eq!(first.status(), 200, "{}", first.text().await.unwrap());
        // The next two parts, streamed slowly to replica 1: half a part, then nothing.
        let half = data[part..part + part / 2].to_vec();
        let stalled = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(half)])
            .chain(futures_util::stream::pending());
        let sending = tokio::spawn(patch(
            replica_url(1),
            part,
            reqwest::Body::wrap_stream(stalled),
            3 * part,
        ));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_ok(&script(&["kill-replica", "1"], &[]));
        assert!(
            sending.await.unwrap().is_err(),
            "the stalled chunk dies with its replica"
        );
        // Whoever answers now (replica 2) knows where the upload stands. Until the balancer's health
        // checks mark replica 1 down (two failed checks, 500 ms apart), a request it sends over an idle
        // connection to the dead replica is dropped: a client retries that, as this one does.
        let deadline = Instant::now() + Duration::from_secs(10);
        let answered = loop {
            let asked = http
                .get(format!("{BALANCER}/api/v1/uploads/{id}"))
                .bearer_auth(&fleet.token)
                .send()
                .await;
            match asked {
                Ok(response) => break response,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("the balancer dropped a request during the failover ({e}); again");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("no answer through the balancer 10 s after the kill: {e}"),
            }
        };
        let status: Value = answered.json().await.unwrap();
        let offset = status["offset"].as_u64().unwrap() as usize;
        assert_eq!(
            offset, part,
            "the whole first part is kept, the broken chunk is not: {status}"
        );
        // The dead replica's claim on the upload lapses (within 20 s; until then the session is
        // `upload_busy`, retry in 1 s) and the rest goes in.
        let deadline = Instant::now() + Duration::from_secs(45);
        loop {
            let rest = patch(
                BALANCER.to_owned(),
                offset,
                data[offset..].to_vec().into(),
                data.len(),
            )
            .await
            .unwrap();
            let status = rest.status();
            let body = rest.text().await.unwrap();
            if status == 200 {
                break;
            }
            assert!(
                status == 409 && body.contains("upload_busy") && Instant::now() < deadline,
                "{status}: {body}"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let committed = http
            .post(format!("{BALANCER}/api/v1/uploads/{id}/commit"))
            .bearer_auth(&fleet.token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            committed.status(),
            200,
            "{}",
            committed.text().await.unwrap()
        );
        digest
    })
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex_string(&sha2::Sha256::digest(data))
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

use futures_util::StreamExt;

#[test]
fn two_replicas_behind_haproxy_on_a_three_node_garage_cluster() {
    let fleet = Fleet::start();
    let work = tempfile::tempdir().unwrap();

    // A runner through the balancer (registered before the push: benchmarks are queued for the device
    // classes of runners alive when a version's pipeline ends).
    let created = fleet.kiln_json(&["token", "create", "runner", "--scope", "runner"]);
    let mut bench = runner(&fleet, created["token"].as_str().unwrap());
    wait_for("the runner's registration", Duration::from_secs(30), || {
        fleet
            .kiln_json(&["runners"])
            .to_string()
            .contains("fleet-runner")
    });

    // Push, pipeline, pull: the pipeline's jobs run on whichever replica's worker takes them.
    let model = work.path().join("mlp");
    write_mlp(&model, false);
    assert_ok(&fleet.kiln(&["push", model.to_str().unwrap(), "acme/mlp:1"]));
    let detail = fleet.settled("acme/mlp:1");
    assert_eq!(detail["status"], "ready", "{detail}");
    assert!(
        detail["variants"].as_array().is_some_and(|v| v.len() >= 2),
        "{detail}"
    );

    // The runner's results reach the manifest.
    wait_for(
        "benchmarks from the runner",
        Duration::from_secs(180),
        || {
            fleet.kiln_json(&["show", "acme/mlp:1"])["variants"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["benchmarks"].as_array().is_some_and(|b| !b.is_empty()))
        },
    );
    bench.kill().ok();
    bench.wait().ok();

    // An alias's manifest, published by one replica and verified through the balancer; re-issued
    // (a higher sequence, still valid) before its 30 s run out.
    assert_ok(&fleet.kiln(&["alias", "set", "acme/mlp", "production", "1"]));
    let first = fleet.kiln_json(&["verify", "acme/mlp@production"]);
    let first_sequence = first["manifest"]["sequence"].as_i64().unwrap();
    wait_for("the manifest's re-issue", Duration::from_secs(60), || {
        fleet.kiln_json(&["verify", "acme/mlp@production"])["manifest"]["sequence"]
            .as_i64()
            .unwrap()
            > first_sequence
    });

    // An upload that continues on replica 2 after replica 1 died mid-chunk.
    let mut data = vec![0u8; 24 * 1024 * 1024];
    for (i, byte) in data.iter_mut().enumerate() {
        *byte = (i.wrapping_mul(2_654_435_761) >> 13) as u8;
    }
    let digest = upload_across_a_killed_replica(&fleet, &data);
    let blob = work.path().join("big.bin");
    std::fs::write(&blob, &data).unwrap();
    assert_ok(&fleet.kiln(&["push", blob.to_str().unwrap(), "acme/big:1"]));
    let big = fleet.kiln_json(&["show", "acme/big:1"]);
    assert_eq!(
        big["files"][0]["digest"],
        digest.as_str(),
        "the push found the blob already whole"
    );
    fleet.pull_matches("acme/big:1", &blob);
    assert_ok(&script(&["start-replica", "1"], &[]));

    // One Garage node down: writes and reads go on. Back: it rejoins, and the cluster then survives
    // losing another node, so it is again a full member.
    assert_ok(&script(&["stop-garage", "3"], &[]));
    let while_down = work.path().join("down.bin");
    write_pseudo_random(&while_down, 3_000_000, 7);
    assert_ok(&fleet.kiln(&["push", while_down.to_str().unwrap(), "acme/down:1"]));
    fleet.pull_matches("acme/down:1", &while_down);
    fleet.pull_matches("acme/big:1", &blob);
    assert_ok(&script(&["start-garage", "3"], &[]));
    std::thread::sleep(Duration::from_secs(3));
    assert_ok(&script(&["stop-garage", "1"], &[]));
    fleet.pull_matches("acme/down:1", &while_down);
    fleet.pull_matches("acme/big:1", &blob);
    assert_ok(&script(&["start-garage", "1"], &[]));
}

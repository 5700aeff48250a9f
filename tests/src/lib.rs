//! Harness for the end-to-end tests: the real `kiln-server` and `kiln` binaries as separate processes,
//! on the embedded default or on PostgreSQL + Garage (described by the KILN_TEST_* variables that
//! `scripts/test.sh` exports).

pub mod receiver;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A binary of this workspace, built by `cargo build --workspace --bins` (scripts/test.sh does).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the binaries first with `cargo build --workspace --bins` (scripts/test.sh does)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run scripts/test.sh, which starts PostgreSQL and Garage and exports KILN_TEST_*")
    })
}

/// The administrator's token of every test server (KILN_BOOTSTRAP_TOKEN).
pub const ADMIN_TOKEN: &str = "kiln_e2e_admin_token_0123456789abcdef0123456789";

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    /// No configuration at all: SQLite and a local folder under ./kiln-data of the server's directory.
    Embedded,
    PostgresS3,
}

/// Server settings for a backend; for PostgreSQL a fresh database, for S3 a fresh key prefix.
fn backend_env(backend: Backend) -> Vec<(String, String)> {
    match backend {
        Backend::Embedded => Vec::new(),
        Backend::PostgresS3 => {
            let base = required_env("KILN_TEST_DATABASE_URL");
            let name = format!("kiln_e2e_{}", std::process::id()) + &format!("_{}", free_port());
            let status = Command::new("psql")
                .args([base.as_str(), "-qc", &format!("CREATE DATABASE {name}")])
                .status()
                .expect("psql runs");
            assert!(status.success(), "creating a test database failed");
            let (server, _) = base.rsplit_once('/').unwrap();
            vec![
                ("KILN_DATABASE_URL".into(), format!("{server}/{name}")),
                (
                    "KILN_STORAGE_URL".into(),
                    format!("s3://{}/e2e-{name}", required_env("KILN_TEST_S3_BUCKET")),
                ),
                (
                    "KILN_S3_ENDPOINT".into(),
                    required_env("KILN_TEST_S3_ENDPOINT"),
                ),
                (
                    "KILN_S3_REGION".into(),
                    std::env::var("KILN_TEST_S3_REGION").unwrap_or("garage".into()),
                ),
                (
                    "KILN_S3_ACCESS_KEY_ID".into(),
                    required_env("KILN_TEST_S3_ACCESS_KEY_ID"),
                ),
                (
                    "KILN_S3_SECRET_ACCESS_KEY".into(),
                    required_env("KILN_TEST_S3_SECRET_ACCESS_KEY"),
                ),
            ]
        }
    }
}

/// A running `kiln-server` process with its own working directory.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub url: String,
    port: u16,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Server {
    pub fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[])
    }

    /// A server with more settings in its environment (e.g. `KILN_MANIFEST_VALIDITY_SECS`).
    pub fn start_with(backend: Backend, settings: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut env = backend_env(backend);
        env.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut server = Server {
            dir,
            url: String::new(),
            port: 0,
            env,
            child: None,
        };
        server.spawn();
        server
    }

    /// Starts the server on a free port and waits until it is ready. A port found free can be taken by
    /// another process before the server binds it (tests run in parallel, and every client connection
    /// takes an ephemeral port from the same range), so a start that fails only for that tries again on
    /// another port.
    fn spawn(&mut self) {
        for _ in 0..5 {
            let logged = self.log().len();
            match self.try_spawn(logged) {
                Ok(()) => return,
                Err(status) => {
                    let output = self.log().get(logged..).unwrap_or_default().to_owned();
                    if !output.contains("Address already in use") {
                        panic!("kiln-server exited with {status}:\n{}", self.log());
                    }
                }
            }
        }
        panic!("kiln-server found no free port in 5 tries:\n{}", self.log());
    }

    /// One start: `Err` with the exit status when the process ended before it was ready. Ready means
    /// this process said in its log (past `logged` bytes) that it listens on the port, and the port
    /// answers: until then another test's server that took the port first would answer for it.
    fn try_spawn(&mut self, logged: usize) -> Result<(), std::process::ExitStatus> {
        self.port = free_port();
        self.url = format!("http://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let child = Command::new(binary("kiln-server"))
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("KILN_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("KILN_BOOTSTRAP_TOKEN", ADMIN_TOKEN)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("kiln-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.said_it_listens(logged)
                && try_status(&format!("{}/readyz", self.url)) == Some(200)
            {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("kiln-server did not become ready:\n{}", self.log());
    }

    fn said_it_listens(&self, logged: usize) -> bool {
        let log = self.log();
        let since = log.get(logged..).unwrap_or_default();
        since.contains("kiln-server listening")
            && since.contains(&format!("127.0.0.1:{}", self.port))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// GET with any bearer credential, at any URL (another listener of this server).
    pub fn get_json_as(&self, url: &str, credential: &str) -> (u16, serde_json::Value) {
        http_json("GET", url, None, Some(credential))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// SIGKILL: no shutdown hook runs, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Runs a `kiln-server` subcommand (e.g. `keys rotate`) with this server's settings and folder.
    pub fn server_command(&self, args: &[&str]) -> Output {
        Command::new(binary("kiln-server"))
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("kiln-server runs")
    }

    /// Changes one setting for the next start (see [`Self::restart`]).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Starts again on the same database, store and working directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs the CLI against this server, stdout and stderr captured (so not a terminal).
    pub fn kiln(&self, args: &[&str]) -> Output {
        self.kiln_command(args).output().expect("kiln runs")
    }

    /// Runs the CLI with `--json`, which must succeed, and parses what it printed.
    pub fn kiln_json(&self, args: &[&str]) -> serde_json::Value {
        let mut with_flag = args.to_vec();
        with_flag.push("--json");
        let output = self.kiln(&with_flag);
        assert_ok(&output);
        serde_json::from_str(&stdout(&output))
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(&output)))
    }

    /// The CLI as the administrator (KILN_TOKEN), with a private HOME so nothing touches the real one.
    pub fn kiln_command(&self, args: &[&str]) -> Command {
        let mut command = self.kiln_without_token(args);
        command.env("KILN_TOKEN", ADMIN_TOKEN);
        command
    }

    /// The CLI with no KILN_TOKEN: it uses what `kiln login` stored under this server's HOME.
    pub fn kiln_without_token(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary("kiln"));
        command
            .args(args)
            .env_remove("KILN_TOKEN")
            .env("HOME", self.dir.path().join("home"))
            .env_remove("XDG_CONFIG_HOME")
            .env("KILN_SERVER", &self.url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// GET as the administrator.
    pub fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        http_json(
            "GET",
            &format!("{}{path}", self.url),
            None,
            Some(ADMIN_TOKEN),
        )
    }

    /// GET without credentials.
    pub fn get_json_anonymous(&self, path: &str) -> (u16, serde_json::Value) {
        http_json("GET", &format!("{}{path}", self.url), None, None)
    }

    /// POST as the administrator.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        http_json(
            "POST",
            &format!("{}{path}", self.url),
            Some(body),
            Some(ADMIN_TOKEN),
        )
    }

    /// PATCHes `chunk` into upload session `id` at byte `start` of `total`, as the administrator.
    pub fn patch_chunk(
        &self,
        id: &str,
        start: usize,
        chunk: Vec<u8>,
        total: usize,
    ) -> (u16, serde_json::Value) {
        let range = format!("bytes {start}-{}/{total}", start + chunk.len() - 1);
        let (status, _, text) = self.send(
            "PATCH",
            &format!("/api/v1/uploads/{id}"),
            &[("content-range", &range)],
            chunk,
        );
        (status, json_or_text(text))
    }

    /// Any request to `path` as the administrator (a Bearer API token): status, headers, body.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        http(
            method,
            &format!("{}{path}", self.url),
            Some(ADMIN_TOKEN),
            headers,
            Some(body),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A blocking JSON request on a private runtime (the tests themselves are synchronous).
fn http_json(
    method: &str,
    url: &str,
    body: Option<&serde_json::Value>,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let json = [("content-type", "application/json")];
    let (headers, body) = match body {
        Some(body) => (&json[..], Some(serde_json::to_vec(body).unwrap())),
        None => (&[][..], None),
    };
    let (status, _, text) = http(method, url, token, headers, body);
    (status, json_or_text(text))
}

/// One request, waited for: status, headers, body.
fn http(
    method: &str,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().await.unwrap())
    })
}

/// A body as JSON, or as a JSON string when it is not JSON.
fn json_or_text(text: String) -> serde_json::Value {
    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
}

/// The status of GET `url`, or None when nothing answers.
fn try_status(url: &str) -> Option<u16> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async { reqwest::get(url).await.ok().map(|r| r.status().as_u16()) })
}

/// Writes `len` deterministic pseudo-random bytes (xorshift), fast enough for hundreds of MiB.
pub fn write_pseudo_random(path: &Path, len: usize, seed: u64) {
    use std::io::Write;
    let mut state = seed.max(1);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut remaining = len;
    let mut block = [0u8; 8];
    while remaining > 0 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        block.copy_from_slice(&state.to_le_bytes());
        let n = remaining.min(8);
        out.write_all(&block[..n]).unwrap();
        remaining -= n;
    }
    out.flush().unwrap();
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts success, showing both streams otherwise.
#[track_caller]
pub fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "kiln failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

/// Every file under `dir`, as sorted relative paths.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// True when the two files have the same bytes (compared in blocks, not loaded whole).
pub fn same_bytes(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (mut fa, mut fb) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    if fa.metadata().unwrap().len() != fb.metadata().unwrap().len() {
        return false;
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba).unwrap();
        if n == 0 {
            return true;
        }
        fb.read_exact(&mut bb[..n]).unwrap();
        if ba[..n] != bb[..n] {
            return false;
        }
    }
}

/// Waits until the version's pipeline has settled: failed (refused at the scan), or ready with no job (a
/// later step, or a benchmark the embedded runner still has to measure) queued or running. Returns
/// `kiln show REF --json`.
pub fn settled(server: &Server, reference: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let detail = server.kiln_json(&["show", reference]);
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

/// Writes a small ONNX MLP (kiln_onnx's sample; `with_identity` changes its bytes) as `folder/model.onnx`.
pub fn write_mlp(folder: &Path, with_identity: bool) {
    use prost::Message;
    std::fs::create_dir_all(folder).unwrap();
    let model = kiln_onnx::sample_models::mlp_graph(with_identity).encode_to_vec();
    std::fs::write(folder.join("model.onnx"), model).unwrap();
}

/// A server without its embedded runner and with 3-second leases (a killed runner's job is free soon),
/// and a runner-scoped token for the `kiln-runner` processes a test starts.
pub fn server_for_runners(backend: Backend) -> (Server, String) {
    let server = Server::start_with(
        backend,
        &[
            ("KILN_EMBEDDED_RUNNER", "false"),
            ("KILN_RUNNER_LEASE_SECS", "3"),
        ],
    );
    let (status, token) = server.post_json(
        "/api/v1/tokens",
        &serde_json::json!({ "name": "runners", "scopes": ["runner"] }),
    );
    assert_eq!(status, 201, "{token}");
    let token = token["token"].as_str().unwrap().to_owned();
    (server, token)
}

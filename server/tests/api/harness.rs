//! Spawns a real kiln-server (in-process, on a random port) with its own database and blob store.
//!
//! Every scenario runs on both backends: the embedded default (SQLite + a local folder) and PostgreSQL +
//! Garage S3, which `scripts/test.sh` starts and describes through KILN_TEST_* variables.

use std::net::SocketAddr;

use diesel::{Connection, RunQueryDsl};
use kiln_core::Sha256Digest;
use kiln_core::api::UploadSession;
use kiln_server::config::{DatabaseSettings, Settings, StorageSettings};
use kiln_server::db::Database;
use kiln_server::services::Services;
use kiln_server::startup::Application;
use kiln_server::storage::BlobStore;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

/// The first administrator's API token in every test server.
pub const ADMIN_TOKEN: &str = "operator-chosen-admin-secret-0123456789";

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Embedded,
    PostgresS3,
}

pub struct TestApp {
    pub address: SocketAddr,
    pub http: reqwest::Client,
    pub services: Services,
    /// The server's database and store, for tests that look under the API.
    pub db: Database,
    pub store: BlobStore,
    pub settings: Settings,
    handle: actix_web::dev::ServerHandle,
    _dir: tempfile::TempDir,
}

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set. The PostgreSQL + S3 tests need real services: run scripts/test.sh, or start \
             scripts/pg-test-start.sh and scripts/garage-test-start.sh and export KILN_TEST_* as scripts/test.sh does"
        )
    })
}

fn fresh_postgres_database() -> String {
    let base = required_env("KILN_TEST_DATABASE_URL");
    let name = format!("kiln_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = diesel::PgConnection::establish(&base).expect("connect to the test PostgreSQL");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .expect("create a test database");
    let (server, _) = base
        .rsplit_once('/')
        .expect("database URL has a database name");
    format!("{server}/{name}")
}

pub fn settings_for(backend: Backend, dir: &std::path::Path) -> Settings {
    let (database, storage) = match backend {
        Backend::Embedded => (
            DatabaseSettings::Sqlite {
                path: dir.join("kiln.db"),
            },
            StorageSettings::Local {
                root: dir.join("store"),
            },
        ),
        Backend::PostgresS3 => (
            DatabaseSettings::Postgres {
                url: fresh_postgres_database(),
            },
            StorageSettings::S3 {
                bucket: required_env("KILN_TEST_S3_BUCKET"),
                prefix: format!("test-{}", uuid::Uuid::new_v4().simple()),
                endpoint: Some(required_env("KILN_TEST_S3_ENDPOINT")),
                region: std::env::var("KILN_TEST_S3_REGION")
                    .ok()
                    .or(Some("garage".to_owned())),
                access_key_id: Some(required_env("KILN_TEST_S3_ACCESS_KEY_ID")),
                secret_access_key: Some(required_env("KILN_TEST_S3_SECRET_ACCESS_KEY")),
                encryption: None,
                max_copy_bytes: 5 * 1024 * 1024 * 1024,
            },
        ),
    };
    Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_owned(),
        database,
        storage,
        max_json_bytes: 64 * 1024,
        upload_session_ttl: std::time::Duration::from_secs(3600),
        // Collection only when a test asks for it, and of anything unreferenced (no push is in flight
        // unless the test makes one).
        collection: kiln_server::config::CollectionSettings {
            grace: std::time::Duration::ZERO,
            every: None,
            lease: std::time::Duration::from_secs(120),
            batch_rows: 1000,
        },
        bootstrap_token: Some(ADMIN_TOKEN.to_owned()),
        rate_limit_per_minute: 1_000_000,
        pipeline_workers: 1,
        manifest_keys_dir: dir.join("manifest-keys"),
        manifest_validity: std::time::Duration::from_secs(90 * 86_400),
        runner_lease: std::time::Duration::from_secs(60),
        // Tests that want benchmarks turn it on (or start runners of their own).
        embedded_runner: false,
        embedded_runner_threads: 1,
        onnxruntime_lib: None,
        step_memory_bytes: 4 * 1024 * 1024 * 1024,
        streamed_variants_above_bytes: 512 * 1024 * 1024,
        step_time: std::time::Duration::from_secs(600),
        // Pipeline steps and the embedded runner run in the real server binary, as they do in production.
        server_executable: Some(env!("CARGO_BIN_EXE_kiln-server").into()),
        log_json: false,
        cors_allowed_origins: Vec::new(),
        min_body_bytes_per_sec: 1024,
        public_url: None,
        tls: None,
        metrics: Default::default(),
        // Most tests read back what they just changed through paths this replica does not invalidate
        // (the pipeline's own updates); the cache's own tests turn it on.
        cache_ttl: std::time::Duration::ZERO,
        // The tests' receivers listen on loopback; retries come fast and a subscription is disabled
        // after a few failures.
        webhooks: kiln_server::config::WebhookSettings {
            allow_private_targets: true,
            timeout: std::time::Duration::from_secs(5),
            disable_after_failures: 50,
            poll: std::time::Duration::from_millis(200),
            deliver: true,
        },
        traces: None,
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        // Server logs go through the test writer: shown for a failing test, hidden otherwise.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn,kiln_server=info"))
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = settings_for(backend, dir.path());
        Self::start(settings, dir).await
    }

    /// A server whose settings `adjust` changes first (e.g. a low rate limit).
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = settings_for(backend, dir.path());
        adjust(&mut settings);
        Self::start(settings, dir).await
    }

    async fn start(settings: Settings, dir: tempfile::TempDir) -> Self {
        let app = Application::build(settings.clone())
            .await
            .expect("server starts");
        let address = app.address();
        let services = app.services.clone();
        let (db, store) = (app.database().clone(), app.store().clone());
        let handle = app.handle();
        actix_web::rt::spawn(app.run());
        Self {
            address,
            // actix closes a connection idle for its keep-alive (5 s); a client that reuses one at that
            // instant gets IncompleteMessage. Dropping idle connections sooner avoids the race in tests
            // that wait several seconds between requests (webhook retries).
            http: reqwest::Client::builder()
                .pool_idle_timeout(std::time::Duration::from_secs(2))
                .build()
                .expect("an HTTP client"),
            services,
            db,
            store,
            settings,
            handle,
            _dir: dir,
        }
    }

    /// Another replica: a second server on the same database, store and signing keys, beside this one.
    pub async fn replica(&self) -> Self {
        let mut settings = self.settings.clone();
        settings.listen = "127.0.0.1:0".parse().unwrap();
        Self::start(settings, tempfile::tempdir().expect("temp dir")).await
    }

    /// Stops this server and starts a new one on the same database and store, as after a crash or deploy.
    pub async fn restart(self) -> Self {
        self.restart_with(|_| {}).await
    }

    /// Like [`Self::restart`], with settings changed first (e.g. pipeline workers turned on).
    pub async fn restart_with(self, adjust: impl FnOnce(&mut Settings)) -> Self {
        self.handle.stop(false).await;
        let mut settings = self.settings.clone();
        settings.listen = "127.0.0.1:0".parse().unwrap();
        adjust(&mut settings);
        Self::start(settings, self._dir).await
    }

    /// Polls a version until its pipeline has settled: refused at the scan (failed), or ready with every
    /// step after the scan ended (benchmarks are not waited for).
    pub async fn settled_version(&self, reference: &str) -> kiln_core::api::VersionDetail {
        use kiln_core::api::VersionStatus;
        let (model, version) = reference.split_once(':').expect("NS/MODEL:VERSION");
        let path = format!("/api/v1/models/{model}/versions/{version}");
        for _ in 0..600 {
            let detail: kiln_core::api::VersionDetail =
                expect_json(self.get(&path).await, StatusCode::OK).await;
            let steps_running = detail.pipeline.iter().any(|j| {
                j.kind != "benchmark"
                    && matches!(
                        j.state,
                        kiln_core::api::JobState::Queued | kiln_core::api::JobState::Running
                    )
            });
            match detail.status {
                VersionStatus::Failed => return detail,
                VersionStatus::Ready if !steps_running => return detail,
                _ => {}
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        panic!("{reference}: the pipeline did not settle within 120 s");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// A request signed in as the administrator.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.anonymous(method, path).bearer_auth(ADMIN_TOKEN)
    }

    /// A request without credentials.
    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn create_session(&self, digest: &Sha256Digest, size: usize) -> Response {
        self.post_json(
            "/api/v1/uploads",
            &json!({ "digest": digest, "size": size }),
        )
        .await
    }

    pub async fn patch_chunk(
        &self,
        id: &str,
        start: usize,
        data: Vec<u8>,
        total: usize,
    ) -> Response {
        let end = start + data.len() - 1;
        self.request(Method::PATCH, &format!("/api/v1/uploads/{id}"))
            .header("content-range", format!("bytes {start}-{end}/{total}"))
            .body(data)
            .send()
            .await
            .expect("request sent")
    }

    /// Uploads `data` as one blob through a session and commits it, as the administrator.
    pub async fn upload_blob(&self, data: &[u8]) -> Sha256Digest {
        self.upload_blob_as(ADMIN_TOKEN, data).await
    }

    /// Uploads `data` as one blob, with `token`'s credentials.
    pub async fn upload_blob_as(&self, token: &str, data: &[u8]) -> Sha256Digest {
        let digest = Sha256Digest::of(data);
        let response = self
            .anonymous(Method::POST, "/api/v1/uploads")
            .bearer_auth(token)
            .json(&json!({ "digest": digest, "size": data.len() }))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::CONFLICT {
            return digest;
        }
        let session: UploadSession = expect_json(response, StatusCode::CREATED).await;
        if !data.is_empty() {
            let response = self
                .anonymous(Method::PATCH, &format!("/api/v1/uploads/{}", session.id))
                .bearer_auth(token)
                .header(
                    "content-range",
                    format!("bytes 0-{}/{}", data.len() - 1, data.len()),
                )
                .body(data.to_vec())
                .send()
                .await
                .unwrap();
            expect_json::<Value>(response, StatusCode::OK).await;
        }
        let response = self
            .anonymous(
                Method::POST,
                &format!("/api/v1/uploads/{}/commit", session.id),
            )
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        expect_json::<Value>(response, StatusCode::OK).await;
        digest
    }

    /// Uploads the files and commits them as a version; returns the commit response.
    pub async fn push(&self, reference: &str, files: &[(&str, &[u8])]) -> Response {
        self.push_with_pipeline(reference, files, None).await
    }

    /// [`Self::push`] with the commit's pipeline options (`variants`, ...).
    pub async fn push_with_pipeline(
        &self,
        reference: &str,
        files: &[(&str, &[u8])],
        pipeline: Option<Value>,
    ) -> Response {
        let (model, version) = reference.split_once(':').expect("NS/MODEL:VERSION");
        let mut entries = Vec::new();
        for (path, data) in files {
            let digest = self.upload_blob(data).await;
            entries.push(json!({ "path": path, "digest": digest, "size": data.len() }));
        }
        let mut body = json!({ "version": version, "files": entries });
        if let Some(pipeline) = pipeline {
            body["pipeline"] = pipeline;
        }
        self.post_json(&format!("/api/v1/models/{model}/versions"), &body)
            .await
    }
}

/// Asserts the status and parses the JSON body, printing the body when the status is wrong.
pub async fn expect_json<T: serde::de::DeserializeOwned>(
    response: Response,
    status: StatusCode,
) -> T {
    let actual = response.status();
    let text = response.text().await.expect("body read");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("body is not the expected JSON ({e}): {text}"))
}

/// Asserts an API error: status, code, and that the message says something.
pub async fn expect_error(response: Response, status: StatusCode, code: &str) -> Value {
    let body: Value = expect_json(response, status).await;
    assert_eq!(body["error"]["code"], code, "wrong error code in {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.len() > 10),
        "error message should explain the problem: {body}"
    );
    body
}

/// Runs each listed scenario (an `async fn(TestApp)`) once per backend.
#[macro_export]
macro_rules! on_every_backend {
    // `spawn = f;` starts each backend's server with `f(Backend)` (e.g. with settings changed); `f` is resolved
    // from inside the generated modules, so a function of the caller is `super::f`.
    (spawn = $spawn:path; $($scenario:ident),* $(,)?) => {
        mod embedded {
            $(
                #[actix_web::test]
                async fn $scenario() {
                    super::$scenario($spawn($crate::harness::Backend::Embedded).await).await
                }
            )*
        }
        mod postgres_s3 {
            $(
                #[actix_web::test]
                async fn $scenario() {
                    super::$scenario($spawn($crate::harness::Backend::PostgresS3).await).await
                }
            )*
        }
    };
    ($($scenario:ident),* $(,)?) => {
        $crate::on_every_backend!(spawn = $crate::harness::TestApp::spawn; $($scenario),*);
    };
}

/// A version's variant by name.
pub fn variant<'a>(
    detail: &'a kiln_core::api::VersionDetail,
    name: &str,
) -> &'a kiln_core::api::VariantDetail {
    detail
        .variants
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no {name} variant in {detail:#?}"))
}

/// A version's pipeline job of `kind` (the first).
pub fn job<'a>(
    detail: &'a kiln_core::api::VersionDetail,
    kind: &str,
) -> &'a kiln_core::api::PipelineJob {
    detail
        .pipeline
        .iter()
        .find(|j| j.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} job in {detail:#?}"))
}

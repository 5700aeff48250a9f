//! The runner protocol over HTTP, with a runner-scoped API token.

use std::path::Path;

use kiln_core::api::{
    DistillationJob, DistillationProgress, DistillationResult, ErrorResponse, FileEntry,
};
use kiln_core::runners::{
    BenchmarkJob, BenchmarkReport, HeartbeatAck, RegisteredRunner, RunnerHeartbeat,
    RunnerRegistration,
};
use kiln_core::{ErrorCode, FilePath};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use crate::coordinator::{Coordinator, CoordinatorError};

pub struct HttpCoordinator {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl HttpCoordinator {
    pub fn new(server: &str, token: &str) -> Result<Self, CoordinatorError> {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            // A stalled transfer fails (and the job is retried) instead of holding its lease forever.
            .read_timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| CoordinatorError::Refused(e.to_string()))?;
        Ok(Self {
            base: format!("{}/api/v1", server.trim_end_matches('/')),
            token: token.to_owned(),
            http,
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// Sends, and turns error answers into what the runner does about them.
    async fn send(
        &self,
        request: RequestBuilder,
        job: Option<&str>,
    ) -> Result<Response, CoordinatorError> {
        let response = request
            .send()
            .await
            .map_err(|e| CoordinatorError::Unavailable(format!("{}: {e}", self.base)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let (code, message) = serde_json::from_str::<ErrorResponse>(&body)
            .map(|e| (e.error.error_code(), e.error.message))
            .unwrap_or_else(|_| (None, body));
        Err(match (status, code, job) {
            (StatusCode::CONFLICT, Some(ErrorCode::LeaseLost), Some(job)) => {
                CoordinatorError::LeaseLost(job.to_owned())
            }
            (s, _, _) if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                CoordinatorError::Unavailable(format!("{s}: {message}"))
            }
            (s, _, _) => CoordinatorError::Refused(format!("{s}: {message}")),
        })
    }

    /// The URL of `segments` under the API, each segment escaped.
    fn url(&self, segments: &[&str]) -> Result<reqwest::Url, CoordinatorError> {
        let mut url = reqwest::Url::parse(&self.base)
            .map_err(|e| CoordinatorError::Refused(format!("server URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| CoordinatorError::Refused("server URL cannot be a base".to_owned()))?
            .extend(segments.iter().flat_map(|s| s.split('/')));
        Ok(url)
    }

    /// A job's claim: the job, or None when the server has none (204).
    async fn claim_at<T: serde::de::DeserializeOwned>(
        &self,
        segments: &[&str],
    ) -> Result<Option<T>, CoordinatorError> {
        let url = self.url(segments)?;
        let response = self
            .send(self.http.post(url).bearer_auth(&self.token), None)
            .await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        Self::json(response).await.map(Some)
    }

    /// Streams a held job's file into `into`.
    async fn download(
        &self,
        url: reqwest::Url,
        job: &str,
        into: &Path,
    ) -> Result<(), CoordinatorError> {
        let response = self
            .send(self.http.get(url).bearer_auth(&self.token), Some(job))
            .await?;
        crate::coordinator::save_stream(into, response.bytes_stream()).await
    }

    async fn file_body(from: &Path) -> Result<reqwest::Body, CoordinatorError> {
        let file = tokio::fs::File::open(from)
            .await
            .map_err(|e| CoordinatorError::Unavailable(format!("{}: {e}", from.display())))?;
        Ok(reqwest::Body::wrap_stream(
            tokio_util::io::ReaderStream::new(file),
        ))
    }

    async fn json<T: serde::de::DeserializeOwned>(
        response: Response,
    ) -> Result<T, CoordinatorError> {
        response
            .json()
            .await
            .map_err(|e| CoordinatorError::Unavailable(format!("unexpected answer: {e}")))
    }
}

impl Coordinator for HttpCoordinator {
    async fn register(
        &self,
        registration: RunnerRegistration,
    ) -> Result<RegisteredRunner, CoordinatorError> {
        let response = self
            .send(
                self.request(Method::POST, "/runners").json(&registration),
                None,
            )
            .await?;
        Self::json(response).await
    }

    async fn heartbeat(
        &self,
        runner: &str,
        job: Option<&str>,
    ) -> Result<HeartbeatAck, CoordinatorError> {
        let body = RunnerHeartbeat {
            job_id: job.map(str::to_owned),
            progress: None,
        };
        let request = self
            .request(Method::POST, &format!("/runners/{runner}/heartbeat"))
            .json(&body);
        Self::json(self.send(request, job).await?).await
    }

    async fn claim(&self, runner: &str) -> Result<Option<BenchmarkJob>, CoordinatorError> {
        self.claim_at(&["runners", runner, "claim"]).await
    }

    async fn fetch(
        &self,
        runner: &str,
        job: &BenchmarkJob,
        file: &FileEntry,
        into: &Path,
    ) -> Result<(), CoordinatorError> {
        let url = self.url(&[
            "runners",
            runner,
            "jobs",
            &job.job_id,
            "files",
            file.path.as_str(),
        ])?;
        self.download(url, &job.job_id, into).await
    }

    async fn report(
        &self,
        runner: &str,
        job: &str,
        report: BenchmarkReport,
    ) -> Result<(), CoordinatorError> {
        let request = self
            .request(
                Method::POST,
                &format!("/runners/{runner}/jobs/{job}/result"),
            )
            .json(&report);
        self.send(request, Some(job)).await.map(|_| ())
    }

    async fn heartbeat_progress(
        &self,
        runner: &str,
        job: &str,
        progress: Option<DistillationProgress>,
    ) -> Result<HeartbeatAck, CoordinatorError> {
        let body = RunnerHeartbeat {
            job_id: Some(job.to_owned()),
            progress,
        };
        let request = self
            .request(Method::POST, &format!("/runners/{runner}/heartbeat"))
            .json(&body);
        Self::json(self.send(request, Some(job)).await?).await
    }

    async fn claim_distillation(
        &self,
        runner: &str,
    ) -> Result<Option<DistillationJob>, CoordinatorError> {
        self.claim_at(&["runners", runner, "distillations", "claim"])
            .await
    }

    async fn fetch_input(
        &self,
        runner: &str,
        job: &str,
        input: &str,
        file: &FileEntry,
        into: &Path,
    ) -> Result<(), CoordinatorError> {
        let url = self.url(&[
            "runners",
            runner,
            "distillations",
            job,
            input,
            file.path.as_str(),
        ])?;
        let response = self
            .send(self.http.get(url).bearer_auth(&self.token), Some(job))
            .await?;
        crate::coordinator::save_stream(into, response.bytes_stream()).await
    }

    async fn load_checkpoint(
        &self,
        runner: &str,
        job: &str,
        into: &Path,
    ) -> Result<(), CoordinatorError> {
        let url = self.url(&["runners", runner, "distillations", job, "checkpoint"])?;
        self.download(url, job, into).await
    }

    async fn save_checkpoint(
        &self,
        runner: &str,
        job: &str,
        step: u64,
        from: &Path,
    ) -> Result<(), CoordinatorError> {
        let mut url = self.url(&["runners", runner, "distillations", job, "checkpoint"])?;
        url.query_pairs_mut().append_pair("step", &step.to_string());
        let request = self
            .http
            .put(url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(Self::file_body(from).await?);
        self.send(request, Some(job)).await.map(|_| ())
    }

    async fn upload_file(
        &self,
        runner: &str,
        job: &str,
        path: &FilePath,
        from: &Path,
    ) -> Result<FileEntry, CoordinatorError> {
        let url = self.url(&[
            "runners",
            runner,
            "distillations",
            job,
            "files",
            path.as_str(),
        ])?;
        let request = self
            .http
            .put(url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(Self::file_body(from).await?);
        Self::json(self.send(request, Some(job)).await?).await
    }

    async fn report_distillation(
        &self,
        runner: &str,
        job: &str,
        result: DistillationResult,
    ) -> Result<(), CoordinatorError> {
        let url = self.url(&["runners", runner, "distillations", job, "result"])?;
        let request = self.http.post(url).bearer_auth(&self.token).json(&result);
        self.send(request, Some(job)).await.map(|_| ())
    }
}

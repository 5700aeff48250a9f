//! A typed client for the kiln HTTP API.

use kiln_core::api::{
    BlobInfo, CreateUploadRequest, CreateVersionRequest, ErrorResponse, MissingBlobsRequest,
    MissingBlobsResponse, ModelDetail, ModelSummary, UpdateModelRequest, UploadSession,
    VersionDetail,
};
use kiln_core::{ErrorCode, FilePath, ModelName, NamespaceName, Sha256Digest, VersionName};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::CliError;

#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// How a version commit ended.
pub enum CommitOutcome {
    Created(VersionDetail),
    AlreadyPresent(VersionDetail),
}

impl ApiClient {
    pub fn new(server: &str, token: Option<String>) -> Result<Self, CliError> {
        let base = server.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CliError::Usage(format!(
                "--server (or KILN_SERVER) {server:?} must be an http:// or https:// URL, e.g. http://127.0.0.1:8080"
            )));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("kiln-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| CliError::Usage(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self { http, base, token })
    }

    pub fn server(&self) -> &str {
        &self.base
    }

    /// The same server with another credential (login checks a token before storing it).
    pub fn with_token(&self, token: String) -> Self {
        Self {
            token: Some(token),
            ..self.clone()
        }
    }

    fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.authorize(
            self.http
                .request(method, format!("{}/api/v1{path}", self.base)),
        )
    }

    fn transport_error(&self, e: reqwest::Error) -> CliError {
        if e.is_connect() || e.is_timeout() && !e.is_body() {
            CliError::Unreachable {
                server: self.base.clone(),
                reason: root_cause(&e),
            }
        } else {
            CliError::Transfer(root_cause(&e))
        }
    }

    /// Sends, and turns any non-2xx answer into [`CliError::Api`].
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, CliError> {
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| self.transport_error(e))?;
        Err(match serde_json::from_str::<ErrorResponse>(&body) {
            Ok(parsed) if status == 401 => CliError::Unauthenticated {
                message: parsed.error.message,
                signed_in: self.token.is_some(),
            },
            Ok(parsed) => CliError::Api {
                status,
                code: parsed.error.code,
                message: parsed.error.message,
                details: parsed.error.details,
            },
            Err(_) => CliError::Protocol { status, body },
        })
    }

    async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, CliError> {
        let response = self.send(request).await?;
        self.body_json(response).await
    }

    /// A successful answer's JSON body.
    async fn body_json<T: DeserializeOwned>(&self, response: Response) -> Result<T, CliError> {
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        serde_json::from_slice(&body).map_err(|e| CliError::Protocol {
            status,
            body: format!("{e}: {}", String::from_utf8_lossy(&body)),
        })
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        self.json(self.request(Method::GET, path)).await
    }

    /// Every item of a listing, following the server's `next` links page by page.
    pub async fn get_all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, CliError> {
        Ok(self.pages(path, Vec::new(), None).await?.0)
    }

    /// Models passing `filter`, up to `limit` (every one when None), following the server's `next`
    /// links page by page; also says whether more were left.
    pub async fn models(
        &self,
        namespace: Option<&NamespaceName>,
        filter: &ModelFilter,
        limit: Option<usize>,
    ) -> Result<(Vec<ModelSummary>, bool), CliError> {
        let path = match namespace {
            Some(ns) => format!("/namespaces/{ns}/models"),
            None => "/models".to_owned(),
        };
        self.pages(&path, filter.params(), limit).await
    }

    /// A listing's items with `params`, up to `limit` (every one when None), following the `next`
    /// links; also says whether more were left.
    async fn pages<T: DeserializeOwned>(
        &self,
        path: &str,
        params: Vec<(&'static str, String)>,
        limit: Option<usize>,
    ) -> Result<(Vec<T>, bool), CliError> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let want = limit.map_or(1000, |l| (l - all.len()).min(1000));
            let mut query = params.clone();
            query.push(("limit", want.to_string()));
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor.clone()));
            }
            let response = self
                .send(self.request(Method::GET, path).query(&query))
                .await?;
            cursor = next_cursor(&response);
            let page: Vec<T> = self.body_json(response).await?;
            all.extend(page);
            let full = limit.is_some_and(|l| all.len() >= l);
            if cursor.is_none() || full {
                return Ok((all, cursor.is_some()));
            }
        }
    }

    pub async fn model(
        &self,
        ns: &NamespaceName,
        model: &ModelName,
    ) -> Result<ModelDetail, CliError> {
        let mut detail: ModelDetail = self.get_json(&format!("/models/{ns}/{model}")).await?;
        // The detail shows the newest hundred; the CLI lists them all.
        if detail.version_count > detail.versions.len() as i64 {
            detail.versions = self
                .get_all(&format!("/models/{ns}/{model}/versions"))
                .await?;
        }
        Ok(detail)
    }

    pub async fn version(
        &self,
        ns: &NamespaceName,
        model: &ModelName,
        version: &VersionName,
    ) -> Result<VersionDetail, CliError> {
        self.get_json(&format!("/models/{ns}/{model}/versions/{version}"))
            .await
    }

    pub async fn update_model(
        &self,
        ns: &NamespaceName,
        model: &ModelName,
        update: &UpdateModelRequest,
    ) -> Result<ModelDetail, CliError> {
        self.json(
            self.request(Method::PATCH, &format!("/models/{ns}/{model}"))
                .json(update),
        )
        .await
    }

    pub async fn delete_version(
        &self,
        ns: &NamespaceName,
        model: &ModelName,
        version: &VersionName,
    ) -> Result<(), CliError> {
        self.send(self.request(
            Method::DELETE,
            &format!("/models/{ns}/{model}/versions/{version}"),
        ))
        .await?;
        Ok(())
    }

    pub async fn delete_model(
        &self,
        ns: &NamespaceName,
        model: &ModelName,
        force: bool,
    ) -> Result<(), CliError> {
        let path = format!("/models/{ns}/{model}");
        let mut request = self.request(Method::DELETE, &path);
        if force {
            request = request.query(&[("force", "true")]);
        }
        self.send(request).await?;
        Ok(())
    }

    pub async fn missing_blobs(
        &self,
        digests: Vec<Sha256Digest>,
    ) -> Result<Vec<Sha256Digest>, CliError> {
        let mut missing = Vec::new();
        for batch in digests.chunks(10_000) {
            let response: MissingBlobsResponse =
                self.json(self.request(Method::POST, "/blobs/missing").json(
                    &MissingBlobsRequest {
                        digests: batch.to_vec(),
                    },
                ))
                .await?;
            missing.extend(response.missing);
        }
        Ok(missing)
    }

    /// Starts an upload session; `None` when the server already holds the blob.
    pub async fn create_upload(
        &self,
        digest: Sha256Digest,
        size: i64,
    ) -> Result<Option<UploadSession>, CliError> {
        let request = self
            .request(Method::POST, "/uploads")
            .json(&CreateUploadRequest { digest, size });
        match self.json(request).await {
            Ok(session) => Ok(Some(session)),
            Err(e) if e.api_code() == Some(ErrorCode::BlobExists) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn upload(&self, id: &str) -> Result<UploadSession, CliError> {
        self.get_json(&format!("/uploads/{id}")).await
    }

    pub async fn commit_upload(&self, id: &str) -> Result<BlobInfo, CliError> {
        self.json(self.request(Method::POST, &format!("/uploads/{id}/commit")))
            .await
    }

    pub async fn commit_version(
        &self,
        ns: &NamespaceName,
        model: &ModelName,
        request: &CreateVersionRequest,
    ) -> Result<CommitOutcome, CliError> {
        let response = self
            .send(
                self.request(Method::POST, &format!("/models/{ns}/{model}/versions"))
                    .json(request),
            )
            .await?;
        let created = response.status() == StatusCode::CREATED;
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        let detail: VersionDetail =
            serde_json::from_slice(&body).map_err(|e| CliError::Protocol {
                status: 200,
                body: e.to_string(),
            })?;
        Ok(if created {
            CommitOutcome::Created(detail)
        } else {
            CommitOutcome::AlreadyPresent(detail)
        })
    }

    /// Starts downloading a file, from byte `from` on when it is not 0.
    pub async fn download(
        &self,
        ns: &NamespaceName,
        model: &ModelName,
        version: &VersionName,
        variant: Option<&str>,
        path: &FilePath,
        from: u64,
    ) -> Result<Response, CliError> {
        // File names may hold spaces, '#', '?' or '%': encode each path segment.
        let mut url = reqwest::Url::parse(&self.base)
            .map_err(|e| CliError::Usage(format!("invalid server URL: {e}")))?;
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| CliError::Usage(format!("invalid server URL {}", self.base)))?;
            segments.pop_if_empty().extend([
                "api",
                "v1",
                "models",
                ns.as_str(),
                model.as_str(),
                "versions",
                version.as_str(),
            ]);
            if let Some(variant) = variant {
                segments.extend(["variants", variant]);
            }
            segments.push("files").extend(path.as_str().split('/'));
        }
        let mut request = self.authorize(self.http.get(url));
        if from > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        self.send(request).await
    }

    pub fn transfer_error(&self, e: reqwest::Error) -> CliError {
        self.transport_error(e)
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

impl ApiClient {
    pub async fn post_json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CliError> {
        self.json(self.request(Method::POST, path).json(body)).await
    }

    pub async fn put_json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CliError> {
        self.json(self.request(Method::PUT, path).json(body)).await
    }

    pub async fn patch_json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CliError> {
        self.json(self.request(Method::PATCH, path).json(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Result<(), CliError> {
        self.send(self.request(Method::DELETE, path)).await?;
        Ok(())
    }
}

/// What a model listing keeps (`kiln ls --tag ... --search ...`): every one given must hold.
#[derive(Debug, Default)]
pub struct ModelFilter {
    pub tag: Option<String>,
    pub search: Option<String>,
    pub prefix: Option<String>,
    pub has_variant: Option<String>,
}

impl ModelFilter {
    fn params(&self) -> Vec<(&'static str, String)> {
        [
            ("tag", &self.tag),
            ("q", &self.search),
            ("prefix", &self.prefix),
            ("has_variant", &self.has_variant),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.clone()?)))
        .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.params().is_empty()
    }
}

/// The cursor of the `Link: <...>; rel="next"` a full page carries.
fn next_cursor(response: &Response) -> Option<String> {
    let link = response
        .headers()
        .get(reqwest::header::LINK)?
        .to_str()
        .ok()?;
    let target = link.strip_prefix('<')?.split_once('>')?.0;
    let query = target.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "cursor")
        .map(|(_, value)| value.into_owned())
}

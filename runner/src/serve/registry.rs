//! What `kiln-runner serve` asks the registry for: the subject's signed manifest (as a compact JWS, with
//! `If-None-Match` while following an alias), the JWK Set it is verified with, and the chosen variant's
//! files, fetched into the runner's cache and checked against the digests the verified manifest names.

use std::path::{Path, PathBuf};

use kiln_core::ModelRef;
use kiln_core::api::FileEntry;
use kiln_core::deployment::{DeploymentManifest, ManifestFile, ManifestVariant};
use kiln_core::manifest_trust::{self, Verified};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, ETAG, IF_NONE_MATCH};
use serde_json::Value;

use super::ServeError;
use crate::work::{Dropped, cached_file, lay_out};

/// A manifest fetched and verified, with the ETag it came with.
pub struct Fetched {
    pub verified: Verified,
    pub etag: Option<String>,
}

pub struct Registry {
    server: String,
    token: Option<String>,
    /// A JWK Set file or URL given on the command line instead of the server's own.
    jwks: Option<String>,
    http: reqwest::Client,
}

impl Registry {
    pub fn new(server: &str, token: Option<String>, jwks: Option<String>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .read_timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            server: server.trim_end_matches('/').to_owned(),
            token,
            jwks,
            http,
        })
    }

    fn get(&self, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.get(url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// The path of the subject's newest manifest under the API.
    fn manifest_url(&self, subject: &ModelRef) -> Result<String, String> {
        let model = subject.model.as_ref().ok_or_else(|| {
            format!("{subject}: serve needs NAMESPACE/MODEL@ALIAS or NAMESPACE/MODEL:VERSION")
        })?;
        let base = format!(
            "{}/api/v1/models/{}/{model}",
            self.server, subject.namespace
        );
        match (&subject.version, &subject.alias) {
            (Some(version), None) => Ok(format!("{base}/versions/{version}/manifest")),
            (None, Some(alias)) => Ok(format!("{base}/aliases/{alias}/manifest")),
            _ => Err(format!(
                "{subject}: serve needs NAMESPACE/MODEL@ALIAS or NAMESPACE/MODEL:VERSION, e.g. acme/resnet@production"
            )),
        }
    }

    async fn jwk_set(&self) -> Result<Value, String> {
        let text = match &self.jwks {
            Some(path) if !path.starts_with("http://") && !path.starts_with("https://") => {
                std::fs::read_to_string(path).map_err(|e| format!("--jwks {path}: {e}"))?
            }
            source => {
                let url = source
                    .clone()
                    .unwrap_or_else(|| format!("{}/.well-known/jwks.json", self.server));
                let response = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .map_err(|e| format!("{url}: {e}"))?;
                if !response.status().is_success() {
                    return Err(format!("{url}: {}", response.status()));
                }
                response.text().await.map_err(|e| format!("{url}: {e}"))?
            }
        };
        serde_json::from_str(&text).map_err(|e| format!("the JWK Set is not JSON: {e}"))
    }

    /// The subject's newest manifest, verified (signature by a key of the JWK Set, expiry, subject), or
    /// `None` when the server answers that the one with `etag` is still the newest.
    pub async fn manifest(
        &self,
        subject: &ModelRef,
        etag: Option<&str>,
    ) -> Result<Option<Fetched>, ServeError> {
        let url = self.manifest_url(subject).map_err(ServeError::Registry)?;
        let mut request = self.get(&url).header(ACCEPT, "application/jose");
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let response = request.send().await.map_err(|e| {
            ServeError::Registry(format!(
                "cannot reach the kiln server at {}: {e}",
                self.server
            ))
        })?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let hint = match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
                    "; is the name right, and does --token (KILN_TOKEN) let you read it?"
                }
                _ => "",
            };
            return Err(ServeError::Registry(format!(
                "{url}: {status}: {body}{hint}"
            )));
        }
        let etag = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let jws = response
            .text()
            .await
            .map_err(|e| ServeError::Registry(format!("{url}: {e}")))?;
        let keys = self.jwk_set().await.map_err(ServeError::Registry)?;
        let refused = |e: manifest_trust::ManifestRefused| ServeError::Refused(e.to_string());
        let verified = manifest_trust::verify_jws(jws.trim(), &keys).map_err(refused)?;
        manifest_trust::check_subject(&verified.manifest, subject).map_err(refused)?;
        Ok(Some(Fetched { verified, etag }))
    }

    /// The variant's files in one folder of the cache (named by the model file's digest), each fetched
    /// once and checked against its digest; returns the model file's path.
    pub async fn fetch_variant(
        &self,
        variant: &ManifestVariant,
        cache: &Path,
    ) -> Result<PathBuf, String> {
        let folder = cache.join("serve").join(variant.sha256.hex());
        let io = |e: std::io::Error| format!("{}: {e}", folder.display());
        let first = variant
            .files
            .first()
            .ok_or_else(|| format!("variant {} lists no files", variant.name))?;
        for file in &variant.files {
            let cached = self.fetch_file(file, cache).await?;
            lay_out(&cached, &folder.join(file.path.as_str()))
                .await
                .map_err(io)?;
        }
        Ok(folder.join(first.path.as_str()))
    }

    /// One file the verified manifest names, fetched into the cache (once) and checked against its
    /// digest: where it lies there.
    pub async fn fetch_file(&self, file: &ManifestFile, cache: &Path) -> Result<PathBuf, String> {
        let entry = FileEntry {
            path: file.path.clone(),
            digest: file.sha256,
            size: file.size,
        };
        let url = format!("{}{}", self.server, file.uri);
        cached_file(cache, &entry, "serve", |into| async move {
            let response = self.get(&url).send().await.map_err(|e| {
                crate::coordinator::CoordinatorError::Unavailable(format!("{url}: {e}"))
            })?;
            if !response.status().is_success() {
                return Err(crate::coordinator::CoordinatorError::Refused(format!(
                    "{url}: {}",
                    response.status()
                )));
            }
            crate::coordinator::save_stream(&into, response.bytes_stream()).await
        })
        .await
        .map_err(|e| match e {
            Dropped::LeaseLost => "the download was refused".to_owned(),
            Dropped::Transient(why) | Dropped::Final(why) => why,
        })
    }
}

/// The variant to serve: the one named, or `fp32` (the optimized graph), else `onnx`, else the first.
pub fn choose_variant<'a>(
    manifest: &'a DeploymentManifest,
    wanted: Option<&str>,
) -> Result<&'a ManifestVariant, String> {
    let names = || {
        manifest
            .variants
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match wanted {
        Some(name) => manifest.variants.iter().find(|v| v.name == name).ok_or_else(|| {
            format!(
                "{} (version {}) has no deployable variant {name:?}; it has: {}",
                manifest.subject(),
                manifest.version,
                names()
            )
        }),
        None => ["fp32", "onnx"]
            .iter()
            .find_map(|n| manifest.variants.iter().find(|v| v.name == *n))
            .or_else(|| manifest.variants.first())
            .ok_or_else(|| {
                format!(
                    "{} (version {}) has no deployable variant yet: wait until its pipeline has converted it",
                    manifest.subject(),
                    manifest.version
                )
            }),
    }
}

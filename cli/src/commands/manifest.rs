//! `kiln manifest REF` prints a version's or an alias's signed manifest; `kiln verify REF|FILE` checks it
//! (manifest_trust: signature against the server's published keys or a JWK Set given with --jwks, expiry,
//! subject, sequence state).

use std::path::{Path, PathBuf};

use kiln_core::ModelRef;
use kiln_core::api::ManifestResponse;
use reqwest::Method;
use serde_json::Value;

use super::browse::print_json;
use crate::client::ApiClient;
use crate::error::CliError;
use crate::manifest_trust::{self, SequenceState, Verified};

/// The API path of the newest manifest (or the one with `sequence`) of `REF:VERSION` or `REF@ALIAS`.
fn manifest_path(reference: &ModelRef, sequence: Option<i64>) -> Result<String, CliError> {
    let usage = || {
        CliError::Usage(format!(
            "this needs NAMESPACE/MODEL:VERSION or NAMESPACE/MODEL@ALIAS, e.g. acme/sentiment@production (got {reference})"
        ))
    };
    let model = reference.model.as_ref().ok_or_else(usage)?;
    let base = format!("/models/{}/{model}", reference.namespace);
    let subject = match (&reference.version, &reference.alias) {
        (Some(version), None) => format!("{base}/versions/{version}"),
        (None, Some(alias)) => format!("{base}/aliases/{alias}"),
        _ => return Err(usage()),
    };
    Ok(match sequence {
        None => format!("{subject}/manifest"),
        Some(n) => format!("{subject}/manifests/{n}"),
    })
}

/// `kiln manifest REF [--jws] [--sequence N]`
pub async fn show(
    client: &ApiClient,
    reference: ModelRef,
    jws: bool,
    sequence: Option<i64>,
    json: bool,
) -> Result<(), CliError> {
    let manifest: ManifestResponse = client
        .get_json(&manifest_path(&reference, sequence)?)
        .await?;
    if json {
        // The API's whole answer: sequence, key id, the document and its JWS.
        print_json(&manifest);
    } else if jws {
        println!("{}", manifest.jws);
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&manifest.payload).expect("JSON")
        );
    }
    Ok(())
}

/// The JWK Set: a file, a URL, or the server's /.well-known/jwks.json.
async fn jwks(client: &ApiClient, source: Option<&str>) -> Result<Value, CliError> {
    let text = match source {
        Some(path) if !path.starts_with("http://") && !path.starts_with("https://") => {
            std::fs::read_to_string(path).map_err(CliError::io(Path::new(path)))?
        }
        Some(url) => reqwest::get(url)
            .await
            .map_err(|e| CliError::Transfer(format!("{url}: {e}")))?
            .text()
            .await
            .map_err(|e| CliError::Transfer(format!("{url}: {e}")))?,
        None => client
            .send(reqwest::Client::new().get(format!("{}/.well-known/jwks.json", client.server())))
            .await?
            .text()
            .await
            .map_err(|e| CliError::Transfer(e.to_string()))?,
    };
    serde_json::from_str(&text)
        .map_err(|e| CliError::Integrity(format!("the JWK Set is not JSON: {e}")))
}

/// Where verification keeps the highest sequence seen per subject.
pub struct Trust<'a> {
    pub jwks: Option<&'a str>,
    pub state: Option<PathBuf>,
}

impl Trust<'_> {
    fn state_path(&self) -> Result<PathBuf, CliError> {
        match &self.state {
            Some(path) => Ok(path.clone()),
            None => default_state_path(),
        }
    }

    /// Verifies a JWS and admits it to the sequence state (saved when the sequence is new).
    async fn check(
        &self,
        client: &ApiClient,
        jws: &str,
        wanted: Option<&ModelRef>,
    ) -> Result<Verified, CliError> {
        let keys = jwks(client, self.jwks).await?;
        let verified = manifest_trust::verify_jws(jws, &keys)?;
        if let Some(wanted) = wanted {
            manifest_trust::check_subject(&verified.manifest, wanted)?;
        }
        let path = self.state_path()?;
        let mut state = SequenceState::load(&path)?;
        if state.admit(&verified, &path)? {
            state.save(&path)?;
        }
        Ok(verified)
    }
}

/// Fetches the newest manifest of `REF:VERSION` or `REF@ALIAS` as a JWS and verifies it.
pub async fn fetch_verified(
    client: &ApiClient,
    reference: &ModelRef,
    trust: &Trust<'_>,
) -> Result<Verified, CliError> {
    let path = manifest_path(reference, None)?;
    let response = client
        .send(
            client
                .request(Method::GET, &path)
                .header("accept", "application/jose"),
        )
        .await?;
    let jws = response
        .text()
        .await
        .map_err(|e| CliError::Transfer(e.to_string()))?;
    trust.check(client, jws.trim(), Some(reference)).await
}

/// `kiln verify REF|FILE [--jwks URL|FILE] [--state FILE]`
pub async fn verify(
    client: &ApiClient,
    target: &str,
    trust: Trust<'_>,
    json: bool,
) -> Result<(), CliError> {
    let verified = if Path::new(target).is_file() {
        let text = std::fs::read_to_string(target).map_err(CliError::io(Path::new(target)))?;
        trust.check(client, text.trim(), None).await?
    } else {
        let reference: ModelRef = target.parse().map_err(|e| {
            CliError::Usage(format!(
                "{target:?} is neither a file nor NAMESPACE/MODEL:VERSION or NAMESPACE/MODEL@ALIAS: {e}"
            ))
        })?;
        fetch_verified(client, &reference, &trust).await?
    };
    let m = &verified.manifest;
    if json {
        print_json(&serde_json::json!({
            "verified": m.subject(),
            "payload_sha256": verified.payload_sha256,
            "manifest": m,
        }));
        return Ok(());
    }
    let subject = match &m.alias {
        Some(_) => format!("{} → {}", m.subject(), m.version),
        None => m.subject(),
    };
    let issuer = m
        .iss
        .as_deref()
        .map(|iss| format!(", issued by {iss}"))
        .unwrap_or_default();
    println!(
        "verified {subject} (sequence {}, {} deployable variants, expires {}{issuer})",
        m.sequence,
        m.variants.len(),
        m.expires_at.to_rfc3339(),
    );
    Ok(())
}

/// `$XDG_CONFIG_HOME/kiln/manifest-state.json` (or `~/.config/...`), beside the credentials.
fn default_state_path() -> Result<PathBuf, CliError> {
    Ok(crate::credentials::path()?.with_file_name("manifest-state.json"))
}

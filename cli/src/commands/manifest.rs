//! `kiln manifest REF` prints a version's signed manifest; `kiln verify REF|FILE` checks its signature
//! against the server's published keys (or a JWK Set given with --jwks), its expiry, and that it names the
//! version asked for.

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use kiln_core::ModelRef;
use kiln_core::api::ManifestResponse;
use reqwest::Method;
use serde_json::Value;

use crate::client::ApiClient;
use crate::error::CliError;

fn version_of(reference: &ModelRef) -> Result<(String, String), CliError> {
    let (ns, model, version) = reference.require_version().ok_or_else(|| {
        CliError::Usage(format!(
            "this needs NAMESPACE/MODEL:VERSION, e.g. acme/sentiment:1.0.0 (got {reference})"
        ))
    })?;
    Ok((
        format!("/models/{ns}/{model}/versions/{version}/manifest"),
        format!("{ns}/{model}"),
    ))
}

/// `kiln manifest REF [--jws]`
pub async fn show(client: &ApiClient, reference: ModelRef, jws: bool) -> Result<(), CliError> {
    let (path, _) = version_of(&reference)?;
    let response = client.send(client.request(Method::GET, &path)).await?;
    let manifest: ManifestResponse = response.json().await.map_err(|e| CliError::Protocol {
        status: 200,
        body: e.to_string(),
    })?;
    if jws {
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

/// Checks a compact JWS: a known key, a valid EdDSA signature, not expired. Returns the payload.
pub fn verify_jws(jws: &str, jwks: &Value) -> Result<Value, CliError> {
    let refuse = |why: String| CliError::Integrity(format!("the manifest does not verify: {why}"));
    let header =
        jsonwebtoken::decode_header(jws).map_err(|e| refuse(format!("not a compact JWS ({e})")))?;
    if header.alg != Algorithm::EdDSA {
        return Err(refuse(format!(
            "it is signed with {:?}, kiln signs with EdDSA",
            header.alg
        )));
    }
    let kid = header
        .kid
        .ok_or_else(|| refuse("its header names no key (kid)".to_owned()))?;
    let key = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()))
        .ok_or_else(|| refuse(format!("key {kid:?} is not in the JWK Set")))?;
    let x = key["x"]
        .as_str()
        .ok_or_else(|| refuse(format!("key {kid:?} has no public part")))?;
    let decoding =
        DecodingKey::from_ed_components(x).map_err(|e| refuse(format!("key {kid:?}: {e}")))?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp"]);
    let data =
        jsonwebtoken::decode::<Value>(jws, &decoding, &validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                refuse("it has expired".to_owned())
            }
            jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                refuse("the signature does not match its content".to_owned())
            }
            _ => refuse(e.to_string()),
        })?;
    Ok(data.claims)
}

/// `kiln verify REF|FILE [--jwks URL|FILE]`
pub async fn verify(
    client: &ApiClient,
    target: &str,
    jwks_source: Option<&str>,
) -> Result<(), CliError> {
    let (jws, expected) = if Path::new(target).is_file() {
        let text = std::fs::read_to_string(target).map_err(CliError::io(Path::new(target)))?;
        (text.trim().to_owned(), None)
    } else {
        let reference: ModelRef = target.parse().map_err(|e| {
            CliError::Usage(format!(
                "{target:?} is neither a file nor NAMESPACE/MODEL:VERSION: {e}"
            ))
        })?;
        let (path, model) = version_of(&reference)?;
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
        (
            jws,
            Some((
                model,
                reference.version.map(|v| v.to_string()).unwrap_or_default(),
            )),
        )
    };
    let keys = jwks(client, jwks_source).await?;
    let payload = verify_jws(&jws, &keys)?;
    if let Some((model, version)) = expected
        && (payload["model"] != model.as_str() || payload["version"] != version.as_str())
    {
        return Err(CliError::Integrity(format!(
            "the manifest is for {}:{}, not {model}:{version}",
            payload["model"], payload["version"]
        )));
    }
    println!(
        "verified {}:{} (sequence {}, {} deployable variants, expires {})",
        payload["model"].as_str().unwrap_or("?"),
        payload["version"].as_str().unwrap_or("?"),
        payload["sequence"],
        payload["variants"].as_array().map_or(0, Vec::len),
        payload["expires_at"].as_str().unwrap_or("?"),
    );
    Ok(())
}

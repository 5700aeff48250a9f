//! What a verifier trusts before it uses a deployment manifest (docs/manifest.md): a compact JWS signed
//! with EdDSA by a key in the registry's JWK Set, an expiry in the future, and the subject asked for. The
//! CLI (`kiln verify`, `kiln pull REF@ALIAS`) and `kiln-runner serve` both check manifests with this.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::deployment::DeploymentManifest;
use crate::{ModelRef, Sha256Digest};

/// Why a manifest was refused; the message starts "the manifest does not verify".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the manifest does not verify: {0}")]
pub struct ManifestRefused(pub String);

fn refuse(why: impl std::fmt::Display) -> ManifestRefused {
    ManifestRefused(why.to_string())
}

/// A manifest whose signature and expiry were checked.
pub struct Verified {
    pub manifest: DeploymentManifest,
    /// Of the signed payload's bytes, as the JWS carries them.
    pub payload_sha256: Sha256Digest,
}

/// Checks a compact JWS: a known key, a valid EdDSA signature, not expired, a kiln manifest inside.
pub fn verify_jws(jws: &str, jwks: &Value) -> Result<Verified, ManifestRefused> {
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
        .ok_or_else(|| refuse("its header names no key (kid)"))?;
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
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => refuse("it has expired"),
            jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                refuse("the signature does not match its content")
            }
            _ => refuse(e),
        })?;
    let manifest = serde_json::from_value(data.claims)
        .map_err(|e| refuse(format!("it is signed but is not a kiln manifest ({e})")))?;
    let payload = jws.split('.').nth(1).unwrap_or_default();
    Ok(Verified {
        manifest,
        payload_sha256: Sha256Digest::of(payload.as_bytes()),
    })
}

/// The manifest must be for what was asked: the model, and the version or the alias.
pub fn check_subject(
    manifest: &DeploymentManifest,
    wanted: &ModelRef,
) -> Result<(), ManifestRefused> {
    let model = format!(
        "{}/{}",
        wanted.namespace,
        wanted.model.as_ref().map_or("", |m| m.as_str())
    );
    let matches = manifest.model == model
        && match (&wanted.version, &wanted.alias) {
            (Some(version), None) => manifest.alias.is_none() && &manifest.version == version,
            (None, Some(alias)) => manifest.alias.as_ref() == Some(alias),
            _ => false,
        };
    if matches {
        Ok(())
    } else {
        Err(refuse(format!(
            "it is the manifest of {}, not of {wanted}",
            manifest.subject()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(sequence: i64, version: &str) -> DeploymentManifest {
        serde_json::from_value(serde_json::json!({
            "model": "acme/m", "version": version, "alias": "production", "sequence": sequence,
            "issued_at": "2026-01-01T00:00:00Z", "expires_at": "2026-02-01T00:00:00Z",
            "iat": 0, "exp": 0, "variants": [], "sources": [],
            "provenance": {"kiln": "test", "converter": "test", "pipeline": [], "runners": []},
        }))
        .unwrap()
    }

    #[test]
    fn a_manifest_for_another_subject_is_refused() {
        let m = manifest(1, "1");
        check_subject(&m, &"acme/m@production".parse().unwrap()).unwrap();
        let err = check_subject(&m, &"acme/m@staging".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "the manifest does not verify: it is the manifest of acme/m@production, not of acme/m@staging"
        );
        assert!(check_subject(&m, &"acme/m:1".parse().unwrap()).is_err());
        assert!(check_subject(&m, &"acme/other@production".parse().unwrap()).is_err());
    }
}

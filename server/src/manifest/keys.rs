//! Manifest signing keys: Ed25519, one PKCS#8 file per key (mode 0600) in a folder (the embedded default's
//! data dir, or KILN_MANIFEST_KEYS_DIR in production, shared by every replica). The newest key signs; every
//! key's public half stays published, so manifests signed before a rotation still verify.

use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::error::Error;

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    public: Vec<u8>,
}

pub struct ManifestSigner {
    /// Sorted by kid (which sorts by creation time); the last one signs.
    keys: Vec<SigningKey>,
    /// How long what it signs stays valid.
    validity: chrono::Duration,
    /// Who signs: the `iss` of every manifest.
    issuer: String,
}

fn key_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Startup(format!("manifest signing key {}: {e}", path.display()))
}

/// Writes a new key to `dir` and returns its kid.
pub fn create_key(dir: &Path) -> Result<String, Error> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::create_dir_all(dir).map_err(|e| key_error(dir, e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| key_error(dir, e))?;
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|e| key_error(dir, e))?;
    let random: [u8; 4] = rand_bytes();
    let kid = format!(
        "{}-{}",
        crate::db::now().format("%Y%m%dT%H%M%S%6f"),
        hex::encode(random)
    );
    let path = dir.join(format!("{kid}.pk8"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| key_error(&path, e))?;
    file.write_all(pkcs8.as_ref())
        .map_err(|e| key_error(&path, e))?;
    Ok(kid)
}

fn rand_bytes() -> [u8; 4] {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 4];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("system randomness");
    bytes
}

impl ManifestSigner {
    /// Loads every key in `dir`, creating the first one when there is none.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let mut paths = key_files(dir)?;
        if paths.is_empty() {
            create_key(dir)?;
            paths = key_files(dir)?;
        }
        let mut keys = Vec::new();
        for path in paths {
            let der = std::fs::read(&path).map_err(|e| key_error(&path, e))?;
            let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(|e| key_error(&path, e))?;
            let kid = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            keys.push(SigningKey {
                kid,
                encoding: EncodingKey::from_ed_der(&der),
                public: pair.public_key().as_ref().to_vec(),
            });
        }
        keys.sort_by(|a, b| a.kid.cmp(&b.kid));
        // The first key never leaves the folder every replica shares, so its kid names this registry
        // for as long as its keys do, unless the operator names it (`public_url`).
        let issuer = format!("urn:kiln:{}", keys[0].kid);
        Ok(Self {
            keys,
            validity: chrono::Duration::days(crate::config::DEFAULT_MANIFEST_VALIDITY_DAYS as i64),
            issuer,
        })
    }

    /// Names the registry in every manifest's `iss`, instead of the first key's kid.
    pub fn with_issuer(mut self, issuer: Option<String>) -> Self {
        if let Some(issuer) = issuer {
            self.issuer = issuer;
        }
        self
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn with_validity(mut self, validity: std::time::Duration) -> Self {
        self.validity = chrono::Duration::from_std(validity).unwrap_or(self.validity);
        self
    }

    pub fn validity(&self) -> chrono::Duration {
        self.validity
    }

    /// Signs `payload` with the newest key: (compact JWS, kid).
    pub fn sign(&self, payload: &impl serde::Serialize) -> Result<(String, String), Error> {
        let key = self.keys.last().expect("open() leaves at least one key");
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        header.typ = Some("kiln-manifest+jwt".to_owned());
        let jws = jsonwebtoken::encode(&header, payload, &key.encoding)?;
        Ok((jws, key.kid.clone()))
    }

    /// Every public key as a JWK Set (RFC 7517; OKP keys per RFC 8037).
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|k| {
                json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "alg": "EdDSA",
                    "use": "sig",
                    "kid": k.kid,
                    "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&k.public),
                })
            })
            .collect();
        json!({ "keys": keys })
    }
}

fn key_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "pk8"))
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(key_error(dir, e)),
    }
}

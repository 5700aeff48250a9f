//! What `kiln verify` and `kiln pull REF@ALIAS` trust before using a manifest: a signature by a key in the
//! JWK Set, an expiry in the future, the subject asked for, and (with the state file) a sequence that never
//! goes backwards for that subject.

use std::collections::BTreeMap;
use std::path::Path;

use kiln_core::Sha256Digest;
pub use kiln_core::manifest_trust::{Verified, check_subject, verify_jws};
use serde::{Deserialize, Serialize};

use crate::error::CliError;

fn refuse(why: impl std::fmt::Display) -> CliError {
    kiln_core::manifest_trust::ManifestRefused(why.to_string()).into()
}

/// The highest sequence seen per issuer and subject (`acme/sentiment@production`), with the digest of
/// that manifest's payload: a lower sequence is a rollback, the same sequence with other content is a
/// server (or key) issuing two different manifests under one number. Two registries (staging, production)
/// may have models of the same names: their sequences are kept apart by the manifests' `iss`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequenceState {
    /// Manifests without `iss` (registries older than it), by subject: how every state file written
    /// before `iss` holds them, so those files keep working unchanged. A manifest with `iss` is never
    /// checked against these: it was signed after its registry began naming itself, so it cannot be one
    /// of the old manifests they guard against.
    #[serde(default)]
    seen: BTreeMap<String, Seen>,
    /// Manifests with `iss`: by issuer, then subject.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    by_issuer: BTreeMap<String, BTreeMap<String, Seen>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Seen {
    sequence: i64,
    payload_sha256: Sha256Digest,
}

impl SequenceState {
    pub fn load(path: &Path) -> Result<Self, CliError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                CliError::Usage(format!(
                    "the manifest state file {} is not valid ({e}); it guards against rollbacks, so repair it rather than delete it",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(CliError::io(path)(e)),
        }
    }

    /// Refuses a manifest older than (or different from) one already seen; remembers a newer one.
    pub fn admit(&mut self, verified: &Verified, path: &Path) -> Result<bool, CliError> {
        let manifest = &verified.manifest;
        let digest = verified.payload_sha256;
        let (seen, subject) = match &manifest.iss {
            Some(issuer) => (
                self.by_issuer.entry(issuer.clone()).or_default(),
                manifest.subject(),
            ),
            None => (&mut self.seen, manifest.subject()),
        };
        let named = match &manifest.iss {
            Some(issuer) => format!("{subject} (issuer {issuer})"),
            None => subject.clone(),
        };
        match seen.get(&subject) {
            Some(before) if manifest.sequence < before.sequence => Err(refuse(format!(
                "{named} sequence {} is older than sequence {} already seen (state file {}); someone may be serving an old manifest",
                manifest.sequence,
                before.sequence,
                path.display()
            ))),
            Some(before) if manifest.sequence == before.sequence => {
                if before.payload_sha256 == digest {
                    Ok(false)
                } else {
                    Err(refuse(format!(
                        "{named} sequence {} differs from the manifest with that sequence already seen (state file {})",
                        manifest.sequence,
                        path.display()
                    )))
                }
            }
            _ => {
                seen.insert(
                    subject,
                    Seen {
                        sequence: manifest.sequence,
                        payload_sha256: digest,
                    },
                );
                Ok(true)
            }
        }
    }

    /// Writes the state atomically (a crash leaves the old file, never half of one).
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(CliError::io(folder))?;
        }
        let temporary = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(self).expect("state serialises");
        std::fs::write(&temporary, text).map_err(CliError::io(&temporary))?;
        std::fs::rename(&temporary, path).map_err(CliError::io(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_core::deployment::DeploymentManifest;

    fn verified(sequence: i64, version: &str) -> Verified {
        Verified {
            payload_sha256: Sha256Digest::of(version.as_bytes()),
            manifest: manifest(sequence, version),
        }
    }

    fn manifest(sequence: i64, version: &str) -> DeploymentManifest {
        let now = chrono::Utc::now();
        DeploymentManifest {
            iss: None,
            model: "acme/m".into(),
            version: version.parse().unwrap(),
            alias: Some("production".parse().unwrap()),
            sequence,
            issued_at: now,
            expires_at: now,
            iat: now.timestamp(),
            exp: now.timestamp(),
            variants: Vec::new(),
            sources: Vec::new(),
            provenance: kiln_core::deployment::Provenance {
                kiln: "test".into(),
                converter: "test".into(),
                pipeline: Vec::new(),
                runners: Vec::new(),
            },
            lineage: None,
        }
    }

    #[test]
    fn the_sequence_state_refuses_rollbacks_and_two_manifests_under_one_number() {
        let path = Path::new("state.json");
        let mut state = SequenceState::default();
        assert!(state.admit(&verified(2, "2"), path).unwrap());
        assert!(!state.admit(&verified(2, "2"), path).unwrap());
        let err = state
            .admit(&verified(1, "1"), path)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "the manifest does not verify: acme/m@production sequence 1 is older than sequence 2 already seen (state file state.json); someone may be serving an old manifest"
        );
        let err = state
            .admit(&verified(2, "1"), path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("differs from the manifest with that sequence"),
            "{err}"
        );
        assert!(state.admit(&verified(3, "1"), path).unwrap());
    }

    fn issued_by(issuer: &str, sequence: i64, version: &str) -> Verified {
        let mut v = verified(sequence, version);
        v.manifest.iss = Some(issuer.to_owned());
        v.payload_sha256 = Sha256Digest::of(format!("{issuer} {version}").as_bytes());
        v
    }

    /// Staging and production both have acme/m@production: each registry's sequences are its own, and
    /// a state file written before `iss` (subjects only) keeps guarding the manifests it saw.
    #[test]
    fn sequences_are_kept_per_issuer_and_old_state_files_keep_working() {
        let path = Path::new("state.json");
        let old: SequenceState =
            serde_json::from_str(r#"{"seen": {"acme/m@production": {"sequence": 5, "payload_sha256": "sha256:0000000000000000000000000000000000000000000000000000000000000000"}}}"#)
                .unwrap();
        let mut state = old;
        let staging = "https://staging.example.com";
        let production = "https://kiln.example.com";
        assert!(state.admit(&issued_by(staging, 7, "3"), path).unwrap());
        assert!(state.admit(&issued_by(production, 1, "1"), path).unwrap());
        let err = state
            .admit(&issued_by(staging, 6, "2"), path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("acme/m@production (issuer https://staging.example.com) sequence 6 is older than sequence 7"),
            "{err}"
        );
        // An old manifest, without iss, is still held to what the old state file saw.
        assert!(state.admit(&verified(4, "1"), path).is_err());
        let text = serde_json::to_string(&state).unwrap();
        let reloaded: SequenceState = serde_json::from_str(&text).unwrap();
        assert!(reloaded.by_issuer[production].contains_key("acme/m@production"));
        assert_eq!(reloaded.seen["acme/m@production"].sequence, 5);
    }

    /// A hand-repaired state file with a misspelt key would silently guard nothing under that key.
    #[test]
    fn a_state_file_with_an_unknown_key_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest-state.json");
        std::fs::write(&path, r#"{"by_isuer": {}}"#).unwrap();
        let err = SequenceState::load(&path).unwrap_err().to_string();
        assert!(err.contains("unknown field `by_isuer`"), "{err}");
    }
}

//! sha256 digests in the `sha256:<64 hex>` form used by OCI registries, and an incremental hasher whose
//! state can be saved between requests (upload sessions resume after a server restart without re-reading).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest, Sha256};

use crate::CoreError;

const PREFIX: &str = "sha256:";

/// A sha256 content digest, always normalised to lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn of(data: &[u8]) -> Self {
        let mut hasher = Sha256Hasher::new();
        hasher.update(data);
        hasher.finalize()
    }

    /// The 64 lowercase hex characters without the `sha256:` prefix.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Sha256Digest {
    type Err = CoreError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let invalid = || CoreError::InvalidDigest {
            value: value.to_owned(),
        };
        let hex_part = value.strip_prefix(PREFIX).ok_or_else(invalid)?;
        if hex_part.len() != 64
            || !hex_part
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(invalid());
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes).map_err(|_| invalid())?;
        Ok(Self(bytes))
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Sha256Digest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^sha256:[0-9a-f]{64}$"))
            .description(Some("sha256 content digest"))
            .examples([serde_json::json!(
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            )])
            .into()
    }
}

impl utoipa::ToSchema for Sha256Digest {}

/// Incremental sha256 whose state survives a process restart (see [`Sha256Hasher::save`]).
#[derive(Clone, Default)]
pub struct Sha256Hasher(Sha256);

impl Sha256Hasher {
    pub fn new() -> Self {
        Self(Sha256::new())
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finalize(self) -> Sha256Digest {
        let out = self.0.finalize();
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&out);
        Sha256Digest(bytes)
    }

    /// The hasher's internal state, to be stored and later handed to [`Sha256Hasher::restore`].
    pub fn save(&self) -> Vec<u8> {
        self.0.serialize().to_vec()
    }

    /// Rebuilds a hasher from [`Sha256Hasher::save`]; `None` when the bytes are not a saved state.
    pub fn restore(state: &[u8]) -> Option<Self> {
        let array = state.try_into().ok()?;
        Sha256::deserialize(array).ok().map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_of_empty_input_is_the_well_known_value() {
        assert_eq!(Sha256Digest::of(b"").to_string(), EMPTY);
    }

    #[test]
    fn parse_round_trips_and_rejects_malformed_digests() {
        assert_eq!(EMPTY.parse::<Sha256Digest>().unwrap().to_string(), EMPTY);
        for bad in [
            "",
            "sha256:",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85z",
        ] {
            assert!(
                bad.parse::<Sha256Digest>().is_err(),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn saved_state_resumes_to_the_same_digest() {
        let mut first = Sha256Hasher::new();
        first.update(b"hello ");
        let saved = first.save();
        let mut resumed = Sha256Hasher::restore(&saved).expect("state restores");
        resumed.update(b"world");
        assert_eq!(resumed.finalize(), Sha256Digest::of(b"hello world"));
        assert!(Sha256Hasher::restore(b"not a state").is_none());
    }
}

//! kiln-core: the vocabulary every kiln process shares.
//!
//! Nothing here knows HTTP or a database: the server, the CLI and (later) runners and deployment-side
//! verifiers depend on it to agree on names, references, digests and the JSON bodies of the API.

pub mod api;
pub mod byte_ranges;
pub mod credential;
pub mod deployment;
pub mod digest;
pub mod error;
pub mod error_code;
pub mod manifest_trust;
pub mod names;
pub mod reference;
pub mod runners;
pub mod variant_layout;
pub mod webhook_signature;
pub mod whole_number;

pub use digest::{Sha256Digest, Sha256Hasher};
pub use error::CoreError;
pub use error_code::ErrorCode;
pub use names::{AliasName, FilePath, ModelName, NamespaceName, VersionName};
pub use reference::ModelRef;

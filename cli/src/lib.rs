//! What of the `kiln` CLI other programs reach: its errors and how it trusts a manifest (a signature by a
//! key of the JWK Set, an expiry, the subject, sequences that never go back), so the fuzzers in fuzz/
//! run the very checks `kiln verify` and `kiln pull REF@ALIAS` make.

pub mod error;
pub mod manifest_trust;

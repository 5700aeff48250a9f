//! Signed deployment manifests (DESIGN.md, issue 7): when a version's pipeline is ready, kiln publishes one
//! JSON document naming every deployable variant's bytes (digests, sizes), what they were proven to do, and
//! where they came from, signed as a compact JWS (EdDSA, `kid` in the header) with a key whose public half
//! is at /.well-known/jwks.json.

pub mod document;
pub mod keys;

pub use keys::ManifestSigner;

use chrono::Duration;

use crate::db::records::ManifestRow;
use crate::db::repos::manifests;
use crate::db::{DbConnection, new_id};
use crate::error::Error;

/// How long a version manifest is valid; verifiers refuse it afterwards (a frozen mirror cannot serve it
/// forever).
pub const VALIDITY_DAYS: i64 = 90;

/// Publishes the manifest of a version that just became ready (sequence 1, or one more than the last).
pub fn publish(
    conn: &mut DbConnection,
    signer: &ManifestSigner,
    version_id: &str,
) -> Result<ManifestRow, Error> {
    let (ns, model, version, files) = manifests::version_context(conn, version_id)?;
    let detail = crate::services::version_view::version_detail(conn, &ns, &model, &version, files)?;
    let sequence = manifests::latest_for_version(conn, version_id)?.map_or(1, |m| m.sequence + 1);
    let issued_at = crate::db::now().and_utc();
    let expires_at = issued_at + Duration::days(VALIDITY_DAYS);
    let payload = document::build(&detail, sequence, issued_at, expires_at);
    let text = serde_json::to_string(&payload).map_err(|e| Error::Internal(e.to_string()))?;
    let (jws, kid) = signer.sign(&payload)?;
    let row = ManifestRow {
        id: new_id(),
        version_id: version_id.to_owned(),
        alias: None,
        sequence,
        payload: text,
        jws,
        kid,
        issued_at: issued_at.naive_utc(),
        expires_at: expires_at.naive_utc(),
    };
    manifests::insert(conn, &row)?;
    Ok(row)
}

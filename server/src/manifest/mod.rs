//! Signed deployment manifests when a version's pipeline is ready, and whenever an
//! alias moves, kiln publishes one JSON document naming every deployable variant's bytes (digests, sizes),
//! what they were proven to do, and where they came from, signed as a compact JWS (EdDSA, `kid` in the
//! header) with a key whose public half is at /.well-known/jwks.json. Published manifests are never changed:
//! a new document always gets a new sequence.

pub mod document;
pub mod keys;
pub mod refresh;

pub use keys::ManifestSigner;

use kiln_core::AliasName;

use crate::db::records::{AliasRow, ManifestRow};
use crate::db::repos::manifests;
use crate::db::{DbConnection, new_id};
use crate::error::Error;

/// Publishes the manifest of a version that just became ready (sequence 1, or one more than the last).
pub fn publish_version(
    conn: &mut DbConnection,
    signer: &ManifestSigner,
    version_id: &str,
) -> Result<ManifestRow, Error> {
    let sequence = manifests::latest_for_version(conn, version_id)?.map_or(1, |m| m.sequence + 1);
    publish(conn, signer, version_id, None, sequence)
}

/// Publishes the manifest of an alias that now points at `alias.version_id`, with the alias's sequence
/// (already advanced by the move).
pub fn publish_alias(
    conn: &mut DbConnection,
    signer: &ManifestSigner,
    alias: &AliasRow,
) -> Result<ManifestRow, Error> {
    let name: AliasName = alias.name.parse()?;
    publish(
        conn,
        signer,
        &alias.version_id,
        Some((&alias.id, &name)),
        alias.sequence,
    )
}

/// Publishes the next manifest of a version and of every alias naming it: what changes when results
/// arrive for a version that is already ready (its benchmarks).
pub fn republish(
    conn: &mut DbConnection,
    signer: &ManifestSigner,
    version_id: &str,
) -> Result<(), Error> {
    publish_version(conn, signer, version_id)?;
    for alias in crate::db::repos::aliases::naming(conn, version_id)? {
        // A concurrent move published the alias's next manifest itself.
        if crate::db::repos::aliases::bump_sequence(conn, &alias)? {
            let next = AliasRow {
                sequence: alias.sequence + 1,
                ..alias
            };
            publish_alias(conn, signer, &next)?;
        }
    }
    Ok(())
}

fn publish(
    conn: &mut DbConnection,
    signer: &ManifestSigner,
    version_id: &str,
    alias: Option<(&str, &AliasName)>,
    sequence: i64,
) -> Result<ManifestRow, Error> {
    let (ns, model, version) = crate::db::repos::versions::context(conn, version_id)?;
    let files = crate::db::repos::versions::files(conn, version_id)?;
    let detail = crate::db::views::version_detail(conn, &ns, &model, &version, files)?;
    let issued_at = crate::db::now().and_utc();
    let expires_at = issued_at + signer.validity();
    let payload = document::build(
        &detail,
        document::Issue {
            issuer: signer.issuer(),
            alias: alias.map(|(_, name)| name),
            sequence,
            issued_at,
            expires_at,
        },
    );
    let text = serde_json::to_string(&payload)?;
    let (jws, kid) = signer.sign(&payload)?;
    let row = ManifestRow {
        id: new_id(),
        version_id: version_id.to_owned(),
        alias: alias.map(|(_, name)| name.to_string()),
        sequence,
        payload: text,
        jws,
        kid,
        issued_at: issued_at.naive_utc(),
        expires_at: expires_at.naive_utc(),
        alias_id: alias.map(|(id, _)| id.to_owned()),
    };
    manifests::insert(conn, &row)?;
    crate::db::repos::webhooks::record_version_event(
        conn,
        kiln_core::api::WebhookEventType::ManifestPublished.as_str(),
        version_id,
        serde_json::json!({
            "alias": row.alias,
            "sequence": sequence,
            "issued_at": issued_at,
            "expires_at": expires_at,
            "kid": row.kid,
        }),
    )?;
    Ok(row)
}

//! A version's lineage as the API shows it: what its push recorded, with the status each kiln reference has
//! now; and the versions derived from it, as far as the caller may see them.

use kiln_core::api::{DerivedVersion, Lineage, LineageLink, VersionDetail, VersionStatus};

use crate::db::DbConnection;
use crate::db::repos::lineage;
use crate::db::repos::models::Visible;
use crate::error::Error;

/// The version's recorded lineage with each parent's and kiln dataset's status now (none for a version
/// deleted since), or None when its push declared none.
pub fn resolved_lineage(
    conn: &mut DbConnection,
    version_id: &str,
) -> Result<Option<Lineage>, Error> {
    let Some(text) = lineage::recorded(conn, version_id)? else {
        return Ok(None);
    };
    let mut recorded: Lineage = serde_json::from_str(&text)?;
    for link in lineage::link_statuses(conn, version_id)? {
        let status = VersionStatus::parse(&link.status)
            .ok_or_else(|| Error::Internal(format!("unknown version status {:?}", link.status)))?;
        let position = usize::try_from(link.position).ok();
        match LineageLink::parse(&link.kind) {
            Some(LineageLink::Parent) => {
                if let Some(parent) = position.and_then(|p| recorded.parents.get_mut(p)) {
                    parent.status = Some(status);
                }
            }
            Some(LineageLink::Dataset) => {
                if let Some(dataset) = position.and_then(|p| recorded.datasets.get_mut(p)) {
                    dataset.status = Some(status);
                }
            }
            None => {
                return Err(Error::Internal(format!(
                    "unknown lineage link {:?}",
                    link.kind
                )));
            }
        }
    }
    Ok(Some(recorded))
}

/// The versions `visible` lets the caller see whose lineage names this one: the first
/// [`VersionDetail::DERIVED_SHOWN`], oldest first, and how many in all.
pub fn derived_versions(
    conn: &mut DbConnection,
    version_id: &str,
    visible: &Visible,
) -> Result<(Vec<DerivedVersion>, i64), Error> {
    let rows = lineage::derived(conn, version_id, visible, VersionDetail::DERIVED_SHOWN)?;
    let count = match rows.len() as i64 {
        shown if shown < VersionDetail::DERIVED_SHOWN => shown,
        _ => lineage::derived_count(conn, version_id, visible)?,
    };
    let derived = rows
        .into_iter()
        .map(|row| {
            Ok(DerivedVersion {
                reference: format!("{}/{}:{}", row.namespace, row.model, row.version),
                link: LineageLink::parse(&row.kind).ok_or_else(|| {
                    Error::Internal(format!("unknown lineage link {:?}", row.kind))
                })?,
                role: row.role,
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok((derived, count))
}

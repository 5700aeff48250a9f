//! Lineage at commit: a push's lineage checked, each kiln reference resolved to a version the pusher may
//! read, each kiln dataset's files pinned by digest, and the result recorded with the version, in the
//! version's transaction.
//!
//! Kiln's own jobs (distillation) record the lineage of a version they push through the same commit:
//! [`super::RegistryService::create_version`] with [`CreateVersionRequest::lineage`] set (and the `Visible`
//! of the user who asked for the job, so a job cannot name what its user cannot read); or, inside a
//! transaction of their own that inserts the version, with [`resolve`] then [`record`].
//!
//! [`CreateVersionRequest::lineage`]: kiln_core::api::CreateVersionRequest::lineage

use kiln_core::ErrorCode;
use kiln_core::api::{
    FileEntry, Lineage, LineageDataset, LineageLink, LineageParent, LineageRequest,
};
use serde_json::json;

use crate::db::DbConnection;
use crate::db::records::VersionLinkRow;
use crate::db::repos::models::Visible;
use crate::db::repos::{lineage, versions};
use crate::error::Error;

/// A lineage whose kiln references all name versions the pusher may read: what to record.
pub struct ResolvedLineage {
    recorded: Lineage,
    /// (link, index in its list, the linked version's id, role).
    links: Vec<(LineageLink, usize, String, String)>,
}

fn invalid(field: String, message: String) -> Error {
    Error::BadRequest {
        code: ErrorCode::InvalidLineage,
        message: format!("{field}: {message}"),
        details: Some(json!({ "field": field })),
    }
}

/// The bounds and forms of a lineage, before anything is looked up: 400 `invalid_lineage`, with the
/// field in the message and in `details.field`.
pub fn check(request: &LineageRequest) -> Result<(), Error> {
    request
        .check()
        .map_err(|problem| invalid(problem.field, problem.message))
}

/// The id of the version `reference` names, when `visible` lets the pusher read its model. Absent and
/// unreadable are refused alike (404 naming the field), as reads of a private model are: a lineage must not
/// tell whether a private model exists.
fn readable_version(
    conn: &mut DbConnection,
    visible: &Visible,
    field: &str,
    reference: &str,
) -> Result<String, Error> {
    let (ns, model, version) = kiln_core::api::version_reference(reference)
        .map_err(|message| invalid(field.to_owned(), message))?;
    let row =
        versions::find_readable(conn, ns.as_str(), model.as_str(), version.as_str(), visible)?;
    row.map(|r| r.id)
        .ok_or_else(|| Error::not_found(format!("{field}: version {ns}/{model}:{version}")))
}

/// Resolves every kiln reference of a checked lineage (see [`readable_version`]) and reads each kiln
/// dataset's files now, so that the lineage pins their exact bytes even if the dataset is deleted later.
pub fn resolve(
    conn: &mut DbConnection,
    request: &LineageRequest,
    visible: &Visible,
) -> Result<ResolvedLineage, Error> {
    let mut links = Vec::new();
    let mut parents = Vec::with_capacity(request.parents.len());
    for (i, parent) in request.parents.iter().enumerate() {
        let field = format!("lineage.parents[{i}].reference");
        let id = readable_version(conn, visible, &field, &parent.reference)?;
        links.push((LineageLink::Parent, i, id, parent.role.clone()));
        parents.push(LineageParent {
            reference: parent.reference.clone(),
            role: parent.role.clone(),
            status: None,
        });
    }
    let mut datasets = Vec::with_capacity(request.datasets.len());
    for (i, dataset) in request.datasets.iter().enumerate() {
        let mut files = Vec::new();
        if let Some(reference) = &dataset.reference {
            let field = format!("lineage.datasets[{i}].reference");
            let id = readable_version(conn, visible, &field, reference)?;
            files = dataset_files(conn, &id, &field)?;
            links.push((LineageLink::Dataset, i, id, "dataset".to_owned()));
        }
        datasets.push(LineageDataset {
            reference: dataset.reference.clone(),
            uri: dataset.uri.clone(),
            sha256: dataset.sha256,
            files,
            status: None,
        });
    }
    Ok(ResolvedLineage {
        recorded: Lineage {
            parents,
            datasets,
            training_run: request.training_run.clone(),
            producer: request.producer.clone(),
            hyperparameters: request.hyperparameters.clone(),
        },
        links,
    })
}

/// A kiln dataset's files as the lineage pins them: at most `MAX_DATASET_FILES`, or refused.
fn dataset_files(
    conn: &mut DbConnection,
    version_id: &str,
    field: &str,
) -> Result<Vec<FileEntry>, Error> {
    let rows = versions::files(conn, version_id)?;
    if rows.len() > LineageRequest::MAX_DATASET_FILES {
        return Err(invalid(
            field.to_owned(),
            format!(
                "the dataset has {} files; a lineage pins at most {} files of a dataset (push it as fewer, larger shards)",
                rows.len(),
                LineageRequest::MAX_DATASET_FILES
            ),
        ));
    }
    rows.into_iter().map(crate::db::views::file_entry).collect()
}

/// Records a resolved lineage for a version just inserted, in the same transaction.
pub fn record(
    conn: &mut DbConnection,
    version_id: &str,
    resolved: &ResolvedLineage,
) -> Result<(), Error> {
    let links: Vec<VersionLinkRow> = resolved
        .links
        .iter()
        .map(|(link, position, linked, role)| VersionLinkRow {
            version_id: version_id.to_owned(),
            kind: link.as_str().to_owned(),
            position: *position as i32,
            linked_version_id: linked.clone(),
            role: role.clone(),
        })
        .collect();
    let text = serde_json::to_string(&resolved.recorded)?;
    lineage::record(conn, version_id, &text, &links)?;
    Ok(())
}

/// Whether a re-commit of a version's identical files may stay a no-op as far as lineage goes. A lineage
/// is part of the version's content only when the re-commit states one: a retry of the same push, or a
/// push of the same files without a lineage (a mirror, an older client), is the same no-op as before; a
/// stated lineage must be the recorded one, as given then (a version that recorded none cannot gain one:
/// lineage is as immutable as the files). Otherwise 409 `version_conflict`.
pub fn check_recommit(
    conn: &mut DbConnection,
    version_id: &str,
    reference: &str,
    stated: Option<&LineageRequest>,
) -> Result<(), Error> {
    let Some(stated) = stated else {
        return Ok(());
    };
    let recorded = match lineage::recorded(conn, version_id)? {
        Some(text) => Some(serde_json::from_str::<Lineage>(&text)?.as_request()),
        None => None,
    };
    if recorded.as_ref() == Some(stated) {
        return Ok(());
    }
    Err(Error::conflict(
        ErrorCode::VersionConflict,
        format!(
            "{reference} already exists with these files but {}; a version's lineage is fixed at its first push: push under a new version",
            if recorded.is_some() {
                "a different lineage"
            } else {
                "no lineage"
            }
        ),
    ))
}

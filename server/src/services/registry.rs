//! Namespaces, models and versions: listing, committing, deleting.

mod deletion;
pub mod lineage;
mod listing;
mod request_checks;

pub use crate::db::repos::models::Order as ModelOrder;
pub use listing::ModelQuery;
pub use request_checks::check_files;
use request_checks::{check_metadata, check_pipeline_options};

use kiln_core::ErrorCode;
use std::collections::BTreeMap;

use diesel::Connection;
use kiln_core::api::{
    CreateVersionRequest, ModelDetail, NamespaceSummary, UpdateModelRequest, VersionDetail,
    VersionStatus, VersionSummary, Visibility,
};
use kiln_core::{ModelName, NamespaceName, VersionName};
use serde_json::json;

use crate::db::records::{ModelRow, NamespaceRow, VersionFileRow, VersionRow};
use crate::db::repos::audit::{self, Actor};
use crate::db::repos::models::Visible;
use crate::db::repos::{blobs, models, namespaces, versions};
use crate::db::views::version_detail;
use crate::db::{Database, DbConnection, new_id, now};
use crate::error::Error;
use crate::pipeline::{self, PipelineQueue};
use crate::services::paging::{PageRequest, Paged, parse_time_key, time_key};
use crate::services::transaction_retried;

pub const MAX_FILES_PER_VERSION: usize = 100_000;

/// Whether a commit created the version or found it already there with identical content.
pub enum Committed {
    Created(VersionDetail),
    AlreadyPresent(VersionDetail),
}

fn model_ref(ns: &str, model: &str) -> String {
    format!("{ns}/{model}")
}

fn parse_visibility(text: &str) -> Result<Visibility, Error> {
    Visibility::parse(text).ok_or_else(|| Error::Internal(format!("unknown visibility {text:?}")))
}

fn parse_tags(json_text: &str) -> Vec<String> {
    serde_json::from_str(json_text).unwrap_or_default()
}

#[derive(Clone)]
pub struct RegistryService {
    db: Database,
    pipeline: PipelineQueue,
    cache: crate::services::read_cache::ReadCache,
}

impl RegistryService {
    pub fn new(
        db: Database,
        pipeline: PipelineQueue,
        cache: crate::services::read_cache::ReadCache,
    ) -> Self {
        Self {
            db,
            pipeline,
            cache,
        }
    }

    /// Namespaces by name, after the page's cursor or else after skipping `offset`.
    pub async fn list_namespaces(
        &self,
        visible: Visible,
        page: PageRequest,
        offset: i64,
    ) -> Result<Paged<NamespaceSummary>, Error> {
        let after = page.after::<1>()?.map(|[name]| name);
        let limit = page.limit;
        let namespaces: Vec<NamespaceSummary> = self
            .db
            .run(move |conn| {
                namespaces::list(conn, &visible, after.as_deref(), limit, offset)?
                    .into_iter()
                    .map(|(row, model_count)| {
                        Ok(NamespaceSummary {
                            name: row.name.parse()?,
                            model_count,
                            created_at: row.created_at.and_utc(),
                        })
                    })
                    .collect()
            })
            .await?;
        Ok(Paged::new(namespaces, &page, |ns| {
            vec![ns.name.to_string()]
        }))
    }

    /// A model's versions, newest first, a page at a time.
    pub async fn list_versions(
        &self,
        ns: NamespaceName,
        model: ModelName,
        page: PageRequest,
    ) -> Result<Paged<VersionSummary>, Error> {
        let after = match page.after::<2>()? {
            Some([at, version]) => Some((parse_time_key(&at)?, version)),
            None => None,
        };
        let limit = page.limit;
        let listed = self
            .db
            .run(move |conn| {
                let (_, row) = find_model(conn, &ns, &model)?;
                Ok(versions::list(conn, &row.id, after, limit)?)
            })
            .await?;
        Paged::new(listed, &page, |v| {
            vec![time_key(&v.row.created_at), v.row.version.clone()]
        })
        .try_map(version_summary)
    }

    pub async fn get_model(
        &self,
        ns: NamespaceName,
        model: ModelName,
    ) -> Result<ModelDetail, Error> {
        self.db
            .run(move |conn| load_model_detail(conn, &ns, &model))
            .await
    }

    pub async fn update_model(
        &self,
        ns: NamespaceName,
        model: ModelName,
        update: UpdateModelRequest,
        actor: Actor,
    ) -> Result<ModelDetail, Error> {
        check_metadata(&update)?;
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let (_, row) = find_model(conn, &ns, &model)?;
                    let description = update
                        .description
                        .clone()
                        .unwrap_or(row.description.clone());
                    let tags = match &update.tags {
                        Some(tags) => tags.clone(),
                        None => parse_tags(&row.tags),
                    };
                    models::update_metadata(conn, &row.id, &description, &tags)?;
                    audit::record(
                        conn,
                        &actor,
                        "model.update",
                        &model_ref(ns.as_str(), model.as_str()),
                        json!(update),
                    )?;
                    load_model_detail(conn, &ns, &model)
                })
            })
            .await
    }

    /// Makes a model public or private.
    pub async fn set_visibility(
        &self,
        ns: NamespaceName,
        model: ModelName,
        visibility: Visibility,
        actor: Actor,
    ) -> Result<ModelDetail, Error> {
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let (_, row) = find_model(conn, &ns, &model)?;
                    models::set_visibility(conn, &row.id, visibility.as_str())?;
                    audit::record(
                        conn,
                        &actor,
                        "model.visibility",
                        &model_ref(ns.as_str(), model.as_str()),
                        json!({ "from": row.visibility, "to": visibility.as_str() }),
                    )?;
                    load_model_detail(conn, &ns, &model)
                })
            })
            .await
            .inspect(|_| self.cache.forget_models())
    }

    /// A version, with the versions derived from it that `visible` lets the caller see.
    pub async fn get_version(
        &self,
        ns: NamespaceName,
        model: ModelName,
        version: VersionName,
        visible: Visible,
    ) -> Result<VersionDetail, Error> {
        let key = (ns.to_string(), model.to_string(), version.to_string());
        let mut detail = match self.cache.version(&key) {
            Some(detail) => detail,
            None => {
                let start = self.cache.start();
                let (ns, model, version) = (ns.clone(), model.clone(), version.clone());
                let detail = self
                    .db
                    .read(move |conn| {
                        let (row, files) = find_version(conn, &ns, &model, &version)?;
                        version_detail(conn, ns.as_str(), model.as_str(), &row, files)
                    })
                    .await?;
                self.cache.keep_version(start, key, &detail);
                detail
            }
        };
        // Not cached: what was derived depends on who asks (a private child is not listed on a public
        // parent for those who cannot read it).
        (detail.derived, detail.derived_count) = self
            .db
            .read(move |conn| {
                let (_, model_row) = find_model(conn, &ns, &model)?;
                let row = versions::find(conn, &model_row.id, version.as_str())?
                    .ok_or_else(|| Error::not_found(format!("version {ns}/{model}:{version}")))?;
                crate::db::views::derived_versions(conn, &row.id, &visible)
            })
            .await?;
        Ok(detail)
    }

    /// The model, created (with its namespace, for an administrator) as a first push would; its id.
    pub async fn ensure_model(
        &self,
        ns: NamespaceName,
        model: ModelName,
        actor: Actor,
    ) -> Result<String, Error> {
        self.db
            .run(move |conn| {
                transaction_retried(conn, |conn| {
                    Ok(model_for_push(conn, &ns, &model, &actor)?.1.id)
                })
            })
            .await
            .inspect(|_| self.cache.forget_models())
    }

    /// Commits a version from uploaded blobs, creating namespace and model on first push.
    pub async fn create_version(
        &self,
        ns: NamespaceName,
        model: ModelName,
        request: CreateVersionRequest,
        actor: Actor,
        visible: Visible,
    ) -> Result<Committed, Error> {
        check_files(&request.files)?;
        if let Some(options) = &request.pipeline {
            check_pipeline_options(options)?;
        }
        if let Some(stated) = &request.lineage {
            lineage::check(stated)?;
        }
        let committed = self
            .db
            .run(move |conn| {
                // Everything, namespace and model included, commits in one transaction, so a refused push
                // leaves nothing behind.
                transaction_retried(conn, |conn| {
                    insert_version(conn, &ns, &model, &request, &actor, &visible)
                })
            })
            .await?;
        if matches!(committed, Committed::Created(_)) {
            // The push may have made its namespace and model (only an administrator makes a
            // namespace by pushing, whose access no membership changes: principals stay).
            self.cache.forget_models();
            self.pipeline.wake();
        }
        Ok(committed)
    }
}

fn find_model(
    conn: &mut DbConnection,
    ns: &NamespaceName,
    model: &ModelName,
) -> Result<(NamespaceRow, ModelRow), Error> {
    models::find(conn, ns.as_str(), model.as_str())?
        .ok_or_else(|| Error::not_found(format!("model {ns}/{model}")))
}

fn find_version(
    conn: &mut DbConnection,
    ns: &NamespaceName,
    model: &ModelName,
    version: &VersionName,
) -> Result<(VersionRow, Vec<VersionFileRow>), Error> {
    let (_, model_row) = find_model(conn, ns, model)?;
    let row = versions::find(conn, &model_row.id, version.as_str())?
        .ok_or_else(|| Error::not_found(format!("version {ns}/{model}:{version}")))?;
    let files = versions::files(conn, &row.id)?;
    Ok((row, files))
}

fn load_model_detail(
    conn: &mut DbConnection,
    ns: &NamespaceName,
    model: &ModelName,
) -> Result<ModelDetail, Error> {
    let (_, row) = find_model(conn, ns, model)?;
    let listed = versions::list(conn, &row.id, None, ModelDetail::VERSIONS_SHOWN)?;
    let version_count = match listed.len() as i64 {
        shown if shown < ModelDetail::VERSIONS_SHOWN => shown,
        _ => versions::count(conn, &row.id)?,
    };
    Ok(ModelDetail {
        namespace: ns.clone(),
        name: model.clone(),
        visibility: parse_visibility(&row.visibility)?,
        description: row.description,
        tags: parse_tags(&row.tags),
        created_at: row.created_at.and_utc(),
        updated_at: row.updated_at.and_utc(),
        version_count,
        versions: listed
            .into_iter()
            .map(version_summary)
            .collect::<Result<_, Error>>()?,
    })
}

fn version_summary(v: versions::ListedVersion) -> Result<VersionSummary, Error> {
    Ok(VersionSummary {
        version: v.row.version.parse()?,
        status: VersionStatus::parse(&v.row.status)
            .ok_or_else(|| Error::Internal(format!("unknown version status {:?}", v.row.status)))?,
        file_count: v.file_count,
        total_size: v.total_size,
        created_at: v.row.created_at.and_utc(),
    })
}

/// The committed version when it has exactly the requested files; a conflict when it differs.
fn existing_version(
    conn: &mut DbConnection,
    namespace: &NamespaceRow,
    model: &ModelRow,
    request: &CreateVersionRequest,
) -> Result<Option<Committed>, Error> {
    let Some(row) = versions::find(conn, &model.id, request.version.as_str())? else {
        return Ok(None);
    };
    let files = versions::files(conn, &row.id)?;
    let stored: BTreeMap<&str, (&str, i64)> = files
        .iter()
        .map(|f| (f.path.as_str(), (f.digest.as_str(), f.size)))
        .collect();
    let digests: Vec<String> = request.files.iter().map(|f| f.digest.to_string()).collect();
    let wanted: BTreeMap<&str, (&str, i64)> = request
        .files
        .iter()
        .zip(&digests)
        .map(|(f, d)| (f.path.as_str(), (d.as_str(), f.size)))
        .collect();
    let reference = format!("{}/{}:{}", namespace.name, model.name, request.version);
    if stored != wanted {
        return Err(Error::Conflict {
            code: ErrorCode::VersionConflict,
            message: format!(
                "{reference} already exists with different content; versions are immutable, push under a new version"
            ),
            details: None,
        });
    }
    lineage::check_recommit(conn, &row.id, &reference, request.lineage.as_ref())?;
    Ok(Some(Committed::AlreadyPresent(version_detail(
        conn,
        &namespace.name,
        &model.name,
        &row,
        files,
    )?)))
}

/// The namespace and model a push goes to, created when absent (a namespace created by a push belongs
/// to the pusher; only administrators get this far).
fn model_for_push(
    conn: &mut DbConnection,
    ns: &NamespaceName,
    model: &ModelName,
    actor: &Actor,
) -> Result<(NamespaceRow, ModelRow), Error> {
    let namespace = match namespaces::find(conn, ns.as_str())? {
        Some(found) => found,
        None => namespaces::create(conn, ns.as_str(), "org", actor.user_id.as_deref())?,
    };
    let model = models::find_or_create(conn, &namespace, model.as_str())?;
    Ok((namespace, model))
}

fn insert_version(
    conn: &mut DbConnection,
    ns: &NamespaceName,
    model_name: &ModelName,
    request: &CreateVersionRequest,
    actor: &Actor,
    visible: &Visible,
) -> Result<Committed, Error> {
    let (namespace, model) = &model_for_push(conn, ns, model_name, actor)?;
    if let Some(done) = existing_version(conn, namespace, model, request)? {
        return Ok(done);
    }
    // Before the blobs: a lineage naming what the pusher cannot read is refused whatever else holds.
    let resolved = match &request.lineage {
        Some(stated) => Some(lineage::resolve(conn, stated, visible)?),
        None => None,
    };
    let digests: Vec<String> = request.files.iter().map(|f| f.digest.to_string()).collect();
    let sized: Vec<(String, i64)> = digests
        .iter()
        .cloned()
        .zip(request.files.iter().map(|f| f.size))
        .collect();
    crate::services::lifecycle::check_quota(conn, &namespace.id, ns.as_str(), &sized)?;
    // Held until the version commits, so collection cannot condemn a blob between this check and the
    // version's rows naming it.
    blobs::lock(conn, &digests, blobs::RowLock::Share)?;
    // Only blobs the pusher uploaded or can already read count; others are "missing" (upload them),
    // so a digest alone never gives access to someone else's bytes, nor reveals their size.
    let held: std::collections::HashMap<String, i64> =
        blobs::usable(conn, actor.user_id.as_deref(), visible, &digests)?
            .into_iter()
            .map(|b| (b.digest, b.size))
            .collect();
    let mut missing: Vec<&String> = Vec::new();
    for (file, digest) in request.files.iter().zip(&digests) {
        match held.get(digest) {
            None => missing.push(digest),
            Some(size) if *size != file.size => {
                return Err(Error::bad_request(
                    ErrorCode::SizeMismatch,
                    format!(
                        "{}: declared {} bytes but blob {digest} has {size}",
                        file.path, file.size
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    if !missing.is_empty() {
        missing.sort();
        missing.dedup();
        return Err(Error::BadRequest {
            code: ErrorCode::MissingBlobs,
            message: format!(
                "{} blob(s) have not been uploaded; upload them, then commit again",
                missing.len()
            ),
            details: Some(json!({ "missing": missing })),
        });
    }
    let row = VersionRow {
        id: new_id(),
        model_id: model.id.clone(),
        version: request.version.to_string(),
        status: VersionStatus::Pending.as_str().to_owned(),
        created_at: now(),
    };
    let mut files: Vec<VersionFileRow> = request
        .files
        .iter()
        .zip(digests)
        .map(|(f, digest)| VersionFileRow {
            version_id: row.id.clone(),
            path: f.path.to_string(),
            digest,
            size: f.size,
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    versions::insert(conn, &row, &files)?;
    if let Some(resolved) = &resolved {
        lineage::record(conn, &row.id, resolved)?;
    }
    // Queued in the same transaction as the version, so no committed version ever lacks its pipeline.
    pipeline::enqueue_push(conn, &row.id, &request.pipeline.clone().unwrap_or_default())?;
    models::touch(conn, &model.id)?;
    let target = format!("{}/{}:{}", namespace.name, model.name, request.version);
    audit::record(
        conn,
        actor,
        "version.create",
        &target,
        json!({ "files": files.len(), "bytes": files.iter().map(|f| f.size).sum::<i64>() }),
    )?;
    Ok(Committed::Created(version_detail(
        conn,
        &namespace.name,
        &model.name,
        &row,
        files,
    )?))
}

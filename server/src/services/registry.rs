//! Namespaces, models and versions: listing, committing, deleting.

mod deletion;
mod listing;

pub use crate::db::repos::models::Order as ModelOrder;
pub use listing::ModelQuery;

use kiln_core::ErrorCode;
use std::collections::{BTreeMap, HashSet};

use diesel::Connection;
use kiln_core::api::{
    CreateVersionRequest, FileEntry, ModelDetail, NamespaceSummary, UpdateModelRequest,
    VersionDetail, VersionStatus, VersionSummary, Visibility,
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
const MAX_TAGS: usize = 64;

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

/// What a version's file list must be: 1 to 100,000 files, sizes not negative, no path twice, no path
/// both a file and a folder.
pub fn check_files(files: &[FileEntry]) -> Result<(), Error> {
    if files.is_empty() {
        return Err(Error::bad_request(
            ErrorCode::NoFiles,
            "a version needs at least one file",
        ));
    }
    if files.len() > MAX_FILES_PER_VERSION {
        return Err(Error::bad_request(
            ErrorCode::TooManyFiles,
            format!("a version may hold at most {MAX_FILES_PER_VERSION} files"),
        ));
    }
    let mut paths = HashSet::new();
    for file in files {
        if !(0..=crate::services::uploads::MAX_BLOB_SIZE).contains(&file.size) {
            return Err(Error::bad_request(
                ErrorCode::InvalidSize,
                format!(
                    "{}: size must be between 0 and {} bytes",
                    file.path,
                    crate::services::uploads::MAX_BLOB_SIZE
                ),
            ));
        }
        if !paths.insert(file.path.as_str()) {
            return Err(Error::bad_request(
                ErrorCode::DuplicatePath,
                format!("{} is listed twice", file.path),
            ));
        }
    }
    for file in files {
        if let Some(dir) = file.path.ancestors().find(|dir| paths.contains(dir)) {
            return Err(Error::bad_request(
                ErrorCode::PathConflict,
                format!("{dir} is both a file and the folder of {}", file.path),
            ));
        }
    }
    Ok(())
}

/// Variant names kiln knows, and tolerances only for variants the push asks for.
fn check_pipeline_options(options: &kiln_core::api::PipelineOptions) -> Result<(), Error> {
    use kiln_onnx::variants::{DECODER_DEFAULT_VARIANTS, DEFAULT_VARIANTS, VariantKind};
    // Without a list, the step picks the model's defaults: a tolerance may name any of them.
    let requested: Vec<String> = options.variants.clone().unwrap_or_else(|| {
        DEFAULT_VARIANTS
            .iter()
            .chain(DECODER_DEFAULT_VARIANTS)
            .map(|s| (*s).to_owned())
            .collect()
    });
    for name in &requested {
        if VariantKind::parse(name).is_none() {
            return Err(Error::bad_request(
                ErrorCode::InvalidVariant,
                format!(
                    "{name:?} is not a variant kiln makes: fp32, fp16, int8, int8-dynamic, pruned-N (N from 1 to 99), \
                     int4[-bN][-asym][-qdq] or int8-bN[-asym] (N 16, 32, 64, 128 or 256)"
                ),
            ));
        }
    }
    for (name, tolerance) in options.tolerances.iter().flatten() {
        if !requested.contains(name) {
            return Err(Error::bad_request(
                ErrorCode::InvalidTolerance,
                format!("a tolerance is given for {name:?}, which this push does not ask for"),
            ));
        }
        if !tolerance.is_finite() || *tolerance <= 0.0 {
            return Err(Error::bad_request(
                ErrorCode::InvalidTolerance,
                format!("the tolerance for {name} must be a positive number"),
            ));
        }
    }
    use kiln_core::api::PipelineOptions as Options;
    for (field, sizes, max) in [
        (
            "benchmark_batch_sizes",
            &options.benchmark_batch_sizes,
            Options::MAX_BENCHMARK_BATCH,
        ),
        (
            "benchmark_sequence_lengths",
            &options.benchmark_sequence_lengths,
            Options::MAX_BENCHMARK_SEQUENCE,
        ),
    ] {
        let Some(sizes) = sizes else { continue };
        let distinct: std::collections::BTreeSet<_> = sizes.iter().collect();
        if sizes.is_empty()
            || sizes.len() > Options::MAX_BENCHMARK_SIZES
            || distinct.len() != sizes.len()
            || sizes.iter().any(|s| !(1..=max).contains(s))
        {
            return Err(Error::bad_request(
                ErrorCode::InvalidBenchmarkOptions,
                format!(
                    "{field}: 1 to {} different sizes, each 1 to {max}",
                    Options::MAX_BENCHMARK_SIZES
                ),
            ));
        }
    }
    Ok(())
}

fn check_metadata(update: &UpdateModelRequest) -> Result<(), Error> {
    if let Some(description) = &update.description
        && description.chars().count() > 10_000
    {
        return Err(Error::bad_request(
            ErrorCode::InvalidDescription,
            "the description may have at most 10000 characters",
        ));
    }
    if let Some(tags) = &update.tags {
        if tags.len() > MAX_TAGS {
            return Err(Error::bad_request(
                ErrorCode::InvalidTags,
                format!("a model may have at most {MAX_TAGS} tags"),
            ));
        }
        if let Some(bad) = tags
            .iter()
            .find(|t| t.is_empty() || t.chars().count() > 64 || t.chars().any(char::is_control))
        {
            return Err(Error::bad_request(
                ErrorCode::InvalidTags,
                format!("tag {bad:?} must be 1 to 64 characters without control characters"),
            ));
        }
    }
    Ok(())
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

    pub async fn get_version(
        &self,
        ns: NamespaceName,
        model: ModelName,
        version: VersionName,
    ) -> Result<VersionDetail, Error> {
        let key = (ns.to_string(), model.to_string(), version.to_string());
        if let Some(detail) = self.cache.version(&key) {
            return Ok(detail);
        }
        let start = self.cache.start();
        let detail = self
            .db
            .read(move |conn| {
                let (row, files) = find_version(conn, &ns, &model, &version)?;
                version_detail(conn, ns.as_str(), model.as_str(), &row, files)
            })
            .await?;
        self.cache.keep_version(start, key, &detail);
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
    if stored != wanted {
        return Err(Error::Conflict {
            code: ErrorCode::VersionConflict,
            message: format!(
                "{}/{}:{} already exists with different content; versions are immutable, push under a new version",
                namespace.name, model.name, request.version
            ),
            details: None,
        });
    }
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

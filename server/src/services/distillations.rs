//! Distillation jobs, the user's side: asking for a student of a version, following it, cancelling it.
//! The runner's side (claiming, checkpoints, the student's files, the report) is [`runner_side`].

mod comparison;
mod request_checks;
pub mod runner_side;

use kiln_core::api::{Distillation, DistillationProgress, DistillationRequest, DistillationState};
use kiln_core::{ErrorCode, ModelName, NamespaceName, VersionName};

use crate::db::records::{DistillationRow, PipelineJobRow};
use crate::db::repos::models::Visible;
use crate::db::repos::{distillations, models, pipeline_jobs, versions};
use crate::db::{Database, DbConnection, transaction_retried};
use crate::error::Error;
use crate::services::registry::RegistryService;
use crate::storage::BlobStore;

pub use request_checks::device_kind;

/// A runner that dies this many times during one distillation gives it up (each resumes from the last
/// checkpoint, so a job loses at most one interval per death).
pub const MAX_ATTEMPTS: i32 = 5;

#[derive(Clone)]
pub struct DistillationService {
    db: Database,
    store: BlobStore,
    registry: RegistryService,
}

impl DistillationService {
    pub fn new(db: Database, store: BlobStore, registry: RegistryService) -> Self {
        Self {
            db,
            store,
            registry,
        }
    }

    /// Queues a distillation of `ns/model:version` (which the caller may read) into `request.into`
    /// (which `may_write` allows).
    pub async fn request(
        &self,
        teacher: (NamespaceName, ModelName, VersionName),
        request: DistillationRequest,
        requester: RequesterIdentity,
        may_write_into: bool,
    ) -> Result<Distillation, Error> {
        let target = request_checks::check(&request)?;
        if !may_write_into {
            return Err(Error::forbidden(format!(
                "into: this needs write access to {}",
                target.0
            )));
        }
        let into = format!("{}/{}:{}", target.0, target.1, target.2);
        let (ns, model, version) = teacher;
        let id = self
            .db
            .run(move |conn| {
                transaction_retried(conn, |conn| {
                    let teacher_row = version_row(conn, &ns, &model, &version, &Visible::All)?;
                    if version_row(conn, &target.0, &target.1, &target.2, &Visible::All).is_ok() {
                        return Err(Error::Conflict {
                            code: ErrorCode::VersionConflict,
                            message: format!(
                                "into: {into} exists already; distill into a new version"
                            ),
                            details: None,
                        });
                    }
                    if let Some(other) = distillations::unfinished_into(conn, &into)? {
                        return Err(Error::Conflict {
                            code: ErrorCode::VersionConflict,
                            message: format!(
                                "into: distillation {other} is making {into} already; cancel it or choose another version"
                            ),
                            details: None,
                        });
                    }
                    let data_version_id = match &request.data {
                        Some(reference) => {
                            let (dns, dmodel, dversion) =
                                kiln_core::api::version_reference(reference).map_err(|m| {
                                    Error::bad_request(
                                        ErrorCode::InvalidDistillation,
                                        format!("data: {m}"),
                                    )
                                })?;
                            let row =
                                version_row(conn, &dns, &dmodel, &dversion, &requester.visible)
                                    .map_err(|_| {
                                        Error::not_found(format!(
                                            "data: version {dns}/{dmodel}:{dversion}"
                                        ))
                                    })?;
                            Some(row.id)
                        }
                        None => None,
                    };
                    let device = device_kind(request.device.as_deref());
                    let job_id = pipeline_jobs::enqueue_distillation(
                        conn,
                        &teacher_row.id,
                        device,
                        MAX_ATTEMPTS,
                    )?;
                    distillations::insert(
                        conn,
                        &DistillationRow {
                            job_id: job_id.clone(),
                            target: into.clone(),
                            request: serde_json::to_string(&request)?,
                            data_version_id,
                            requested_by: requester.user_id.clone(),
                            requester_name: requester.name.clone(),
                            requester_visible: visible_to_json(&requester.visible)?,
                            progress: None,
                            checkpoint_step: None,
                            student_version_id: None,
                        },
                    )?;
                    Ok(job_id)
                })
            })
            .await?;
        tracing::info!(job = %id, "distillation queued");
        self.get(id, Visible::All).await
    }

    /// A distillation whose teacher the caller may read (404 otherwise, as for a private model).
    pub async fn get(&self, id: String, visible: Visible) -> Result<Distillation, Error> {
        self.db
            .read(move |conn| {
                let found = distillations::find(conn, &id)?
                    .ok_or_else(|| Error::not_found(format!("distillation {id}")))?;
                let shown = describe(conn, found)?;
                if !teacher_visible(conn, &shown.teacher, &visible)? {
                    return Err(Error::not_found(format!("distillation {id}")));
                }
                Ok(shown)
            })
            .await
    }

    /// The distillations of a version (which the caller may read), newest first.
    pub async fn of_version(
        &self,
        ns: NamespaceName,
        model: ModelName,
        version: VersionName,
    ) -> Result<Vec<Distillation>, Error> {
        self.db
            .read(move |conn| {
                let row = version_row(conn, &ns, &model, &version, &Visible::All)?;
                distillations::of_teacher(conn, &row.id)?
                    .into_iter()
                    .map(|found| describe(conn, found))
                    .collect()
            })
            .await
    }

    /// Cancels a distillation not finished yet; its runner stops at its next heartbeat. Allowed to the
    /// one who asked for it and to whoever may write where the student would go.
    pub async fn cancel(
        &self,
        id: String,
        caller: RequesterIdentity,
        may_write: impl Fn(&str) -> bool + Send + 'static,
    ) -> Result<Distillation, Error> {
        let job_id = id.clone();
        self.db
            .run(move |conn| {
                let (job, row) = distillations::find(conn, &id)?
                    .ok_or_else(|| Error::not_found(format!("distillation {id}")))?;
                let shown = describe(conn, (job, row.clone()))?;
                if !teacher_visible(conn, &shown.teacher, &caller.visible)? {
                    return Err(Error::not_found(format!("distillation {id}")));
                }
                let target_ns = row.target.split('/').next().unwrap_or_default();
                if row.requested_by != caller.user_id && !may_write(target_ns) {
                    return Err(Error::forbidden(format!(
                        "only {} or a writer of {target_ns} may cancel this distillation",
                        row.requester_name
                    )));
                }
                let message = format!("cancelled by {}", caller.name);
                if !pipeline_jobs::cancel(conn, &id, &message)? {
                    return Err(Error::Conflict {
                        code: ErrorCode::DistillationFinished,
                        message: format!(
                            "distillation {id} has finished already ({:?}); nothing to cancel",
                            shown.state
                        ),
                        details: None,
                    });
                }
                Ok(())
            })
            .await?;
        if let Err(e) = self.store.delete_job_state(&job_id).await {
            tracing::warn!(job = %job_id, error = %e.chain(), "dropping a cancelled job's state failed");
        }
        tracing::info!(job = %job_id, "distillation cancelled");
        self.get(job_id, Visible::All).await
    }
}

/// Who calls, as a distillation records it.
#[derive(Debug, Clone)]
pub struct RequesterIdentity {
    pub user_id: String,
    pub name: String,
    pub visible: Visible,
}

fn visible_to_json(visible: &Visible) -> Result<Option<String>, Error> {
    Ok(match visible {
        Visible::All => None,
        Visible::Some { namespace_ids } => Some(serde_json::to_string(namespace_ids)?),
    })
}

fn visible_from_json(stored: Option<&str>) -> Result<Visible, Error> {
    Ok(match stored {
        None => Visible::All,
        Some(text) => Visible::Some {
            namespace_ids: serde_json::from_str(text)?,
        },
    })
}

/// The version, when `visible` lets the caller read its model (404 otherwise).
fn version_row(
    conn: &mut DbConnection,
    ns: &NamespaceName,
    model: &ModelName,
    version: &VersionName,
    visible: &Visible,
) -> Result<crate::db::records::VersionRow, Error> {
    versions::find_readable(conn, ns.as_str(), model.as_str(), version.as_str(), visible)?
        .ok_or_else(|| Error::not_found(format!("version {ns}/{model}:{version}")))
}

fn teacher_visible(
    conn: &mut DbConnection,
    teacher: &str,
    visible: &Visible,
) -> Result<bool, Error> {
    let Ok((ns, model, _)) = kiln_core::api::version_reference(teacher) else {
        return Ok(false);
    };
    Ok(models::find(conn, ns.as_str(), model.as_str())?.is_some_and(|(_, m)| visible.allows(&m)))
}

fn describe(
    conn: &mut DbConnection,
    (job, row): (PipelineJobRow, DistillationRow),
) -> Result<Distillation, Error> {
    let (ns, model, version) = versions::context(conn, &job.version_id)?;
    let state = match job.state.as_str() {
        "queued" => DistillationState::Queued,
        "running" => DistillationState::Running,
        "succeeded" => DistillationState::Succeeded,
        "cancelled" => DistillationState::Cancelled,
        _ => DistillationState::Failed,
    };
    let progress: Option<DistillationProgress> = row
        .progress
        .as_deref()
        .map(serde_json::from_str)
        .transpose()?;
    let report: Option<serde_json::Value> = job
        .report
        .as_deref()
        .map(serde_json::from_str)
        .transpose()?;
    let comparison = comparison::of(
        conn,
        &job.version_id,
        row.student_version_id.as_deref(),
        report.as_ref(),
    )?;
    Ok(Distillation {
        id: job.id,
        teacher: format!("{ns}/{model}:{}", version.version),
        into: row.target,
        state,
        request: serde_json::from_str(&row.request)?,
        attempt: job.attempts,
        runner: job
            .lease_owner
            .filter(|_| state == DistillationState::Running),
        progress,
        message: job.message,
        report,
        comparison,
        requested_by: row.requester_name,
        created_at: job.created_at.and_utc(),
        started_at: job.started_at.map(|t| t.and_utc()),
        finished_at: job.finished_at.map(|t| t.and_utc()),
    })
}

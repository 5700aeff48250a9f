//! Distillation jobs, the runner's side: claiming one under a lease, the teacher's and the dataset's files,
//! the training state kept in the store, the student's files and the report that commits it. Every call
//! names the runner and is refused (409 `lease_lost`, nothing written) once it no longer holds the job —
//! after its lease ran out or the job was cancelled.

use bytes::Bytes;
use futures_util::Stream;
use futures_util::stream::BoxStream;
use kiln_core::api::{
    CreateVersionRequest, DatasetRequest, DistillationJob, DistillationRequest, DistillationResult,
    FileEntry, JobState, LineageRequest, ParentRequest, Producer,
};
use kiln_core::{
    ErrorCode, FilePath, ModelName, NamespaceName, Sha256Digest, Sha256Hasher, VersionName,
};

use super::{DistillationService, visible_from_json};
use crate::auth::Level;
use crate::db::blob_writes;
use crate::db::records::{DistillationRow, PipelineJobRow};
use crate::db::repos::audit::Actor;
use crate::db::repos::blobs::{self, Reservation};
use crate::db::repos::models::Visible;
use crate::db::repos::pipeline_jobs::{self, Claim, LeaseLost, Queue};
use crate::db::repos::{distillations, memberships, runners, users, versions};
use crate::db::{DbConnection, now, transaction_retried};
use crate::error::Error;
use crate::services::runners::owned;
use crate::storage::SaveError;

/// Room above the bounds below for headers and tokenizer files.
const SLACK_BYTES: u64 = 64 << 20;

/// A student file holds at most the teacher's weights in f32: twice a half-precision teacher's bytes.
fn student_file_limit(teacher_bytes: u64) -> u64 {
    teacher_bytes * 2 + SLACK_BYTES
}

/// A training state holds the student's f32 weights and AdamW's two moments of each.
fn state_limit(teacher_bytes: u64) -> u64 {
    teacher_bytes * 6 + SLACK_BYTES
}

/// A held distillation's version: whose files a runner may fetch.
pub struct FileSubject {
    pub namespace: NamespaceName,
    pub model: ModelName,
    pub version: VersionName,
}

/// Which of a job's inputs a runner fetches.
#[derive(Debug, Clone, Copy)]
pub enum Input {
    Teacher,
    Data,
}

fn held(
    conn: &mut DbConnection,
    runner_id: &str,
    token_id: &str,
    job_id: &str,
) -> Result<(PipelineJobRow, DistillationRow), Error> {
    owned(conn, runner_id, token_id)?;
    pipeline_jobs::held(conn, job_id, runner_id)?
        .filter(|job| job.kind == pipeline_jobs::JOB_DISTILL)
        .ok_or_else(|| Error::from(LeaseLost::runner(job_id)))?;
    distillations::find(conn, job_id)?.ok_or_else(|| LeaseLost::runner(job_id).into())
}

fn teacher_bytes(conn: &mut DbConnection, version_id: &str) -> Result<u64, Error> {
    Ok(versions::files(conn, version_id)?
        .iter()
        .map(|f| f.size.max(0) as u64)
        .sum())
}

fn entries(rows: Vec<crate::db::records::VersionFileRow>) -> Result<Vec<FileEntry>, Error> {
    rows.into_iter().map(crate::db::views::file_entry).collect()
}

fn subject(conn: &mut DbConnection, version_id: &str) -> Result<FileSubject, Error> {
    let (ns, model, version) = versions::context(conn, version_id)?;
    Ok(FileSubject {
        namespace: ns.parse()?,
        model: model.parse()?,
        version: version.version.parse()?,
    })
}

fn describe_job(
    conn: &mut DbConnection,
    job: PipelineJobRow,
    row: DistillationRow,
) -> Result<DistillationJob, Error> {
    let teacher = subject(conn, &job.version_id)?;
    let (data, data_files) = match &row.data_version_id {
        Some(id) => {
            let s = subject(conn, id)?;
            (
                Some(format!("{}/{}:{}", s.namespace, s.model, s.version)),
                entries(versions::files(conn, id)?)?,
            )
        }
        None => (None, Vec::new()),
    };
    Ok(DistillationJob {
        job_id: job.id,
        teacher: format!(
            "{}/{}:{}",
            teacher.namespace, teacher.model, teacher.version
        ),
        teacher_files: entries(versions::files(conn, &job.version_id)?)?,
        data,
        data_files,
        request: serde_json::from_str(&row.request)?,
        checkpoint_step: row.checkpoint_step.map(|s| s as u64),
        attempt: job.attempts,
        lease_expires_at: job.lease_expires_at.unwrap_or_else(now).and_utc(),
    })
}

impl DistillationService {
    /// The oldest distillation queued for the runner's device class (or whose runner died), now leased to
    /// it; None when there is none.
    pub async fn claim(
        &self,
        runner_id: String,
        token_id: String,
        lease_until: chrono::NaiveDateTime,
    ) -> Result<Option<DistillationJob>, Error> {
        self.db
            .run(move |conn| {
                let runner = owned(conn, &runner_id, &token_id)?;
                runners::touch(conn, &runner_id, now())?;
                loop {
                    let queue = Queue::Distill {
                        device_kind: &runner.device_kind,
                    };
                    match pipeline_jobs::claim_next(conn, &runner_id, lease_until, queue)? {
                        Claim::Nothing => return Ok(None),
                        Claim::GaveUp(job) => {
                            tracing::warn!(job = %job.id, "distillation given up: its runners kept dying");
                        }
                        Claim::Claimed(job) => {
                            let row = distillations::find(conn, &job.id)?
                                .map(|(_, row)| row)
                                .ok_or_else(|| {
                                    Error::Internal(format!("distillation {} has no row", job.id))
                                })?;
                            let request: DistillationRequest = serde_json::from_str(&row.request)?;
                            if let (Some(data), None) = (&request.data, &row.data_version_id) {
                                // Training on made-up data instead would not be what was asked for.
                                let message = format!("the dataset version {data} was deleted");
                                pipeline_jobs::finish(
                                    conn,
                                    &job.id,
                                    &runner_id,
                                    JobState::Failed,
                                    Some(&message),
                                    None,
                                )?;
                                continue;
                            }
                            return Ok(Some(describe_job(conn, job, row)?));
                        }
                    }
                }
            })
            .await
    }

    /// The version whose files a runner holding the job may fetch.
    pub async fn input(
        &self,
        runner_id: String,
        token_id: String,
        job_id: String,
        input: Input,
    ) -> Result<FileSubject, Error> {
        self.db
            .run(move |conn| {
                let (job, row) = held(conn, &runner_id, &token_id, &job_id)?;
                let version_id = match input {
                    Input::Teacher => job.version_id,
                    Input::Data => row
                        .data_version_id
                        .ok_or_else(|| Error::not_found(format!("a dataset of job {job_id}")))?,
                };
                subject(conn, &version_id)
            })
            .await
    }

    /// Replaces the job's training state (taken at `step`); the previous one stays until this one is
    /// whole.
    pub async fn save_checkpoint<E: std::fmt::Display>(
        &self,
        runner_id: String,
        token_id: String,
        job_id: String,
        step: u64,
        body: impl Stream<Item = Result<Bytes, E>>,
    ) -> Result<(), Error> {
        let (r, t, j) = (runner_id.clone(), token_id.clone(), job_id.clone());
        let limit = self
            .db
            .run(move |conn| {
                let (job, _) = held(conn, &r, &t, &j)?;
                Ok(state_limit(teacher_bytes(conn, &job.version_id)?))
            })
            .await?;
        match self.store.save_job_state(&job_id, body, limit).await {
            Ok(_) => {}
            Err(SaveError::TooLarge(limit)) => {
                return Err(Error::bad_request(
                    ErrorCode::BodyTooLong,
                    format!("a training state of this teacher is at most {limit} bytes"),
                ));
            }
            Err(SaveError::Failed(e)) => return Err(e),
        }
        self.db
            .run(move |conn| {
                transaction_retried(conn, |conn| {
                    held(conn, &runner_id, &token_id, &job_id)?;
                    Ok(distillations::set_checkpoint(conn, &job_id, step as i64)?)
                })
            })
            .await
    }

    /// The job's training state and its size, when one was saved.
    pub async fn checkpoint(
        &self,
        runner_id: String,
        token_id: String,
        job_id: String,
    ) -> Result<(BoxStream<'static, object_store::Result<Bytes>>, u64), Error> {
        let j = job_id.clone();
        self.db
            .run(move |conn| held(conn, &runner_id, &token_id, &j).map(|_| ()))
            .await?;
        self.store
            .read_job_state(&job_id)
            .await?
            .ok_or_else(|| Error::not_found(format!("a checkpoint of job {job_id}")))
    }

    /// Stores one of the student's files as a blob granted to the one who asked for the job.
    pub async fn upload_file<E: std::fmt::Display>(
        &self,
        runner_id: String,
        token_id: String,
        job_id: String,
        path: FilePath,
        body: impl Stream<Item = Result<Bytes, E>>,
    ) -> Result<FileEntry, Error> {
        let (r, t, j) = (runner_id.clone(), token_id.clone(), job_id.clone());
        let (limit, owner) = self
            .db
            .run(move |conn| {
                let (job, row) = held(conn, &r, &t, &j)?;
                Ok((
                    student_file_limit(teacher_bytes(conn, &job.version_id)?),
                    row.requested_by,
                ))
            })
            .await?;
        let scratch = tempfile::Builder::new()
            .prefix("kiln-student-")
            .tempfile()?;
        let (digest, size) = save_limited(scratch.path(), body, limit).await?;
        let reservation = blob_writes::reserve(&self.db, &digest, size as i64).await?;
        if reservation == Reservation::Write {
            self.store.put_file(scratch.path(), &digest).await?;
        }
        let key = digest.to_string();
        self.db
            .run(move |conn| {
                let written: &[String] = match reservation {
                    Reservation::Write => std::slice::from_ref(&key),
                    _ => &[],
                };
                transaction_retried(conn, |conn| {
                    held(conn, &runner_id, &token_id, &job_id)?;
                    blob_writes::hold_live(conn, std::slice::from_ref(&key), written)?;
                    Ok(blobs::grant(conn, &key, &owner)?)
                })
            })
            .await?;
        Ok(FileEntry {
            path,
            digest,
            size: size as i64,
        })
    }

    /// Ends a job the runner holds: on success the student is committed as a new version of the one who
    /// asked (with its lineage and report), then the job is finished; on failure the job fails for good.
    pub async fn report(
        &self,
        runner_id: String,
        token_id: String,
        job_id: String,
        result: DistillationResult,
    ) -> Result<(), Error> {
        let (r, t, j) = (runner_id.clone(), token_id.clone(), job_id.clone());
        let (job, row) = self.db.run(move |conn| held(conn, &r, &t, &j)).await?;
        let (state, message, report) = match result {
            DistillationResult::Failed { message } => {
                (JobState::Failed, Some(bounded(&message)), None)
            }
            DistillationResult::Succeeded { files, report } => {
                if files.is_empty() || files.len() > 64 {
                    return Err(Error::bad_request(
                        ErrorCode::InvalidDistillation,
                        "files: 1 to 64 student files",
                    ));
                }
                match self.commit_student(&job, &row, files, &report).await {
                    Ok(student) => {
                        let j = job_id.clone();
                        self.db
                            .run(move |conn| Ok(distillations::set_student(conn, &j, &student)?))
                            .await?;
                        (JobState::Succeeded, None, Some(report.to_string()))
                    }
                    // Refused for a reason another runner would meet too (the namespace's quota, the
                    // asker's access gone, the version taken meanwhile): the job fails with it, its report
                    // kept. A lost lease or a store that is down is the runner's to retry.
                    Err(e) if refusal_is_final(&e) => (
                        JobState::Failed,
                        Some(bounded(&format!("the student could not be committed: {e}"))),
                        Some(report.to_string()),
                    ),
                    Err(e) => return Err(e),
                }
            }
        };
        let finished = self
            .db
            .run(move |conn| {
                Ok(pipeline_jobs::finish(
                    conn,
                    &job_id,
                    &runner_id,
                    state,
                    message.as_deref(),
                    report.as_deref(),
                )?
                .then_some(job_id))
            })
            .await?;
        let Some(job_id) = finished else {
            return Err(LeaseLost::runner(&job.id).into());
        };
        if let Err(e) = self.store.delete_job_state(&job_id).await {
            tracing::warn!(job = %job_id, error = %e.chain(), "dropping a finished job's state failed");
        }
        tracing::info!(job = %job_id, state = state.as_str(), "distillation finished");
        Ok(())
    }

    /// The student as a version of the one who asked: pushed files, lineage naming the teacher and the
    /// dataset, the settings as hyperparameters. Returns its id.
    async fn commit_student(
        &self,
        job: &PipelineJobRow,
        row: &DistillationRow,
        files: Vec<FileEntry>,
        report: &serde_json::Value,
    ) -> Result<String, Error> {
        let request: DistillationRequest = serde_json::from_str(&row.request)?;
        let (ns, model, version) = kiln_core::api::version_reference(&row.target)
            .map_err(|m| Error::Internal(format!("distillation target {}: {m}", row.target)))?;
        let teacher = self
            .db
            .run({
                let id = job.version_id.clone();
                move |conn| subject(conn, &id)
            })
            .await?;
        let lineage = LineageRequest {
            parents: vec![ParentRequest {
                reference: format!(
                    "{}/{}:{}",
                    teacher.namespace, teacher.model, teacher.version
                ),
                role: "teacher".to_owned(),
            }],
            datasets: request
                .data
                .iter()
                .map(|reference| DatasetRequest {
                    reference: Some(reference.clone()),
                    ..DatasetRequest::default()
                })
                .collect(),
            training_run: Some(format!("kiln distillation {}", job.id)),
            producer: Some(Producer {
                name: "kiln-distill".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            }),
            hyperparameters: Some(hyperparameters(&request, report)),
        };
        let actor = Actor {
            name: row.requester_name.clone(),
            user_id: Some(row.requested_by.clone()),
            remote_addr: None,
        };
        let visible = self.asker_now(row, ns.as_str()).await?;
        // Created, or already there with these very files and lineage (a retried report).
        self.registry
            .create_version(
                ns.clone(),
                model.clone(),
                CreateVersionRequest {
                    version: version.clone(),
                    files,
                    pipeline: None,
                    lineage: Some(lineage),
                },
                actor,
                visible,
            )
            .await?;
        self.db
            .run(move |conn| {
                versions::find_readable(
                    conn,
                    ns.as_str(),
                    model.as_str(),
                    version.as_str(),
                    &Visible::All,
                )?
                .map(|v| v.id)
                .ok_or_else(|| Error::not_found(format!("version {ns}/{model}:{version}")))
            })
            .await
    }
}

impl DistillationService {
    /// What the asker may read now, when they may still write where the student goes (checked when the
    /// job was asked for, and again here: a membership may have been taken away while it trained). Their
    /// reads stay within what the credential that asked could see.
    async fn asker_now(&self, row: &DistillationRow, namespace: &str) -> Result<Visible, Error> {
        let (user_id, namespace) = (row.requested_by.clone(), namespace.to_owned());
        let asked_with = visible_from_json(row.requester_visible.as_deref())?;
        self.db
            .read(move |conn| {
                let user = users::find(conn, &user_id)?;
                let roles = memberships::of_user(conn, &user_id)?;
                let is_admin = user.as_ref().is_some_and(|u| u.is_admin);
                let writes = is_admin
                    || roles.iter().any(|(_, ns, role)| {
                        *ns == namespace && Level::from_role(role) >= Some(Level::Write)
                    });
                if user.is_none() || !writes {
                    return Err(Error::forbidden(format!(
                        "the one who asked for it may no longer write to {namespace}"
                    )));
                }
                Ok(match asked_with {
                    Visible::All if is_admin => Visible::All,
                    Visible::All => Visible::Some {
                        namespace_ids: roles.into_iter().map(|(id, _, _)| id).collect(),
                    },
                    Visible::Some { namespace_ids } => Visible::Some {
                        namespace_ids: namespace_ids
                            .into_iter()
                            .filter(|id| roles.iter().any(|(member_of, _, _)| member_of == id))
                            .collect(),
                    },
                })
            })
            .await
    }
}

/// The settings that shaped the student, as lineage hyperparameters: the report's scalar settings, those
/// nested below named by their path (`training.steps`), and the student's shape as asked.
fn hyperparameters(
    request: &DistillationRequest,
    report: &serde_json::Value,
) -> kiln_core::api::Hyperparameters {
    fn scalar(value: &serde_json::Value) -> bool {
        value.is_number() || value.is_boolean() || value.as_str().is_some_and(|s| s.len() <= 256)
    }
    fn flatten(
        prefix: &str,
        value: &serde_json::Value,
        depth: usize,
        into: &mut Vec<(String, serde_json::Value)>,
    ) {
        match value.as_object() {
            Some(inner) if depth < 3 => {
                for (k, v) in inner {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&name, v, depth + 1, into);
                }
            }
            _ if scalar(value) && !prefix.is_empty() => {
                into.push((prefix.to_owned(), value.clone()))
            }
            _ => {}
        }
    }
    let mut flat: Vec<(String, serde_json::Value)> = Vec::new();
    if let Some(settings) = report.get("settings") {
        flatten("", settings, 0, &mut flat);
    }
    let mut out: kiln_core::api::Hyperparameters = flat
        .into_iter()
        .filter(|(name, _)| name.chars().count() <= 64)
        .take(60)
        .collect();
    if let Some(student) = &request.student {
        out.insert("student".to_owned(), serde_json::json!(student));
    }
    out
}

fn refusal_is_final(e: &Error) -> bool {
    use actix_web::ResponseError;
    !matches!(e, Error::LeaseLost(_))
        && e.status_code().is_client_error()
        && e.status_code() != actix_web::http::StatusCode::TOO_MANY_REQUESTS
}

fn bounded(message: &str) -> String {
    message.chars().take(4000).collect()
}

/// Writes `body` to `path`, refused past `limit` bytes; its digest and size, hashed as it is written.
async fn save_limited<E: std::fmt::Display>(
    path: &std::path::Path,
    body: impl Stream<Item = Result<Bytes, E>>,
    limit: u64,
) -> Result<(Sha256Digest, u64), Error> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    let mut out = tokio::fs::File::create(path).await?;
    let mut hasher = Sha256Hasher::new();
    let mut body = std::pin::pin!(body);
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            Error::bad_request(
                ErrorCode::TruncatedBody,
                format!("the file's body broke off: {e}"),
            )
        })?;
        written += chunk.len() as u64;
        if written > limit {
            return Err(Error::bad_request(
                ErrorCode::BodyTooLong,
                format!("a student file of this teacher is at most {limit} bytes"),
            ));
        }
        hasher.update(&chunk);
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    Ok((hasher.finalize(), written))
}

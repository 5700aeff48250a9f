//! The store check (`kiln admin fsck`): the store and the database compared slice by slice (a
//! two-hex-digit digest prefix at a time, so millions of blobs never sit in memory at once).
//!
//! Found: recorded blobs whose objects are missing or of the wrong size (with `verify`, the wrong
//! digest), and objects nothing records (blob keys without a row, staged uploads without a session).
//! Repaired: orphans older than the grace period are deleted; a missing or wrong blob stops being usable
//! (so a push of the same bytes uploads it again) and the versions holding it are marked damaged, not
//! served, until a later repair finds them whole.

use std::collections::HashMap;
use std::time::Instant;

use futures_util::StreamExt;
use kiln_core::api::{BlobProblem, OrphanObject, StoreCheckReport, StoreCheckRequest};
use kiln_core::{Sha256Digest, Sha256Hasher};
use serde_json::json;

use super::LifecycleService;
use crate::db::repos::audit::{self, Actor};
use crate::db::repos::blobs::LIVE;
use crate::db::repos::collection::{self, BlobEntry};
use crate::db::repos::versions;
use crate::error::Error;
use crate::services::transaction_retried;
use crate::storage::StoredObject;

/// Each list in the report stops here; the counts go on.
const LISTED: usize = 1000;

impl LifecycleService {
    pub async fn check_store(
        &self,
        request: StoreCheckRequest,
        actor: Actor,
    ) -> Result<StoreCheckReport, Error> {
        let clock = Instant::now();
        let orphan_before = chrono::Duration::from_std(self.settings.grace)
            .ok()
            .and_then(|grace| chrono::Utc::now().checked_sub_signed(grace))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        let mut report = StoreCheckReport {
            verify: request.verify,
            repair: request.repair,
            blobs_checked: 0,
            objects_listed: 0,
            problems: Vec::new(),
            orphans: Vec::new(),
            versions_damaged: Vec::new(),
            versions_restored: Vec::new(),
            problem_count: 0,
            orphan_count: 0,
            duration_ms: 0,
        };
        for slice in 0..=255u8 {
            let prefix = format!("{slice:02x}");
            let (from, to) = (format!("sha256:{prefix}"), next_prefix(slice));
            let rows = self
                .db
                .read(move |conn| Ok(collection::in_range(conn, &from, &to)?))
                .await?;
            let objects = self.store.list_blobs(&prefix).await?;
            report.blobs_checked += rows.len() as u64;
            report.objects_listed += objects.len() as u64;
            let mut objects: HashMap<String, StoredObject> = objects
                .into_iter()
                .map(|o| (format!("sha256:{}", o.name), o))
                .collect();
            for row in rows {
                let object = objects.remove(&row.digest);
                if row.state == LIVE
                    && let Some(problem) =
                        self.problem(&row, object.as_ref(), request.verify).await?
                {
                    self.report_problem(&mut report, problem, request.repair)
                        .await?;
                }
            }
            for (digest, object) in objects {
                let unrecorded = Unrecorded::Blob(digest);
                self.report_orphan(
                    &mut report,
                    object,
                    unrecorded,
                    orphan_before,
                    request.repair,
                )
                .await?;
            }
        }
        let uploads = self
            .db
            .read(|conn| Ok(collection::upload_ids(conn)?))
            .await?;
        for object in self.store.list_staging().await? {
            report.objects_listed += 1;
            let id = object.name.trim_end_matches(".tail").to_owned();
            if !uploads.contains(&id) {
                let unrecorded = Unrecorded::Upload(id);
                self.report_orphan(
                    &mut report,
                    object,
                    unrecorded,
                    orphan_before,
                    request.repair,
                )
                .await?;
            }
        }
        // A distillation's saved training state is wanted while its job is unfinished. It outlives the job
        // when the job was deleted with its teacher, given up after its runners kept dying, or when the
        // deletion at its end failed.
        let unfinished = self
            .db
            .read(|conn| Ok(crate::db::repos::distillations::unfinished_ids(conn)?))
            .await?;
        for (job, object) in self.store.list_job_states().await? {
            report.objects_listed += 1;
            if !unfinished.contains(&job) {
                let unrecorded = Unrecorded::JobState(job);
                self.report_orphan(
                    &mut report,
                    object,
                    unrecorded,
                    orphan_before,
                    request.repair,
                )
                .await?;
            }
        }
        if request.repair {
            report.versions_restored = self.restore_whole_versions().await?;
            let (actor, detail) = (
                actor,
                json!({
                    "problems": report.problem_count,
                    "orphans": report.orphan_count,
                    "versions_damaged": report.versions_damaged,
                    "versions_restored": report.versions_restored,
                }),
            );
            self.db
                .run(move |conn| {
                    Ok(audit::record(
                        conn,
                        &actor,
                        "storage.repair",
                        "blobs",
                        detail,
                    )?)
                })
                .await?;
        }
        report.duration_ms = clock.elapsed().as_millis() as u64;
        Ok(report)
    }

    /// What is wrong with a live blob's object, if anything.
    async fn problem(
        &self,
        row: &BlobEntry,
        object: Option<&StoredObject>,
        verify: bool,
    ) -> Result<Option<(String, BlobEntry, Option<u64>)>, Error> {
        let Some(object) = object else {
            return Ok(Some(("missing".to_owned(), row.clone(), None)));
        };
        if object.size != row.size as u64 {
            return Ok(Some((
                "wrong_size".to_owned(),
                row.clone(),
                Some(object.size),
            )));
        }
        if verify {
            let digest: Sha256Digest = row.digest.parse()?;
            let mut hasher = Sha256Hasher::new();
            let mut stream = self.store.read(&digest, None).await?;
            while let Some(chunk) = stream.next().await {
                hasher.update(&chunk?);
            }
            if hasher.finalize() != digest {
                return Ok(Some((
                    "wrong_digest".to_owned(),
                    row.clone(),
                    Some(object.size),
                )));
            }
        }
        Ok(None)
    }

    async fn report_problem(
        &self,
        report: &mut StoreCheckReport,
        (problem, row, stored_size): (String, BlobEntry, Option<u64>),
        repair: bool,
    ) -> Result<(), Error> {
        report.problem_count += 1;
        let reason = match (problem.as_str(), stored_size) {
            ("missing", _) => format!("blob {} is missing from the store", row.digest),
            ("wrong_size", Some(size)) => format!(
                "blob {} has {size} bytes in the store, not {}",
                row.digest, row.size
            ),
            _ => format!("blob {}'s bytes in the store do not hash to it", row.digest),
        };
        let digest = row.digest.clone();
        let holders = self
            .db
            .run(move |conn| {
                transaction_retried(conn, |conn| {
                    if repair {
                        // First: it locks the row, so a version committing with it now is among the
                        // holders read next.
                        collection::mark_missing(conn, &digest)?;
                    }
                    let holders = collection::holders(conn, &digest)?;
                    if repair {
                        let mut damaged = Vec::new();
                        for (id, label) in &holders {
                            if versions::set_damage(conn, id, Some(&reason))? {
                                damaged.push(label.clone());
                            }
                        }
                        return Ok((holders, damaged));
                    }
                    Ok((holders, Vec::new()))
                })
            })
            .await?;
        let (holders, damaged) = holders;
        report.versions_damaged.extend(damaged);
        if report.problems.len() < LISTED {
            report.problems.push(BlobProblem {
                digest: row.digest.parse()?,
                problem,
                recorded_size: row.size,
                stored_size,
                versions: holders.into_iter().map(|(_, label)| label).collect(),
            });
        }
        Ok(())
    }

    async fn report_orphan(
        &self,
        report: &mut StoreCheckReport,
        object: StoredObject,
        unrecorded: Unrecorded,
        orphan_before: chrono::DateTime<chrono::Utc>,
        repair: bool,
    ) -> Result<(), Error> {
        // Asked again now: a push may have recorded it (or begun its upload) since the slice was read.
        let recorded = self
            .db
            .run(move |conn| {
                Ok(match &unrecorded {
                    Unrecorded::Blob(digest) => collection::recorded(conn, Some(digest), None)?,
                    Unrecorded::Upload(id) => collection::recorded(conn, None, Some(id))?,
                    Unrecorded::JobState(id) => {
                        crate::db::repos::distillations::unfinished_ids(conn)?.contains(id)
                    }
                })
            })
            .await?;
        if recorded {
            return Ok(());
        }
        report.orphan_count += 1;
        let removed = repair && object.last_modified < orphan_before;
        if removed {
            self.store.delete_object(&object).await?;
        }
        if report.orphans.len() < LISTED {
            report.orphans.push(OrphanObject {
                key: object.key.to_string(),
                size: object.size,
                last_modified: object.last_modified,
                removed,
            });
        }
        Ok(())
    }

    /// Damaged versions whose blobs are all live again (pushed anew) are served again.
    async fn restore_whole_versions(&self) -> Result<Vec<String>, Error> {
        self.db
            .run(|conn| {
                transaction_retried(conn, |conn| {
                    let mut restored = Vec::new();
                    for (id, label) in collection::whole_again(conn)? {
                        if versions::set_damage(conn, &id, None)? {
                            restored.push(label);
                        }
                    }
                    Ok(restored)
                })
            })
            .await
    }
}

/// What an object with no row would belong to.
enum Unrecorded {
    /// A blob key (`sha256:<hex>`).
    Blob(String),
    /// A staged upload's id.
    Upload(String),
    /// A distillation job's id, for its saved training state.
    JobState(String),
}

/// The first digest after the slice `sha256:<slice>`: `sha256:<slice + 1>`, or past every hex digest.
fn next_prefix(slice: u8) -> String {
    match slice.checked_add(1) {
        Some(next) => format!("sha256:{next:02x}"),
        // 'g' sorts after every hex digit.
        None => "sha256:g".to_owned(),
    }
}

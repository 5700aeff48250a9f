//! The registry's state as an operator watches it: pipeline jobs by kind and state, the queue's oldest
//! job, upload sessions in progress, runners, manifests nearing expiry. Aggregates only: each is one
//! grouped query, cheap enough for every scrape.

use chrono::NaiveDateTime;
use diesel::dsl::{count_star, max, min};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{
    manifests, oci_uploads, pipeline_jobs, runners, upload_sessions, webhook_deliveries,
};

#[derive(Debug, Default)]
pub struct OperationsSnapshot {
    /// (kind, state, count).
    pub jobs: Vec<(String, String, i64)>,
    pub oldest_queued: Option<NaiveDateTime>,
    pub kiln_uploads: i64,
    pub oci_uploads: i64,
    /// (device kind, last heartbeat) per runner.
    pub runner_heartbeats: Vec<(String, NaiveDateTime)>,
    /// The newest manifest's expiry of every alias and of every version.
    pub manifest_expiries: Vec<NaiveDateTime>,
    /// Webhook deliveries not yet delivered nor given up.
    pub webhook_outbox: i64,
}

pub fn snapshot(conn: &mut DbConnection) -> QueryResult<OperationsSnapshot> {
    let jobs = pipeline_jobs::table
        .group_by((pipeline_jobs::kind, pipeline_jobs::state))
        .select((pipeline_jobs::kind, pipeline_jobs::state, count_star()))
        .load(conn)?;
    let oldest_queued = pipeline_jobs::table
        .filter(pipeline_jobs::state.eq("queued"))
        .select(min(pipeline_jobs::created_at))
        .first(conn)?;
    let kiln_uploads = upload_sessions::table.count().get_result(conn)?;
    let oci_uploads = oci_uploads::table.count().get_result(conn)?;
    let runner_heartbeats = runners::table
        .select((runners::device_kind, runners::last_heartbeat_at))
        .load(conn)?;
    let mut manifest_expiries: Vec<Option<NaiveDateTime>> = manifests::table
        .filter(manifests::alias_id.is_not_null())
        .group_by(manifests::alias_id)
        .select(max(manifests::expires_at))
        .load(conn)?;
    manifest_expiries.extend(
        manifests::table
            .filter(manifests::alias_id.is_null())
            .group_by(manifests::version_id)
            .select(max(manifests::expires_at))
            .load::<Option<NaiveDateTime>>(conn)?,
    );
    let webhook_outbox = webhook_deliveries::table
        .filter(webhook_deliveries::state.eq("pending"))
        .count()
        .get_result(conn)?;
    Ok(OperationsSnapshot {
        jobs,
        oldest_queued,
        kiln_uploads,
        oci_uploads,
        runner_heartbeats,
        manifest_expiries: manifest_expiries.into_iter().flatten().collect(),
        webhook_outbox,
    })
}

//! What an operator watches: the registry's state sampled into Prometheus gauges when /metrics is scraped,
//! and the rendered exposition.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::db::Database;
use crate::db::views::operations;
use crate::error::Error;
use crate::telemetry::metrics::{
    DB_POOL_CONNECTIONS, DB_POOL_IDLE, JOBS, MANIFESTS_EXPIRING, QUEUE_DEPTH, QUEUE_OLDEST,
    RUNNERS, UPLOAD_SESSIONS, WEBHOOK_OUTBOX, handle,
};

#[derive(Clone)]
pub struct OperationsService {
    db: Database,
    runner_lease: Duration,
    /// The (kind, state) pairs of jobs reported so far: a pair whose jobs are all gone reads 0, not its
    /// last count.
    job_series: Arc<Mutex<BTreeSet<(String, String)>>>,
}

impl OperationsService {
    pub fn new(db: Database, runner_lease: Duration) -> Self {
        Self {
            db,
            runner_lease,
            job_series: Arc::default(),
        }
    }

    /// The Prometheus text exposition: what this process recorded, and the database's state now.
    pub async fn metrics(&self) -> Result<String, Error> {
        self.sample().await?;
        let handle = handle();
        handle.run_upkeep();
        Ok(handle.render())
    }

    async fn sample(&self) -> Result<(), Error> {
        let (connections, idle) = self.db.pool_state();
        metrics::gauge!(DB_POOL_CONNECTIONS).set(f64::from(connections));
        metrics::gauge!(DB_POOL_IDLE).set(f64::from(idle));
        let snapshot = self.db.read(|conn| Ok(operations::snapshot(conn)?)).await?;
        let now = chrono::Utc::now().naive_utc();
        let mut queued = 0;
        let mut series = self.job_series.lock().expect("job series lock");
        for (kind, state) in series.iter() {
            metrics::gauge!(JOBS, "kind" => kind.clone(), "state" => state.clone()).set(0.0);
        }
        for (kind, state, count) in &snapshot.jobs {
            if state == "queued" {
                queued += count;
            }
            series.insert((kind.clone(), state.clone()));
            metrics::gauge!(JOBS, "kind" => kind.clone(), "state" => state.clone())
                .set(*count as f64);
        }
        drop(series);
        metrics::gauge!(QUEUE_DEPTH).set(queued as f64);
        let oldest = snapshot
            .oldest_queued
            .map(|at| (now - at).num_milliseconds().max(0) as f64 / 1000.0);
        metrics::gauge!(QUEUE_OLDEST).set(oldest.unwrap_or(0.0));
        metrics::gauge!(UPLOAD_SESSIONS, "protocol" => "kiln").set(snapshot.kiln_uploads as f64);
        metrics::gauge!(UPLOAD_SESSIONS, "protocol" => "oci").set(snapshot.oci_uploads as f64);
        self.sample_runners(&snapshot.runner_heartbeats, now);
        let mut expiring = [0u32; 3];
        for expires in &snapshot.manifest_expiries {
            let left = *expires - now;
            if left <= chrono::TimeDelta::zero() {
                expiring[0] += 1;
            } else if left <= chrono::TimeDelta::days(1) {
                expiring[1] += 1;
            } else if left <= chrono::TimeDelta::days(7) {
                expiring[2] += 1;
            }
        }
        for (window, count) in ["expired", "1d", "7d"].into_iter().zip(expiring) {
            metrics::gauge!(MANIFESTS_EXPIRING, "within" => window).set(f64::from(count));
        }
        metrics::gauge!(WEBHOOK_OUTBOX).set(snapshot.webhook_outbox as f64);
        Ok(())
    }

    fn sample_runners(
        &self,
        heartbeats: &[(String, chrono::NaiveDateTime)],
        now: chrono::NaiveDateTime,
    ) {
        let lease =
            chrono::TimeDelta::from_std(self.runner_lease).unwrap_or(chrono::TimeDelta::MAX);
        let mut counts = std::collections::BTreeMap::<(String, &str), u32>::new();
        for (kind, beat) in heartbeats {
            let state = if now - *beat <= lease {
                "online"
            } else {
                "offline"
            };
            *counts.entry((kind.clone(), state)).or_default() += 1;
            // Both states of every known kind appear, so a runner going offline sets "online" to 0.
            let other = if state == "online" {
                "offline"
            } else {
                "online"
            };
            counts.entry((kind.clone(), other)).or_default();
        }
        for ((kind, state), count) in counts {
            metrics::gauge!(RUNNERS, "device_kind" => kind, "state" => state).set(f64::from(count));
        }
    }
}

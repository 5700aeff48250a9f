//! Periodic tasks that one replica runs at a time (re-issuing manifests, reaping idle uploads): each
//! replica asks for the task's turn every period; a lease row in the database, taken by one conditional
//! update, gives it to one of them for the period, and to another once its holder stops renewing.

use std::time::Duration;

use crate::db::repos::leases;
use crate::db::{Database, now};
use crate::error::Error;

#[derive(Clone)]
pub struct ScheduleService {
    db: Database,
}

impl ScheduleService {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Whether `holder` runs `task` this period (it holds the task's lease for `period`).
    pub async fn take_turn(
        &self,
        task: &str,
        holder: &str,
        period: Duration,
    ) -> Result<bool, Error> {
        let (task, holder) = (format!("task:{task}"), holder.to_owned());
        let ttl = chrono::Duration::from_std(period)
            .map_err(|e| Error::Internal(format!("period out of range: {e}")))?;
        self.db
            .run(move |conn| {
                crate::db::transaction_retried(conn, |conn| {
                    Ok(leases::acquire(conn, &task, &holder, now(), ttl)?.is_ok())
                })
            })
            .await
    }
}

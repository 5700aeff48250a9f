//! Telling the registry where this process serves (`PUT /api/v1/servings/{id}`, with a runner-scoped
//! token): at start, after every switch, and every 30 s; withdrawn when it stops. `kiln show` and the web
//! UI list the reports. A registry that cannot be reached only delays the next report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_core::ModelRef;
use kiln_core::api::ServingReport;
use tokio_util::sync::CancellationToken;

use super::{Served, State};

const REFRESH: Duration = Duration::from_secs(30);

pub struct Reporter {
    pub http: reqwest::Client,
    /// `{server}/api/v1/servings/{id}`.
    pub url: String,
    pub token: String,
    pub subject: ModelRef,
    pub name: String,
    pub engine: String,
    pub device: String,
    pub endpoints: Vec<String>,
}

/// A fresh id for this process's report.
pub fn serving_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|u| u.trim().to_owned())
        .unwrap_or_else(|_| format!("serve-{}", std::process::id()))
}

impl Reporter {
    fn report(&self, served: &Served) -> Option<ServingReport> {
        Some(ServingReport {
            namespace: self.subject.namespace.clone(),
            model: self.subject.model.clone()?,
            alias: self.subject.alias.clone(),
            version: served.version.parse().ok()?,
            variant: served.variant.clone(),
            sha256: served.sha256,
            sequence: served.sequence,
            engine: self.engine.clone(),
            device: self.device.clone(),
            name: self.name.clone(),
            endpoints: self.endpoints.clone(),
        })
    }

    async fn send(&self, served: &Served) {
        let Some(report) = self.report(served) else {
            return;
        };
        let sent = self
            .http
            .put(&self.url)
            .bearer_auth(&self.token)
            .json(&report)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                tracing::warn!(%status, %body, "the registry refused this process's serving report; is --runner-token a token with the runner scope?");
            }
            Err(e) => tracing::warn!(error = %e, "cannot report what this process serves"),
        }
    }

    pub async fn run(self, state: Arc<State>, stop: CancellationToken) {
        let mut sent: Option<(Arc<Served>, Instant)> = None;
        loop {
            let current = state.current();
            let due = match &sent {
                Some((last, at)) => !Arc::ptr_eq(last, &current) || at.elapsed() >= REFRESH,
                None => true,
            };
            if due {
                self.send(&current).await;
                sent = Some((current, Instant::now()));
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
        let _ = self
            .http
            .delete(&self.url)
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(5))
            .send()
            .await;
    }
}

//! Access to the API: who a credential is, how often they may call, and whether a route's rule lets them
//! in. The HTTP layer's `authorize` middleware asks these for every `/api/v1` request.

use std::sync::Arc;

use crate::auth::Principal;
use crate::auth::policy::{ResourceFacts, Rule, decide};
use crate::auth::rate_limit::RateLimiter;
use crate::db::Database;
use crate::db::repos::{models, namespaces};
use crate::error::Error;
use crate::services::read_cache::ReadCache;

#[derive(Clone)]
pub struct AccessService {
    db: Database,
    rate_limiter: Arc<RateLimiter>,
    cache: ReadCache,
}

impl AccessService {
    pub fn new(db: Database, rate_limiter: Arc<RateLimiter>, cache: ReadCache) -> Self {
        Self {
            db,
            rate_limiter,
            cache,
        }
    }

    /// Takes one request from the caller's budget (`key` names the caller: a credential or an address).
    pub fn take_request(&self, key: &str) -> Result<(), Error> {
        self.rate_limiter
            .check(key)
            .map_err(|retry_after| Error::TooManyRequests { retry_after })
    }

    /// Refreshes this replica's heartbeat and shares the rate limit among the replicas alive; returns
    /// how many are.
    pub async fn heartbeat(
        &self,
        replica: String,
        alive_for: chrono::Duration,
    ) -> Result<i64, Error> {
        let alive = self
            .db
            .run(move |conn| {
                Ok(crate::db::repos::replicas::heartbeat(
                    conn,
                    &replica,
                    crate::db::now(),
                    alive_for,
                )?)
            })
            .await?;
        self.rate_limiter
            .set_replicas(u32::try_from(alive).unwrap_or(u32::MAX));
        metrics::gauge!(crate::telemetry::metrics::REPLICAS).set(alive as f64);
        Ok(alive)
    }

    /// Forgets this replica (a clean shutdown): the others share the limit among fewer at once.
    pub async fn leave(&self, replica: String) -> Result<(), Error> {
        self.db
            .run(move |conn| Ok(crate::db::repos::replicas::leave(conn, &replica)?))
            .await
    }

    /// Whether `principal` may call a route with `rule` on this namespace and model.
    pub async fn decide(
        &self,
        rule: Rule,
        principal: &Principal,
        namespace: Option<String>,
        model: Option<String>,
    ) -> Result<(), Error> {
        decide(rule, principal, namespace, model, self).await
    }
}

impl ResourceFacts for AccessService {
    async fn facts(
        &self,
        namespace: String,
        model: Option<String>,
    ) -> Result<(bool, Option<String>), Error> {
        let key = (namespace.clone(), model.clone().unwrap_or_default());
        if let Some(found) = self.cache.resource(&key) {
            return Ok(found);
        }
        let start = self.cache.start();
        let found = self
            .db
            .read(move |conn| {
                let found_ns = namespaces::find(conn, &namespace)?.is_some();
                let visibility = match &model {
                    Some(m) => models::find(conn, &namespace, m)?.map(|(_, row)| row.visibility),
                    None => None,
                };
                Ok((found_ns, visibility))
            })
            .await?;
        self.cache.keep_resource(start, key, found.clone());
        Ok(found)
    }
}

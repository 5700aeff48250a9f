//! Access to the API: who a credential is, how often they may call, and whether a route's rule lets them
//! in. The HTTP layer's `authorize` middleware asks these for every `/api/v1` request.

use std::sync::Arc;

use crate::auth::Principal;
use crate::auth::policy::{Rule, decide};
use crate::auth::rate_limit::RateLimiter;
use crate::db::Database;
use crate::error::Error;

#[derive(Clone)]
pub struct AccessService {
    db: Database,
    rate_limiter: Arc<RateLimiter>,
}

impl AccessService {
    pub fn new(db: Database, rate_limiter: Arc<RateLimiter>) -> Self {
        Self { db, rate_limiter }
    }

    /// Takes one request from the caller's budget (`key` names the caller: a credential or an address).
    pub fn take_request(&self, key: &str) -> Result<(), Error> {
        self.rate_limiter
            .check(key)
            .map_err(|retry_after| Error::TooManyRequests { retry_after })
    }

    /// Whether `principal` may call a route with `rule` on this namespace and model.
    pub async fn decide(
        &self,
        rule: Rule,
        principal: &Principal,
        namespace: Option<String>,
        model: Option<String>,
    ) -> Result<(), Error> {
        decide(rule, principal, namespace, model, &self.db).await
    }
}

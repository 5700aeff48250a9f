//! The deliverer: every replica looks for due deliveries, claims each under a short lease (one conditional
//! update, so a try is sent by one replica), POSTs it signed, and records the answer. A receiver that does
//! not answer 2xx is tried again with exponential backoff for a day; a replica that dies mid-send loses
//! its lease and the try is sent again under the same `webhook-id` (at least once, never invented). A
//! subscription whose tries keep failing is disabled, with an audit entry.

use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, TimeDelta};
use diesel::Connection;
use serde_json::json;
use tracing::Instrument;

use crate::config::WebhookSettings;
use crate::db::repos::audit::{self, Actor};
use crate::db::repos::webhooks::{self, AttemptRow, DeliveryRow, SubscriptionRow};
use crate::db::{Database, now};
use crate::error::Error;
use crate::telemetry::metrics::{WEBHOOK_DELIVERIES, WEBHOOK_DURATION};

/// Waits after the 1st, 2nd, ... failed try (Standard Webhooks' suggested schedule; the last repeats),
/// while the delivery is less than a day old.
const BACKOFF_SECS: [i64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
/// How long kiln keeps trying one delivery.
const GIVE_UP_AFTER: TimeDelta = TimeDelta::days(1);
/// The receiver's answer kept in the log.
const RESPONSE_SNIPPET: usize = 1024;
/// Deliveries sent at once by one replica.
const BATCH: i64 = 16;

#[derive(Clone)]
pub struct Deliverer {
    db: Database,
    settings: WebhookSettings,
    client: reqwest::Client,
    /// This replica's name on the leases it takes.
    owner: String,
}

/// What one try came to.
struct Outcome {
    status: Option<u16>,
    latency: Duration,
    response: Option<String>,
    error: Option<String>,
}

impl Outcome {
    fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

impl Deliverer {
    pub fn new(db: Database, settings: WebhookSettings) -> Result<Self, Error> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            // A proxy from the environment would carry the request where the address check cannot see.
            .no_proxy()
            .user_agent(concat!("kiln-webhooks/", env!("CARGO_PKG_VERSION")));
        if !settings.allow_private_targets {
            builder = builder.dns_resolver(std::sync::Arc::new(super::target::PublicOnly));
        }
        let client = builder
            .build()
            .map_err(|e| Error::Startup(format!("cannot build the webhook client: {e}")))?;
        Ok(Self {
            db,
            settings,
            client,
            owner: format!("webhooks-{}", uuid::Uuid::new_v4().simple()),
        })
    }

    /// Sends what is due now; returns how many tries were made.
    pub async fn deliver_due(&self) -> Result<usize, Error> {
        let lease = TimeDelta::from_std(self.settings.timeout * 2 + Duration::from_secs(5))
            .unwrap_or(TimeDelta::minutes(1));
        let owner = self.owner.clone();
        let claimed: Vec<(DeliveryRow, SubscriptionRow)> = self
            .db
            .run(move |conn| {
                let at = now();
                let mut claimed = Vec::new();
                for row in webhooks::due(conn, at, BATCH)? {
                    if webhooks::claim(conn, &row, &owner, at, at + lease)?
                        && let Some(subscription) =
                            webhooks::subscription_by_id(conn, &row.subscription_id)?
                    {
                        claimed.push((row, subscription));
                    }
                }
                Ok(claimed)
            })
            .await?;
        let tries = claimed.len();
        let sends = claimed.into_iter().map(|(delivery, subscription)| {
            let span = tracing::info_span!(
                "webhook delivery",
                otel.name = %format!("webhook {}", delivery.event_type),
                webhook.id = %subscription.id,
                webhook.event_id = %delivery.event_id,
                webhook.attempt = delivery.attempts + 1,
                http.response.status_code = tracing::field::Empty,
            );
            self.deliver(delivery, subscription).instrument(span)
        });
        for result in futures_util::future::join_all(sends).await {
            if let Err(e) = result {
                tracing::warn!(error = %e.chain(), "recording a webhook delivery failed");
            }
        }
        Ok(tries)
    }

    async fn deliver(
        &self,
        delivery: DeliveryRow,
        subscription: SubscriptionRow,
    ) -> Result<(), Error> {
        let outcome = self.send(&delivery, &subscription).await;
        if let Some(status) = outcome.status {
            tracing::Span::current().record("http.response.status_code", status);
        }
        let succeeded = outcome.succeeded();
        metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => if succeeded { "delivered" } else { "failed" })
            .increment(1);
        metrics::histogram!(WEBHOOK_DURATION).record(outcome.latency.as_secs_f64());
        let attempt = AttemptRow {
            delivery_id: delivery.id.clone(),
            attempt: delivery.attempts + 1,
            at: now(),
            status: outcome.status.map(i32::from),
            latency_ms: outcome.latency.as_millis() as i64,
            response: outcome.response,
            error: outcome.error,
        };
        let next = if succeeded {
            Err(webhooks::DELIVERED)
        } else {
            next_try(delivery.created_at, attempt.at, attempt.attempt)
        };
        let owner = self.owner.clone();
        let disable_after = self.settings.disable_after_failures;
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    if !webhooks::finish_attempt(conn, &delivery, &owner, &attempt, next)? {
                        // The lease ran out meanwhile and another replica tries again.
                        return Ok(());
                    }
                    let now_row = webhooks::count_outcome(conn, &subscription.id, succeeded)?;
                    if now_row.enabled && now_row.consecutive_failures >= disable_after as i32 {
                        disable(conn, now_row)?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn send(&self, delivery: &DeliveryRow, subscription: &SubscriptionRow) -> Outcome {
        let started = Instant::now();
        let failed = |error: String| Outcome {
            status: None,
            latency: started.elapsed(),
            response: None,
            error: Some(error),
        };
        // A name is checked by the resolver at every try; an address in the URL never meets it.
        if !self.settings.allow_private_targets
            && let Some(refused) = private_literal(&subscription.url)
        {
            return failed(refused);
        }
        let timestamp = chrono::Utc::now().timestamp();
        let signature = match kiln_core::webhook_signature::sign(
            &subscription.secret,
            &delivery.event_id,
            timestamp,
            delivery.payload.as_bytes(),
        ) {
            Ok(signature) => signature,
            Err(e) => return failed(e.to_string()),
        };
        let sent = self
            .client
            .post(&subscription.url)
            .header("content-type", "application/json")
            .header("webhook-id", &delivery.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.payload.clone())
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(e) => return failed(describe(&e)),
        };
        let status = response.status();
        let mut snippet = Vec::new();
        // Only the start of the answer is kept; a receiver streaming forever is cut by the timeout.
        while snippet.len() < RESPONSE_SNIPPET {
            match response.chunk().await {
                Ok(Some(chunk)) => snippet.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        snippet.truncate(RESPONSE_SNIPPET);
        let error = status.is_redirection().then(|| {
            "redirects are not followed; point the subscription at the final URL".to_owned()
        });
        Outcome {
            status: Some(status.as_u16()),
            latency: started.elapsed(),
            response: Some(String::from_utf8_lossy(&snippet).into_owned()),
            error,
        }
    }
}

/// Why an URL whose host is an IP address kiln may not send to is refused, or None.
fn private_literal(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    let ip: std::net::IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    super::target::refuse_private(&ip.to_string(), &[std::net::SocketAddr::new(ip, 0)]).err()
}

/// When to try again after the `attempt`-th failed try, or that the delivery is given up.
fn next_try(
    created: NaiveDateTime,
    at: NaiveDateTime,
    attempt: i32,
) -> Result<NaiveDateTime, &'static str> {
    // The last wait repeats until the day is over (a redelivered delivery starts a new day).
    let index = usize::try_from(attempt - 1)
        .unwrap_or(0)
        .min(BACKOFF_SECS.len() - 1);
    let wait = &BACKOFF_SECS[index];
    let next = at + TimeDelta::seconds(*wait);
    if next - created > GIVE_UP_AFTER {
        return Err(webhooks::FAILED);
    }
    Ok(next)
}

/// The error of a try that got no answer, without the URL's query (it may carry a receiver's token).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        cause = e.to_string();
        source = e.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}

fn disable(conn: &mut crate::db::DbConnection, mut row: SubscriptionRow) -> Result<(), Error> {
    let reason = format!(
        "disabled by kiln after {} failed deliveries in a row",
        row.consecutive_failures
    );
    tracing::warn!(subscription = %row.id, url = %row.url, %reason, "webhook subscription disabled");
    row.enabled = false;
    row.disabled_reason = Some(reason.clone());
    webhooks::update_subscription(conn, &row)?;
    audit::record(
        conn,
        &Actor {
            name: "kiln".to_owned(),
            user_id: None,
            remote_addr: None,
        },
        "webhook.disable",
        &format!("webhooks/{}", row.id),
        json!({ "url": row.url, "reason": reason }),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_stop_after_a_day() {
        let created = now();
        assert_eq!(
            next_try(created, created, 1).unwrap(),
            created + TimeDelta::seconds(5)
        );
        assert_eq!(
            next_try(created, created, 2).unwrap(),
            created + TimeDelta::minutes(5)
        );
        let late = created + TimeDelta::hours(20);
        assert_eq!(next_try(created, late, 6), Err(webhooks::FAILED));
        assert_eq!(
            next_try(created, created, 8).unwrap(),
            created + TimeDelta::hours(10),
            "a redelivery long after the first tries still gets its retries"
        );
    }

    #[test]
    fn addresses_in_urls_are_checked_at_every_try() {
        assert!(private_literal("http://127.0.0.1:9/hook").is_some());
        assert!(private_literal("http://[::1]/hook").is_some());
        assert!(private_literal("http://169.254.169.254/").is_some());
        assert!(private_literal("https://1.1.1.1/hook").is_none());
        assert!(private_literal("https://example.com/hook").is_none());
    }
}

//! Webhooks: a namespace admin's subscriptions, their delivery log, redelivery on demand; the deliverer
//! ([`delivery`]) that sends what the outbox holds.

pub mod delivery;
pub mod target;

use chrono::{DateTime, Utc};
use diesel::Connection;
use kiln_core::api::{
    CreatedWebhook, NewWebhook, WebhookAttempt, WebhookDeliveries, WebhookDelivery,
    WebhookDeliveryState, WebhookEventType, WebhookSubscription, WebhookSubscriptions,
    WebhookUpdate,
};
use kiln_core::{ErrorCode, NamespaceName};
use serde_json::json;

use crate::config::WebhookSettings;
use crate::db::repos::audit::{self, Actor};
use crate::db::repos::namespaces;
use crate::db::repos::webhooks::{self, AttemptRow, DeliveryRow, SubscriptionRow};
use crate::db::{Database, DbConnection, new_id, now};
use crate::error::Error;

/// Longest description a subscription keeps.
const MAX_DESCRIPTION: usize = 500;
/// Deliveries a listing shows at most.
const MAX_LISTED: i64 = 200;

#[derive(Clone)]
pub struct WebhookService {
    db: Database,
    settings: WebhookSettings,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::bad_request(ErrorCode::InvalidWebhook, message)
}

fn events_text(events: &[WebhookEventType]) -> Result<String, Error> {
    if events.is_empty() {
        let known: Vec<_> = WebhookEventType::ALL.iter().map(|e| e.as_str()).collect();
        return Err(invalid(format!(
            "name at least one event: {}",
            known.join(", ")
        )));
    }
    let mut events = events.to_vec();
    events.sort();
    events.dedup();
    Ok(events
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(","))
}

fn description(text: Option<String>) -> Result<String, Error> {
    let text = text.unwrap_or_default();
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(invalid(format!(
            "a description is at most {MAX_DESCRIPTION} characters"
        )));
    }
    Ok(text)
}

/// A new signing secret: `whsec_` and the base64 of 32 random bytes (Standard Webhooks' form).
fn new_secret() -> String {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    use base64::Engine;
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .expect("the system random generator works");
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

fn at(t: chrono::NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

fn view(row: SubscriptionRow, namespace: &NamespaceName) -> Result<WebhookSubscription, Error> {
    Ok(WebhookSubscription {
        events: row
            .events
            .split(',')
            .filter_map(|e| e.parse().ok())
            .collect(),
        model: (!row.model.is_empty())
            .then(|| row.model.parse())
            .transpose()?,
        namespace: namespace.clone(),
        id: row.id,
        url: row.url,
        description: row.description,
        enabled: row.enabled,
        disabled_reason: row.disabled_reason,
        consecutive_failures: row.consecutive_failures,
        created_at: at(row.created_at),
        created_by: row.created_by,
    })
}

fn namespace_id(conn: &mut DbConnection, ns: &NamespaceName) -> Result<String, Error> {
    Ok(namespaces::find(conn, ns.as_str())?
        .ok_or_else(|| Error::not_found(format!("namespace {ns}")))?
        .id)
}

fn find(
    conn: &mut DbConnection,
    ns: &NamespaceName,
    id: &str,
) -> Result<(String, SubscriptionRow), Error> {
    let namespace_id = namespace_id(conn, ns)?;
    let row = webhooks::subscription(conn, &namespace_id, id)?
        .ok_or_else(|| Error::not_found(format!("webhook {id} in {ns}")))?;
    Ok((namespace_id, row))
}

impl WebhookService {
    pub fn new(db: Database, settings: WebhookSettings) -> Self {
        Self { db, settings }
    }

    pub async fn create(
        &self,
        ns: NamespaceName,
        new: NewWebhook,
        actor: Actor,
    ) -> Result<CreatedWebhook, Error> {
        let events = events_text(&new.events)?;
        let description = description(new.description)?;
        let url = target::check_url(&new.url, self.settings.allow_private_targets).await?;
        let model = new.model.map(|m| m.to_string()).unwrap_or_default();
        let secret = new_secret();
        let shown = secret.clone();
        let subscription = self
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let namespace_id = namespace_id(conn, &ns)?;
                    let at = now();
                    let row = SubscriptionRow {
                        id: new_id(),
                        namespace_id,
                        model,
                        url: url.to_string(),
                        events,
                        description,
                        secret,
                        enabled: true,
                        disabled_reason: None,
                        consecutive_failures: 0,
                        created_at: at,
                        created_by: actor.name.clone(),
                        updated_at: at,
                    };
                    webhooks::insert_subscription(conn, &row)?;
                    audit::record(
                        conn,
                        &actor,
                        "webhook.create",
                        &format!("{ns}/webhooks/{}", row.id),
                        json!({ "url": row.url, "events": row.events, "model": row.model }),
                    )?;
                    view(row, &ns)
                })
            })
            .await?;
        Ok(CreatedWebhook {
            subscription,
            secret: shown,
        })
    }

    pub async fn list(&self, ns: NamespaceName) -> Result<WebhookSubscriptions, Error> {
        self.db
            .read(move |conn| {
                let namespace_id = namespace_id(conn, &ns)?;
                let subscriptions = webhooks::subscriptions(conn, &namespace_id)?
                    .into_iter()
                    .map(|row| view(row, &ns))
                    .collect::<Result<_, _>>()?;
                Ok(WebhookSubscriptions {
                    namespace: ns,
                    subscriptions,
                })
            })
            .await
    }

    pub async fn get(&self, ns: NamespaceName, id: String) -> Result<WebhookSubscription, Error> {
        self.db
            .read(move |conn| view(find(conn, &ns, &id)?.1, &ns))
            .await
    }

    pub async fn update(
        &self,
        ns: NamespaceName,
        id: String,
        update: WebhookUpdate,
        actor: Actor,
    ) -> Result<WebhookSubscription, Error> {
        let url = match &update.url {
            Some(url) => Some(
                target::check_url(url, self.settings.allow_private_targets)
                    .await?
                    .to_string(),
            ),
            None => None,
        };
        let events = update.events.as_deref().map(events_text).transpose()?;
        let new_description = update
            .description
            .map(|d| description(Some(d)))
            .transpose()?;
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let (_, mut row) = find(conn, &ns, &id)?;
                    if let Some(url) = url {
                        row.url = url;
                    }
                    if let Some(events) = events {
                        row.events = events;
                    }
                    if let Some(text) = new_description {
                        row.description = text;
                    }
                    match update.enabled {
                        Some(true) => {
                            row.enabled = true;
                            row.disabled_reason = None;
                            row.consecutive_failures = 0;
                        }
                        Some(false) => {
                            row.enabled = false;
                            row.disabled_reason = Some(format!("paused by {}", actor.name));
                        }
                        None => {}
                    }
                    webhooks::update_subscription(conn, &row)?;
                    audit::record(
                        conn,
                        &actor,
                        "webhook.update",
                        &format!("{ns}/webhooks/{id}"),
                        json!({ "url": row.url, "events": row.events, "enabled": row.enabled }),
                    )?;
                    view(row, &ns)
                })
            })
            .await
    }

    pub async fn delete(&self, ns: NamespaceName, id: String, actor: Actor) -> Result<(), Error> {
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let (_, row) = find(conn, &ns, &id)?;
                    webhooks::delete_subscription(conn, &row.id)?;
                    audit::record(
                        conn,
                        &actor,
                        "webhook.delete",
                        &format!("{ns}/webhooks/{id}"),
                        json!({ "url": row.url }),
                    )?;
                    Ok(())
                })
            })
            .await
    }

    /// The subscription's deliveries, newest first, each with its tries.
    pub async fn deliveries(
        &self,
        ns: NamespaceName,
        id: String,
        limit: Option<i64>,
    ) -> Result<WebhookDeliveries, Error> {
        let limit = limit.unwrap_or(50).clamp(1, MAX_LISTED);
        self.db
            .read(move |conn| {
                let (_, subscription) = find(conn, &ns, &id)?;
                let rows = webhooks::deliveries(conn, &subscription.id, limit)?;
                let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                let mut attempts = webhooks::attempts(conn, &ids)?;
                let deliveries = rows
                    .into_iter()
                    .map(|row| {
                        let mine: Vec<AttemptRow> = attempts
                            .extract_if(.., |a| a.delivery_id == row.id)
                            .collect();
                        delivery_view(row, mine)
                    })
                    .collect::<Result<_, _>>()?;
                Ok(WebhookDeliveries { deliveries })
            })
            .await
    }

    /// Sends a delivery again, now, under its event id (a receiver that lost it, or one that was down for
    /// longer than the day of retries).
    pub async fn redeliver(
        &self,
        ns: NamespaceName,
        id: String,
        delivery: String,
        actor: Actor,
    ) -> Result<WebhookDelivery, Error> {
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let (_, subscription) = find(conn, &ns, &id)?;
                    let found = webhooks::delivery(conn, &subscription.id, &delivery)?
                        .ok_or_else(|| Error::not_found(format!("delivery {delivery}")))?;
                    if !webhooks::redeliver(conn, &found.id)? {
                        return Err(Error::conflict(
                            ErrorCode::DeliveryInProgress,
                            "this delivery is being sent right now; ask again once its try ends",
                        ));
                    }
                    audit::record(
                        conn,
                        &actor,
                        "webhook.redeliver",
                        &format!("{ns}/webhooks/{id}"),
                        json!({ "delivery": found.id, "event": found.event_id }),
                    )?;
                    let row = webhooks::delivery(conn, &subscription.id, &delivery)?
                        .ok_or_else(|| Error::not_found(format!("delivery {delivery}")))?;
                    let attempts = webhooks::attempts(conn, std::slice::from_ref(&row.id))?;
                    delivery_view(row, attempts)
                })
            })
            .await
    }
}

fn delivery_view(row: DeliveryRow, attempts: Vec<AttemptRow>) -> Result<WebhookDelivery, Error> {
    let state = match row.state.as_str() {
        webhooks::PENDING => WebhookDeliveryState::Pending,
        webhooks::DELIVERED => WebhookDeliveryState::Delivered,
        _ => WebhookDeliveryState::Failed,
    };
    Ok(WebhookDelivery {
        payload: serde_json::from_str(&row.payload)?,
        next_attempt_at: (state == WebhookDeliveryState::Pending).then(|| at(row.next_attempt_at)),
        id: row.id,
        event_id: row.event_id,
        event_type: row.event_type,
        subject: row.subject,
        state,
        attempts: row.attempts,
        created_at: at(row.created_at),
        finished_at: row.finished_at.map(at),
        log: attempts
            .into_iter()
            .map(|a| WebhookAttempt {
                attempt: a.attempt,
                at: at(a.at),
                status: a.status,
                latency_ms: a.latency_ms,
                response: a.response,
                error: a.error,
            })
            .collect(),
    })
}

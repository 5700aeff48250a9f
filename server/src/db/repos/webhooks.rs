//! Webhook subscriptions and the outbox of their deliveries. Events are written by [`record_event`] in the
//! transaction that made them; the deliverer claims due rows under a short lease, one subject's rows in
//! order, and records each attempt.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{webhook_attempts, webhook_deliveries, webhook_subscriptions};
use crate::db::{DbConnection, new_id, now};

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_subscriptions)]
pub struct SubscriptionRow {
    pub id: String,
    pub namespace_id: String,
    /// A model's name, or '' for the whole namespace.
    pub model: String,
    pub url: String,
    /// Event type names, comma-separated.
    pub events: String,
    pub description: String,
    pub secret: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i32,
    pub created_at: NaiveDateTime,
    pub created_by: String,
    pub updated_at: NaiveDateTime,
}

impl SubscriptionRow {
    pub fn hears(&self, event_type: &str) -> bool {
        self.events.split(',').any(|e| e == event_type)
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries)]
pub struct DeliveryRow {
    pub id: String,
    pub subscription_id: String,
    pub event_id: String,
    pub event_type: String,
    pub subject: String,
    pub payload: String,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    pub seq: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_attempts)]
pub struct AttemptRow {
    pub delivery_id: String,
    pub attempt: i32,
    pub at: NaiveDateTime,
    pub status: Option<i32>,
    pub latency_ms: i64,
    pub response: Option<String>,
    pub error: Option<String>,
}

/// An event, as its transaction records it.
pub struct Event<'a> {
    pub event_type: &'static str,
    pub namespace_id: &'a str,
    pub namespace: &'a str,
    pub model: &'a str,
    /// What the event says, beside its type and time.
    pub data: serde_json::Value,
}

/// Puts the event in the outbox of every enabled subscription that hears it: one row each, all under one
/// event id. Returns how many.
pub fn record_event(conn: &mut DbConnection, event: &Event<'_>) -> QueryResult<usize> {
    let subscriptions: Vec<SubscriptionRow> = webhook_subscriptions::table
        .filter(webhook_subscriptions::namespace_id.eq(event.namespace_id))
        .filter(
            webhook_subscriptions::model
                .eq("")
                .or(webhook_subscriptions::model.eq(event.model)),
        )
        .filter(webhook_subscriptions::enabled.eq(true))
        .select(SubscriptionRow::as_select())
        .load(conn)?;
    let hearing: Vec<_> = subscriptions
        .into_iter()
        .filter(|s| s.hears(event.event_type))
        .collect();
    if hearing.is_empty() {
        return Ok(0);
    }
    let subject = format!("{}/{}", event.namespace, event.model);
    if let DbConnection::Postgresql(_) = conn {
        // One subject's events get their sequence numbers in commit order: this lock, held to the end
        // of the transaction, makes the next event of the subject wait for this one's commit. (SQLite
        // has one writer at a time already.)
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind::<diesel::sql_types::Text, _>(&subject)
            .execute(conn)?;
    }
    let at = now();
    let event_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let payload = serde_json::json!({
        "type": event.event_type,
        "timestamp": at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": event.data,
    })
    .to_string();
    for subscription in &hearing {
        diesel::insert_into(webhook_deliveries::table)
            .values((
                webhook_deliveries::id.eq(new_id()),
                webhook_deliveries::subscription_id.eq(&subscription.id),
                webhook_deliveries::event_id.eq(&event_id),
                webhook_deliveries::event_type.eq(event.event_type),
                webhook_deliveries::subject.eq(&subject),
                webhook_deliveries::payload.eq(&payload),
                webhook_deliveries::state.eq(PENDING),
                webhook_deliveries::attempts.eq(0),
                webhook_deliveries::next_attempt_at.eq(at),
                webhook_deliveries::created_at.eq(at),
            ))
            .execute(conn)?;
    }
    Ok(hearing.len())
}

pub fn insert_subscription(conn: &mut DbConnection, row: &SubscriptionRow) -> QueryResult<()> {
    diesel::insert_into(webhook_subscriptions::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn subscriptions(
    conn: &mut DbConnection,
    namespace_id: &str,
) -> QueryResult<Vec<SubscriptionRow>> {
    webhook_subscriptions::table
        .filter(webhook_subscriptions::namespace_id.eq(namespace_id))
        .order((webhook_subscriptions::created_at, webhook_subscriptions::id))
        .select(SubscriptionRow::as_select())
        .load(conn)
}

/// A namespace's subscription by id (another namespace's is not found).
pub fn subscription(
    conn: &mut DbConnection,
    namespace_id: &str,
    id: &str,
) -> QueryResult<Option<SubscriptionRow>> {
    webhook_subscriptions::table
        .filter(webhook_subscriptions::id.eq(id))
        .filter(webhook_subscriptions::namespace_id.eq(namespace_id))
        .select(SubscriptionRow::as_select())
        .first(conn)
        .optional()
}

pub fn update_subscription(conn: &mut DbConnection, row: &SubscriptionRow) -> QueryResult<()> {
    diesel::update(webhook_subscriptions::table.find(&row.id))
        .set((
            webhook_subscriptions::url.eq(&row.url),
            webhook_subscriptions::events.eq(&row.events),
            webhook_subscriptions::description.eq(&row.description),
            webhook_subscriptions::enabled.eq(row.enabled),
            webhook_subscriptions::disabled_reason.eq(&row.disabled_reason),
            webhook_subscriptions::consecutive_failures.eq(row.consecutive_failures),
            webhook_subscriptions::updated_at.eq(now()),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn delete_subscription(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    // Attempts go with their deliveries, and deliveries with their subscription (ON DELETE CASCADE);
    // SQLite cascades only with foreign keys on, which kiln's connections always have.
    diesel::delete(webhook_subscriptions::table.find(id))
        .execute(conn)
        .map(|_| ())
}

/// Deliveries due at `at` that may go now: pending, not held by a live lease, their subscription enabled,
/// and no earlier pending delivery of the same subscription and subject (one subject's events go in
/// order, a retry holding back what came after it).
pub fn due(
    conn: &mut DbConnection,
    at: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<DeliveryRow>> {
    let earlier = diesel::alias!(webhook_deliveries as earlier);
    webhook_deliveries::table
        .inner_join(webhook_subscriptions::table)
        .filter(webhook_subscriptions::enabled.eq(true))
        .filter(webhook_deliveries::state.eq(PENDING))
        .filter(webhook_deliveries::next_attempt_at.le(at))
        .filter(
            webhook_deliveries::lease_expires_at
                .is_null()
                .or(webhook_deliveries::lease_expires_at.lt(at)),
        )
        .filter(diesel::dsl::not(diesel::dsl::exists(
            earlier
                .filter(
                    earlier
                        .field(webhook_deliveries::subscription_id)
                        .eq(webhook_deliveries::subscription_id),
                )
                .filter(
                    earlier
                        .field(webhook_deliveries::subject)
                        .eq(webhook_deliveries::subject),
                )
                .filter(earlier.field(webhook_deliveries::state).eq(PENDING))
                .filter(
                    earlier
                        .field(webhook_deliveries::seq)
                        .lt(webhook_deliveries::seq),
                ),
        )))
        .order(webhook_deliveries::seq)
        .limit(limit)
        .select(DeliveryRow::as_select())
        .load(conn)
}

/// Takes a due delivery for `owner` until `until`: one conditional update, so two replicas never send the
/// same try. False when someone else took it first.
pub fn claim(
    conn: &mut DbConnection,
    row: &DeliveryRow,
    owner: &str,
    at: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<bool> {
    // The row as `due` read it: a replica that tried it meanwhile moved its attempts and next try.
    let taken = diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq(&row.id))
            .filter(webhook_deliveries::state.eq(PENDING))
            .filter(webhook_deliveries::attempts.eq(row.attempts))
            .filter(webhook_deliveries::next_attempt_at.le(at))
            .filter(
                webhook_deliveries::lease_expires_at
                    .is_null()
                    .or(webhook_deliveries::lease_expires_at.lt(at)),
            ),
    )
    .set((
        webhook_deliveries::lease_owner.eq(owner),
        webhook_deliveries::lease_expires_at.eq(until),
    ))
    .execute(conn)?;
    Ok(taken == 1)
}

/// Records a try of a delivery `owner` holds, and where it goes next: `next` None ends it in `state`.
/// False (nothing written) when the lease was lost meanwhile.
pub fn finish_attempt(
    conn: &mut DbConnection,
    delivery: &DeliveryRow,
    owner: &str,
    attempt: &AttemptRow,
    next: Result<NaiveDateTime, &'static str>,
) -> QueryResult<bool> {
    let held = webhook_deliveries::table
        .filter(webhook_deliveries::id.eq(&delivery.id))
        .filter(webhook_deliveries::lease_owner.eq(owner))
        .filter(webhook_deliveries::state.eq(PENDING));
    let (state, next_at, finished) = match next {
        Ok(at) => (PENDING, at, None),
        Err(state) => (state, attempt.at, Some(attempt.at)),
    };
    let updated = diesel::update(held)
        .set((
            webhook_deliveries::state.eq(state),
            webhook_deliveries::attempts.eq(attempt.attempt),
            webhook_deliveries::next_attempt_at.eq(next_at),
            webhook_deliveries::finished_at.eq(finished),
            webhook_deliveries::lease_owner.eq(None::<String>),
            webhook_deliveries::lease_expires_at.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    if updated == 0 {
        return Ok(false);
    }
    diesel::insert_into(webhook_attempts::table)
        .values(attempt)
        .execute(conn)?;
    Ok(true)
}

/// Counts a try's outcome on its subscription: a success resets the failures, a failure adds one.
/// Returns the subscription as it now is.
pub fn count_outcome(
    conn: &mut DbConnection,
    subscription_id: &str,
    succeeded: bool,
) -> QueryResult<SubscriptionRow> {
    let target = webhook_subscriptions::table.find(subscription_id);
    if succeeded {
        diesel::update(target)
            .set(webhook_subscriptions::consecutive_failures.eq(0))
            .execute(conn)?;
    } else {
        diesel::update(target)
            .set(
                webhook_subscriptions::consecutive_failures
                    .eq(webhook_subscriptions::consecutive_failures + 1),
            )
            .execute(conn)?;
    }
    target.select(SubscriptionRow::as_select()).first(conn)
}

/// A subscription's deliveries, newest first.
pub fn deliveries(
    conn: &mut DbConnection,
    subscription_id: &str,
    limit: i64,
) -> QueryResult<Vec<DeliveryRow>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::subscription_id.eq(subscription_id))
        .order(webhook_deliveries::seq.desc())
        .limit(limit)
        .select(DeliveryRow::as_select())
        .load(conn)
}

/// The tries of these deliveries, newest first.
pub fn attempts(conn: &mut DbConnection, delivery_ids: &[String]) -> QueryResult<Vec<AttemptRow>> {
    webhook_attempts::table
        .filter(webhook_attempts::delivery_id.eq_any(delivery_ids))
        .order((
            webhook_attempts::delivery_id,
            webhook_attempts::attempt.desc(),
        ))
        .select(AttemptRow::as_select())
        .load(conn)
}

pub fn delivery(
    conn: &mut DbConnection,
    subscription_id: &str,
    id: &str,
) -> QueryResult<Option<DeliveryRow>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::id.eq(id))
        .filter(webhook_deliveries::subscription_id.eq(subscription_id))
        .select(DeliveryRow::as_select())
        .first(conn)
        .optional()
}

/// Sends a delivery again from now (a retry the schedule has not come to yet, or one that was given up
/// or delivered): pending, due now, with a new day of retries; its earlier tries stay in the log. False
/// while a replica is sending it (its claim is live).
pub fn redeliver(conn: &mut DbConnection, id: &str) -> QueryResult<bool> {
    let at = now();
    let updated = diesel::update(
        webhook_deliveries::table.find(id).filter(
            webhook_deliveries::lease_expires_at
                .is_null()
                .or(webhook_deliveries::lease_expires_at.lt(at)),
        ),
    )
    .set((
        webhook_deliveries::state.eq(PENDING),
        webhook_deliveries::next_attempt_at.eq(at),
        webhook_deliveries::created_at.eq(at),
        webhook_deliveries::finished_at.eq(None::<NaiveDateTime>),
        webhook_deliveries::lease_owner.eq(None::<String>),
        webhook_deliveries::lease_expires_at.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Records an event about a version: its namespace, model and version name go in the data beside
/// `extra`'s fields. Nothing when the version is gone.
pub fn record_version_event(
    conn: &mut DbConnection,
    event_type: &'static str,
    version_id: &str,
    extra: serde_json::Value,
) -> QueryResult<usize> {
    use crate::db::schema::{models, namespaces, versions};
    let found: Option<(String, String, String, String)> = versions::table
        .inner_join(models::table.inner_join(namespaces::table))
        .filter(versions::id.eq(version_id))
        .select((
            namespaces::id,
            namespaces::name,
            models::name,
            versions::version,
        ))
        .first(conn)
        .optional()?;
    let Some((namespace_id, namespace, model, version)) = found else {
        return Ok(0);
    };
    let mut data = serde_json::json!({
        "namespace": namespace,
        "model": model,
        "version": version,
    });
    if let (Some(data), serde_json::Value::Object(extra)) = (data.as_object_mut(), extra) {
        data.extend(extra);
    }
    record_event(
        conn,
        &Event {
            event_type,
            namespace_id: &namespace_id,
            namespace: &namespace,
            model: &model,
            data,
        },
    )
}

pub fn subscription_by_id(
    conn: &mut DbConnection,
    id: &str,
) -> QueryResult<Option<SubscriptionRow>> {
    webhook_subscriptions::table
        .find(id)
        .select(SubscriptionRow::as_select())
        .first(conn)
        .optional()
}

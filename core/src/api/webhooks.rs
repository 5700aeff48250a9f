//! Webhooks: subscriptions to a namespace's (or one model's) events, and the log of their deliveries.
//! Deliveries follow Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ModelName, NamespaceName};

/// What a subscription hears. On the wire (the subscription's `events`, a delivery's `type`) each is its
/// dotted name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub enum WebhookEventType {
    /// A version passed its scan: stored, safe, servable, its manifest published.
    #[serde(rename = "version.ready")]
    VersionReady,
    /// A version's scan refused it (or failed for good).
    #[serde(rename = "version.failed")]
    VersionFailed,
    /// A version was deleted (by a user or a retention rule).
    #[serde(rename = "version.deleted")]
    VersionDeleted,
    /// An alias was set or moved to a version.
    #[serde(rename = "alias.moved")]
    AliasMoved,
    /// A signed deployment manifest was issued (a version's or an alias's; re-issues too).
    #[serde(rename = "manifest.published")]
    ManifestPublished,
    /// A runner reported a benchmark of one of a version's variants.
    #[serde(rename = "benchmark.completed")]
    BenchmarkCompleted,
}

impl WebhookEventType {
    pub const ALL: [WebhookEventType; 6] = [
        Self::VersionReady,
        Self::VersionFailed,
        Self::VersionDeleted,
        Self::AliasMoved,
        Self::ManifestPublished,
        Self::BenchmarkCompleted,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::VersionReady => "version.ready",
            Self::VersionFailed => "version.failed",
            Self::VersionDeleted => "version.deleted",
            Self::AliasMoved => "alias.moved",
            Self::ManifestPublished => "manifest.published",
            Self::BenchmarkCompleted => "benchmark.completed",
        }
    }
}

impl std::fmt::Display for WebhookEventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for WebhookEventType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<_> = Self::ALL.iter().map(|e| e.as_str()).collect();
                format!("{s:?} is not an event; events are {}", known.join(", "))
            })
    }
}

/// Subscribe a URL to a namespace's events, or to one model's.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where deliveries are POSTed: `https://` (or `http://`), a public address unless the server allows
    /// private ones (KILN_WEBHOOK_ALLOW_PRIVATE_TARGETS).
    #[schema(format = "uri", min_length = 1, max_length = 2048)]
    pub url: String,
    /// The events to send; at least one.
    #[schema(min_items = 1)]
    pub events: Vec<WebhookEventType>,
    /// Only this model's events (by name), instead of the whole namespace's.
    #[serde(default)]
    pub model: Option<ModelName>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Change a subscription; what is absent stays.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookUpdate {
    #[serde(default)]
    #[schema(format = "uri", min_length = 1, max_length = 2048)]
    pub url: Option<String>,
    #[serde(default)]
    #[schema(min_items = 1)]
    pub events: Option<Vec<WebhookEventType>>,
    #[serde(default)]
    pub description: Option<String>,
    /// `true` turns a subscription kiln disabled (after failing deliveries) on again, its failure count
    /// reset; `false` pauses it (events meanwhile are not kept for it).
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookSubscription {
    pub id: String,
    pub namespace: NamespaceName,
    /// The one model heard; absent for the whole namespace.
    pub model: Option<ModelName>,
    pub url: String,
    pub events: Vec<WebhookEventType>,
    pub description: String,
    pub enabled: bool,
    /// Why kiln disabled it (deliveries kept failing), or who paused it.
    pub disabled_reason: Option<String>,
    /// Delivery attempts that failed since the last success.
    pub consecutive_failures: i32,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// A new subscription with its signing secret, shown only in this answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedWebhook {
    pub subscription: WebhookSubscription,
    /// `whsec_` and the base64 of the HMAC-SHA256 key that signs every delivery (Standard Webhooks).
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookSubscriptions {
    pub namespace: NamespaceName,
    pub subscriptions: Vec<WebhookSubscription>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookDeliveryState {
    /// Waiting for its first try or its next retry.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// A day of retries failed; kiln stopped (it can be sent again on demand).
    Failed,
}

/// One try: the receiver's status (absent when none came), how long it took, the start of its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookAttempt {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub status: Option<i32>,
    pub latency_ms: i64,
    /// The first kilobyte of the receiver's body.
    pub response: Option<String>,
    /// Why no answer counted (refused address, timeout, connection error, redirect).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookDelivery {
    pub id: String,
    /// The `webhook-id` header: the same on every try and redelivery, so a receiver can drop repeats.
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The model the event is about (`namespace/model`): deliveries of one subject arrive in order.
    pub subject: String,
    pub state: WebhookDeliveryState,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    /// When the next try is due (pending deliveries).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The body sent.
    pub payload: serde_json::Value,
    /// Newest first.
    pub log: Vec<WebhookAttempt>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookDeliveries {
    /// Newest first.
    pub deliveries: Vec<WebhookDelivery>,
}

//! Told by the registry instead of waiting for the next poll: `POST /kiln/webhook` takes kiln's webhook
//! deliveries (Standard Webhooks, signed with the subscription's `whsec_` secret). One that verifies and
//! concerns the model served (`alias.moved`, `manifest.published`) makes the follower poll the manifest at
//! once. The delivery only says when to look: what is served still comes from a manifest that verifies
//! against the registry's keys, so the secret cannot make this process serve anything, only poll sooner.

use std::sync::Arc;

use bytes::Bytes;
use kiln_core::ModelRef;
use kiln_core::api::WebhookEventType;
use kiln_core::webhook_signature;
use serde::Deserialize;
use tokio::sync::Notify;

use super::ServeError;

/// The largest delivery read: kiln's event bodies are a few hundred bytes.
pub const MAX_DELIVERY_BYTES: usize = 64 * 1024;

/// What a verified delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// About the model served: the manifest is polled now.
    PollNow,
    /// Another model's, or an event that cannot move what is served.
    Ignored,
}

impl Heard {
    pub fn as_str(self) -> &'static str {
        match self {
            Heard::PollNow => "poll_now",
            Heard::Ignored => "ignored",
        }
    }
}

pub struct Listener {
    secret: String,
    subject: ModelRef,
    poll_now: Arc<Notify>,
}

/// A delivery's Standard Webhooks headers, read before its body.
pub struct Delivery {
    id: String,
    timestamp: String,
    signatures: String,
}

impl Delivery {
    /// `header` reads a request header by name.
    pub fn from_headers(header: impl Fn(&str) -> Option<String>) -> Result<Self, ServeError> {
        let required = |name: &str| {
            header(name).ok_or_else(|| {
                ServeError::Unauthorized(format!(
                    "a webhook delivery carries a {name} header (Standard Webhooks)"
                ))
            })
        };
        Ok(Self {
            id: required("webhook-id")?,
            timestamp: required("webhook-timestamp")?,
            signatures: required("webhook-signature")?,
        })
    }
}

/// The fields of kiln's events that say what moved; absent ones read as empty.
#[derive(Deserialize, Default)]
struct Event {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    data: EventData,
}

#[derive(Deserialize, Default)]
struct EventData {
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    alias: Option<String>,
}

impl Listener {
    /// Fails when the secret cannot sign (not `whsec_` base64), so a mistyped one is refused at start.
    /// Surrounding whitespace (a secret file's newline) is not part of it.
    pub fn new(secret: &str, subject: ModelRef, poll_now: Arc<Notify>) -> Result<Self, String> {
        let secret = secret.trim().to_owned();
        webhook_signature::check_secret(&secret).map_err(|e| format!("--webhook-secret: {e}"))?;
        Ok(Self {
            secret,
            subject,
            poll_now,
        })
    }

    /// Verifies one delivery and wakes the follower when it concerns what is served. A verified body this
    /// receiver cannot read is `Ignored`, not an error: a 4xx would make the registry retry it and, after
    /// enough failures, disable the subscription with its `alias.moved` deliveries.
    pub fn hear(&self, delivery: &Delivery, body: &Bytes, now: i64) -> Result<Heard, ServeError> {
        webhook_signature::verify(
            &self.secret,
            &delivery.id,
            &delivery.timestamp,
            &delivery.signatures,
            body,
            now,
        )
        .map_err(|e| ServeError::Unauthorized(e.to_string()))?;
        let event: Event = serde_json::from_slice(body).unwrap_or_default();
        if self.concerns_what_is_served(&event) {
            self.poll_now.notify_one();
            Ok(Heard::PollNow)
        } else {
            Ok(Heard::Ignored)
        }
    }

    /// An alias's move or new manifest for an alias served; a new manifest of a version served.
    fn concerns_what_is_served(&self, event: &Event) -> bool {
        let data = &event.data;
        let model = data.namespace == self.subject.namespace.as_str()
            && (self.subject.model.as_ref()).is_some_and(|m| m.as_str() == data.model);
        let moved = event.kind == WebhookEventType::AliasMoved.as_str();
        let published = event.kind == WebhookEventType::ManifestPublished.as_str();
        model
            && match (&self.subject.alias, &self.subject.version) {
                (Some(alias), _) => {
                    (moved || published) && data.alias.as_deref() == Some(alias.as_str())
                }
                (None, Some(version)) => {
                    published
                        && data.alias.is_none()
                        && data.version.as_deref() == Some(version.as_str())
                }
                (None, None) => false,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const NOW: i64 = 1_800_000_000;

    fn listener(serving: &str) -> (Listener, Arc<Notify>) {
        let poll_now = Arc::new(Notify::new());
        let subject: ModelRef = serving.parse().unwrap();
        let listener = Listener::new(SECRET, subject, poll_now.clone()).unwrap();
        (listener, poll_now)
    }

    fn headers(body: &str, signed_at: i64) -> impl Fn(&str) -> Option<String> + use<> {
        let signature =
            webhook_signature::sign(SECRET, "evt_1", signed_at, body.as_bytes()).unwrap();
        move |name: &str| match name {
            "webhook-id" => Some("evt_1".to_owned()),
            "webhook-timestamp" => Some(signed_at.to_string()),
            "webhook-signature" => Some(signature.clone()),
            _ => None,
        }
    }

    /// What `listener` makes of `body`, signed now.
    fn heard(listener: &Listener, body: &str) -> Result<Heard, ServeError> {
        let delivery = Delivery::from_headers(headers(body, NOW - 3)).unwrap();
        listener.hear(&delivery, &Bytes::copy_from_slice(body.as_bytes()), NOW)
    }

    fn event(kind: &str, model: &str, alias: Option<&str>, version: &str) -> String {
        serde_json::json!({
            "type": kind,
            "timestamp": "2027-01-15T08:00:00Z",
            "data": {"namespace": "acme", "model": model, "version": version, "alias": alias, "sequence": 4},
        })
        .to_string()
    }

    async fn woken(poll_now: &Notify) -> bool {
        tokio::time::timeout(std::time::Duration::from_millis(50), poll_now.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_verified_move_of_the_served_alias_polls_now() {
        let (listener, poll_now) = listener("acme/bert@production");
        for kind in ["alias.moved", "manifest.published"] {
            let body = event(kind, "bert", Some("production"), "2");
            assert_eq!(heard(&listener, &body).unwrap(), Heard::PollNow, "{kind}");
            assert!(woken(&poll_now).await, "{kind}");
        }
    }

    #[tokio::test]
    async fn other_models_aliases_and_events_and_unreadable_bodies_are_ignored() {
        let (listener, poll_now) = listener("acme/bert@production");
        for body in [
            event("alias.moved", "gpt2", Some("production"), "2"),
            event("alias.moved", "bert", Some("staging"), "2"),
            event("manifest.published", "bert", None, "2"),
            event("version.ready", "bert", None, "2"),
            r#"{"type": "alias.moved"}"#.to_owned(),
            "not json".to_owned(),
        ] {
            assert_eq!(heard(&listener, &body).unwrap(), Heard::Ignored, "{body}");
        }
        assert!(!woken(&poll_now).await);
    }

    #[tokio::test]
    async fn a_fixed_version_hears_its_own_manifests_only() {
        let (listener, poll_now) = listener("acme/bert:2");
        let own = event("manifest.published", "bert", None, "2");
        assert_eq!(heard(&listener, &own).unwrap(), Heard::PollNow);
        assert!(woken(&poll_now).await);
        for body in [
            event("manifest.published", "bert", None, "3"),
            event("manifest.published", "bert", Some("production"), "2"),
            event("alias.moved", "bert", Some("production"), "2"),
        ] {
            assert_eq!(heard(&listener, &body).unwrap(), Heard::Ignored, "{body}");
        }
        assert!(!woken(&poll_now).await);
    }

    #[tokio::test]
    async fn unsigned_altered_or_old_deliveries_are_refused_and_poll_nothing() {
        let (listener, poll_now) = listener("acme/bert@production");
        let body = event("alias.moved", "bert", Some("production"), "2");
        let signed = Delivery::from_headers(headers(&body, NOW)).unwrap();
        let altered = Bytes::from(body.replace("\"2\"", "\"3\""));
        assert!(matches!(
            listener.hear(&signed, &altered, NOW),
            Err(ServeError::Unauthorized(_))
        ));
        let old = Delivery::from_headers(headers(&body, NOW - 3_600)).unwrap();
        assert!(matches!(
            listener.hear(&old, &Bytes::from(body.clone()), NOW),
            Err(ServeError::Unauthorized(_))
        ));
        assert!(matches!(
            Delivery::from_headers(|_: &str| None),
            Err(ServeError::Unauthorized(m)) if m.contains("webhook-id")
        ));
        assert!(!woken(&poll_now).await);
    }

    #[test]
    fn a_secret_file_newline_is_no_part_of_it_and_a_secret_that_cannot_sign_is_refused() {
        let subject: ModelRef = "acme/bert@production".parse().unwrap();
        let notify = Arc::new(Notify::new());
        assert!(Listener::new(&format!("{SECRET}\n"), subject.clone(), notify.clone()).is_ok());
        let refused = Listener::new("whsec_***", subject, notify);
        assert!(refused.err().unwrap().contains("--webhook-secret"));
    }
}

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

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    namespace: String,
    model: String,
}

impl Listener {
    /// Fails when the secret cannot sign (not `whsec_` base64), so a mistyped one is refused at start.
    pub fn new(secret: String, subject: ModelRef, poll_now: Arc<Notify>) -> Result<Self, String> {
        webhook_signature::check_secret(&secret).map_err(|e| format!("--webhook-secret: {e}"))?;
        Ok(Self {
            secret,
            subject,
            poll_now,
        })
    }

    /// Verifies one delivery (`headers`: `webhook-id`, `webhook-timestamp`, `webhook-signature`) and wakes
    /// the follower when it concerns the model served.
    pub fn hear(
        &self,
        header: impl Fn(&str) -> Option<String>,
        body: &Bytes,
        now: i64,
    ) -> Result<Heard, ServeError> {
        let required = |name: &str| {
            header(name).ok_or_else(|| {
                ServeError::Unauthorized(format!(
                    "a webhook delivery carries a {name} header (Standard Webhooks)"
                ))
            })
        };
        let (id, timestamp, signatures) = (
            required("webhook-id")?,
            required("webhook-timestamp")?,
            required("webhook-signature")?,
        );
        webhook_signature::verify(&self.secret, &id, &timestamp, &signatures, body, now)
            .map_err(|e| ServeError::Unauthorized(e.to_string()))?;
        let event: Event = serde_json::from_slice(body).map_err(|e| {
            ServeError::BadRequest(format!("the delivery is not a kiln webhook event: {e}"))
        })?;
        let moves_what_is_served = [
            WebhookEventType::AliasMoved,
            WebhookEventType::ManifestPublished,
        ]
        .iter()
        .any(|kind| kind.as_str() == event.kind);
        let ours = event.data.namespace == self.subject.namespace.as_str()
            && self
                .subject
                .model
                .as_ref()
                .is_some_and(|m| m.as_str() == event.data.model);
        if moves_what_is_served && ours {
            self.poll_now.notify_one();
            Ok(Heard::PollNow)
        } else {
            Ok(Heard::Ignored)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const NOW: i64 = 1_800_000_000;

    fn listener() -> (Listener, Arc<Notify>) {
        let poll_now = Arc::new(Notify::new());
        let subject: ModelRef = "acme/bert@production".parse().unwrap();
        (
            Listener::new(SECRET.to_owned(), subject, poll_now.clone()).unwrap(),
            poll_now,
        )
    }

    fn delivery(body: &str, signed_at: i64) -> (impl Fn(&str) -> Option<String> + use<>, Bytes) {
        let signature =
            webhook_signature::sign(SECRET, "evt_1", signed_at, body.as_bytes()).unwrap();
        let header = move |name: &str| match name {
            "webhook-id" => Some("evt_1".to_owned()),
            "webhook-timestamp" => Some(signed_at.to_string()),
            "webhook-signature" => Some(signature.clone()),
            _ => None,
        };
        (header, Bytes::copy_from_slice(body.as_bytes()))
    }

    fn event(kind: &str, model: &str) -> String {
        format!(
            r#"{{"type":"{kind}","timestamp":"2027-01-15T08:00:00Z","data":{{"namespace":"acme","model":"{model}","version":"2","alias":"production"}}}}"#
        )
    }

    async fn woken(poll_now: &Notify) -> bool {
        tokio::time::timeout(std::time::Duration::from_millis(50), poll_now.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_verified_move_of_the_served_model_polls_now() {
        let (listener, poll_now) = listener();
        for kind in ["alias.moved", "manifest.published"] {
            let (header, body) = delivery(&event(kind, "bert"), NOW - 3);
            assert_eq!(listener.hear(header, &body, NOW).unwrap(), Heard::PollNow);
            assert!(woken(&poll_now).await, "{kind}");
        }
    }

    #[tokio::test]
    async fn other_models_and_other_events_are_ignored() {
        let (listener, poll_now) = listener();
        for (kind, model) in [("alias.moved", "gpt2"), ("version.ready", "bert")] {
            let (header, body) = delivery(&event(kind, model), NOW);
            assert_eq!(listener.hear(header, &body, NOW).unwrap(), Heard::Ignored);
        }
        assert!(!woken(&poll_now).await);
    }

    #[tokio::test]
    async fn unsigned_altered_or_old_deliveries_are_refused_and_poll_nothing() {
        let (listener, poll_now) = listener();
        let (header, _) = delivery(&event("alias.moved", "bert"), NOW);
        let altered = Bytes::from(event("alias.moved", "bert").replace("\"2\"", "\"3\""));
        assert!(matches!(
            listener.hear(&header, &altered, NOW),
            Err(ServeError::Unauthorized(_))
        ));
        let (header, body) = delivery(&event("alias.moved", "bert"), NOW - 3_600);
        assert!(matches!(
            listener.hear(header, &body, NOW),
            Err(ServeError::Unauthorized(_))
        ));
        let (_, body) = delivery(&event("alias.moved", "bert"), NOW);
        assert!(matches!(
            listener.hear(|_: &str| None, &body, NOW),
            Err(ServeError::Unauthorized(m)) if m.contains("webhook-id")
        ));
        assert!(!woken(&poll_now).await);
    }

    #[test]
    fn a_secret_that_cannot_sign_is_refused_at_start() {
        let subject: ModelRef = "acme/bert@production".parse().unwrap();
        let refused = Listener::new("whsec_***".to_owned(), subject, Arc::new(Notify::new()));
        assert!(refused.err().unwrap().contains("--webhook-secret"));
    }
}

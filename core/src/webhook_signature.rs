//! Standard Webhooks signatures, made by the server and checked by receivers such as `kiln-runner serve`:
//! `v1,` and the base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed with the base64-decoded part
//! of the subscription's `whsec_` secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// How far a delivery's `webhook-timestamp` may be from the receiver's clock, as the specification's
/// reference libraries allow: an older delivery is refused as a possible replay.
pub const TOLERANCE_SECS: i64 = 5 * 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSignatureError {
    #[error("the webhook secret is not a whsec_ secret (base64 after the prefix): {0}")]
    BadSecret(String),
    #[error("the webhook delivery does not verify: {0}")]
    Refused(String),
}

fn keyed(secret: &str) -> Result<HmacSha256, WebhookSignatureError> {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|e| WebhookSignatureError::BadSecret(e.to_string()))?;
    if key.is_empty() {
        return Err(WebhookSignatureError::BadSecret("it is empty".to_owned()));
    }
    HmacSha256::new_from_slice(&key).map_err(|e| WebhookSignatureError::BadSecret(e.to_string()))
}

fn signed(mut mac: HmacSha256, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    mac
}

/// Checks that `secret` can sign, so that a receiver refuses a mistyped one when it starts rather than
/// every delivery later.
pub fn check_secret(secret: &str) -> Result<(), WebhookSignatureError> {
    keyed(secret).map(drop)
}

/// The `webhook-signature` header's value for one delivery attempt.
pub fn sign(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, WebhookSignatureError> {
    let mac = signed(keyed(secret)?, id, timestamp, body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Checks a delivery's headers and body: its timestamp within [`TOLERANCE_SECS`] of `now` (Unix
/// seconds), and one of the space-separated signatures of `signatures` a `v1` signature of it by `secret`
/// (compared in constant time). A sender rotating its secret may send several.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), WebhookSignatureError> {
    let refused = |why: String| Err(WebhookSignatureError::Refused(why));
    let mac = keyed(secret)?;
    let Ok(at) = timestamp.trim().parse::<i64>() else {
        return refused(format!(
            "webhook-timestamp {timestamp:?} is not Unix seconds"
        ));
    };
    let skew = now.saturating_sub(at);
    if skew.saturating_abs() > TOLERANCE_SECS {
        return refused(format!(
            "webhook-timestamp is {skew} s from this receiver's clock, more than {TOLERANCE_SECS} s: an old (replayed) delivery, or a clock that is off"
        ));
    }
    let mac = signed(mac, id, at, body);
    let matches = signatures
        .split_ascii_whitespace()
        .filter_map(|one| one.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|candidate| mac.clone().verify_slice(&candidate).is_ok());
    if matches {
        Ok(())
    } else {
        refused("no v1 signature in webhook-signature is this delivery's, signed with the configured secret".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const AT: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    /// The example of the Standard Webhooks specification (its reference libraries' test vector).
    #[test]
    fn matches_the_specifications_example() {
        assert_eq!(sign(SECRET, ID, AT, BODY).unwrap(), SIGNATURE);
        assert_eq!(
            verify(SECRET, ID, "1614265330", SIGNATURE, BODY, AT + 10),
            Ok(())
        );
    }

    #[test]
    fn one_matching_signature_among_several_is_enough() {
        let header = format!("v1,bm90IGl0 v2,whatever {SIGNATURE}");
        assert_eq!(verify(SECRET, ID, "1614265330", &header, BODY, AT), Ok(()));
    }

    #[test]
    fn anything_changed_is_refused() {
        let refused = |id: &str, timestamp: &str, signature: &str, body: &[u8], now: i64| {
            matches!(
                verify(SECRET, id, timestamp, signature, body, now),
                Err(WebhookSignatureError::Refused(_))
            )
        };
        assert!(refused(
            ID,
            "1614265330",
            SIGNATURE,
            br#"{"test": 2432232315}"#,
            AT
        ));
        assert!(refused("msg_other", "1614265330", SIGNATURE, BODY, AT));
        assert!(refused(ID, "1614265331", SIGNATURE, BODY, AT));
        assert!(refused(ID, "1614265330", "", BODY, AT));
        assert!(refused(ID, "1614265330", "v1,not base64!", BODY, AT));
        assert!(refused(ID, "yesterday", SIGNATURE, BODY, AT));
        // Signed right, but too old or too far ahead.
        assert!(refused(
            ID,
            "1614265330",
            SIGNATURE,
            BODY,
            AT + TOLERANCE_SECS + 1
        ));
        assert!(refused(
            ID,
            "1614265330",
            SIGNATURE,
            BODY,
            AT - TOLERANCE_SECS - 1
        ));
        let other = "whsec_".to_owned() + &STANDARD.encode(b"another secret");
        assert!(matches!(
            verify(&other, ID, "1614265330", SIGNATURE, BODY, AT),
            Err(WebhookSignatureError::Refused(_))
        ));
    }

    #[test]
    fn a_secret_that_is_not_base64_is_named_as_such() {
        for bad in ["whsec_***", "whsec_", ""] {
            assert!(
                matches!(check_secret(bad), Err(WebhookSignatureError::BadSecret(_))),
                "{bad:?}"
            );
        }
        assert_eq!(check_secret(SECRET), Ok(()));
    }
}

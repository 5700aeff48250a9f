//! Standard Webhooks signatures: `v1,` and the base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed
//! with the base64-decoded part of the subscription's `whsec_` secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};

use crate::error::Error;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The `webhook-signature` header's value for one delivery attempt.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Result<String, Error> {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|e| Error::Internal(format!("a webhook secret is not base64: {e}")))?;
    let mut mac = HmacSha256::new_from_slice(&key)
        .map_err(|e| Error::Internal(format!("a webhook secret cannot key HMAC: {e}")))?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification (its reference libraries' test vector).
    #[test]
    fn matches_the_specifications_example() {
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}

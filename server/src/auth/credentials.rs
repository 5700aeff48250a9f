//! API tokens (random, shown once, stored as a sha256) and passwords (argon2id).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use kiln_core::Sha256Digest;

/// Every generated API token starts with this, so people and secret scanners can recognise one.
pub const TOKEN_PREFIX: &str = "kiln_";

pub use kiln_core::credential::is_jwt;

/// A new API token: `kiln_` and 64 hex characters (256 random bits).
pub fn generate_token() -> String {
    format!("{TOKEN_PREFIX}{}", random_secret())
}

/// 64 hex characters of 256 random bits: session ids, CSRF tokens.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random generator works");
    hex::encode(bytes)
}

/// What is stored for a token. 256-bit random tokens need no slow hash; a leaked table reveals nothing usable.
pub fn hash_token(token: &str) -> String {
    Sha256Digest::of(token.as_bytes()).hex()
}

pub fn hash_password(password: &str) -> String {
    let mut salt_bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt_bytes)
        .expect("the system random generator works");
    let salt = SaltString::encode_b64(&salt_bytes).expect("16 bytes make a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashes any password")
        .to_string()
}

pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (generate_token(), generate_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert!(!hash_token(&a).contains(&a[TOKEN_PREFIX.len()..]));
    }

    #[test]
    fn jwts_are_told_from_api_tokens_by_shape() {
        assert!(is_jwt("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln"));
        assert!(
            is_jwt("a.b."),
            "an unsigned JWT is still a JWT (and is refused as one)"
        );
        assert!(!is_jwt(&generate_token()));
        assert!(!is_jwt("any operator-chosen secret of 32+ characters"));
        assert!(!is_jwt("a.b.c.d"));
    }

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let stored = hash_password("correct horse");
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &stored));
        assert!(!verify_password("wrong", &stored));
        assert!(!verify_password("correct horse", "not a hash"));
    }
}

//! Short-lived access tokens: EdDSA (Ed25519) JWTs with a `kid`, signed by keys kept in the database so
//! every replica verifies what any replica issued. The algorithm is pinned and `aud`, `iss`, `exp`, `nbf`
//! are checked (RFC 8725). Rotation adds a key and retires the old one, which still verifies for a grace
//! period longer than any token's lifetime.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::db::records::JwtKeyRow;
use crate::db::repos::jwt_keys;
use crate::db::{Database, now};
use crate::error::Error;

pub const ISSUER: &str = "kiln";
pub const AUDIENCE: &str = "kiln-api";
/// Access tokens live this long; API tokens and passwords are exchanged for a new one.
pub const LIFETIME: Duration = Duration::from_secs(15 * 60);
/// A retired key keeps verifying this long (more than LIFETIME, so no issued token breaks).
const RETIRED_GRACE: Duration = Duration::from_secs(60 * 60);
/// How stale the cached key set may get before it is read again (rotation on another replica).
const REFRESH: Duration = Duration::from_secs(60);
/// Unknown key ids force a reload at most this often, so forged tokens cannot hammer the database.
const FORCED_REFRESH: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// Space-separated scopes, e.g. `read write:acme`.
    pub scope: String,
    /// The API token this access token was exchanged for, so revoking it ends the access token too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
}

struct LoadedKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

struct KeySet {
    keys: Vec<LoadedKey>,
    loaded_at: Instant,
}

pub struct JwtKeys {
    db: Database,
    cache: RwLock<KeySet>,
}

fn load(row: &JwtKeyRow) -> Result<LoadedKey, Error> {
    Ok(LoadedKey {
        kid: row.kid.clone(),
        encoding: EncodingKey::from_ed_der(&row.private_key),
        decoding: DecodingKey::from_ed_der(&row.public_key),
    })
}

fn new_key_row() -> Result<JwtKeyRow, Error> {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| Error::Internal("generating an Ed25519 key failed".into()))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| Error::Internal("reading the new Ed25519 key failed".into()))?;
    Ok(JwtKeyRow {
        kid: crate::db::new_id(),
        private_key: pkcs8.as_ref().to_vec(),
        public_key: pair.public_key().as_ref().to_vec(),
        created_at: now(),
        retired_at: None,
    })
}

impl JwtKeys {
    /// Loads the keys, creating the first one on a fresh database.
    pub async fn open(db: Database) -> Result<Self, Error> {
        let keys = Self::read(&db).await?;
        let keys = if keys.is_empty() {
            let row = new_key_row()?;
            db.run(move |conn| Ok(jwt_keys::rotate(conn, &row)?))
                .await?;
            Self::read(&db).await?
        } else {
            keys
        };
        Ok(Self {
            db,
            cache: RwLock::new(KeySet {
                keys,
                loaded_at: Instant::now(),
            }),
        })
    }

    async fn read(db: &Database) -> Result<Vec<LoadedKey>, Error> {
        let since = now() - chrono::Duration::from_std(RETIRED_GRACE).expect("grace fits");
        let rows = db
            .run(move |conn| Ok(jwt_keys::usable(conn, since)?))
            .await?;
        rows.iter().map(load).collect()
    }

    async fn refresh_if_stale(&self, force: bool) -> Result<(), Error> {
        let age = self
            .cache
            .read()
            .expect("key cache lock")
            .loaded_at
            .elapsed();
        if age > REFRESH || (force && age > FORCED_REFRESH) {
            let keys = Self::read(&self.db).await?;
            *self.cache.write().expect("key cache lock") = KeySet {
                keys,
                loaded_at: Instant::now(),
            };
        }
        Ok(())
    }

    /// Adds a new signing key; the previous one keeps verifying for the grace period.
    pub async fn rotate(&self) -> Result<String, Error> {
        let row = new_key_row()?;
        let kid = row.kid.clone();
        self.db
            .run(move |conn| Ok(jwt_keys::rotate(conn, &row)?))
            .await?;
        let keys = Self::read(&self.db).await?;
        *self.cache.write().expect("key cache lock") = KeySet {
            keys,
            loaded_at: Instant::now(),
        };
        Ok(kid)
    }

    /// Issues an access token for `user_id`.
    pub async fn issue(
        &self,
        user_id: &str,
        scope: String,
        token_id: Option<String>,
    ) -> Result<String, Error> {
        self.refresh_if_stale(false).await?;
        let cache = self.cache.read().expect("key cache lock");
        let key = cache
            .keys
            .first()
            .ok_or_else(|| Error::Internal("no JWT signing key".into()))?;
        let issued = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: user_id.to_owned(),
            iat: issued,
            nbf: issued,
            exp: issued + LIFETIME.as_secs() as i64,
            scope,
            tid: token_id,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(Error::from)
    }

    /// Verifies signature, algorithm, `kid`, `iss`, `aud`, `exp` and `nbf`; returns the claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, Error> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Error::unauthorized("malformed access token"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(Error::unauthorized(
                "access tokens must be signed with EdDSA",
            ));
        }
        let kid = header
            .kid
            .ok_or_else(|| Error::unauthorized("access token has no key id"))?;
        let known = |keys: &KeySet| keys.keys.iter().any(|k| k.kid == kid);
        if !known(&self.cache.read().expect("key cache lock")) {
            // Perhaps another replica rotated: read the keys again before refusing.
            self.refresh_if_stale(true).await?;
        }
        let cache = self.cache.read().expect("key cache lock");
        let key = cache
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| Error::unauthorized("access token signed by an unknown key"))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| Error::unauthorized(format!("access token refused: {e}")))
    }
}

//! Web UI sessions: a sign-in with a password or an API token becomes a random session id that the
//! browser keeps in an HttpOnly cookie. The server keeps only the id's SHA-256, with the user, the scopes
//! signed in with, a CSRF token for the session's forms, and an expiry; signing out deletes the row.

use std::time::Duration;

use kiln_core::Sha256Digest;
use kiln_core::api::TokenRequest;

use super::accounts::{AccountService, SignedIn};
use crate::auth::Principal;
use crate::auth::credentials::random_secret;
use crate::db::records::UiSessionRow;
use crate::db::repos::sessions;
use crate::db::{Database, now};
use crate::error::Error;

/// How long a session lasts from its sign-in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

#[derive(Clone)]
pub struct SessionService {
    db: Database,
    accounts: AccountService,
}

/// A new session: the id for the cookie (shown nowhere else) and its CSRF token.
pub struct StartedSession {
    pub id: String,
    pub csrf_token: String,
}

/// The caller of a page, as its session cookie says.
#[derive(Clone)]
pub struct Session {
    pub principal: Principal,
    pub csrf_token: String,
}

fn id_hash(id: &str) -> String {
    Sha256Digest::of(id.as_bytes()).hex()
}

impl SessionService {
    pub fn new(db: Database, accounts: AccountService) -> Self {
        Self { db, accounts }
    }

    /// Signs in with a password or an API token. Runner tokens cannot sign in to the UI.
    pub async fn start(&self, credentials: TokenRequest) -> Result<StartedSession, Error> {
        let SignedIn {
            user_id,
            scope,
            token_id,
        } = self.accounts.verify_credentials(credentials).await?;
        if scope.split(' ').any(|s| s == "runner") {
            return Err(Error::forbidden(
                "a runner token cannot sign in to the web UI; use a user's token or password",
            ));
        }
        let id = random_secret();
        let at = now();
        let row = UiSessionRow {
            id_hash: id_hash(&id),
            user_id,
            scopes: scope,
            token_id,
            csrf_token: random_secret(),
            created_at: at,
            expires_at: at + chrono::Duration::from_std(SESSION_LIFETIME).expect("fits"),
        };
        let csrf_token = row.csrf_token.clone();
        self.db
            .run(move |conn| {
                sessions::delete_expired(conn, at)?;
                sessions::insert(conn, &row)?;
                Ok(())
            })
            .await?;
        Ok(StartedSession { id, csrf_token })
    }

    /// The session a cookie names, while it lasts and its user (and token) still may sign in.
    pub async fn resume(&self, id: &str) -> Result<Option<Session>, Error> {
        let hash = id_hash(id);
        let row = self
            .db
            .run(move |conn| Ok(sessions::live(conn, &hash, now())?))
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        match self
            .accounts
            .principal_of_user(row.user_id, row.scopes, row.token_id)
            .await
        {
            Ok(principal) => Ok(Some(Session {
                principal,
                csrf_token: row.csrf_token,
            })),
            Err(Error::Unauthorized { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Signs the session out: its cookie names nothing from now on.
    pub async fn end(&self, id: &str) -> Result<(), Error> {
        let hash = id_hash(id);
        self.db
            .run(move |conn| Ok(sessions::delete(conn, &hash)?))
            .await
    }
}

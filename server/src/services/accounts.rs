//! Users, API tokens, sign-in, and turning a presented credential into a [`Principal`].

use kiln_core::ErrorCode;

mod tokens;
use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::Connection;
use kiln_core::api::{AccessToken, Me, Member, Role, TokenRequest, UserInfo};
use kiln_core::{NamespaceName, Sha256Digest};
use serde_json::json;

use crate::auth::credentials::{
    generate_token, hash_password, hash_token, is_jwt, verify_password,
};
use crate::auth::jwt::{JwtKeys, LIFETIME};
use crate::auth::principal::Membership;
use crate::auth::{Level, Principal, Scope, User};
use crate::db::records::{ApiTokenRow, UserRow};
use crate::db::repos::audit::{self, Actor};
use crate::db::repos::{api_tokens, memberships, namespaces, users};
use crate::db::{Database, DbConnection, new_id, now};
use crate::error::Error;
use crate::services::paging::{PageRequest, Paged};

const BOOTSTRAP_USER: &str = "admin";

fn at_utc(at: NaiveDateTime) -> chrono::DateTime<chrono::Utc> {
    at.and_utc()
}

fn parse_scopes(text: &str) -> Vec<Scope> {
    text.split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The monotonic instant of a wall-clock time (now when it is past).
fn instant_of(at: NaiveDateTime) -> std::time::Instant {
    let left = (at - now()).to_std().unwrap_or_default();
    std::time::Instant::now() + left
}

/// Why a token no longer works, if it does not.
fn token_problem(row: &ApiTokenRow) -> Option<&'static str> {
    if row.revoked_at.is_some() {
        Some("this token was revoked")
    } else if row.expires_at.is_some_and(|at| at <= now()) {
        Some("this token has expired")
    } else {
        None
    }
}

/// A verified credential: whose, which scopes (space-separated, as in an access token), and the API
/// token's id when it was one.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user_id: String,
    pub scope: String,
    pub token_id: Option<String>,
}

#[derive(Clone)]
pub struct AccountService {
    db: Database,
    jwt: Arc<JwtKeys>,
    /// The embedded runner child's door, when this server runs one.
    embedded_runner: Option<EmbeddedRunnerDoor>,
    cache: crate::services::read_cache::ReadCache,
}

/// The embedded runner's credential is good only on its own loopback listener.
#[derive(Clone, Copy)]
struct EmbeddedRunnerDoor {
    secret: Sha256Digest,
    listener: std::net::SocketAddr,
}

/// What the embedded runner acts as: the same "token" at every start, so that a restarted server's runner
/// takes its registration back.
pub const EMBEDDED_RUNNER_IDENTITY: &str = "embedded";

impl AccountService {
    /// `embedded_runner`: the embedded runner's credential and the listener it is good on.
    pub fn new(
        db: Database,
        jwt: Arc<JwtKeys>,
        embedded_runner: Option<(String, std::net::SocketAddr)>,
        cache: crate::services::read_cache::ReadCache,
    ) -> Self {
        Self {
            db,
            jwt,
            cache,
            embedded_runner: embedded_runner.map(|(secret, listener)| EmbeddedRunnerDoor {
                secret: Sha256Digest::of(secret.as_bytes()),
                listener,
            }),
        }
    }

    /// Starts signing access tokens with a new key and records who did; returns the new key's id.
    pub async fn rotate_jwt_key(&self, actor: Actor) -> Result<String, Error> {
        let kid = self.jwt.rotate().await?;
        let target = kid.clone();
        self.db
            .run(move |conn| {
                Ok(audit::record(
                    conn,
                    &actor,
                    "jwt_key.rotate",
                    &target,
                    json!({}),
                )?)
            })
            .await?;
        Ok(kid)
    }

    /// On a registry without users: creates the admin (with personal namespace `admin`) and an API token,
    /// `preset` when given (KILN_BOOTSTRAP_TOKEN). Returns the token to show once; None when users exist.
    pub async fn bootstrap(&self, preset: Option<String>) -> Result<Option<String>, Error> {
        let token = preset.unwrap_or_else(generate_token);
        let stored = token.clone();
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    if users::count(conn)? > 0 {
                        return Ok(None);
                    }
                    let user = new_user(conn, BOOTSTRAP_USER, None, true)?;
                    insert_token(conn, &user.id, "bootstrap", "admin", None, &stored)?;
                    let actor = Actor {
                        name: "kiln-server".into(),
                        user_id: None,
                        remote_addr: None,
                    };
                    audit::record(
                        conn,
                        &actor,
                        "user.create",
                        BOOTSTRAP_USER,
                        json!({ "admin": true, "bootstrap": true }),
                    )?;
                    Ok(Some(stored))
                })
            })
            .await
    }

    /// The principal a bearer credential stands for: an API token (`kiln_...`) or an access token (JWT).
    /// Runs on every API request, so everything it reads is read in one trip to the database, and the
    /// token's last use is written at most once a minute.
    /// `arrived_on` is the local address of the listener the request came in on (None where there is no
    /// request, e.g. a token exchange, which never accepts the embedded runner's credential).
    pub async fn principal_for(
        &self,
        credential: &str,
        arrived_on: Option<std::net::SocketAddr>,
    ) -> Result<Principal, Error> {
        // Digests are compared, not the secrets, so the comparison's time says nothing about the secret.
        if self.embedded_runner.is_some_and(|door| {
            arrived_on == Some(door.listener)
                && door.secret == Sha256Digest::of(credential.as_bytes())
        }) {
            return Ok(Principal::Runner {
                token_id: EMBEDDED_RUNNER_IDENTITY.to_owned(),
                owner: EMBEDDED_RUNNER_IDENTITY.to_owned(),
            });
        }
        let digest = Sha256Digest::of(credential.as_bytes());
        if let Some(principal) = self.cache.principal(&digest) {
            return Ok(principal);
        }
        let start = self.cache.start();
        let (principal, expires) = self.identify(credential).await?;
        self.cache
            .keep_principal(start, digest, &principal, expires);
        Ok(principal)
    }

    /// Who a credential is, from the database, and when the credential itself stops being good.
    async fn identify(
        &self,
        credential: &str,
    ) -> Result<(Principal, Option<std::time::Instant>), Error> {
        if !is_jwt(credential) {
            let hash = hash_token(credential);
            return self
                .db
                .run(move |conn| {
                    let row = api_tokens::find_by_hash(conn, &hash)?
                        .ok_or_else(|| Error::unauthorized("unknown API token"))?;
                    if let Some(problem) = token_problem(&row) {
                        return Err(Error::unauthorized(problem));
                    }
                    let at = now();
                    if row
                        .last_used_at
                        .is_none_or(|used| used < at - chrono::Duration::minutes(1))
                    {
                        api_tokens::touch(conn, &row.id, at)?;
                    }
                    let principal =
                        principal_of(conn, &row.user_id, parse_scopes(&row.scopes), Some(row.id))?;
                    Ok((principal, row.expires_at.map(instant_of)))
                })
                .await;
        }
        let claims = self.jwt.verify(credential).await?;
        let expires =
            chrono::DateTime::from_timestamp(claims.exp, 0).map(|at| instant_of(at.naive_utc()));
        let principal = self
            .db
            .read(move |conn| {
                if let Some(token_id) = &claims.tid {
                    let row = api_tokens::find(conn, token_id)?.ok_or_else(|| {
                        Error::unauthorized("the API token behind this access token is gone")
                    })?;
                    if let Some(problem) = token_problem(&row) {
                        return Err(Error::unauthorized(format!(
                            "{problem} (the access token was issued for it)"
                        )));
                    }
                }
                principal_of(conn, &claims.sub, parse_scopes(&claims.scope), claims.tid)
            })
            .await?;
        Ok((principal, expires))
    }

    /// Exchanges an API token or a user name and password for a short-lived access token.
    pub async fn exchange(&self, request: TokenRequest) -> Result<AccessToken, Error> {
        let SignedIn {
            user_id,
            scope,
            token_id,
        } = self.verify_credentials(request).await?;
        Ok(AccessToken {
            access_token: self.jwt.issue(&user_id, scope, token_id).await?,
            token_type: "Bearer".to_owned(),
            expires_in: LIFETIME.as_secs(),
        })
    }

    /// Who an API token, or a user name and password, signs in as, and with which scopes.
    pub async fn verify_credentials(&self, request: TokenRequest) -> Result<SignedIn, Error> {
        let (user_id, scope, token_id) = match request {
            TokenRequest {
                token: Some(token),
                username: None,
                password: None,
            } => {
                if is_jwt(&token) {
                    return Err(Error::unauthorized(
                        "send an API token, not an access token",
                    ));
                }
                match self.principal_for(&token, None).await? {
                    Principal::User(user) => {
                        let scope = user
                            .scopes
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(" ");
                        (user.id.clone(), scope, user.token_id.clone())
                    }
                    Principal::Runner { token_id, .. } => {
                        let row_id = token_id.clone();
                        let row = self
                            .db
                            .run(move |conn| Ok(api_tokens::find(conn, &row_id)?))
                            .await?;
                        let user_id = row.map(|r| r.user_id).unwrap_or_default();
                        (user_id, "runner".to_owned(), Some(token_id))
                    }
                    Principal::Anonymous => return Err(Error::unauthorized("unknown API token")),
                }
            }
            TokenRequest {
                token: None,
                username: Some(name),
                password: Some(password),
            } => {
                let user = self
                    .db
                    .run(move |conn| Ok(users::find_by_name(conn, &name)?))
                    .await?;
                // Verify against a real hash even for unknown users, so timing does not reveal who exists.
                static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
                let stored = match user.as_ref().and_then(|u| u.password_hash.clone()) {
                    Some(hash) => hash,
                    None => DECOY
                        .get_or_init(|| hash_password("kiln decoy password"))
                        .clone(),
                };
                let ok = tokio::task::spawn_blocking(move || verify_password(&password, &stored))
                    .await?;
                match user {
                    Some(user) if ok && user.password_hash.is_some() => {
                        (user.id, "admin".to_owned(), None)
                    }
                    _ => return Err(Error::unauthorized("wrong user name or password")),
                }
            }
            _ => {
                return Err(Error::bad_request(
                    ErrorCode::InvalidCredentialsRequest,
                    "send either {\"token\"} or {\"username\", \"password\"}",
                ));
            }
        };
        Ok(SignedIn {
            user_id,
            scope,
            token_id,
        })
    }

    /// The principal of a user signed in earlier with these scopes (and API token, when one was used),
    /// as the user and the token are now: a revoked or expired token signs nobody in.
    pub async fn principal_of_user(
        &self,
        user_id: String,
        scope: String,
        token_id: Option<String>,
    ) -> Result<Principal, Error> {
        self.db
            .run(move |conn| {
                if let Some(id) = &token_id {
                    let row = api_tokens::find(conn, id)?.ok_or_else(|| {
                        Error::unauthorized("the API token signed in with is gone")
                    })?;
                    if let Some(problem) = token_problem(&row) {
                        return Err(Error::unauthorized(problem));
                    }
                }
                principal_of(conn, &user_id, parse_scopes(&scope), token_id)
            })
            .await
    }

    pub fn me(&self, user: &User) -> Me {
        Me {
            name: user.name.clone(),
            admin: user.is_admin,
            scopes: user.scopes.iter().map(ToString::to_string).collect(),
            memberships: user
                .memberships
                .iter()
                .filter_map(|m| {
                    Some(Member {
                        name: m.namespace.clone(),
                        role: Role::parse(m.role.role())?,
                    })
                })
                .collect(),
        }
    }

    pub async fn create_user(
        &self,
        name: NamespaceName,
        password: Option<String>,
        admin: bool,
        actor: Actor,
    ) -> Result<UserInfo, Error> {
        // The upper bound keeps a sign-in from making the server hash megabytes.
        if let Some(password) = &password
            && !(12..=1024).contains(&password.chars().count())
        {
            return Err(Error::bad_request(
                ErrorCode::WeakPassword,
                "a password needs 12 to 1024 characters",
            ));
        }
        let hash = match password {
            Some(password) => {
                Some(tokio::task::spawn_blocking(move || hash_password(&password)).await?)
            }
            None => None,
        };
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    if users::find_by_name(conn, name.as_str())?.is_some()
                        || namespaces::find(conn, name.as_str())?.is_some()
                    {
                        return Err(Error::conflict(
                            ErrorCode::NameTaken,
                            format!("{name} is already a user or a namespace"),
                        ));
                    }
                    let row = new_user(conn, name.as_str(), hash.as_deref(), admin)?;
                    audit::record(
                        conn,
                        &actor,
                        "user.create",
                        name.as_str(),
                        json!({ "admin": admin }),
                    )?;
                    Ok(UserInfo {
                        name: row.name,
                        admin: row.is_admin,
                        created_at: at_utc(row.created_at),
                    })
                })
            })
            .await
    }

    /// Users by name, a page at a time.
    pub async fn list_users(&self, page: PageRequest) -> Result<Paged<UserInfo>, Error> {
        let after = page.after::<1>()?.map(|[name]| name);
        let limit = page.limit;
        let rows = self
            .db
            .run(move |conn| Ok(users::list(conn, after.as_deref(), limit)?))
            .await?;
        Ok(
            Paged::new(rows, &page, |r| vec![r.name.clone()]).map(|r| UserInfo {
                name: r.name,
                admin: r.is_admin,
                created_at: at_utc(r.created_at),
            }),
        )
    }
}

/// The principal for a user, with their namespace roles, as a credential with `scopes` presents them.
fn principal_of(
    conn: &mut DbConnection,
    user_id: &str,
    scopes: Vec<Scope>,
    token_id: Option<String>,
) -> Result<Principal, Error> {
    let user = users::find(conn, user_id)?
        .ok_or_else(|| Error::unauthorized("the user of this credential no longer exists"))?;
    if scopes.contains(&Scope::Runner) {
        return Ok(Principal::Runner {
            token_id: token_id.unwrap_or_default(),
            owner: user.name,
        });
    }
    let roles = memberships::of_user(conn, user_id)?;
    Ok(Principal::User(Arc::new(User {
        id: user.id,
        name: user.name,
        is_admin: user.is_admin,
        scopes,
        token_id,
        memberships: roles
            .into_iter()
            .filter_map(|(namespace_id, namespace, role)| {
                Level::from_role(&role).map(|role| Membership {
                    namespace_id,
                    namespace,
                    role,
                })
            })
            .collect(),
    })))
}

fn new_user(
    conn: &mut DbConnection,
    name: &str,
    password_hash: Option<&str>,
    admin: bool,
) -> Result<UserRow, Error> {
    let row = UserRow {
        id: new_id(),
        name: name.to_owned(),
        password_hash: password_hash.map(str::to_owned),
        is_admin: admin,
        created_at: now(),
    };
    users::insert(conn, &row)?;
    namespaces::create(conn, name, "user", Some(&row.id))?;
    Ok(row)
}

fn insert_token(
    conn: &mut DbConnection,
    user_id: &str,
    name: &str,
    scopes: &str,
    expires_at: Option<NaiveDateTime>,
    token: &str,
) -> Result<ApiTokenRow, Error> {
    let row = ApiTokenRow {
        id: new_id(),
        user_id: user_id.to_owned(),
        name: name.to_owned(),
        token_hash: hash_token(token),
        scopes: scopes.to_owned(),
        expires_at,
        revoked_at: None,
        last_used_at: None,
        created_at: now(),
    };
    api_tokens::insert(conn, &row)?;
    Ok(row)
}

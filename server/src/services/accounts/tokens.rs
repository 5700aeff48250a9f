//! API tokens: creating, listing and revoking them, and the short-lived registry tokens the OCI endpoint
//! hands out on their strength.

use diesel::Connection;
use kiln_core::api::{AccessToken, CreateTokenRequest, CreatedToken, TokenInfo};
use kiln_core::{ErrorCode, NamespaceName};
use serde_json::json;

use super::{AccountService, at_utc, insert_token, parse_scopes};
use crate::auth::credentials::generate_token;
use crate::auth::jwt::LIFETIME;
use crate::auth::{Level, Scope, User};
use crate::db::now;
use crate::db::records::ApiTokenRow;
use crate::db::repos::api_tokens;
use crate::db::repos::audit::{self, Actor};
use crate::error::Error;
use crate::services::paging::{PageRequest, Paged, parse_time_key, time_key};

/// More scopes than any real token needs; keeps a token row small.
const MAX_SCOPES: usize = 16;

fn token_info(row: &ApiTokenRow, user: &str) -> TokenInfo {
    TokenInfo {
        id: row.id.clone(),
        name: row.name.clone(),
        user: user.to_owned(),
        scopes: row.scopes.split_whitespace().map(str::to_owned).collect(),
        created_at: at_utc(row.created_at),
        expires_at: row.expires_at.map(at_utc),
        last_used_at: row.last_used_at.map(at_utc),
        revoked_at: row.revoked_at.map(at_utc),
    }
}

impl AccountService {
    /// A short-lived access token for an OCI client: on each asked namespace, read, or write where the
    /// client asked to push or delete, as far as the user's credential itself covers it (never more
    /// than the credential: a token scoped to one namespace gets nothing for another, even for its
    /// public models, which need no token; a read-only credential asking to push gets read). None when
    /// nothing is left.
    pub async fn registry_token(
        &self,
        user: &User,
        asked: &[(NamespaceName, bool)],
    ) -> Result<Option<AccessToken>, Error> {
        let mut granted: Vec<String> = Vec::new();
        for (ns, write) in asked {
            let levels: &[Level] = if *write {
                &[Level::Write, Level::Read]
            } else {
                &[Level::Read]
            };
            let covered = levels.iter().copied().find_map(|level| {
                let scope = Scope::Level {
                    level,
                    namespace: Some(ns.to_string()),
                };
                user.scopes_cover(std::slice::from_ref(&scope))
                    .then(|| scope.to_string())
            });
            granted.extend(covered);
        }
        granted.sort();
        granted.dedup();
        if granted.is_empty() {
            return Ok(None);
        }
        Ok(Some(AccessToken {
            access_token: self
                .jwt
                .issue(&user.id, granted.join(" "), user.token_id.clone())
                .await?,
            token_type: "Bearer".to_owned(),
            expires_in: LIFETIME.as_secs(),
        }))
    }

    pub async fn create_token(
        &self,
        user: &User,
        request: CreateTokenRequest,
        actor: Actor,
    ) -> Result<CreatedToken, Error> {
        let name = request.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(Error::bad_request(
                ErrorCode::InvalidTokenName,
                "a token name needs 1 to 64 characters",
            ));
        }
        if request.scopes.len() > MAX_SCOPES {
            return Err(Error::bad_request(
                ErrorCode::InvalidScope,
                format!("a token takes at most {MAX_SCOPES} scopes"),
            ));
        }
        let texts = if request.scopes.is_empty() {
            vec!["write".to_owned()]
        } else {
            request.scopes
        };
        let scopes = texts
            .iter()
            .map(|s| {
                s.parse::<Scope>()
                    .map_err(|e| Error::bad_request(ErrorCode::InvalidScope, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let runner_by_admin = scopes == [Scope::Runner] && user.is_global_admin();
        if !runner_by_admin && !user.scopes_cover(&scopes) {
            return Err(Error::forbidden(
                "a token can only create tokens within its own scopes; sign in with a broader token or a password",
            ));
        }
        if scopes.contains(&Scope::Runner) && !user.is_global_admin() {
            return Err(Error::forbidden(
                "only administrators may create runner tokens",
            ));
        }
        let expires_at = match request.expires_in_days {
            Some(days) if !(1..=kiln_core::api::MAX_TOKEN_DAYS).contains(&days) => {
                return Err(Error::bad_request(
                    ErrorCode::InvalidExpiry,
                    format!(
                        "expires_in_days must be 1 to {} (ten years); leave it out for a token that never expires",
                        kiln_core::api::MAX_TOKEN_DAYS
                    ),
                ));
            }
            Some(days) => Some(now() + chrono::Duration::days(i64::from(days))),
            None => None,
        };
        let token = generate_token();
        let (user_id, user_name, stored) = (user.id.clone(), user.name.clone(), token.clone());
        let scope_text = scopes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        let row = self
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let row =
                        insert_token(conn, &user_id, &name, &scope_text, expires_at, &stored)?;
                    audit::record(
                        conn,
                        &actor,
                        "token.create",
                        &format!("token:{}", row.id),
                        json!({ "name": name, "scopes": scope_text }),
                    )?;
                    Ok(row)
                })
            })
            .await?;
        Ok(CreatedToken {
            info: token_info(&row, &user_name),
            token,
        })
    }

    /// The user's tokens, newest first, a page at a time.
    pub async fn list_tokens(
        &self,
        user: &User,
        page: PageRequest,
    ) -> Result<Paged<TokenInfo>, Error> {
        let (id, name) = (user.id.clone(), user.name.clone());
        let after = match page.after::<2>()? {
            Some([at, id]) => Some((parse_time_key(&at)?, id)),
            None => None,
        };
        let limit = page.limit;
        let rows = self
            .db
            .run(move |conn| Ok(api_tokens::of_user(conn, &id, after, limit)?))
            .await?;
        Ok(
            Paged::new(rows, &page, |r| vec![time_key(&r.created_at), r.id.clone()])
                .map(|r| token_info(&r, &name)),
        )
    }

    /// Revokes one of the caller's tokens (an administrator may revoke anyone's).
    pub async fn revoke_token(
        &self,
        user: &User,
        token_id: String,
        actor: Actor,
    ) -> Result<(), Error> {
        let (caller, admin) = (user.id.clone(), user.is_global_admin());
        let held = user.clone();
        let caller_scopes_cover = move |scopes: &[Scope]| held.scopes_cover(scopes);
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let row = api_tokens::find(conn, &token_id)?
                        .filter(|row| admin || row.user_id == caller)
                        .ok_or_else(|| Error::not_found(format!("token {token_id}")))?;
                    if !caller_scopes_cover(&parse_scopes(&row.scopes)) {
                        return Err(Error::forbidden(
                            "a token can only revoke tokens within its own scopes",
                        ));
                    }
                    api_tokens::revoke(conn, &row.id)?;
                    audit::record(
                        conn,
                        &actor,
                        "token.revoke",
                        &format!("token:{}", row.id),
                        json!({ "name": row.name }),
                    )?;
                    Ok(())
                })
            })
            .await?;
        // This replica refuses it at once; the others within the cache's TTL.
        self.cache.forget_principals();
        Ok(())
    }
}

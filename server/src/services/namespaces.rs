//! Organisation namespaces, their members, and the audit log.

use diesel::Connection;
use kiln_core::ErrorCode;
use kiln_core::NamespaceName;
use kiln_core::api::{AuditEntry, Member, NamespaceSettings, NamespaceSummary, Role};
use serde_json::json;

use crate::db::records::{NamespaceRow, UserRow};
pub use crate::db::repos::audit::AuditFilter;
use crate::db::repos::audit::{self, Actor};
use crate::db::repos::{memberships, namespaces, users};
use crate::db::{Database, DbConnection};
use crate::error::Error;
use crate::services::paging::{PageRequest, Paged, parse_time_key, time_key};

#[derive(Clone)]
pub struct NamespaceService {
    db: Database,
    cache: crate::services::read_cache::ReadCache,
}

impl NamespaceService {
    pub fn new(db: Database, cache: crate::services::read_cache::ReadCache) -> Self {
        Self { db, cache }
    }

    /// Creates an organisation namespace; `owner` becomes its admin.
    pub async fn create(
        &self,
        name: NamespaceName,
        owner: &crate::auth::User,
        actor: Actor,
    ) -> Result<NamespaceSummary, Error> {
        let owner_id = owner.id.clone();
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    if namespaces::find(conn, name.as_str())?.is_some()
                        || users::find_by_name(conn, name.as_str())?.is_some()
                    {
                        return Err(Error::conflict(
                            ErrorCode::NameTaken,
                            format!("{name} is already a namespace or a user"),
                        ));
                    }
                    let row = namespaces::create(conn, name.as_str(), "org", Some(&owner_id))?;
                    audit::record(conn, &actor, "namespace.create", name.as_str(), json!({}))?;
                    Ok(NamespaceSummary {
                        name,
                        model_count: 0,
                        created_at: row.created_at.and_utc(),
                    })
                })
            })
            .await
            .inspect(|_| {
                self.cache.forget_models();
                self.cache.forget_principals();
            })
    }

    /// A namespace's members by name, a page at a time.
    pub async fn members(
        &self,
        namespace: NamespaceName,
        page: PageRequest,
    ) -> Result<Paged<Member>, Error> {
        let after = page.after::<1>()?.map(|[name]| name);
        let limit = page.limit;
        let rows = self
            .db
            .run(move |conn| {
                let ns = namespaces::find(conn, namespace.as_str())?
                    .ok_or_else(|| Error::not_found(format!("namespace {namespace}")))?;
                Ok(memberships::of_namespace(
                    conn,
                    &ns.id,
                    after.as_deref(),
                    limit,
                )?)
            })
            .await?;
        Paged::new(rows, &page, |(name, _)| vec![name.clone()]).try_map(|(name, role)| {
            let role = Role::parse(&role)
                .ok_or_else(|| Error::Internal(format!("member {name} has role {role:?}")))?;
            Ok(Member { name, role })
        })
    }

    pub async fn set_member(
        &self,
        namespace: NamespaceName,
        user: String,
        role: Role,
        actor: Actor,
    ) -> Result<Member, Error> {
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let (ns, member) = namespace_and_user(conn, &namespace, &user)?;
                    if ns.owner_id.as_deref() == Some(member.id.as_str()) && role != Role::Admin {
                        return Err(Error::conflict(
                            ErrorCode::OwnerRole,
                            format!("{user} owns {namespace} and stays its admin"),
                        ));
                    }
                    memberships::set(conn, &ns.id, &member.id, role.as_str())?;
                    audit::record(
                        conn,
                        &actor,
                        "member.set",
                        namespace.as_str(),
                        json!({ "user": user, "role": role.as_str() }),
                    )?;
                    Ok(Member { name: user, role })
                })
            })
            .await
            .inspect(|_| self.cache.forget_principals())
    }

    pub async fn settings(&self, namespace: NamespaceName) -> Result<NamespaceSettings, Error> {
        self.db
            .run(move |conn| {
                let ns = namespaces::find(conn, namespace.as_str())?
                    .ok_or_else(|| Error::not_found(format!("namespace {namespace}")))?;
                Ok(NamespaceSettings {
                    store_unsafe_pickles: ns.store_unsafe_pickles,
                })
            })
            .await
    }

    pub async fn set_settings(
        &self,
        namespace: NamespaceName,
        settings: NamespaceSettings,
        actor: Actor,
    ) -> Result<NamespaceSettings, Error> {
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let on = settings.store_unsafe_pickles;
                    if !namespaces::set_store_unsafe_pickles(conn, namespace.as_str(), on)? {
                        return Err(Error::not_found(format!("namespace {namespace}")));
                    }
                    audit::record(
                        conn,
                        &actor,
                        "namespace.settings",
                        namespace.as_str(),
                        json!({ "store_unsafe_pickles": on }),
                    )?;
                    Ok(settings)
                })
            })
            .await
    }

    pub async fn remove_member(
        &self,
        namespace: NamespaceName,
        user: String,
        actor: Actor,
    ) -> Result<(), Error> {
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let (ns, member) = namespace_and_user(conn, &namespace, &user)?;
                    if ns.owner_id.as_deref() == Some(member.id.as_str()) {
                        return Err(Error::conflict(
                            ErrorCode::OwnerRole,
                            format!("{user} owns {namespace} and cannot be removed"),
                        ));
                    }
                    if !memberships::remove(conn, &ns.id, &member.id)? {
                        return Err(Error::not_found(format!(
                            "{user} as a member of {namespace}"
                        )));
                    }
                    audit::record(
                        conn,
                        &actor,
                        "member.remove",
                        namespace.as_str(),
                        json!({ "user": user }),
                    )?;
                    Ok(())
                })
            })
            .await
            .inspect(|_| self.cache.forget_principals())
    }

    /// Audit entries newest first that pass `filter`, a page at a time.
    pub async fn audit(
        &self,
        filter: AuditFilter,
        page: PageRequest,
    ) -> Result<Paged<AuditEntry>, Error> {
        let after = match page.after::<2>()? {
            Some([at, id]) => Some((parse_time_key(&at)?, id)),
            None => None,
        };
        let limit = page.limit;
        let rows = self
            .db
            .run(move |conn| Ok(audit::list(conn, &filter, after, limit)?))
            .await?;
        Ok(
            Paged::new(rows, &page, |r| vec![time_key(&r.created_at), r.id.clone()]).map(|r| {
                AuditEntry {
                    at: r.created_at.and_utc(),
                    actor: r.actor,
                    action: r.action,
                    target: r.target,
                    detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::Null),
                    remote_addr: r.remote_addr,
                }
            }),
        )
    }
}

fn namespace_and_user(
    conn: &mut DbConnection,
    namespace: &NamespaceName,
    user: &str,
) -> Result<(NamespaceRow, UserRow), Error> {
    let ns = namespaces::find(conn, namespace.as_str())?
        .ok_or_else(|| Error::not_found(format!("namespace {namespace}")))?;
    let member =
        users::find_by_name(conn, user)?.ok_or_else(|| Error::not_found(format!("user {user}")))?;
    Ok((ns, member))
}

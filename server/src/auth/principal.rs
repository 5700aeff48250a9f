//! The caller of a request and the access it has in each namespace.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::db::repos::models::Visible;

/// Access levels, ordered: a writer may read, an admin may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Read,
    Write,
    Admin,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Read => "read",
            Level::Write => "write",
            Level::Admin => "admin",
        }
    }

    /// Namespace roles are stored as `reader`, `writer`, `admin`.
    pub fn from_role(role: &str) -> Option<Self> {
        match role {
            "reader" => Some(Level::Read),
            "writer" => Some(Level::Write),
            "admin" => Some(Level::Admin),
            _ => None,
        }
    }

    pub fn role(self) -> &'static str {
        match self {
            Level::Read => "reader",
            Level::Write => "writer",
            Level::Admin => "admin",
        }
    }
}

/// A token scope: `read`, `write`, `admin` (all namespaces) or `write:acme` (one namespace), or `runner`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Level {
        level: Level,
        namespace: Option<String>,
    },
    Runner,
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "runner" {
            return Ok(Scope::Runner);
        }
        let (level, namespace) = match text.split_once(':') {
            Some((level, ns)) => (level, Some(ns)),
            None => (text, None),
        };
        let level = match level {
            "read" => Level::Read,
            "write" => Level::Write,
            "admin" => Level::Admin,
            _ => {
                return Err(format!(
                    "unknown scope {text:?}: use read, write, admin (optionally :NAMESPACE) or runner"
                ));
            }
        };
        if let Some(ns) = namespace {
            ns.parse::<kiln_core::NamespaceName>()
                .map_err(|e| e.to_string())?;
        }
        Ok(Scope::Level {
            level,
            namespace: namespace.map(str::to_owned),
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Runner => f.write_str("runner"),
            Scope::Level {
                level,
                namespace: None,
            } => f.write_str(level.as_str()),
            Scope::Level {
                level,
                namespace: Some(ns),
            } => write!(f, "{}:{ns}", level.as_str()),
        }
    }
}

impl Scope {
    /// Whether a credential with this scope may hand out (or take back) `other`: never more than it has.
    pub fn covers(&self, other: &Scope) -> bool {
        match (self, other) {
            (
                Scope::Level {
                    level,
                    namespace: None,
                },
                Scope::Level { level: wanted, .. },
            ) => level >= wanted,
            (
                Scope::Level {
                    level,
                    namespace: Some(ns),
                },
                Scope::Level {
                    level: wanted,
                    namespace: Some(wanted_ns),
                },
            ) => level >= wanted && ns == wanted_ns,
            (Scope::Runner, Scope::Runner) => true,
            _ => false,
        }
    }
}

/// A namespace the user belongs to.
#[derive(Debug, Clone)]
pub struct Membership {
    pub namespace_id: String,
    pub namespace: String,
    pub role: Level,
}

/// A signed-in user, as far as this request is concerned: their roles, capped by the credential's scopes.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    pub is_admin: bool,
    pub scopes: Vec<Scope>,
    /// The API token behind this request (directly or through a JWT exchanged for it).
    pub token_id: Option<String>,
    pub memberships: Vec<Membership>,
}

impl User {
    fn scope_cap(&self, namespace: Option<&str>) -> Option<Level> {
        self.scopes
            .iter()
            .filter_map(|scope| match scope {
                Scope::Level {
                    level,
                    namespace: None,
                } => Some(*level),
                Scope::Level {
                    level,
                    namespace: Some(ns),
                } if Some(ns.as_str()) == namespace => Some(*level),
                _ => None,
            })
            .max()
    }

    /// What this request may do in a namespace: the user's role there, capped by the credential's scopes.
    pub fn level_in(&self, namespace: &str) -> Option<Level> {
        let role = if self.is_admin {
            Some(Level::Admin)
        } else {
            self.memberships
                .iter()
                .find(|m| m.namespace == namespace)
                .map(|m| m.role)
        };
        // None orders below every level, so a missing role or a missing scope means no access.
        role.min(self.scope_cap(Some(namespace)))
    }

    /// Global administration (users, audit log, creating namespaces, keys) needs an admin with an
    /// unrestricted admin scope.
    pub fn is_global_admin(&self) -> bool {
        self.is_admin && self.scope_cap(None) == Some(Level::Admin)
    }

    /// Whether this credential's scopes include everything in `scopes`.
    pub fn scopes_cover(&self, scopes: &[Scope]) -> bool {
        scopes
            .iter()
            .all(|wanted| self.scopes.iter().any(|held| held.covers(wanted)))
    }

    pub fn may_write_somewhere(&self) -> bool {
        self.is_global_admin()
            || self
                .memberships
                .iter()
                .any(|m| self.level_in(&m.namespace) >= Some(Level::Write))
    }

    pub fn visible(&self) -> Visible {
        if self.is_admin && self.scope_cap(None).is_some() {
            return Visible::All;
        }
        Visible::Some {
            namespace_ids: self
                .memberships
                .iter()
                .filter(|m| self.level_in(&m.namespace).is_some())
                .map(|m| m.namespace_id.clone())
                .collect(),
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    Anonymous,
    User(Arc<User>),
    /// A benchmark runner: may only claim and report jobs.
    Runner {
        token_id: String,
        owner: String,
    },
}

impl Principal {
    /// The name recorded in the audit log.
    pub fn audit_name(&self) -> String {
        match self {
            Principal::Anonymous => "anonymous".to_owned(),
            Principal::User(user) => user.name.clone(),
            Principal::Runner { owner, .. } => format!("runner:{owner}"),
        }
    }

    pub fn user(&self) -> Option<&User> {
        match self {
            Principal::User(user) => Some(user),
            _ => None,
        }
    }

    pub fn visible(&self) -> Visible {
        match self {
            Principal::User(user) => user.visible(),
            _ => Visible::Some {
                namespace_ids: Vec::new(),
            },
        }
    }

    /// The key for rate limiting: the credential, or the address for anonymous callers.
    pub fn rate_key(&self, remote: Option<&str>) -> String {
        match self {
            Principal::Anonymous => format!("ip:{}", remote.unwrap_or("unknown")),
            Principal::User(user) => match &user.token_id {
                Some(token) => format!("token:{token}"),
                None => format!("user:{}", user.id),
            },
            Principal::Runner { token_id, .. } => format!("token:{token_id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(is_admin: bool, scopes: &[&str], roles: &[(&str, Level)]) -> User {
        User {
            id: "u".into(),
            name: "u".into(),
            is_admin,
            scopes: scopes.iter().map(|s| s.parse().unwrap()).collect(),
            token_id: None,
            memberships: roles
                .iter()
                .map(|(ns, role)| Membership {
                    namespace_id: format!("id-{ns}"),
                    namespace: ns.to_string(),
                    role: *role,
                })
                .collect(),
        }
    }

    #[test]
    fn a_scope_caps_the_role_and_never_raises_it() {
        let writer = user(false, &["admin"], &[("acme", Level::Write)]);
        assert_eq!(writer.level_in("acme"), Some(Level::Write));
        assert_eq!(writer.level_in("other"), None);
        let read_only = user(false, &["read"], &[("acme", Level::Admin)]);
        assert_eq!(read_only.level_in("acme"), Some(Level::Read));
        let scoped = user(
            false,
            &["write:acme"],
            &[("acme", Level::Admin), ("beta", Level::Admin)],
        );
        assert_eq!(scoped.level_in("acme"), Some(Level::Write));
        assert_eq!(scoped.level_in("beta"), None);
    }

    #[test]
    fn global_admin_needs_the_flag_and_an_unrestricted_admin_scope() {
        assert!(user(true, &["admin"], &[]).is_global_admin());
        assert!(!user(true, &["write"], &[]).is_global_admin());
        assert!(!user(true, &["admin:acme"], &[]).is_global_admin());
        assert!(!user(false, &["admin"], &[("acme", Level::Admin)]).is_global_admin());
        assert_eq!(
            user(true, &["read"], &[]).level_in("any"),
            Some(Level::Read)
        );
    }

    #[test]
    fn a_credential_never_hands_out_more_than_it_holds() {
        let scope = |s: &str| s.parse::<Scope>().unwrap();
        assert!(scope("admin").covers(&scope("write:acme")));
        assert!(scope("write").covers(&scope("read")));
        assert!(!scope("read").covers(&scope("admin")));
        assert!(scope("write:acme").covers(&scope("read:acme")));
        assert!(!scope("write:acme").covers(&scope("read")));
        assert!(!scope("write:acme").covers(&scope("write:beta")));
        assert!(!scope("admin").covers(&scope("runner")));
    }

    #[test]
    fn scopes_parse_and_print() {
        for text in ["read", "write", "admin", "write:acme", "runner"] {
            assert_eq!(text.parse::<Scope>().unwrap().to_string(), text);
        }
        for bad in ["root", "write:Acme", "read:", ""] {
            assert!(bad.parse::<Scope>().is_err(), "{bad}");
        }
    }
}

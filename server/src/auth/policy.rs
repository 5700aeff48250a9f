//! What every route needs: the one table of access rules, and how a rule is decided.
//!
//! A route missing from [`ROUTES`] is refused (and a test fails), so access is never granted by omission.
//! Refusals follow the API's promise: a private model is invisible (404) to whoever may not read it;
//! anonymous callers get 401 where signing in could help; signed-in callers get 403.

use actix_web::http::Method;

use super::{Level, Principal, User};
use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone, credentials or not (the token exchange).
    Public,
    /// Anyone; listings show only what the caller may see.
    Browse,
    /// A signed-in user (not a runner).
    SignedIn,
    /// Read `{namespace}/{model}`: public, or the caller may read its namespace.
    ReadModel,
    /// Change `{namespace}/{model}`: writer in the namespace (an admin may push to a new namespace).
    WriteModel,
    /// Administer `{namespace}/{model}` (its visibility, deleting it): admin of the namespace.
    AdminModel,
    /// Administer `{namespace}` (its members): admin of the namespace.
    AdminNamespace,
    /// See what `{namespace}` holds (its usage, quota and retention rules): any member.
    MemberOfNamespace,
    /// Upload blobs: a user who may write in some namespace.
    UploadBlobs,
    /// Users, the audit log, creating namespaces, rotating keys.
    GlobalAdmin,
    /// A runner (a token with the runner scope); which runner is the service's check.
    RunnerOnly,
}

use Rule::*;

/// Every API route, by method and pattern, with what it needs. Adding a route means adding a line here.
pub const ROUTES: &[(&str, &str, Rule)] = &[
    ("POST", "/api/v1/auth/token", Public),
    ("GET", "/api/v1/me", SignedIn),
    ("GET", "/api/v1/tokens", SignedIn),
    ("POST", "/api/v1/tokens", SignedIn),
    ("DELETE", "/api/v1/tokens/{id}", SignedIn),
    ("GET", "/api/v1/users", GlobalAdmin),
    ("POST", "/api/v1/users", GlobalAdmin),
    ("GET", "/api/v1/audit", GlobalAdmin),
    ("POST", "/api/v1/admin/jwt-keys/rotate", GlobalAdmin),
    ("GET", "/api/v1/namespaces", Browse),
    ("POST", "/api/v1/namespaces", GlobalAdmin),
    ("GET", "/api/v1/namespaces/{namespace}/models", Browse),
    (
        "GET",
        "/api/v1/namespaces/{namespace}/members",
        AdminNamespace,
    ),
    (
        "PUT",
        "/api/v1/namespaces/{namespace}/members/{user}",
        AdminNamespace,
    ),
    (
        "DELETE",
        "/api/v1/namespaces/{namespace}/members/{user}",
        AdminNamespace,
    ),
    (
        "GET",
        "/api/v1/namespaces/{namespace}/settings",
        AdminNamespace,
    ),
    (
        "PUT",
        "/api/v1/namespaces/{namespace}/settings",
        AdminNamespace,
    ),
    ("POST", "/api/v1/admin/gc", GlobalAdmin),
    ("POST", "/api/v1/admin/fsck", GlobalAdmin),
    (
        "GET",
        "/api/v1/namespaces/{namespace}/usage",
        MemberOfNamespace,
    ),
    ("PUT", "/api/v1/namespaces/{namespace}/quota", GlobalAdmin),
    (
        "GET",
        "/api/v1/namespaces/{namespace}/retention",
        MemberOfNamespace,
    ),
    (
        "PUT",
        "/api/v1/namespaces/{namespace}/retention",
        AdminNamespace,
    ),
    (
        "DELETE",
        "/api/v1/namespaces/{namespace}/retention",
        AdminNamespace,
    ),
    (
        "POST",
        "/api/v1/namespaces/{namespace}/retention/apply",
        AdminNamespace,
    ),
    // Webhooks send a namespace's events out of kiln: its admins decide where.
    (
        "POST",
        "/api/v1/namespaces/{namespace}/webhooks",
        AdminNamespace,
    ),
    (
        "GET",
        "/api/v1/namespaces/{namespace}/webhooks",
        AdminNamespace,
    ),
    (
        "GET",
        "/api/v1/namespaces/{namespace}/webhooks/{id}",
        AdminNamespace,
    ),
    (
        "PATCH",
        "/api/v1/namespaces/{namespace}/webhooks/{id}",
        AdminNamespace,
    ),
    (
        "DELETE",
        "/api/v1/namespaces/{namespace}/webhooks/{id}",
        AdminNamespace,
    ),
    (
        "GET",
        "/api/v1/namespaces/{namespace}/webhooks/{id}/deliveries",
        AdminNamespace,
    ),
    (
        "POST",
        "/api/v1/namespaces/{namespace}/webhooks/{id}/deliveries/{delivery}/redeliver",
        AdminNamespace,
    ),
    (
        "PUT",
        "/api/v1/models/{namespace}/{model}/retention",
        AdminModel,
    ),
    (
        "DELETE",
        "/api/v1/models/{namespace}/{model}/retention",
        AdminModel,
    ),
    (
        "POST",
        "/api/v1/models/{namespace}/{model}/quota-check",
        WriteModel,
    ),
    ("GET", "/api/v1/models", Browse),
    ("GET", "/api/v1/models/{namespace}/{model}", ReadModel),
    ("PATCH", "/api/v1/models/{namespace}/{model}", WriteModel),
    ("DELETE", "/api/v1/models/{namespace}/{model}", AdminModel),
    (
        "PUT",
        "/api/v1/models/{namespace}/{model}/visibility",
        AdminModel,
    ),
    (
        "GET",
        "/api/v1/models/{namespace}/{model}/versions",
        ReadModel,
    ),
    (
        "POST",
        "/api/v1/models/{namespace}/{model}/versions",
        WriteModel,
    ),
    (
        "GET",
        "/api/v1/models/{namespace}/{model}/versions/{version}",
        ReadModel,
    ),
    (
        "DELETE",
        "/api/v1/models/{namespace}/{model}/versions/{version}",
        WriteModel,
    ),
    (
        "GET",
        "/api/v1/models/{namespace}/{model}/versions/{version}/files/{path:.+}",
        ReadModel,
    ),
    (
        "GET",
        "/api/v1/models/{namespace}/{model}/versions/{version}/variants/{variant}/files/{path:.+}",
        ReadModel,
    ),
    (
        "GET",
        "/api/v1/models/{namespace}/{model}/versions/{version}/manifest",
        ReadModel,
    ),
    (
        "GET",
        "/api/v1/models/{namespace}/{model}/versions/{version}/manifests/{sequence}",
        ReadModel,
    ),
    (
        "GET",
        "/api/v1/models/{namespace}/{model}/aliases",
        ReadModel,
    ),
    (
        "PUT",
        "/api/v1/models/{namespace}/{model}/aliases/{alias}",
        WriteModel,
    ),
    (
        "GET",
        "/api/v1/models/{namespace}/{model}/aliases/{alias}/history",
        ReadModel,
    ),
    (
        "GET",
        "/api/v1/models/{namespace}/{model}/aliases/{alias}/manifest",
        ReadModel,
    ),
    (
        "GET",
        "/api/v1/models/{namespace}/{model}/aliases/{alias}/manifests/{sequence}",
        ReadModel,
    ),
    ("POST", "/api/v1/runners", RunnerOnly),
    ("PUT", "/api/v1/servings/{serving}", RunnerOnly),
    ("DELETE", "/api/v1/servings/{serving}", RunnerOnly),
    (
        "GET",
        "/api/v1/models/{namespace}/{model}/servings",
        ReadModel,
    ),
    ("GET", "/api/v1/runners", SignedIn),
    ("POST", "/api/v1/runners/{runner}/heartbeat", RunnerOnly),
    ("POST", "/api/v1/runners/{runner}/claim", RunnerOnly),
    (
        "GET",
        "/api/v1/runners/{runner}/jobs/{job}/files/{path:.+}",
        RunnerOnly,
    ),
    (
        "POST",
        "/api/v1/runners/{runner}/jobs/{job}/result",
        RunnerOnly,
    ),
    (
        "POST",
        "/api/v1/runners/{runner}/distillations/claim",
        RunnerOnly,
    ),
    (
        "GET",
        "/api/v1/runners/{runner}/distillations/{job}/teacher/{path:.+}",
        RunnerOnly,
    ),
    (
        "GET",
        "/api/v1/runners/{runner}/distillations/{job}/data/{path:.+}",
        RunnerOnly,
    ),
    (
        "PUT",
        "/api/v1/runners/{runner}/distillations/{job}/checkpoint",
        RunnerOnly,
    ),
    (
        "GET",
        "/api/v1/runners/{runner}/distillations/{job}/checkpoint",
        RunnerOnly,
    ),
    (
        "PUT",
        "/api/v1/runners/{runner}/distillations/{job}/files/{path:.+}",
        RunnerOnly,
    ),
    (
        "POST",
        "/api/v1/runners/{runner}/distillations/{job}/result",
        RunnerOnly,
    ),
    // Reading the teacher is the route's rule; writing where the student goes is the service's check.
    (
        "POST",
        "/api/v1/models/{namespace}/{model}/versions/{version}/distillations",
        ReadModel,
    ),
    (
        "GET",
        "/api/v1/models/{namespace}/{model}/versions/{version}/distillations",
        ReadModel,
    ),
    // Which distillations a caller may see or cancel is the service's check (its teacher's visibility).
    ("GET", "/api/v1/distillations/{id}", Browse),
    ("POST", "/api/v1/distillations/{id}/cancel", SignedIn),
    ("POST", "/api/v1/blobs/missing", UploadBlobs),
    ("POST", "/api/v1/uploads", UploadBlobs),
    ("GET", "/api/v1/uploads/{id}", UploadBlobs),
    ("PATCH", "/api/v1/uploads/{id}", UploadBlobs),
    ("DELETE", "/api/v1/uploads/{id}", UploadBlobs),
    ("POST", "/api/v1/uploads/{id}/commit", UploadBlobs),
];

pub fn rule_for(method: &Method, pattern: &str) -> Option<Rule> {
    ROUTES
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && *p == pattern)
        .map(|(_, _, rule)| *rule)
}

/// The methods this route answers (any other is then simply not allowed); empty for a route with no
/// rule at all.
pub fn allowed_methods(pattern: &str) -> Vec<&'static str> {
    let mut methods: Vec<&'static str> = ROUTES
        .iter()
        .filter(|(_, p, _)| *p == pattern)
        .map(|(m, _, _)| *m)
        .collect();
    // Every GET route answers HEAD too (http::head).
    if methods.contains(&"GET") {
        methods.push("HEAD");
    }
    methods
}

/// The value of `{name}` in `path` matched against `pattern`.
pub fn path_param(pattern: &str, path: &str, name: &str) -> Option<String> {
    let mut path_segments = path.trim_start_matches('/').split('/');
    for segment in pattern.trim_start_matches('/').split('/') {
        let value = path_segments.next()?;
        if let Some(inner) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
            && inner.split(':').next() == Some(name)
        {
            return Some(percent_decode(value));
        }
    }
    None
}

/// Decodes every `%XX`, as actix's `Path` extractor does, so the rule sees the name the handler sees.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(hi * 16 + lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The refusal for a caller who must sign in first.
pub(crate) fn sign_in_needed() -> Error {
    Error::unauthorized("sign in: send Authorization: Bearer TOKEN (see `kiln login`)")
}

/// Decides `rule` for `principal` on the resource named by the route's path parameters.
/// Whether a namespace exists, and a model's visibility when it exists: what a resource rule decides on.
pub trait ResourceFacts {
    fn facts(
        &self,
        namespace: String,
        model: Option<String>,
    ) -> impl std::future::Future<Output = Result<(bool, Option<String>), Error>>;
}

pub async fn decide(
    rule: Rule,
    principal: &Principal,
    namespace: Option<String>,
    model: Option<String>,
    facts: &impl ResourceFacts,
) -> Result<(), Error> {
    if rule == Public {
        return Ok(());
    }
    let user = match (principal, rule) {
        (Principal::Runner { .. }, RunnerOnly) => return Ok(()),
        (Principal::Runner { .. }, _) => {
            return Err(Error::forbidden(
                "runner tokens may only claim and report jobs",
            ));
        }
        (_, RunnerOnly) => {
            return Err(match principal {
                Principal::Anonymous => sign_in_needed(),
                _ => Error::forbidden(
                    "this route is for runners: an API token with the runner scope",
                ),
            });
        }
        (Principal::Anonymous, _) => None,
        (Principal::User(user), _) => Some(user.as_ref()),
    };
    match rule {
        Public | Browse => Ok(()),
        SignedIn => user.map(|_| ()).ok_or_else(sign_in_needed),
        GlobalAdmin => match user {
            None => Err(sign_in_needed()),
            Some(user) if user.is_global_admin() => Ok(()),
            Some(_) => Err(Error::forbidden("this needs a kiln administrator")),
        },
        UploadBlobs => match user {
            None => Err(sign_in_needed()),
            Some(user) if user.may_write_somewhere() => Ok(()),
            Some(_) => Err(Error::forbidden(
                "uploading needs write access to a namespace",
            )),
        },
        // Runners were let through above; nobody else gets here with this rule, and if they did, no.
        RunnerOnly => Err(Error::forbidden("this route is for runners")),
        ReadModel | WriteModel | AdminModel | AdminNamespace | MemberOfNamespace => {
            let (Some(namespace), model) = (namespace, model) else {
                return Err(Error::Internal(format!(
                    "route for {rule:?} has no namespace"
                )));
            };
            decide_on_resource(rule, user, namespace, model, facts).await
        }
    }
}

async fn decide_on_resource(
    rule: Rule,
    user: Option<&User>,
    namespace: String,
    model: Option<String>,
    facts: &impl ResourceFacts,
) -> Result<(), Error> {
    let (namespace_exists, model_visibility) =
        facts.facts(namespace.clone(), model.clone()).await?;
    let level = user.and_then(|u| u.level_in(&namespace));
    let hidden = model_visibility.as_deref() == Some("private") && level.is_none();
    let what = match &model {
        Some(m) => format!("model {namespace}/{m}"),
        None => format!("namespace {namespace}"),
    };
    let needed = match rule {
        ReadModel => {
            // Absent models fall through to the handler, which answers 404 (or 400 for a bad name).
            return if hidden {
                Err(Error::not_found(what))
            } else {
                Ok(())
            };
        }
        MemberOfNamespace => Level::Read,
        WriteModel => Level::Write,
        AdminModel | AdminNamespace => Level::Admin,
        _ => unreachable!("only resource rules reach here"),
    };
    // Changes answer alike whether a model is private or absent (401 signed out, 403 without access), so
    // they reveal no more than reads do.
    let Some(user) = user else {
        return Err(sign_in_needed());
    };
    if !namespace_exists {
        if rule == WriteModel && user.is_global_admin() {
            return Ok(());
        }
        return Err(Error::not_found(format!(
            "namespace {namespace} (an administrator can create it: kiln namespace create {namespace})"
        )));
    }
    if level >= Some(needed) {
        Ok(())
    } else {
        Err(Error::forbidden(format!(
            "this needs {} access to {namespace}",
            needed.as_str()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_follow_the_pattern() {
        let pattern = "/api/v1/models/{namespace}/{model}/versions/{version}/files/{path:.+}";
        let path = "/api/v1/models/acme/m/versions/1/files/a/b.bin";
        assert_eq!(
            path_param(pattern, path, "namespace").as_deref(),
            Some("acme")
        );
        assert_eq!(path_param(pattern, path, "model").as_deref(), Some("m"));
        assert_eq!(path_param(pattern, path, "missing"), None);
    }

    #[test]
    fn parameters_are_decoded_as_handlers_decode_them() {
        let pattern = "/api/v1/models/{namespace}/{model}";
        let path = "/api/v1/models/%61cme/s%65cret%2";
        assert_eq!(
            path_param(pattern, path, "namespace").as_deref(),
            Some("acme")
        );
        assert_eq!(
            path_param(pattern, path, "model").as_deref(),
            Some("secret%2")
        );
    }

    #[test]
    fn every_rule_is_looked_up_by_method_and_pattern() {
        assert_eq!(
            rule_for(&Method::GET, "/api/v1/models/{namespace}/{model}"),
            Some(ReadModel)
        );
        assert_eq!(
            rule_for(&Method::PATCH, "/api/v1/models/{namespace}/{model}"),
            Some(WriteModel)
        );
        assert_eq!(
            rule_for(&Method::PUT, "/api/v1/models/{namespace}/{model}"),
            None
        );
    }
}

//! Accounts and access: users, tokens, sign-in, namespaces' members and settings, the audit log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::NamespaceName;

/// The answer to a rotation of the access-token signing key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RotatedJwtKey {
    /// The new key's id: the `kid` header of every access token signed from now on. Tokens signed with
    /// earlier keys stay valid until they expire.
    pub kid: String,
}

/// A member's role in a namespace: readers read private models, writers push, admins manage members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Reader,
    Writer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "reader" => Some(Role::Reader),
            "writer" => Some(Role::Writer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Exchange a long-lived credential for a short-lived access token: an API token, or a user name and
/// password (exactly one of the two; the document says so with `oneOf`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl utoipa::PartialSchema for TokenRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        let text = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(4096))
                .description(Some(description))
        };
        let api_token = ObjectBuilder::new()
            .title(Some("ApiTokenCredentials"))
            .property("token", text("An API token (`kiln_...`)"))
            .required("token")
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ));
        let password = ObjectBuilder::new()
            .title(Some("PasswordCredentials"))
            .property("username", text("A user's name"))
            .property("password", text("That user's password"))
            .required("username")
            .required("password")
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ));
        OneOfBuilder::new()
            .item(api_token)
            .item(password)
            .description(Some(
                "Exchange a long-lived credential for a short-lived access token: an API token, or a user \
                 name and password.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for TokenRequest {}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccessToken {
    /// A JWT (EdDSA) to send as `Authorization: Bearer ...`.
    pub access_token: String,
    pub token_type: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// A name to recognise the token by, e.g. `ci` or `laptop`: 1 to 64 characters (trimmed), no control
    /// characters.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// `read`, `write`, `admin` (optionally `:NAMESPACE`), or `runner`. Scopes cap the user's roles,
    /// they never add to them. Default: `["write"]`.
    #[serde(default)]
    #[schema(schema_with = scope_list_schema)]
    pub scopes: Vec<String>,
    /// Days until the token stops working, 1 to 3650 (ten years); none means it never expires.
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<u32>,
}

/// Scopes as the server takes them: `runner`, or a level with an optional namespace.
fn scope_list_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let scope = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(
            "^(runner|(read|write|admin)(:[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?)?)$",
        ))
        .examples([serde_json::json!("read:acme")]);
    ArrayBuilder::new()
        .items(scope)
        .max_items(Some(16))
        .description(Some(
            "`read`, `write`, `admin` (optionally `:NAMESPACE`), or `runner`. Scopes cap the user's roles, \
             they never add to them. Default: `[\"write\"]`.",
        ))
        .build()
}

/// The longest a token can be made to live, in days: ten years, so that every expiry is a date
/// RFC 3339 can write (a year of four digits).
pub const MAX_TOKEN_DAYS: u32 = 3650;

/// An API token as listed: never the token itself, which is shown once when created.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub user: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The token. It is shown only in this response; the server keeps only a hash.
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Also the name of the user's personal namespace.
    pub name: NamespaceName,
    /// 12 to 1024 characters; without one, the user signs in only with API tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 12, max_length = 1024)]
    pub password: Option<String>,
    #[serde(default)]
    pub admin: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserInfo {
    pub name: String,
    pub admin: bool,
    pub created_at: DateTime<Utc>,
}

/// The caller: who they are and where they belong.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub name: String,
    pub admin: bool,
    pub scopes: Vec<String>,
    pub memberships: Vec<Member>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNamespaceRequest {
    pub name: NamespaceName,
}

/// What a namespace's admins decide for every model in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NamespaceSettings {
    /// Store pickles whose globals fall outside the scan's allowlist ("store only, never load") instead of
    /// refusing the version: they are flagged on the version, in `kiln show` and in the manifest, and
    /// kiln never converts or opens them. Off by default.
    pub store_unsafe_pickles: bool,
}

/// A namespace member (in `Me`, the namespace and the caller's role there).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Member {
    /// The user (in a namespace's member list) or the namespace (in `Me`).
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMemberRequest {
    pub role: Role,
}

/// One audited mutation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
    pub remote_addr: Option<String>,
}

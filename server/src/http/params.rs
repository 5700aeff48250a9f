//! Path and query parameters shared by several routes.

use kiln_core::ErrorCode;
use kiln_core::{AliasName, FilePath, ModelName, NamespaceName, VersionName};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::Error;
use crate::services::registry::Page;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct NamespacePath {
    /// Namespace, e.g. `acme`
    #[param(value_type = NamespaceName)]
    pub namespace: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ModelPath {
    /// Namespace, e.g. `acme`
    #[param(value_type = NamespaceName)]
    pub namespace: String,
    /// Model name, e.g. `sentiment`
    #[param(value_type = ModelName)]
    pub model: String,
}

/// `?force=true`: delete a model even though aliases name its versions (they are deleted too).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteModelQuery {
    /// Delete the model's aliases with it instead of refusing (default false)
    #[serde(default)]
    pub force: bool,
}

impl ModelPath {
    pub fn parse(&self) -> Result<(NamespaceName, ModelName), Error> {
        Ok((self.namespace.parse()?, self.model.parse()?))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VersionPath {
    /// Namespace, e.g. `acme`
    #[param(value_type = NamespaceName)]
    pub namespace: String,
    /// Model name, e.g. `sentiment`
    #[param(value_type = ModelName)]
    pub model: String,
    /// Version, e.g. `1.0.0`
    #[param(value_type = VersionName)]
    pub version: String,
}

impl VersionPath {
    pub fn parse(&self) -> Result<(NamespaceName, ModelName, VersionName), Error> {
        Ok((
            self.namespace.parse()?,
            self.model.parse()?,
            self.version.parse()?,
        ))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AliasPath {
    /// Namespace, e.g. `acme`
    #[param(value_type = NamespaceName)]
    pub namespace: String,
    /// Model name, e.g. `sentiment`
    #[param(value_type = ModelName)]
    pub model: String,
    /// Alias, e.g. `production`
    #[param(value_type = AliasName)]
    pub alias: String,
}

impl AliasPath {
    pub fn parse(&self) -> Result<(NamespaceName, ModelName, AliasName), Error> {
        Ok((
            self.namespace.parse()?,
            self.model.parse()?,
            self.alias.parse()?,
        ))
    }
}

/// A manifest's sequence number in the path (`.../manifests/{sequence}`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SequencePath {
    /// Sequence number, from 1
    #[param(minimum = 1)]
    pub sequence: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RunnerPath {
    /// The runner's id, from its registration
    pub runner: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RunnerJobPath {
    /// The runner's id, from its registration
    pub runner: String,
    /// The job's id, from its claim
    pub job: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RunnerFilePath {
    /// The runner's id, from its registration
    pub runner: String,
    /// The job's id, from its claim
    pub job: String,
    /// The file's path inside the variant, e.g. `model.onnx`; '/' separates folders
    #[param(min_length = 1, max_length = 1024)]
    pub path: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct FilePathParams {
    /// Namespace, e.g. `acme`
    #[param(value_type = NamespaceName)]
    pub namespace: String,
    /// Model name, e.g. `sentiment`
    #[param(value_type = ModelName)]
    pub model: String,
    /// Version, e.g. `1.0.0`
    #[param(value_type = VersionName)]
    pub version: String,
    /// The file's path inside the version, e.g. `onnx/model.onnx`; '/' separates folders
    #[param(min_length = 1, max_length = 1024)]
    pub path: String,
}

impl FilePathParams {
    pub fn parse(&self) -> Result<(NamespaceName, ModelName, VersionName, FilePath), Error> {
        Ok((
            self.namespace.parse()?,
            self.model.parse()?,
            self.version.parse()?,
            self.path.parse()?,
        ))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VariantFilePathParams {
    /// Namespace, e.g. `acme`
    #[param(value_type = NamespaceName)]
    pub namespace: String,
    /// Model name, e.g. `sentiment`
    #[param(value_type = ModelName)]
    pub model: String,
    /// Version, e.g. `1.0.0`
    #[param(value_type = VersionName)]
    pub version: String,
    /// Variant, e.g. `onnx`
    #[param(pattern = "^[a-z0-9-]{1,64}$", min_length = 1, max_length = 64)]
    pub variant: String,
    /// The file's path inside the variant, e.g. `model.onnx`; '/' separates folders
    #[param(min_length = 1, max_length = 1024)]
    pub path: String,
}

impl VariantFilePathParams {
    pub fn parse(
        &self,
    ) -> Result<(NamespaceName, ModelName, VersionName, String, FilePath), Error> {
        let variant_ok = !self.variant.is_empty()
            && self.variant.len() <= 64
            && self
                .variant
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !variant_ok {
            return Err(Error::bad_request(
                ErrorCode::InvalidVariant,
                format!(
                    "{:?} is not a variant name (lowercase letters, digits and '-')",
                    self.variant
                ),
            ));
        }
        Ok((
            self.namespace.parse()?,
            self.model.parse()?,
            self.version.parse()?,
            self.variant.clone(),
            self.path.parse()?,
        ))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UploadPath {
    /// Upload session id
    pub id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// At most this many items (1..=1000, default 100)
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Skip this many items (default 0)
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// One page of a model listing, and its filters (all optional; every one given must hold).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListModelsQuery {
    /// At most this many models (1..=1000, default 100)
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Skip this many (default 0). `cursor` is better: stable while models are pushed
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    /// Start after the model this cursor names: the one in the previous page's `Link: <...>; rel="next"`
    #[param(max_length = 512)]
    pub cursor: Option<String>,
    /// Only models whose name starts with this
    #[param(max_length = 64)]
    pub prefix: Option<String>,
    /// Only models carrying this tag
    #[param(max_length = 64)]
    pub tag: Option<String>,
    /// Only models with this text in their name or description (ASCII letters in any case)
    #[param(max_length = 256)]
    pub q: Option<String>,
    /// Only models with a deployable variant of this kind in some version (`onnx`, `fp16`, `int8`, ...)
    #[param(max_length = 64)]
    pub has_variant: Option<String>,
}

impl ListModelsQuery {
    pub fn to_query(
        &self,
        namespace: Option<NamespaceName>,
    ) -> Result<crate::services::registry::ModelQuery, Error> {
        use crate::services::registry::{ModelQuery, ModelStart};
        let page = Page::new(self.limit, self.offset)?;
        let too_long = [
            ("cursor", &self.cursor, 512),
            ("prefix", &self.prefix, 64),
            ("tag", &self.tag, 64),
            ("q", &self.q, 256),
            ("has_variant", &self.has_variant, 64),
        ]
        .into_iter()
        .find(|(_, value, max)| value.as_ref().is_some_and(|v| v.chars().count() > *max));
        if let Some((name, _, max)) = too_long {
            return Err(Error::bad_request(
                ErrorCode::InvalidQuery,
                format!("{name} is longer than {max} characters"),
            ));
        }
        let start = match (&self.cursor, self.offset) {
            (Some(_), Some(_)) => {
                return Err(Error::bad_request(
                    ErrorCode::InvalidPage,
                    "give cursor or offset, not both",
                ));
            }
            (Some(cursor), None) => ModelStart::Cursor(cursor.clone()),
            (None, _) => ModelStart::Offset(page.offset),
        };
        let given = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        Ok(ModelQuery {
            namespace,
            prefix: given(&self.prefix),
            tag: given(&self.tag),
            text: given(&self.q),
            has_variant: given(&self.has_variant),
            start,
            limit: page.limit,
        })
    }

    /// The next page's link: this query with `cursor` (and no offset), relative to the server.
    pub fn next_link(&self, path: &str, cursor: &str) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(limit) = self.limit {
            query.append_pair("limit", &limit.to_string());
        }
        for (name, value) in [
            ("prefix", &self.prefix),
            ("tag", &self.tag),
            ("q", &self.q),
            ("has_variant", &self.has_variant),
        ] {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
        query.append_pair("cursor", cursor);
        format!("<{path}?{}>; rel=\"next\"", query.finish())
    }
}

impl PageQuery {
    pub fn page(&self) -> Result<Page, Error> {
        Page::new(self.limit, self.offset)
    }
}

//! Path and query parameters shared by several routes.

use kiln_core::ErrorCode;
use kiln_core::{AliasName, FilePath, ModelName, NamespaceName, VersionName};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::Error;
use crate::services::paging::PageRequest;

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
    #[param(value_type = FilePath, min_length = 1, max_length = 1024)]
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
    #[param(value_type = FilePath, min_length = 1, max_length = 1024)]
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
    #[param(value_type = FilePath, min_length = 1, max_length = 1024)]
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

/// One page of a listing: a full page carries `Link: <...>; rel="next"`, the next page's URL.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// At most this many items (1..=1000, default 100)
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Start after the item this cursor names: the cursor of the previous page's `Link: <...>; rel="next"`
    #[param(min_length = 1, max_length = 512, pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn page(&self) -> Result<PageRequest, Error> {
        page_request(self.limit, self.cursor.as_deref())
    }
}

fn page_request(limit: Option<i64>, cursor: Option<&str>) -> Result<PageRequest, Error> {
    if cursor.is_some_and(|c| c.len() > 512) {
        return Err(Error::bad_request(
            ErrorCode::InvalidPage,
            "cursor is longer than 512 characters: pass the `next` link's cursor unchanged",
        ));
    }
    PageRequest::new(limit, cursor)
}

/// The offset a listing that still takes one skips (it and a cursor are exclusive).
fn offset_of(offset: Option<i64>, cursor: &Option<String>) -> Result<i64, Error> {
    match (offset, cursor) {
        (Some(_), Some(_)) => Err(Error::bad_request(
            ErrorCode::InvalidPage,
            "give cursor or offset, not both",
        )),
        (Some(offset), None) if offset < 0 => Err(Error::bad_request(
            ErrorCode::InvalidPage,
            "offset must be at least 0",
        )),
        (offset, _) => Ok(offset.unwrap_or(0)),
    }
}

/// One page of namespaces: a cursor, or (older clients) an offset.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NamespacePageQuery {
    /// At most this many namespaces (1..=1000, default 100)
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Start after the namespace this cursor names: the cursor of the previous page's `Link: <...>; rel="next"`
    #[param(min_length = 1, max_length = 512, pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
    /// Skip this many (default 0). `cursor` is better: stable while namespaces are created
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

impl NamespacePageQuery {
    pub fn page(&self) -> Result<(PageRequest, i64), Error> {
        let offset = offset_of(self.offset, &self.cursor)?;
        Ok((page_request(self.limit, self.cursor.as_deref())?, offset))
    }
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
    /// Start after the model this cursor names: the cursor of the previous page's `Link: <...>; rel="next"`
    #[param(min_length = 1, max_length = 512, pattern = "^[A-Za-z0-9_-]+$")]
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
    /// `name` (namespace, then name; the default) or `updated` (most recently updated first)
    #[param(inline)]
    pub sort: Option<ModelSort>,
}

/// The order of a model listing.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelSort {
    Name,
    Updated,
}

impl ListModelsQuery {
    pub fn to_query(
        &self,
        namespace: Option<NamespaceName>,
    ) -> Result<crate::services::registry::ModelQuery, Error> {
        let offset = offset_of(self.offset, &self.cursor)?;
        let page = page_request(self.limit, self.cursor.as_deref())?;
        let too_long = [
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
        let given = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        Ok(crate::services::registry::ModelQuery {
            namespace,
            prefix: given(&self.prefix),
            tag: given(&self.tag),
            text: given(&self.q),
            has_variant: given(&self.has_variant),
            order: match self.sort {
                None | Some(ModelSort::Name) => crate::services::registry::ModelOrder::Name,
                Some(ModelSort::Updated) => crate::services::registry::ModelOrder::Updated,
            },
            page,
            offset,
        })
    }
}

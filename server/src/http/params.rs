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

impl PageQuery {
    pub fn page(&self) -> Result<Page, Error> {
        Page::new(self.limit, self.offset)
    }
}

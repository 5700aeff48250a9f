//! Path and query parameters shared by several routes.

use kiln_core::{FilePath, ModelName, NamespaceName, VersionName};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::Error;
use crate::services::registry::Page;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct NamespacePath {
    /// Namespace, e.g. `acme`
    pub namespace: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ModelPath {
    /// Namespace, e.g. `acme`
    pub namespace: String,
    /// Model name, e.g. `sentiment`
    pub model: String,
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
    pub namespace: String,
    /// Model name, e.g. `sentiment`
    pub model: String,
    /// Version, e.g. `1.0.0`
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
pub struct FilePathParams {
    /// Namespace, e.g. `acme`
    pub namespace: String,
    /// Model name, e.g. `sentiment`
    pub model: String,
    /// Version, e.g. `1.0.0`
    pub version: String,
    /// The file's path inside the version, e.g. `onnx/model.onnx`
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
pub struct UploadPath {
    /// Upload session id
    pub id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// At most this many items (1..=1000, default 100)
    pub limit: Option<i64>,
    /// Skip this many items (default 0)
    pub offset: Option<i64>,
}

impl PageQuery {
    pub fn page(&self) -> Result<Page, Error> {
        Page::new(self.limit, self.offset)
    }
}

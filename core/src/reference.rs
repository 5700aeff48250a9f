//! `NAMESPACE[/MODEL[:VERSION|@ALIAS]]` references as users type them on the command line.

use std::{fmt, str::FromStr};

use crate::{AliasName, CoreError, ModelName, NamespaceName, VersionName};

/// A parsed reference: `acme`, `acme/sentiment`, `acme/sentiment:1.0.0` or `acme/sentiment@production`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    pub namespace: NamespaceName,
    pub model: Option<ModelName>,
    pub version: Option<VersionName>,
    pub alias: Option<AliasName>,
}

impl ModelRef {
    /// The reference must name a model and a version, e.g. for push and pull.
    pub fn require_version(&self) -> Option<(&NamespaceName, &ModelName, &VersionName)> {
        Some((
            &self.namespace,
            self.model.as_ref()?,
            self.version.as_ref()?,
        ))
    }

    /// The reference must name a model and nothing below it (`acme/sentiment`).
    pub fn require_model(&self) -> Option<(&NamespaceName, &ModelName)> {
        if self.version.is_some() || self.alias.is_some() {
            return None;
        }
        Some((&self.namespace, self.model.as_ref()?))
    }
}

impl FromStr for ModelRef {
    type Err = CoreError;

    fn from_str(value: &str) -> Result<Self, CoreError> {
        let invalid = || CoreError::InvalidReference {
            value: value.to_owned(),
        };
        if value.contains(':') && value.contains('@') {
            return Err(invalid());
        }
        let (path, version) = match value.split_once(':') {
            Some((path, version)) => (path, Some(version.parse::<VersionName>()?)),
            None => (value, None),
        };
        let (path, alias) = match path.split_once('@') {
            Some((path, alias)) => (path, Some(alias.parse::<AliasName>()?)),
            None => (path, None),
        };
        let (namespace, model) = match path.split_once('/') {
            Some((ns, model)) => (ns, Some(model.parse::<ModelName>()?)),
            None => (path, None),
        };
        if namespace.is_empty() || (model.is_none() && (version.is_some() || alias.is_some())) {
            return Err(invalid());
        }
        Ok(Self {
            namespace: namespace.parse()?,
            model,
            version,
            alias,
        })
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.namespace)?;
        if let Some(model) = &self.model {
            write!(f, "/{model}")?;
        }
        if let Some(version) = &self.version {
            write!(f, ":{version}")?;
        }
        if let Some(alias) = &self.alias {
            write!(f, "@{alias}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        let r: ModelRef = "acme".parse().unwrap();
        assert_eq!((r.model, r.version), (None, None));
        let r: ModelRef = "acme/sentiment".parse().unwrap();
        assert_eq!(r.model.unwrap().as_str(), "sentiment");
        let r: ModelRef = "acme/sentiment:1.0.0".parse().unwrap();
        assert_eq!(r.to_string(), "acme/sentiment:1.0.0");
        assert!(r.require_version().is_some());
        let r: ModelRef = "acme/sentiment@production".parse().unwrap();
        assert_eq!(r.alias.as_ref().unwrap().as_str(), "production");
        assert_eq!(r.to_string(), "acme/sentiment@production");
        assert!(r.require_version().is_none() && r.require_model().is_none());
    }

    #[test]
    fn refuses_malformed_references() {
        for bad in [
            "",
            "/x",
            "acme:1.0",
            "acme/",
            "acme/Sentiment",
            "acme/s/x",
            "acme/s:",
            "a/b:c:d",
            "acme@prod",
            "acme/s@",
            "acme/s@Prod",
            "acme/s@prod:1.0",
            "acme/s:1.0@prod",
        ] {
            assert!(bad.parse::<ModelRef>().is_err(), "{bad:?}");
        }
    }
}

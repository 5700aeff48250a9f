//! Validated names: every namespace, model, version and file path is checked once, at the edge, and carried
//! as its own type afterwards so nothing downstream can be handed an unchecked string.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::CoreError;

fn check_slug(kind: &'static str, value: &str) -> Result<(), CoreError> {
    let fail = |reason| {
        Err(CoreError::InvalidName {
            kind,
            value: value.to_owned(),
            reason,
        })
    };
    if value.is_empty() {
        return fail("must not be empty");
    }
    if value.len() > 64 {
        return fail("must be at most 64 characters");
    }
    if !value
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.'))
    {
        return fail("may contain only lowercase letters, digits, '-', '_' and '.'");
    }
    let first = value.as_bytes()[0];
    let last = value.as_bytes()[value.len() - 1];
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return fail("must start and end with a lowercase letter or digit");
    }
    Ok(())
}

fn check_version(value: &str) -> Result<(), CoreError> {
    let fail = |reason| {
        Err(CoreError::InvalidName {
            kind: "version",
            value: value.to_owned(),
            reason,
        })
    };
    if value.is_empty() {
        return fail("must not be empty");
    }
    if value.len() > 128 {
        return fail("must be at most 128 characters");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'))
    {
        return fail("may contain only letters, digits, '.', '_', '-' and '+'");
    }
    if !value.as_bytes()[0].is_ascii_alphanumeric() {
        return fail("must start with a letter or digit");
    }
    Ok(())
}

fn check_path(value: &str) -> Result<(), CoreError> {
    let fail = |reason| {
        Err(CoreError::InvalidPath {
            value: value.to_owned(),
            reason,
        })
    };
    if value.is_empty() {
        return fail("must not be empty");
    }
    if value.len() > 1024 {
        return fail("must be at most 1024 bytes");
    }
    if value.starts_with('/') {
        return fail("must be relative (no leading '/')");
    }
    if value.contains('\\') {
        return fail("must use '/' as separator (no '\\')");
    }
    if value.chars().any(char::is_control) {
        return fail("must not contain control characters");
    }
    for segment in value.split('/') {
        match segment {
            "" => return fail("must not contain empty segments ('//' or a trailing '/')"),
            "." | ".." => return fail("must not contain '.' or '..' segments"),
            s if s.len() > 255 => return fail("each segment must be at most 255 bytes"),
            _ => {}
        }
    }
    Ok(())
}

macro_rules! validated_string {
    ($(#[$meta:meta])* $name:ident, $check:expr, $pattern:expr, $example:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = CoreError;
            fn from_str(value: &str) -> Result<Self, CoreError> {
                $check(value)?;
                Ok(Self(value.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = CoreError;
            fn try_from(value: String) -> Result<Self, CoreError> {
                $check(&value)?;
                Ok(Self(value))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer)?
                    .try_into()
                    .map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern($pattern)
                    .examples([serde_json::json!($example)])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

validated_string!(
    /// A namespace: a user or an organisation, e.g. `acme`.
    NamespaceName,
    |v| check_slug("namespace", v),
    Some("^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$"),
    "acme"
);
validated_string!(
    /// A model's name inside its namespace, e.g. `sentiment`.
    ModelName,
    |v| check_slug("model name", v),
    Some("^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$"),
    "sentiment"
);
validated_string!(
    /// A version label, e.g. `1.0.0` or `2024-06-01+rc1`; immutable once committed.
    VersionName,
    check_version,
    Some("^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$"),
    "1.0.0"
);
validated_string!(
    /// A movable name for one version of a model, e.g. `production` in `acme/sentiment@production`.
    AliasName,
    |v| check_slug("alias", v),
    Some("^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$"),
    "production"
);
validated_string!(
    /// A file's path inside a version: relative, '/'-separated, no '.' or '..' segments.
    FilePath,
    check_path,
    None::<String>,
    "onnx/model.onnx"
);

impl FilePath {
    /// Every proper ancestor directory of this path, e.g. `a/b/c` → `a`, `a/b`.
    pub fn ancestors(&self) -> impl Iterator<Item = &str> {
        self.0.match_indices('/').map(|(i, _)| &self.0[..i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn namespaces_and_models_are_lowercase_slugs() {
        for ok in ["acme", "a", "acme-labs", "bert_base.v2", "0x"] {
            ok.parse::<NamespaceName>().unwrap();
            ok.parse::<ModelName>().unwrap();
        }
        for bad in [
            "",
            "Acme",
            "-acme",
            "acme-",
            "ac/me",
            "ac me",
            &"a".repeat(65),
            "..",
            "é",
        ] {
            assert!(bad.parse::<NamespaceName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn versions_allow_semver_and_build_metadata() {
        for ok in ["1.0.0", "v2", "2024-06-01", "1.0.0-rc.1+build.5", "Final"] {
            ok.parse::<VersionName>().unwrap();
        }
        for bad in ["", ".1", "-1", "1/2", "1 0", "1:0", &"1".repeat(129)] {
            assert!(bad.parse::<VersionName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn file_paths_refuse_traversal_and_absolute_paths() {
        for ok in [
            "model.onnx",
            "onnx/model.onnx",
            "a/b/c.bin",
            ".hidden",
            "weights..bin",
        ] {
            ok.parse::<FilePath>().unwrap();
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            "..",
            ".",
            "a\\b",
            "C:\\x",
            "a\nb",
            "a\0b",
        ] {
            assert!(bad.parse::<FilePath>().is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn ancestors_lists_every_parent_directory() {
        let path: FilePath = "a/b/c.txt".parse().unwrap();
        assert_eq!(path.ancestors().collect::<Vec<_>>(), ["a", "a/b"]);
    }

    proptest! {
        #[test]
        fn accepted_paths_never_escape_their_root(path in "[a-z./\\\\]{1,20}") {
            if let Ok(p) = path.parse::<FilePath>() {
                let joined = std::path::Path::new("/root").join(p.as_str());
                prop_assert!(joined.components().all(|c| !matches!(c, std::path::Component::ParentDir)));
                prop_assert!(joined.starts_with("/root"));
            }
        }
    }
}

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
    if value.chars().any(is_bidi_control) {
        return fail(
            "must not contain bidirectional control characters (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069): they make a path read as another",
        );
    }
    if value.contains(':') {
        return fail("must not contain ':' (on Windows it names a drive or a stream)");
    }
    for segment in value.split('/') {
        match segment {
            "" => return fail("must not contain empty segments ('//' or a trailing '/')"),
            "." | ".." => return fail("must not contain '.' or '..' segments"),
            s if s.len() > 255 => return fail("each segment must be at most 255 bytes"),
            s if s.ends_with('.') || s.ends_with(' ') => {
                return fail(
                    "no segment may end with '.' or ' ' (Windows drops them, so two paths would name one file)",
                );
            }
            s if is_windows_device(s) => {
                return fail(
                    "no segment may be a Windows device name (CON, PRN, AUX, NUL, COM1-9, LPT1-9)",
                );
            }
            _ => {}
        }
    }
    Ok(())
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `NUL`, `com1.txt`: Windows opens the device, whatever the extension.
fn is_windows_device(segment: &str) -> bool {
    let stem = segment.split('.').next().unwrap_or("").to_ascii_uppercase();
    matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && matches!(stem.as_bytes()[3], b'1'..=b'9'))
}

macro_rules! validated_string {
    ($(#[$meta:meta])* $name:ident, $check:expr, $pattern:expr, $max_length:expr, $example:expr) => {
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
                    .min_length(Some(1))
                    .max_length(Some($max_length))
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
    64,
    "acme"
);
validated_string!(
    /// A model's name inside its namespace, e.g. `sentiment`.
    ModelName,
    |v| check_slug("model name", v),
    Some("^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$"),
    64,
    "sentiment"
);
validated_string!(
    /// A version label, e.g. `1.0.0` or `2024-06-01+rc1`; immutable once committed.
    VersionName,
    check_version,
    Some("^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$"),
    128,
    "1.0.0"
);
validated_string!(
    /// A movable name for one version of a model, e.g. `production` in `acme/sentiment@production`.
    AliasName,
    |v| check_slug("alias", v),
    Some("^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$"),
    64,
    "production"
);
validated_string!(
    /// A file's path inside a version: relative, '/'-separated, no '.' or '..' segments.
    FilePath,
    check_path,
    Some(FILE_PATH_PATTERN),
    1024,
    "onnx/model.onnx"
);

/// [`check_path`]'s rules as an ECMA-262 pattern for the API document, except the byte limits (1024 in
/// all, 255 a segment), which a pattern counts in characters: '/'-separated segments of characters that
/// are no '\\', ':', control or bidirectional control character, none ending in '.' or ' ' (so no '.' or
/// '..'), none a Windows device name.
pub const FILE_PATH_PATTERN: &str = concat!(
    r"^(?!(?:[\s\S]*/)?(?:[Cc][Oo][Nn]|[Pp][Rr][Nn]|[Aa][Uu][Xx]|[Nn][Uu][Ll]|[Cc][Oo][Mm][1-9]|[Ll][Pp][Tt][1-9])(?:\.[^/]*)?(?:/|$))",
    r"[^/\\:\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]{0,254}",
    r"[^/\\:. \u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]",
    r"(?:/[^/\\:\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]{0,254}",
    r"[^/\\:. \u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069])*$",
);

impl FilePath {
    /// This path under `root`, joined one segment at a time. Each segment must be a plain name on this
    /// platform: the rules above already make it so, and this checks again because a join that leaves
    /// `root` (`C:x` or `\\?\` on Windows) is the one thing a download must never do.
    pub fn under(&self, root: &std::path::Path) -> Result<std::path::PathBuf, CoreError> {
        let mut joined = root.to_path_buf();
        for segment in self.0.split('/') {
            let mut components = std::path::Path::new(segment).components();
            match (components.next(), components.next()) {
                (Some(std::path::Component::Normal(name)), None) => joined.push(name),
                _ => {
                    return Err(CoreError::InvalidPath {
                        value: self.0.clone(),
                        reason: "is not a plain relative path on this platform",
                    });
                }
            }
        }
        Ok(joined)
    }

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
            "console.json",
            "com10.txt",
            "nullable/x",
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
            "C:evil",
            "C:/Windows/x",
            "a/stream.bin:hidden",
            "safe\u{202E}txt.exe",
            "a\u{2066}b",
            "dir./x",
            "x ",
            "NUL",
            "a/com1.txt",
            "lpt9",
        ] {
            assert!(bad.parse::<FilePath>().is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn accepted_paths_join_under_their_root() {
        let root = std::path::Path::new("out");
        let path: FilePath = "a/b/c.txt".parse().unwrap();
        assert_eq!(
            path.under(root).unwrap(),
            root.join("a").join("b").join("c.txt")
        );
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

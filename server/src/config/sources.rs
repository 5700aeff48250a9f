//! Where settings come from: `kiln.toml` (or `--config`) and `KILN_*` environment variables, read
//! strictly. A key kiln does not know is an error naming it, with the closest known name, since a typo
//! (`lisen = ...`) that is silently ignored starts a server on the default address with a fresh
//! administrator. Variables of kiln's other programs and of its tests share the prefix and are skipped.

use std::path::Path;

use figment::Figment;
use figment::error::Kind;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Deserializer};

use super::{ConfigError, RawSettings, config_error};

/// `KILN_*` variables that are not server settings: the CLI's (`KILN_SERVER`, `KILN_TOKEN`), the
/// config file's own (`KILN_CONFIG`, read by the command line), kiln-runner's, and those this server sets
/// for its embedded runner child.
const OTHER_PROGRAMS: &[&str] = &[
    "SERVER",
    "TOKEN",
    "CONFIG",
    "RUNNER_TOKEN",
    "EMBEDDED_RUNNER_URL",
    "EMBEDDED_RUNNER_SECRET",
    "EMBEDDED_RUNNER_CACHE",
    "EMBEDDED_RUNNER_ONNXRUNTIME_LIB",
];

/// Prefixes (after `KILN_`) of the variables kiln's tests and scripts read.
const TOOL_PREFIXES: &[&str] = &["TEST_", "ONNX_", "NODE_TESTS_"];

fn is_server_setting(variable: &str) -> bool {
    !OTHER_PROGRAMS.contains(&variable) && !TOOL_PREFIXES.iter().any(|p| variable.starts_with(p))
}

/// Reads the file (if any) and the environment, which wins.
pub(super) fn read(config_file: Option<&Path>) -> Result<RawSettings, ConfigError> {
    let mut figment = Figment::new();
    let file = match config_file {
        Some(path) if !path.is_file() => {
            return Err(config_error(
                "--config",
                format!("{} does not exist", path.display()),
            ));
        }
        Some(path) => Some(path.to_path_buf()),
        None if Path::new("kiln.toml").is_file() => Some("kiln.toml".into()),
        None => None,
    };
    if let Some(file) = &file {
        figment = figment.merge(Toml::file_exact(file));
    }
    figment = figment.merge(
        Env::prefixed("KILN_").filter(|key| is_server_setting(&key.as_str().to_uppercase())),
    );
    figment.extract().map_err(|e| explain(&e, file.as_deref()))
}

/// One line naming the setting and what is wrong with it.
fn explain(error: &figment::Error, file: Option<&Path>) -> ConfigError {
    let from_env = error
        .metadata
        .as_ref()
        .is_some_and(|m| m.name.contains("environment"));
    // As the operator wrote it: KILN_LISTEN in the environment, listen in the file.
    let spelled = |key: &str| {
        if from_env {
            format!("KILN_{}", key.to_uppercase())
        } else {
            key.to_owned()
        }
    };
    let name = |key: &str| {
        if from_env {
            spelled(key)
        } else {
            let file = file.map_or("kiln.toml".into(), |f| f.display().to_string());
            format!("{file}: {key}")
        }
    };
    match &error.kind {
        Kind::UnknownField(key, known) => {
            let hint = closest(key, known)
                .map(|k| format!(" (did you mean {}?)", spelled(k)))
                .unwrap_or_default();
            config_error(
                &name(key),
                format!("is not a kiln-server setting{hint}; docs/operations.md lists them"),
            )
        }
        kind => {
            let key = error
                .path
                .last()
                .map_or("configuration".to_owned(), |k| name(k));
            let problem = match kind {
                Kind::InvalidType(actual, expected) => {
                    format!("must be {} (got {actual})", in_words(expected))
                }
                other => other.to_string(),
            };
            config_error(&key, problem)
        }
    }
}

/// What serde expected, as the operator would say it.
fn in_words(expected: &str) -> &str {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number",
        "a boolean" | "bool" => "true or false",
        "path" | "a string" => "text",
        other => other,
    }
}

/// The known name nearest a mistyped one, when it is near enough to be what was meant.
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), *k))
        .filter(|(distance, k)| *distance <= 2.max(k.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

/// A text setting given as a number or a boolean (`KILN_LISTEN=8080` reads as the integer 8080) is
/// still text, so its own check can say what is wrong with it.
pub(super) fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        String(String),
        Integer(i128),
        Float(f64),
        Bool(bool),
    }
    Ok(Option::<Text>::deserialize(deserializer)?.map(|t| match t {
        Text::String(s) => s,
        Text::Integer(i) => i.to_string(),
        Text::Float(f) => f.to_string(),
        Text::Bool(b) => b.to_string(),
    }))
}

/// A list setting: a TOML array, or one string of comma-separated items (how a variable holds a list).
pub(super) fn list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        One(String),
        Many(Vec<String>),
    }
    Ok(Option::<List>::deserialize(deserializer)?.map(|l| match l {
        List::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        List::Many(items) => items,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_near_miss_suggests_the_setting_and_a_stranger_does_not() {
        let known = ["listen", "data_dir", "log_format", "storage_url"];
        assert_eq!(super::closest("lisen", &known), Some("listen"));
        assert_eq!(super::closest("logformat", &known), Some("log_format"));
        assert_eq!(super::closest("colour", &known), None);
    }

    #[test]
    fn other_programs_and_tools_share_the_prefix_without_being_settings() {
        for other in ["SERVER", "TOKEN", "TEST_DATABASE_URL", "ONNX_CORPUS"] {
            assert!(!super::is_server_setting(other), "{other}");
        }
        assert!(super::is_server_setting("LISTEN"));
        assert!(super::is_server_setting("LISEN"));
    }
}

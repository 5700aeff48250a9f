//! Where the CLI keeps its API tokens: `$XDG_CONFIG_HOME/kiln/credentials.json` (or `~/.config/...`),
//! one token per server, readable only by the user (0600). `KILN_TOKEN` overrides it.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::error::CliError;

#[derive(Debug, Default, Serialize)]
struct CredentialsFile {
    servers: BTreeMap<String, ServerCredentials>,
}

#[derive(Debug, Serialize)]
struct ServerCredentials {
    token: String,
}

pub fn path() -> Result<PathBuf, CliError> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .ok_or_else(|| {
            CliError::Usage("cannot find a config folder: set HOME or XDG_CONFIG_HOME".into())
        })?;
    Ok(base.join("kiln").join("credentials.json"))
}

fn read() -> Result<CredentialsFile, CliError> {
    let path = path()?;
    match std::fs::read(&path) {
        Ok(bytes) => parse(&bytes).map_err(|message| CliError::Config { path, message }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CredentialsFile::default()),
        Err(e) => Err(CliError::io(&path)(e)),
    }
}

/// Reads the file strictly, so a hand edit that misspells a key fails loudly instead of being ignored
/// (a token under a mistyped key would otherwise look like being signed out). The error is one line
/// naming the key; the caller adds the file.
fn parse(bytes: &[u8]) -> Result<CredentialsFile, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        format!("not valid JSON ({e}); fix it, or delete the file and run kiln login")
    })?;
    let Value::Object(top) = value else {
        return Err(
            r#"must hold a JSON object like {"servers": {"URL": {"token": "kiln_..."}}}"#
                .to_owned(),
        );
    };
    let mut file = CredentialsFile::default();
    for (key, value) in top {
        if key != "servers" {
            return Err(unknown_key("", &key, &["servers"]));
        }
        let Value::Object(servers) = value else {
            return Err(
                r#""servers" must be an object mapping each server's URL to {"token": "kiln_..."}"#
                    .to_owned(),
            );
        };
        for (server, entry) in servers {
            file.servers
                .insert(server.clone(), server_entry(&server, entry)?);
        }
    }
    Ok(file)
}

fn server_entry(server: &str, entry: Value) -> Result<ServerCredentials, String> {
    let at = format!("servers.{server:?}");
    if !(server.starts_with("http://") || server.starts_with("https://")) || server.ends_with('/') {
        return Err(format!(
            "{at}: a server is named by its URL without a trailing /, as --server takes it, e.g. http://127.0.0.1:8080"
        ));
    }
    let Value::Object(fields) = entry else {
        return Err(format!(
            r#"{at} must be an object like {{"token": "kiln_..."}}"#
        ));
    };
    let mut token = None;
    for (key, value) in fields {
        if key != "token" {
            return Err(unknown_key(&format!("{at}: "), &key, &["token"]));
        }
        match value {
            Value::String(text) if !text.trim().is_empty() => token = Some(text),
            _ => {
                return Err(format!(
                    "{at}.token must be an API token, as text (kiln_...)"
                ));
            }
        }
    }
    let token = token.ok_or_else(|| format!("{at} has no \"token\"; run kiln login again"))?;
    Ok(ServerCredentials { token })
}

fn unknown_key(at: &str, key: &str, known: &[&str]) -> String {
    let suggestion = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), *k))
        .filter(|(distance, k)| *distance <= 2.max(k.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| format!(" (did you mean {k:?}?)"))
        .unwrap_or_else(|| format!(" (known: {})", known.join(", ")));
    format!("{at}unknown key {key:?}{suggestion}")
}

fn write(file: &CredentialsFile) -> Result<PathBuf, CliError> {
    let path = path()?;
    let folder = path.parent().expect("credentials live in a folder");
    std::fs::create_dir_all(folder).map_err(CliError::io(folder))?;
    let temporary = path.with_extension("json.tmp");
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(CliError::io(&temporary))?;
    out.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(CliError::io(&temporary))?;
    out.write_all(&serde_json::to_vec_pretty(file).expect("credentials serialize"))
        .map_err(CliError::io(&temporary))?;
    std::fs::rename(&temporary, &path).map_err(CliError::io(&path))?;
    Ok(path)
}

/// The token for `server`: KILN_TOKEN, else the one `kiln login` stored.
pub fn token_for(server: &str) -> Result<Option<String>, CliError> {
    if let Some(token) = std::env::var("KILN_TOKEN").ok().filter(|t| !t.is_empty()) {
        return Ok(Some(token));
    }
    Ok(read()?.servers.get(server).map(|c| c.token.clone()))
}

pub fn store(server: &str, token: &str) -> Result<PathBuf, CliError> {
    let mut file = read()?;
    file.servers.insert(
        server.to_owned(),
        ServerCredentials {
            token: token.to_owned(),
        },
    );
    write(&file)
}

/// Forgets the token for `server`; false when there was none.
pub fn forget(server: &str) -> Result<bool, CliError> {
    let mut file = read()?;
    let had = file.servers.remove(server).is_some();
    if had {
        write(&file)?;
    }
    Ok(had)
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn error(text: &str) -> String {
        parse(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_valid_file_reads_and_an_empty_object_is_no_tokens() {
        let file = parse(br#"{"servers": {"http://h:8080": {"token": "kiln_x"}}}"#).unwrap();
        assert_eq!(file.servers["http://h:8080"].token, "kiln_x");
        assert!(parse(b"{}").unwrap().servers.is_empty());
    }

    #[test]
    fn unknown_keys_are_named_with_the_nearest_known_one() {
        assert_eq!(
            error(r#"{"sever": {}}"#),
            r#"unknown key "sever" (did you mean "servers"?)"#
        );
        assert_eq!(
            error(r#"{"servers": {"http://h": {"tokn": "kiln_x"}}}"#),
            r#"servers."http://h": unknown key "tokn" (did you mean "token"?)"#
        );
        assert_eq!(
            error(r#"{"colour": 1}"#),
            r#"unknown key "colour" (known: servers)"#
        );
    }

    #[test]
    fn every_wrong_value_gets_one_line_naming_its_key() {
        for (text, names) in [
            ("[1]", "JSON object"),
            ("{", "not valid JSON"),
            (r#"{"servers": []}"#, r#""servers" must be"#),
            (
                r#"{"servers": {"h:8080": {"token": "t"}}}"#,
                r#"servers."h:8080""#,
            ),
            (
                r#"{"servers": {"http://h/": {"token": "t"}}}"#,
                "trailing /",
            ),
            (
                r#"{"servers": {"http://h": "kiln_x"}}"#,
                r#"servers."http://h" must be"#,
            ),
            (
                r#"{"servers": {"http://h": {"token": 5}}}"#,
                r#"servers."http://h".token"#,
            ),
            (
                r#"{"servers": {"http://h": {"token": ""}}}"#,
                r#"servers."http://h".token"#,
            ),
            (r#"{"servers": {"http://h": {}}}"#, r#"has no "token""#),
        ] {
            let message = error(text);
            assert!(message.contains(names), "{text}: {message}");
            assert_eq!(message.lines().count(), 1, "{text}: {message}");
        }
    }
}

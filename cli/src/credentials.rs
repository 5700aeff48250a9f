//! Where the CLI keeps its API tokens: `$XDG_CONFIG_HOME/kiln/credentials.json` (or `~/.config/...`),
//! one token per server, readable only by the user (0600). `KILN_TOKEN` overrides it.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::CliError;

#[derive(Debug, Default, Serialize, Deserialize)]
struct CredentialsFile {
    #[serde(default)]
    servers: BTreeMap<String, ServerCredentials>,
}

#[derive(Debug, Serialize, Deserialize)]
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
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            CliError::Usage(format!(
                "{} is not valid: {e}; delete it and run kiln login",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CredentialsFile::default()),
        Err(e) => Err(CliError::io(&path)(e)),
    }
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

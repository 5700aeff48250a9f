//! `kiln login/logout/whoami`, `kiln token ...`, `kiln user create`.

use std::io::{BufRead, IsTerminal};

use comfy_table::Table;
use comfy_table::presets::NOTHING;
use kiln_core::NamespaceName;
use kiln_core::api::{
    AccessToken, CreateTokenRequest, CreateUserRequest, CreatedToken, Me, TokenInfo, TokenRequest,
    UserInfo,
};

use super::browse::print_json;
use crate::client::ApiClient;
use crate::credentials;
use crate::error::CliError;

/// Reads one line from stdin (a token or password passed with `-`).
fn read_stdin_line(what: &str) -> Result<String, CliError> {
    if std::io::stdin().is_terminal() {
        eprint!("{what}: ");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(CliError::io("stdin"))?;
    let line = line.trim().to_owned();
    if line.is_empty() {
        return Err(CliError::Usage(format!("no {what} given on stdin")));
    }
    Ok(line)
}

/// `kiln login --token TOKEN|-` or `kiln login --username NAME` (password on stdin): checks the credential
/// and stores an API token for this server.
pub async fn login(
    client: &ApiClient,
    token: Option<String>,
    username: Option<String>,
    json: bool,
) -> Result<(), CliError> {
    let token = match (token, username) {
        (Some(token), None) => {
            if token == "-" {
                read_stdin_line("token")?
            } else {
                token
            }
        }
        (None, Some(username)) => {
            let password = read_stdin_line("password")?;
            let access: AccessToken = client
                .post_json(
                    "/auth/token",
                    &TokenRequest {
                        token: None,
                        username: Some(username),
                        password: Some(password),
                    },
                )
                .await?;
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "this machine".to_owned());
            let created: CreatedToken = client
                .with_token(access.access_token)
                .post_json(
                    "/tokens",
                    &CreateTokenRequest {
                        name: format!("kiln login on {host}"),
                        scopes: vec!["admin".into()],
                        expires_in_days: Some(90),
                    },
                )
                .await?;
            created.token
        }
        _ => {
            return Err(CliError::Usage(
                "log in with --token TOKEN (or - to read it from stdin), or --username NAME".into(),
            ));
        }
    };
    let me: Me = client.with_token(token.clone()).get_json("/me").await?;
    let path = credentials::store(client.server(), &token)?;
    if json {
        print_json(&serde_json::json!({
            "server": client.server(),
            "user": me.name,
            "credentials": path,
        }));
        return Ok(());
    }
    println!(
        "logged in to {} as {} (token stored in {})",
        client.server(),
        me.name,
        path.display()
    );
    Ok(())
}

pub fn logout(client: &ApiClient, json: bool) -> Result<(), CliError> {
    let forgotten = credentials::forget(client.server())?;
    if json {
        print_json(&serde_json::json!({
            "server": client.server(),
            "logged_out": forgotten,
        }));
    } else if forgotten {
        println!("logged out of {}", client.server());
    } else {
        println!("no stored token for {}", client.server());
    }
    Ok(())
}

pub async fn whoami(client: &ApiClient, json: bool) -> Result<(), CliError> {
    let me: Me = client.get_json("/me").await?;
    if json {
        print_json(&me);
        return Ok(());
    }
    println!(
        "{}{}",
        me.name,
        if me.admin { " (administrator)" } else { "" }
    );
    println!("scopes: {}", me.scopes.join(" "));
    for m in &me.memberships {
        println!("  {:<24} {}", m.name, m.role.as_str());
    }
    Ok(())
}

pub async fn token_create(
    client: &ApiClient,
    name: String,
    scopes: Vec<String>,
    expires_in_days: Option<u32>,
    json: bool,
) -> Result<(), CliError> {
    let created: CreatedToken = client
        .post_json(
            "/tokens",
            &CreateTokenRequest {
                name,
                scopes,
                expires_in_days,
            },
        )
        .await?;
    if json {
        print_json(&created);
        return Ok(());
    }
    eprintln!(
        "created token {} ({}); it is shown only now:",
        created.info.id,
        created.info.scopes.join(" ")
    );
    println!("{}", created.token);
    Ok(())
}

pub async fn token_list(client: &ApiClient, json: bool) -> Result<(), CliError> {
    let tokens: Vec<TokenInfo> = client.get_all("/tokens").await?;
    if json {
        print_json(&tokens);
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(NOTHING).set_header([
        "ID",
        "NAME",
        "SCOPES",
        "EXPIRES",
        "LAST USED",
        "STATE",
    ]);
    let date = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map_or("-".to_owned(), |t| t.format("%Y-%m-%d %H:%M").to_string())
    };
    for t in &tokens {
        let state = if t.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        };
        table.add_row(vec![
            t.id.clone(),
            t.name.clone(),
            t.scopes.join(" "),
            date(t.expires_at),
            date(t.last_used_at),
            state.into(),
        ]);
    }
    println!("{table}");
    Ok(())
}

pub async fn token_revoke(client: &ApiClient, id: String, json: bool) -> Result<(), CliError> {
    client.delete(&format!("/tokens/{id}")).await?;
    if json {
        print_json(&serde_json::json!({ "revoked": id }));
    } else {
        println!("revoked token {id}");
    }
    Ok(())
}

pub async fn user_create(
    client: &ApiClient,
    name: NamespaceName,
    admin: bool,
    password_stdin: bool,
    json: bool,
) -> Result<(), CliError> {
    let password = if password_stdin {
        Some(read_stdin_line("password")?)
    } else {
        None
    };
    let user: UserInfo = client
        .post_json(
            "/users",
            &CreateUserRequest {
                name,
                password,
                admin,
            },
        )
        .await?;
    if json {
        print_json(&user);
        return Ok(());
    }
    println!(
        "created user {}{} with namespace {}",
        user.name,
        if user.admin { " (administrator)" } else { "" },
        user.name
    );
    Ok(())
}

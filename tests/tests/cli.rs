//! The CLI's habits end to end: `--json` on every command, `ls` with `list` accepted, the documented exit
//! codes, messages that say what to run, and strict credentials files.

use std::process::Output;

use kiln_tests::{ADMIN_TOKEN, Backend, Server, assert_ok, settled, stderr, stdout};
use serde_json::Value;

fn parsed(output: &Output) -> Value {
    assert_ok(output);
    serde_json::from_str(&stdout(output))
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(output)))
}

#[test]
fn every_command_prints_json_with_the_flag() {
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("notes.txt");
    std::fs::write(&file, b"any artifact").unwrap();
    let file = file.to_str().unwrap();

    let pushed = server.kiln(&["push", file, "acme/notes:1", "--json"]);
    let push = parsed(&pushed);
    assert_eq!(push["pushed"], "acme/notes:1");
    assert_eq!(push["outcome"], "created");
    assert_eq!(push["blobs_uploaded"], 1);
    assert_eq!(push["version"]["version"], "1");
    assert!(
        !stderr(&pushed).contains("uploading"),
        "no progress bar when not on a terminal: {}",
        stderr(&pushed)
    );
    let again = server.kiln_json(&["push", file, "acme/notes:1"]);
    assert_eq!(again["outcome"], "already_present");
    settled(&server, "acme/notes:1");

    let out = work.path().join("out");
    let out = out.to_str().unwrap();
    let pull = server.kiln_json(&["pull", "acme/notes:1", "-o", out]);
    assert_eq!(
        (pull["files"].clone(), pull["downloaded"].clone()),
        (1.into(), 1.into())
    );
    assert_eq!(pull["verified_manifest"], false);
    assert_eq!(
        server.kiln_json(&["pull", "acme/notes:1", "-o", out])["up_to_date"],
        1
    );

    // The global flag goes before or after the command.
    assert_ok(&server.kiln(&["--json", "ls"]));
    for listing in [
        vec!["ls"],
        vec!["list"],
        vec!["namespace", "ls"],
        vec!["namespace", "list"],
        vec!["token", "ls"],
        vec!["token", "list"],
        vec!["alias", "ls", "acme/notes"],
        vec!["alias", "list", "acme/notes"],
        vec!["namespace", "members", "acme"],
        vec!["runners"],
    ] {
        assert!(server.kiln_json(&listing).is_array(), "{listing:?}");
    }
    assert_eq!(
        server.kiln_json(&["ls", "acme/notes"])["versions"][0]["version"],
        "1"
    );
    assert_eq!(
        server.kiln_json(&["show", "acme/notes:1"])["status"],
        "ready"
    );
    assert_eq!(server.kiln_json(&["whoami"])["admin"], true);

    let alias = server.kiln_json(&["alias", "set", "acme/notes", "production", "1"]);
    assert_eq!(alias["sequence"], 1);
    assert!(
        server
            .kiln_json(&["alias", "history", "acme/notes", "production"])
            .is_array()
    );
    let manifest = server.kiln_json(&["manifest", "acme/notes@production"]);
    assert!(manifest["jws"].is_string() && manifest["payload"].is_object());
    let verified = server.kiln_json(&["verify", "acme/notes@production"]);
    assert_eq!(verified["verified"], "acme/notes@production");
    assert_eq!(verified["manifest"]["version"], "1");
    let by_alias = server.kiln_json(&["pull", "acme/notes@production", "-o", out]);
    assert_eq!(by_alias["verified_manifest"], true);

    assert_eq!(
        server.kiln_json(&["namespace", "create", "team"])["name"],
        "team"
    );
    assert_eq!(server.kiln_json(&["user", "create", "bob"])["name"], "bob");
    let member = server.kiln_json(&["namespace", "add-member", "team", "bob", "reader"]);
    assert_eq!(member["role"], "reader");
    let removed = server.kiln_json(&["namespace", "remove-member", "team", "bob"]);
    assert_eq!(removed["removed"], "bob");
    let settings = server.kiln_json(&["namespace", "settings", "team"]);
    assert_eq!(settings["store_unsafe_pickles"], false);
    let visibility = server.kiln_json(&["visibility", "acme/notes", "public"]);
    assert_eq!(visibility["visibility"], "public");
    let token = server.kiln_json(&["token", "create", "ci", "--scope", "read"]);
    assert!(token["token"].as_str().unwrap().starts_with("kiln_"));
    let id = token["id"].as_str().unwrap();
    assert_eq!(server.kiln_json(&["token", "revoke", id])["revoked"], id);

    assert_ok(&server.kiln(&["push", file, "acme/notes:2"]));
    let deleted = server.kiln_json(&["rm", "acme/notes:2", "--yes"]);
    assert_eq!(
        deleted,
        serde_json::json!({"deleted": "acme/notes:2", "kind": "version"})
    );

    let login = server
        .kiln_without_token(&["login", "--token", ADMIN_TOKEN, "--json"])
        .output()
        .unwrap();
    assert_eq!(
        parsed(&login)["user"],
        server.kiln_json(&["whoami"])["name"]
    );
    let logout = server
        .kiln_without_token(&["logout", "--json"])
        .output()
        .unwrap();
    assert_eq!(parsed(&logout)["logged_out"], true);
}

#[test]
fn exit_codes_are_documented_and_kept() {
    let help = std::process::Command::new(kiln_tests::binary("kiln"))
        .arg("--help")
        .output()
        .unwrap();
    assert_ok(&help);
    let text = stdout(&help);
    assert!(text.contains("Exit codes:"), "{text}");
    for code in 0..=6 {
        assert!(text.contains(&format!("\n  {code}  ")), "{code} in: {text}");
    }

    let server = Server::start(Backend::Embedded);
    let code = |output: &Output| output.status.code();
    assert_eq!(code(&server.kiln(&["ls", "--no-such-flag"])), Some(2));
    assert_eq!(code(&server.kiln(&["show", "acme/none"])), Some(4));
    assert_eq!(
        code(&server.kiln(&["show", "acme/none@production"])),
        Some(4)
    );
    let unreachable = server.kiln(&["ls", "--server", "http://127.0.0.1:9"]);
    assert_eq!(code(&unreachable), Some(6), "{}", stderr(&unreachable));

    // Signed out: the message says what to run, not which HTTP header to send.
    let signed_out = server.kiln_without_token(&["whoami"]).output().unwrap();
    assert_eq!(code(&signed_out), Some(3));
    let message = stderr(&signed_out);
    assert!(
        message.contains("run kiln login --token TOKEN"),
        "{message}"
    );
    assert!(
        !message.contains("Authorization") && !message.contains("Bearer"),
        "{message}"
    );
}

#[test]
fn the_credentials_file_is_strict() {
    let server = Server::start(Backend::Embedded);
    let login = server
        .kiln_without_token(&["login", "--token", ADMIN_TOKEN])
        .output()
        .unwrap();
    assert_ok(&login);
    let path = stdout(&login)
        .rsplit_once("token stored in ")
        .map(|(_, p)| p.trim().trim_end_matches(')').to_owned())
        .expect("login names the file");
    let valid = std::fs::read_to_string(&path).unwrap();

    for (text, expected) in [
        (
            valid.replacen("\"servers\"", "\"sever\"", 1),
            "unknown key \"sever\" (did you mean \"servers\"?)".to_owned(),
        ),
        (
            valid.replacen("\"token\"", "\"tokn\"", 1),
            "unknown key \"tokn\" (did you mean \"token\"?)".to_owned(),
        ),
        (
            format!(r#"{{"servers": {{"{}": {{"token": 7}}}}}}"#, server.url),
            format!("servers.\"{}\".token must be an API token", server.url),
        ),
    ] {
        std::fs::write(&path, text).unwrap();
        let whoami = server.kiln_without_token(&["whoami"]).output().unwrap();
        assert_eq!(whoami.status.code(), Some(2), "{}", stderr(&whoami));
        let message = stderr(&whoami);
        assert_eq!(message.lines().count(), 1, "one line: {message}");
        assert!(message.contains(&path), "names the file: {message}");
        assert!(message.contains(&expected), "{expected} in: {message}");
    }
    std::fs::write(&path, valid).unwrap();
    assert_ok(&server.kiln_without_token(&["whoami"]).output().unwrap());
}

/// `kiln ls` asks the server to filter and follows its cursor pages: `--limit` stops early and says how
/// to see more, `--all` reads every page.
#[test]
fn ls_filters_on_the_server_and_pages() {
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("w.bin");
    std::fs::write(&file, b"weights").unwrap();
    for i in 0..5 {
        assert_ok(&server.kiln(&["push", file.to_str().unwrap(), &format!("acme/enc-{i}:1")]));
    }
    assert_ok(&server.kiln(&["push", file.to_str().unwrap(), "acme/classifier:1"]));
    let names = |args: &[&str]| -> Vec<String> {
        server
            .kiln_json(args)
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(&["ls", "--prefix", "enc-", "--limit", "2"]),
        ["enc-0", "enc-1"]
    );
    let limited = server.kiln(&["ls", "--prefix", "enc-", "--limit", "2"]);
    assert_ok(&limited);
    assert!(
        stderr(&limited).contains("--all lists every one"),
        "{}",
        stderr(&limited)
    );
    assert_eq!(names(&["ls", "--prefix", "enc-", "--all"]).len(), 5);
    assert_eq!(
        names(&["ls", "acme", "--search", "classif"]),
        ["classifier"]
    );
    let wrong = server.kiln(&["ls", "acme/classifier", "--tag", "nlp"]);
    assert_eq!(wrong.status.code(), Some(2), "{}", stderr(&wrong));
}

/// Piped into a reader that leaves early (`| head`, `| grep -q`), the CLI ends quietly: no panic message.
#[test]
fn a_reader_that_leaves_early_gets_no_panic() {
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("w.bin"), b"weights").unwrap();
    let pushed = server.kiln(&["push", work.path().to_str().unwrap(), "acme/piped:1"]);
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    for _ in 0..3 {
        let mut child = server
            .kiln_command(&["show", "acme/piped:1", "--json"])
            .spawn()
            .unwrap();
        // The reader is gone before the CLI writes a byte.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

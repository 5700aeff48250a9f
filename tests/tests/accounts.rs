//! Accounts end to end: the real CLI signs in, pushes and pulls with real tokens against a real server.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use kiln_tests::{Backend, Server, assert_ok, stderr, stdout};

fn with_stdin(mut command: std::process::Command, input: &str) -> std::process::Output {
    let mut child = command.stdin(Stdio::piped()).spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_user_signs_in_pushes_privately_and_shares_publicly() {
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model.onnx");
    std::fs::write(&model, b"onnx bytes").unwrap();

    // The administrator creates alice, with a password.
    let created = with_stdin(
        server.kiln_command(&["user", "create", "alice", "--password-stdin"]),
        "alice's long password\n",
    );
    assert_ok(&created);

    // alice signs in with her password; the CLI stores a token only she can read.
    let login = with_stdin(
        server.kiln_without_token(&["login", "--username", "alice"]),
        "alice's long password\n",
    );
    assert_ok(&login);
    assert!(stdout(&login).contains("as alice"), "{}", stdout(&login));
    let credentials = server.dir.path().join("home/.config/kiln/credentials.json");
    let mode = std::fs::metadata(&credentials)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the stored token is private to the user");
    let whoami = server.kiln_without_token(&["whoami"]).output().unwrap();
    assert!(stdout(&whoami).starts_with("alice"), "{}", stdout(&whoami));

    // She pushes to her own namespace; the model is private by default.
    let push = server
        .kiln_without_token(&["push", model.to_str().unwrap(), "alice/private-model:1"])
        .output()
        .unwrap();
    assert_ok(&push);
    let (status, _) = server.get_json_anonymous("/api/v1/models/alice/private-model");
    assert_eq!(
        status, 404,
        "a private model is invisible to anonymous callers"
    );
    let out = work.path().join("out");
    let pull = server
        .kiln_without_token(&["pull", "alice/private-model:1", "-o", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_ok(&pull);
    assert_eq!(
        std::fs::read(out.join("model.onnx")).unwrap(),
        b"onnx bytes"
    );

    // She may not push into someone else's namespace.
    let foreign = server
        .kiln_without_token(&["push", model.to_str().unwrap(), "admin/intrusion:1"])
        .output()
        .unwrap();
    assert_eq!(foreign.status.code(), Some(3), "{}", stderr(&foreign));
    assert!(
        stderr(&foreign).contains("this needs write access to admin"),
        "{}",
        stderr(&foreign)
    );

    // Made public, anyone can pull it without signing in.
    assert_ok(
        &server
            .kiln_without_token(&["visibility", "alice/private-model", "public"])
            .output()
            .unwrap(),
    );
    let anonymous = server
        .kiln_without_token(&[
            "pull",
            "alice/private-model:1",
            "-o",
            work.path().join("anon").to_str().unwrap(),
        ])
        .env("HOME", work.path())
        .output()
        .unwrap();
    assert_ok(&anonymous);

    // A token made for CI works through KILN_TOKEN, and stops working once revoked.
    let token = server
        .kiln_without_token(&["token", "create", "ci", "--scope", "read"])
        .output()
        .unwrap();
    assert_ok(&token);
    let ci_token = stdout(&token).trim().to_owned();
    assert!(ci_token.starts_with("kiln_"));
    let list = server
        .kiln_without_token(&["token", "list", "--json"])
        .output()
        .unwrap();
    let tokens: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
    let ci = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap();
    assert!(
        !stdout(&list).contains(&ci_token),
        "listing never shows a token"
    );
    let as_ci = server
        .kiln_without_token(&["whoami"])
        .env("KILN_TOKEN", &ci_token)
        .output()
        .unwrap();
    assert!(
        stdout(&as_ci).contains("scopes: read"),
        "{}",
        stdout(&as_ci)
    );
    let read_only_push = server
        .kiln_without_token(&["push", model.to_str().unwrap(), "alice/private-model:2"])
        .env("KILN_TOKEN", &ci_token)
        .output()
        .unwrap();
    assert_eq!(
        read_only_push.status.code(),
        Some(3),
        "a read token cannot push: {}",
        stderr(&read_only_push)
    );
    assert_ok(
        &server
            .kiln_without_token(&["token", "revoke", ci["id"].as_str().unwrap()])
            .output()
            .unwrap(),
    );
    let revoked = server
        .kiln_without_token(&["whoami"])
        .env("KILN_TOKEN", &ci_token)
        .output()
        .unwrap();
    assert_eq!(revoked.status.code(), Some(3));
    assert!(
        stderr(&revoked).contains("this token was revoked"),
        "{}",
        stderr(&revoked)
    );

    // The administrator makes an organisation and gives alice write access there; she can then push to it.
    assert_ok(&server.kiln(&["namespace", "create", "acme"]));
    assert_ok(&server.kiln(&["namespace", "add-member", "acme", "alice", "writer"]));
    let members = server.kiln(&["namespace", "members", "acme"]);
    assert_ok(&members);
    assert!(
        stdout(&members).contains("alice") && stdout(&members).contains("writer"),
        "{}",
        stdout(&members)
    );
    let listed = server.kiln(&["namespace", "ls", "--json"]);
    let names: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert!(
        names
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == "acme")
    );
    assert_ok(
        &server
            .kiln_without_token(&["push", model.to_str().unwrap(), "acme/shared:1"])
            .output()
            .unwrap(),
    );
    // A writer may not manage members; removing her takes her access away.
    let not_admin = server
        .kiln_without_token(&["namespace", "add-member", "acme", "alice", "admin"])
        .output()
        .unwrap();
    assert_eq!(not_admin.status.code(), Some(3), "{}", stderr(&not_admin));
    assert_ok(&server.kiln(&["namespace", "remove-member", "acme", "alice"]));
    let removed = server
        .kiln_without_token(&["push", model.to_str().unwrap(), "acme/shared:2"])
        .output()
        .unwrap();
    assert_eq!(removed.status.code(), Some(3), "{}", stderr(&removed));

    // Logging out forgets the stored token; commands then say how to sign in.
    assert_ok(&server.kiln_without_token(&["logout"]).output().unwrap());
    let signed_out = server.kiln_without_token(&["whoami"]).output().unwrap();
    assert!(
        stderr(&signed_out).contains("kiln login --token"),
        "{}",
        stderr(&signed_out)
    );

    // No secret reaches the server's log.
    let log = server.log();
    for secret in [
        kiln_tests::ADMIN_TOKEN,
        ci_token.as_str(),
        "alice's long password",
    ] {
        assert!(!log.contains(secret), "a secret leaked into the server log");
    }

    // Every mutation is in the audit log, with who made it.
    let (status, audit) = server.get_json("/api/v1/audit?limit=50");
    assert_eq!(status, 200);
    let entries: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("admin", "user.create"),
        ("alice", "token.create"),
        ("alice", "version.create"),
        ("alice", "model.visibility"),
        ("alice", "token.revoke"),
    ] {
        assert!(
            entries
                .iter()
                .any(|(a, b)| a == expected.0 && b == expected.1),
            "{expected:?} missing from the audit log: {entries:?}"
        );
    }
}

#[test]
fn the_first_start_prints_a_one_time_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(kiln_tests::binary("kiln-server"))
        .current_dir(dir.path())
        .env("KILN_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("KILN_BOOTSTRAP_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut text = String::new();
    let mut buffer = [0u8; 4096];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !text.contains("kiln login --token") && std::time::Instant::now() < deadline {
        let n = std::io::Read::read(&mut out, &mut buffer).unwrap();
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
    child.kill().ok();
    child.wait().ok();
    let token = text
        .split_whitespace()
        .find(|w| w.starts_with("kiln_"))
        .unwrap_or_else(|| panic!("no token printed: {text}"));
    assert_eq!(token.len(), 5 + 64);
    // Only its hash is stored.
    let db = std::fs::read(dir.path().join("kiln-data/kiln.db")).unwrap();
    assert!(
        !String::from_utf8_lossy(&db).contains(token),
        "the token itself must not be stored"
    );
}

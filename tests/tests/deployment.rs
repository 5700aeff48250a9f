//! End to end, as a deployment system sees it: aliases moved with the real CLI, manifests verified with a
//! sequence state, and pulls by alias that trust only the signed manifest's digests.

use std::path::Path;
use std::time::{Duration, Instant};

use kiln_tests::{Backend, Server, assert_ok, settled, stderr, stdout, tree, write_mlp};
use serde_json::Value;

/// Pushes a small ONNX model (two different graphs for two versions) and waits until it is ready.
fn push_ready(server: &Server, work: &Path, reference: &str, with_identity: bool) {
    let folder = work.join(reference.replace(['/', ':'], "-"));
    write_mlp(&folder, with_identity);
    assert_ok(&server.kiln(&[
        "push",
        folder.to_str().unwrap(),
        reference,
        "--variants",
        "fp32",
    ]));
    assert_eq!(settled(server, reference)["status"], "ready");
}

/// The CLI's message for a refusal, without its `error: ` prefix.
fn refused(output: &std::process::Output) -> String {
    assert!(
        !output.status.success(),
        "expected a refusal, got: {}",
        stdout(output)
    );
    let message = stderr(output);
    message
        .strip_prefix("error: ")
        .unwrap_or_else(|| panic!("not a CLI error: {message}"))
        .to_owned()
}

#[test]
fn pulling_by_alias_verifies_the_manifest_and_every_blob() {
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    push_ready(&server, work.path(), "acme/m:1", false);
    push_ready(&server, work.path(), "acme/m:2", true);

    let set = server.kiln(&["alias", "set", "acme/m", "production", "1"]);
    assert_ok(&set);
    assert_eq!(
        stdout(&set).trim(),
        "acme/m@production → 1 (manifest sequence 1)"
    );
    let out = work.path().join("pulled");
    let pull = server.kiln(&[
        "pull",
        "acme/m@production",
        "--variant",
        "fp32",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_ok(&pull);
    assert!(
        stdout(&pull).contains("version 1 per its verified manifest"),
        "{}",
        stdout(&pull)
    );
    let old_jws = stdout(&server.kiln(&["manifest", "acme/m@production", "--jws"]));
    let old = work.path().join("old.jws");
    std::fs::write(&old, old_jws.trim()).unwrap();

    assert_ok(&server.kiln(&["alias", "set", "acme/m", "production", "2"]));
    let verify = server.kiln(&["verify", "acme/m@production"]);
    assert_ok(&verify);
    assert!(
        stdout(&verify)
            .starts_with("verified acme/m@production → 2 (sequence 2, 2 deployable variants"),
        "{}",
        stdout(&verify)
    );
    let show = server.kiln(&["show", "acme/m@production", "--json"]);
    assert_ok(&show);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&show)).unwrap()["version"],
        "2"
    );
    let ls = stdout(&server.kiln(&["alias", "ls", "acme/m"]));
    assert!(ls.contains("production") && ls.contains(" 2 "), "{ls}");
    let history = stdout(&server.kiln(&["alias", "history", "acme/m", "production", "--json"]));
    let history: Vec<Value> = serde_json::from_str(&history).unwrap();
    let moves: Vec<(Value, Value)> = history
        .iter()
        .map(|e| (e["from"].clone(), e["to"].clone()))
        .collect();
    assert_eq!(moves, [("1".into(), "2".into()), (Value::Null, "1".into())]);

    // Rolled back: the old manifest still verifies by signature, but this client has seen sequence 2.
    let (_, jwks) = server.get_json_anonymous("/.well-known/jwks.json");
    let jwks_file = work.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks.to_string()).unwrap();
    let state = server
        .dir
        .path()
        .join("home/.config/kiln/manifest-state.json");
    let rollback = server.kiln(&[
        "verify",
        old.to_str().unwrap(),
        "--jwks",
        jwks_file.to_str().unwrap(),
    ]);
    // The registry names itself in every manifest: without a configured public URL, by its first key.
    let issuer = format!("urn:kiln:{}", jwks["keys"][0]["kid"].as_str().unwrap());
    assert_eq!(
        refused(&rollback).trim(),
        format!(
            "the manifest does not verify: acme/m@production (issuer {issuer}) sequence 1 is older than sequence 2 already seen (state file {}); someone may be serving an old manifest",
            state.display()
        )
    );
    assert_eq!(rollback.status.code(), Some(5));
    // A fresh state file has seen nothing: the same JWS verifies there.
    let fresh = work.path().join("fresh-state.json");
    assert_ok(&server.kiln(&[
        "verify",
        old.to_str().unwrap(),
        "--jwks",
        jwks_file.to_str().unwrap(),
        "--state",
        fresh.to_str().unwrap(),
    ]));

    // Unknown kid: a key set that lacks the signing key.
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    let mut other = jwks.clone();
    other["keys"][0]["kid"] = "somebody-else".into();
    let other_file = work.path().join("other-jwks.json");
    std::fs::write(&other_file, other.to_string()).unwrap();
    let unknown = server.kiln(&[
        "verify",
        old.to_str().unwrap(),
        "--jwks",
        other_file.to_str().unwrap(),
    ]);
    assert_eq!(
        refused(&unknown).trim(),
        format!("the manifest does not verify: key {kid:?} is not in the JWK Set")
    );

    // An alias cannot name a version its scan refused (a pickle that would run code); nothing moves.
    let broken = work.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("model.pkl"),
        b"\x80\x02cos\nsystem\nX\x05\x00\x00\x00touch\x85R.",
    )
    .unwrap();
    assert_ok(&server.kiln(&["push", broken.to_str().unwrap(), "acme/m:broken"]));
    assert_eq!(settled(&server, "acme/m:broken")["status"], "failed");
    let at_failed = server.kiln(&["alias", "set", "acme/m", "production", "broken"]);
    assert_eq!(
        refused(&at_failed).trim(),
        "cannot point acme/m@production at broken: its safety scan refused it, so kiln serves none of it (kiln show acme/m:broken)"
    );
    assert_ok(&server.kiln(&["verify", "acme/m@production"]));

    // The blob's bytes change in the store after publishing (same length): the pull refuses and keeps
    // nothing.
    let manifest: Value =
        serde_json::from_str(&stdout(&server.kiln(&["manifest", "acme/m@production"]))).unwrap();
    let fp32 = manifest["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "fp32")
        .unwrap();
    let digest = fp32["sha256"].as_str().unwrap().to_owned();
    let hex = digest.trim_start_matches("sha256:");
    let blob = tree(server.dir.path())
        .into_iter()
        .find(|p| p.ends_with(&format!("blobs/sha256/{}/{hex}", &hex[..2])))
        .map(|p| server.dir.path().join(p))
        .expect("the blob is in the local store");
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let changed_out = work.path().join("changed");
    let changed = server.kiln(&[
        "pull",
        "acme/m@production",
        "--variant",
        "fp32",
        "-o",
        changed_out.to_str().unwrap(),
    ]);
    let message = refused(&changed);
    let actual = kiln_core::Sha256Digest::of(&bytes);
    assert_eq!(
        message.trim(),
        format!(
            "model.onnx: downloaded bytes hash to {actual}, but the signed manifest lists {digest}; the file was discarded"
        )
    );
    assert_eq!(changed.status.code(), Some(5));
    assert!(tree(&changed_out).is_empty(), "{:?}", tree(&changed_out));
}

/// A frozen mirror: a manifest past its expiry is refused, while the server itself re-issues the alias's
/// manifest (next sequence) before it expires, so deployments reading the server never freeze.
#[test]
fn an_expired_manifest_is_refused_and_the_server_reissues_in_time() {
    let server = Server::start_with(Backend::Embedded, &[("KILN_MANIFEST_VALIDITY_SECS", "6")]);
    let work = tempfile::tempdir().unwrap();
    push_ready(&server, work.path(), "acme/m:1", false);
    assert_ok(&server.kiln(&["alias", "set", "acme/m", "staging", "1"]));
    let issued = Instant::now();
    let jws = stdout(&server.kiln(&["manifest", "acme/m@staging", "--jws"]));
    let old = work.path().join("old.jws");
    std::fs::write(&old, jws.trim()).unwrap();
    let manifest: Value =
        serde_json::from_str(&stdout(&server.kiln(&["manifest", "acme/m@staging"]))).unwrap();
    assert_eq!(
        manifest["exp"].as_i64().unwrap() - manifest["iat"].as_i64().unwrap(),
        6
    );
    let (_, jwks) = server.get_json_anonymous("/.well-known/jwks.json");
    let jwks_file = work.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks.to_string()).unwrap();
    std::thread::sleep(Duration::from_secs(7).saturating_sub(issued.elapsed()));

    let frozen = server.kiln(&[
        "verify",
        old.to_str().unwrap(),
        "--jwks",
        jwks_file.to_str().unwrap(),
    ]);
    assert_eq!(
        refused(&frozen).trim(),
        "the manifest does not verify: it has expired"
    );
    let live = server.kiln(&["verify", "acme/m@staging"]);
    assert_ok(&live);
    let sequence: i64 = stdout(&live)
        .split("(sequence ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(sequence >= 2, "{}", stdout(&live));
    let out = work.path().join("out");
    assert_ok(&server.kiln(&["pull", "acme/m@staging", "-o", out.to_str().unwrap()]));
}

/// Staging and production registries with the same model names: one client verifies both with one
/// state file. Each manifest names its registry (`iss`: the configured public URL), and each registry's
/// sequences are kept apart, so production's sequence 1 after staging's sequence 2 is no rollback.
#[test]
fn two_registries_with_the_same_names_keep_their_own_sequences() {
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("shared-state.json");
    let mut issuers = Vec::new();
    for (name, versions) in [("staging", 2), ("production", 1)] {
        let url = format!("https://{name}.kiln.example");
        let server = Server::start_with(Backend::Embedded, &[("KILN_PUBLIC_URL", &url)]);
        for version in 1..=versions {
            let reference = format!("acme/m:{version}");
            push_ready(&server, work.path(), &reference, version == 2);
            assert_ok(&server.kiln(&[
                "alias",
                "set",
                "acme/m",
                "production",
                &version.to_string(),
            ]));
        }
        let verified = server.kiln(&[
            "verify",
            "acme/m@production",
            "--state",
            state.to_str().unwrap(),
        ]);
        assert_ok(&verified);
        assert!(
            stdout(&verified).contains(&format!("issued by {url}")),
            "{}",
            stdout(&verified)
        );
        issuers.push(url);
    }
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    for issuer in &issuers {
        assert!(
            saved["by_issuer"][issuer]["acme/m@production"]["sequence"].is_i64(),
            "{saved}"
        );
    }
}

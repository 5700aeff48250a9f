//! Webhooks through the real binaries: `kiln webhook` subscribes, and an event committed by a server that
//! is killed (SIGKILL) before it sends anything is delivered, signed, once it is back.

use std::time::{Duration, Instant};

use kiln_tests::{Backend, Server, assert_ok, receiver, settled, stdout, write_pseudo_random};
use serde_json::Value;

#[test]
fn an_event_committed_before_a_sigkill_is_delivered_after_the_restart() {
    // This server records events but sends none: whatever it committed is in the outbox when it dies.
    let mut server = Server::start_with(
        Backend::Embedded,
        &[
            ("KILN_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true"),
            ("KILN_WEBHOOK_DELIVERY", "false"),
        ],
    );
    let work = tempfile::tempdir().unwrap();
    let seed = work.path().join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    write_pseudo_random(&seed.join("w.bin"), 10_000, 1);
    assert_ok(&server.kiln(&["push", seed.to_str().unwrap(), "acme/seed:1"]));
    settled(&server, "acme/seed:1");
    let (base, inbox) = receiver::start();
    let url = format!("{base}/hook");
    let output = server.kiln(&[
        "webhook",
        "add",
        "acme/m",
        &url,
        "--events",
        "version.ready,alias.moved",
    ]);
    assert_ok(&output);
    let printed = stdout(&output);
    let secret = printed
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .unwrap_or_else(|| panic!("no secret printed: {printed}"))
        .to_owned();
    let listed = server.kiln(&["webhook", "ls", "acme"]);
    assert_ok(&listed);
    assert!(stdout(&listed).contains(&url), "{}", stdout(&listed));

    let model = work.path().join("m");
    std::fs::create_dir_all(&model).unwrap();
    write_pseudo_random(&model.join("w.bin"), 10_000, 2);
    assert_ok(&server.kiln(&["push", model.to_str().unwrap(), "acme/m:1"]));
    settled(&server, "acme/m:1");
    assert_ok(&server.kiln(&["alias", "set", "acme/m", "production", "1"]));
    std::thread::sleep(Duration::from_millis(300));
    assert!(inbox.lock().unwrap().is_empty());
    server.kill();

    server.set_env("KILN_WEBHOOK_DELIVERY", "true");
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    while inbox.lock().unwrap().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "deliveries did not arrive:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let received = inbox.lock().unwrap().clone();
    let types: Vec<String> = received
        .iter()
        .map(|request| {
            serde_json::from_slice::<Value>(&request.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        types,
        ["version.ready", "alias.moved"],
        "in the order they happened"
    );
    for request in &received {
        assert_eq!(request.path, "/hook");
        let header = |name: &str| request.header(name).unwrap();
        assert!(verifies(
            &secret,
            header("webhook-id"),
            header("webhook-timestamp"),
            std::str::from_utf8(&request.body).unwrap(),
            header("webhook-signature")
        ));
    }
    let subscription = server.kiln_json(&["webhook", "ls", "acme"])["subscriptions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deliveries = server.kiln_json(&["webhook", "deliveries", "acme", &subscription]);
    let states: Vec<&str> = deliveries["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["delivered", "delivered"]);
    let table = server.kiln(&["webhook", "deliveries", "acme", &subscription]);
    assert!(stdout(&table).contains("HTTP 204"), "{}", stdout(&table));
}

/// Standard Webhooks verification, written from the specification (HMAC-SHA256 over `id.timestamp.body`).
fn verifies(secret: &str, id: &str, timestamp: &str, body: &str, signature: &str) -> bool {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let engine = base64::engine::general_purpose::STANDARD;
    let key = engine
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = format!("v1,{}", engine.encode(mac.finalize().into_bytes()));
    signature.split(' ').any(|s| s == expected)
}

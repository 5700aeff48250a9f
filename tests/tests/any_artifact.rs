//! End to end: kiln's first job is to store, version, sign and serve. A version that is no model, a model
//! kiln cannot evaluate, and a push that asks for no variants all become ready, get signed manifests, and
//! are pulled by alias with every byte checked against the manifest.

use std::path::Path;

use kiln_tests::{Backend, Server, assert_ok, same_bytes, settled, stdout, write_mlp};
use serde_json::Value;

fn job<'a>(detail: &'a Value, kind: &str) -> &'a Value {
    detail["pipeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} job in {detail:#}"))
}

/// Sets the alias, verifies it, pulls by it, and checks the pulled files against `source`.
fn alias_verify_pull(server: &Server, model: &str, version: &str, source: &Path, variant: &[&str]) {
    assert_ok(&server.kiln(&["alias", "set", model, "production", version]));
    let alias = format!("{model}@production");
    let verify = server.kiln(&["verify", &alias]);
    assert_ok(&verify);
    assert!(
        stdout(&verify).starts_with(&format!("verified {alias} → {version}")),
        "{}",
        stdout(&verify)
    );
    let out = tempfile::tempdir().unwrap();
    let mut args = vec!["pull", alias.as_str(), "-o", out.path().to_str().unwrap()];
    args.extend_from_slice(variant);
    assert_ok(&server.kiln(&args));
    for entry in std::fs::read_dir(source).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(
            same_bytes(&source.join(&name), &out.path().join(&name)),
            "{name:?} came back different"
        );
    }
}

#[test]
fn a_tokenizer_folder_is_ready_signed_and_pulled_by_alias() {
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    let folder = work.path().join("tokenizer");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("tokenizer.json"),
        r#"{"version":"1.0","model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":[]}}"#,
    )
    .unwrap();
    std::fs::write(
        folder.join("tokenizer_config.json"),
        r#"{"model_max_length":512}"#,
    )
    .unwrap();
    assert_ok(&server.kiln(&["push", folder.to_str().unwrap(), "acme/tok:1"]));
    let detail = settled(&server, "acme/tok:1");
    assert_eq!(detail["status"], "ready", "{detail:#}");
    assert_eq!(job(&detail, "scan")["state"], "succeeded");
    assert_eq!(job(&detail, "convert")["state"], "skipped");
    let show = stdout(&server.kiln(&["show", "acme/tok:1"]));
    assert!(
        show.contains("not proven: convert skipped, optimize skipped"),
        "{show}"
    );
    alias_verify_pull(&server, "acme/tok", "1", &folder, &[]);
}

#[test]
fn a_model_in_a_domain_kiln_does_not_know_is_served_as_pushed() {
    use kiln_onnx::proto::OperatorSetIdProto;
    use prost::Message;
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    let folder = work.path().join("custom");
    write_mlp(&folder, false);
    let path = folder.join("model.onnx");
    let mut model =
        kiln_onnx::proto::ModelProto::decode(std::fs::read(&path).unwrap().as_slice()).unwrap();
    // One node moves to a vendor's domain (as an ONNX Runtime-optimized export's would).
    let graph = model.graph.as_mut().unwrap();
    graph.node[0].domain = Some("com.example.audio".to_owned());
    model.opset_import.push(OperatorSetIdProto {
        domain: Some("com.example.audio".to_owned()),
        version: Some(1),
    });
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    assert_ok(&server.kiln(&["push", folder.to_str().unwrap(), "acme/custom:1"]));
    let detail = settled(&server, "acme/custom:1");
    assert_eq!(detail["status"], "ready", "{detail:#}");
    let optimize = job(&detail, "optimize");
    assert_eq!(optimize["state"], "skipped");
    assert!(
        optimize["message"]
            .as_str()
            .unwrap()
            .starts_with("cannot validate: op "),
        "{optimize:#}"
    );
    let onnx = detail["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "onnx")
        .unwrap();
    assert_eq!(
        (onnx["origin"].as_str(), onnx["status"].as_str()),
        (Some("pushed"), Some("deployable"))
    );
    let show = stdout(&server.kiln(&["show", "acme/custom:1"]));
    assert!(show.contains("as pushed, not validated by kiln"), "{show}");
    alias_verify_pull(&server, "acme/custom", "1", &folder, &["--variant", "onnx"]);
}

#[test]
fn a_push_with_variants_none_is_stored_without_optimizing() {
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    let folder = work.path().join("mlp");
    write_mlp(&folder, false);
    for (version, flag) in [("1", "none"), ("2", "")] {
        let reference = format!("acme/plain:{version}");
        assert_ok(&server.kiln(&[
            "push",
            folder.to_str().unwrap(),
            &reference,
            "--variants",
            flag,
        ]));
        let detail = settled(&server, &reference);
        assert_eq!(detail["status"], "ready", "{detail:#}");
        let optimize = job(&detail, "optimize");
        assert_eq!(
            (optimize["state"].as_str(), optimize["message"].as_str()),
            (
                Some("skipped"),
                Some("no variants were asked for (kiln push --variants none)")
            )
        );
        let names: Vec<&str> = detail["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["onnx"], "{detail:#}");
    }
    let mixed = server.kiln(&[
        "push",
        folder.to_str().unwrap(),
        "acme/plain:3",
        "--variants",
        "none,fp16",
    ]);
    assert!(!mixed.status.success());
}

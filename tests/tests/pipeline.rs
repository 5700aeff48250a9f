//! End to end: a Hugging Face checkpoint pushed with the real CLI comes back as a proven ONNX model.

use kiln_onnx::sample_models;
use kiln_tests::{Backend, Server, assert_ok, settled, stderr, stdout};
use serde_json::Value;

#[test]
fn a_checkpoint_pushed_with_the_cli_is_pulled_back_as_onnx() {
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("tiny-gpt2");
    sample_models::gpt2(64, 32, 2, 4)
        .unwrap()
        .write_sharded(&source, 2)
        .unwrap();
    assert_ok(&server.kiln(&["push", source.to_str().unwrap(), "acme/tiny-gpt2:1"]));

    let detail = settled(&server, "acme/tiny-gpt2:1");
    assert_eq!(detail["status"], "ready", "{detail:#}");
    let jobs: Vec<(&str, &str)> = detail["pipeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["kind"].as_str().unwrap(), j["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        jobs[..3],
        [
            ("scan", "succeeded"),
            ("convert", "succeeded"),
            ("optimize", "succeeded")
        ]
    );
    // Then the embedded runner measures every deployable variant.
    let deployable = detail["variants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["status"] == "deployable")
        .count();
    assert_eq!(jobs[3..], vec![("benchmark", "succeeded"); deployable]);
    let variant = detail["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "onnx")
        .unwrap();
    assert!(variant["validation"]["rel_l2_error"].as_f64().unwrap() <= 1e-4);

    let human = server.kiln(&["show", "acme/tiny-gpt2:1"]);
    assert_ok(&human);
    assert!(stdout(&human).contains("deployable"), "{}", stdout(&human));

    let out = work.path().join("pulled");
    let pull = server.kiln(&[
        "pull",
        "acme/tiny-gpt2:1",
        "--variant",
        "onnx",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_ok(&pull);
    let bytes = std::fs::read(out.join("model.onnx")).unwrap();
    let (_, checked) = kiln_onnx::model_check::check(bytes.into()).unwrap();
    assert_eq!(checked.outputs[0].name, "logits");
    // The version's config.json comes beside the variant's model, as an exported ONNX folder has it.
    assert_eq!(
        std::fs::read(out.join("config.json")).unwrap(),
        std::fs::read(source.join("config.json")).unwrap()
    );
    // Files asked for by name are all that is written.
    let named = work.path().join("named");
    let only = server.kiln(&[
        "pull",
        "acme/tiny-gpt2:1",
        "--variant",
        "onnx",
        "--file",
        "model.onnx",
        "-o",
        named.to_str().unwrap(),
    ]);
    assert_ok(&only);
    assert!(named.join("model.onnx").is_file() && !named.join("config.json").exists());

    let missing = server.kiln(&[
        "pull",
        "acme/tiny-gpt2:1",
        "--variant",
        "pruned-50",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing)
            .contains("has no variant \"pruned-50\" (variants: fp16, fp32, int4, int8-b128, onnx)"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn a_hostile_checkpoint_is_refused_and_says_why() {
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("evil");
    std::fs::create_dir_all(&source).unwrap();
    // A pickle that would call builtins.eval when loaded with pickle.load.
    std::fs::write(
        source.join("pytorch_model.bin"),
        b"\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1q\x85R.",
    )
    .unwrap();
    assert_ok(&server.kiln(&["push", source.to_str().unwrap(), "acme/evil:1"]));
    let detail = settled(&server, "acme/evil:1");
    assert_eq!(detail["status"], "failed");
    let message = detail["pipeline"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("builtins") && message.contains("eval"),
        "{message}"
    );
    let human = server.kiln(&["show", "acme/evil:1"]);
    assert!(
        stdout(&human).contains("the pickle is refused"),
        "{}",
        stdout(&human)
    );
}

/// `--variants` chooses what the pipeline makes; a variant outside its tolerance is kept as rejected with
/// its numbers, and one within is pulled like any other.
#[test]
fn push_chooses_the_variants_and_a_rejected_one_says_why() {
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("tiny-llama");
    sample_models::llama(64, 32, 2, 4, 2)
        .unwrap()
        .write_safetensors(&source)
        .unwrap();
    let push = server.kiln(&[
        "push",
        source.to_str().unwrap(),
        "acme/tiny-llama:1",
        "--variants",
        "int8,pruned-90",
        "--tolerance",
        "pruned-90=0.001",
    ]);
    assert_ok(&push);
    let detail = settled(&server, "acme/tiny-llama:1");
    assert_eq!(detail["status"], "ready", "{detail:#}");
    let by_name = |name: &str| {
        detail["variants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_name("int8")["status"], "deployable");
    let pruned = by_name("pruned-90");
    assert_eq!(pruned["status"], "rejected", "{pruned:#}");
    assert_eq!(pruned["validation"]["tolerance_rel_l2"], 0.001);
    assert!(pruned["validation"]["rel_l2_error"].as_f64().unwrap() > 0.001);
    assert!(
        detail["variants"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["name"] != "fp16")
    );

    let out = work.path().join("int8");
    assert_ok(&server.kiln(&[
        "pull",
        "acme/tiny-llama:1",
        "--variant",
        "int8",
        "-o",
        out.to_str().unwrap(),
    ]));
    let (model, _) =
        kiln_onnx::model_check::check(std::fs::read(out.join("model.onnx")).unwrap().into())
            .unwrap();
    let ops: Vec<&str> = model
        .graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .filter_map(|n| n.op_type.as_deref())
        .collect();
    assert!(ops.contains(&"DequantizeLinear"), "{ops:?}");

    let bad = server.kiln(&[
        "push",
        source.to_str().unwrap(),
        "acme/tiny-llama:2",
        "--variants",
        "int5",
    ]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("\"int5\" is not a variant kiln makes"),
        "{}",
        stderr(&bad)
    );
}

/// A decoder saved in bf16, pushed with no options: its variants are the ones serving an LLM uses, made
/// weight by weight (int8 and int4 block-wise) besides fp16, and no fp32 copy of a 16-bit model; the
/// int4 one pulls as MatMulNBits.
#[test]
fn a_bf16_decoder_gets_block_wise_int8_and_int4_and_no_fp32_by_default() {
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("bf16-llama");
    sample_models::llama(64, 64, 2, 4, 2)
        .unwrap()
        .to_dtype(candle_core::DType::BF16)
        .unwrap()
        .write_sharded(&source, 2)
        .unwrap();
    assert_ok(&server.kiln(&["push", source.to_str().unwrap(), "acme/bf16-llama:1"]));
    let detail = settled(&server, "acme/bf16-llama:1");
    assert_eq!(detail["status"], "ready", "{detail:#}");
    let mut names: Vec<&str> = detail["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["fp16", "int4", "int8-b128", "onnx"], "{detail:#}");
    for variant in detail["variants"].as_array().unwrap() {
        if variant["name"] != "onnx" {
            assert_eq!(variant["status"], "deployable", "{variant:#}");
        }
    }
    let out = work.path().join("int4");
    assert_ok(&server.kiln(&[
        "pull",
        "acme/bf16-llama:1",
        "--variant",
        "int4",
        "-o",
        out.to_str().unwrap(),
    ]));
    let (model, _) =
        kiln_onnx::model_check::check(std::fs::read(out.join("model.onnx")).unwrap().into())
            .unwrap();
    let graph = model.graph.as_ref().unwrap();
    assert!(
        graph
            .node
            .iter()
            .any(|n| n.op_type.as_deref() == Some("MatMulNBits"))
    );
    assert!(
        graph
            .input
            .iter()
            .any(|i| i.name.as_deref() == Some("past_key_values.0.key"))
    );
}

/// A deployment system's view: the manifest verifies against the server's keys with the real CLI, and a
/// JWS with one changed payload byte is refused, offline, with the key set as a file.
#[test]
fn the_manifest_verifies_and_a_tampered_one_is_refused() {
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("tiny-bert");
    sample_models::bert(64, 32, 1, 4)
        .unwrap()
        .write_safetensors(&source)
        .unwrap();
    assert_ok(&server.kiln(&[
        "push",
        source.to_str().unwrap(),
        "acme/verified:1",
        "--variants",
        "fp32",
    ]));
    assert_eq!(settled(&server, "acme/verified:1")["status"], "ready");

    let verify = server.kiln(&["verify", "acme/verified:1"]);
    assert_ok(&verify);
    assert!(
        // Sequence 3: published when scanned, again with the variants when the pipeline ended, and again
        // when the embedded runner's benchmarks were in.
        stdout(&verify).starts_with("verified acme/verified:1 (sequence 3, 2 deployable variants"),
        "{}",
        stdout(&verify)
    );

    let document = server.kiln(&["manifest", "acme/verified:1"]);
    assert_ok(&document);
    let payload: Value = serde_json::from_str(&stdout(&document)).unwrap();
    assert_eq!(payload["model"], "acme/verified");
    for variant in payload["variants"].as_array().unwrap() {
        assert_eq!(
            variant["benchmarks"].as_array().unwrap().len(),
            2,
            "{variant}"
        );
    }

    let jws = stdout(&server.kiln(&["manifest", "acme/verified:1", "--jws"]))
        .trim()
        .to_owned();
    let (status, jwks) = server.get_json_anonymous("/.well-known/jwks.json");
    assert_eq!(status, 200);
    let jwks_file = work.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks.to_string()).unwrap();
    let good = work.path().join("good.jws");
    std::fs::write(&good, &jws).unwrap();
    assert_ok(&server.kiln(&[
        "verify",
        good.to_str().unwrap(),
        "--jwks",
        jwks_file.to_str().unwrap(),
    ]));

    // Change one character of the payload part.
    let mut parts: Vec<String> = jws.split('.').map(str::to_owned).collect();
    let flipped = if parts[1].ends_with('A') { 'B' } else { 'A' };
    parts[1].pop();
    parts[1].push(flipped);
    let bad = work.path().join("bad.jws");
    std::fs::write(&bad, parts.join(".")).unwrap();
    let refused = server.kiln(&[
        "verify",
        bad.to_str().unwrap(),
        "--jwks",
        jwks_file.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    assert_eq!(
        stderr(&refused).trim(),
        "error: the manifest does not verify: the signature does not match its content"
    );

    // Change one character in the middle of the signature.
    let mut parts: Vec<String> = jws.split('.').map(str::to_owned).collect();
    let middle = parts[2].len() / 2;
    let flipped = if &parts[2][middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    parts[2].replace_range(middle..=middle, flipped);
    std::fs::write(&bad, parts.join(".")).unwrap();
    let refused = server.kiln(&[
        "verify",
        bad.to_str().unwrap(),
        "--jwks",
        jwks_file.to_str().unwrap(),
    ]);
    assert_eq!(
        stderr(&refused).trim(),
        "error: the manifest does not verify: the signature does not match its content"
    );
    assert_eq!(refused.status.code(), Some(5));
}

/// `kiln-server keys rotate` adds a key: manifests signed before and after both verify, with different keys.
#[test]
fn manifests_signed_before_and_after_a_key_rotation_both_verify() {
    let mut server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("tiny-gpt2");
    sample_models::gpt2(64, 32, 1, 4)
        .unwrap()
        .write_safetensors(&source)
        .unwrap();
    assert_ok(&server.kiln(&[
        "push",
        source.to_str().unwrap(),
        "acme/rotated:1",
        "--variants",
        "fp32",
    ]));
    assert_eq!(settled(&server, "acme/rotated:1")["status"], "ready");

    server.kill();
    let rotate = server.server_command(&["keys", "rotate"]);
    assert!(
        rotate.status.success(),
        "{}",
        String::from_utf8_lossy(&rotate.stderr)
    );
    assert!(
        stdout(&rotate).starts_with("kiln-server: added manifest signing key"),
        "{}",
        stdout(&rotate)
    );
    server.restart();

    assert_ok(&server.kiln(&[
        "push",
        source.to_str().unwrap(),
        "acme/rotated:2",
        "--variants",
        "fp32",
    ]));
    assert_eq!(settled(&server, "acme/rotated:2")["status"], "ready");
    let (_, jwks) = server.get_json_anonymous("/.well-known/jwks.json");
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    let kid = |version: &str| {
        let (_, manifest) = server.get_json(&format!(
            "/api/v1/models/acme/rotated/versions/{version}/manifest"
        ));
        manifest["kid"].as_str().unwrap().to_owned()
    };
    assert_ne!(kid("1"), kid("2"));
    assert_ok(&server.kiln(&["verify", "acme/rotated:1"]));
    assert_ok(&server.kiln(&["verify", "acme/rotated:2"]));
}

/// A model over KILN_STREAMED_VARIANTS_ABOVE_MB (0 here, so any model) is never loaded whole by the
/// optimize step: fp16 and the weight-only variants are written weight by weight and proven streamed,
/// and a variant only the in-memory path makes is reported as not made, saying why.
#[test]
fn a_model_too_large_to_hold_gets_its_variants_made_weight_by_weight() {
    let server = Server::start_with(
        Backend::Embedded,
        &[("KILN_STREAMED_VARIANTS_ABOVE_MB", "0")],
    );
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("llama");
    sample_models::llama(64, 64, 2, 4, 2)
        .unwrap()
        .to_dtype(candle_core::DType::BF16)
        .unwrap()
        .write_safetensors(&source)
        .unwrap();
    assert_ok(&server.kiln(&[
        "push",
        source.to_str().unwrap(),
        "acme/streamed:1",
        "--variants",
        "fp32,fp16,int4,int8-b32",
    ]));
    let detail = settled(&server, "acme/streamed:1");
    assert_eq!(detail["status"], "ready", "{detail:#}");
    for name in ["fp16", "int4", "int8-b32"] {
        let variant = detail["variants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no {name}: {detail:#}"));
        assert_eq!(variant["status"], "deployable", "{variant:#}");
        assert_eq!(
            variant["validation"]["engine"], "kiln evaluator (CPU, streamed)",
            "{variant:#}"
        );
    }
    let optimize = detail["pipeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["kind"] == "optimize")
        .unwrap();
    let not_made = &optimize["report"]["not_made"][0];
    assert_eq!(not_made["variant"], "fp32", "{optimize:#}");
    assert!(
        not_made["reason"]
            .as_str()
            .unwrap()
            .contains("KILN_STREAMED_VARIANTS_ABOVE_MB"),
        "{not_made:#}"
    );
}

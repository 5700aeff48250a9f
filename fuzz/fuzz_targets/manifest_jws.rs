//! The manifest verification `kiln verify` and `kiln pull REF@ALIAS` run, on any token and any JWK Set:
//! refused with a reason or verified, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The input is a JWS, optionally followed by a newline and a JWK Set.
    let (jws, jwks) = text.split_once('\n').unwrap_or((text, ""));
    let jwks = serde_json::from_str(jwks).unwrap_or_else(|_| {
        serde_json::json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "kid": "k1",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" }] })
    });
    let _ = kiln_core::manifest_trust::verify_jws(jws, &jwks);
});

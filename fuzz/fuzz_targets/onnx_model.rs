//! The ONNX protobuf reader and the model checks that run before anything evaluates a pushed model.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kiln_onnx::model_check::check(bytes::Bytes::copy_from_slice(data));
});

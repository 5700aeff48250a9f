//! The pickle scanner that decides whether a PyTorch checkpoint runs code when loaded, on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kiln_onnx::pickle::scan(data);
});

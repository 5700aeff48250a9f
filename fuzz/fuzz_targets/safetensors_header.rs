//! A safetensors file's header (its length prefix and JSON) as `kiln push` and the scan read it: any
//! bytes give a header or an error, never a panic, an overflow or an allocation the length asks for.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = std::io::Cursor::new(data);
    let _ = kiln_onnx::safetensors::read_header(&mut reader, data.len() as u64);
});

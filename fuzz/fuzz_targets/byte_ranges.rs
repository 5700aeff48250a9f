//! `Range` and `Content-Range` headers: a range within the file or none, and chunk ranges that start
//! before they end, whatever the header says.
#![no_main]

use kiln_core::byte_ranges::{content_range, oci_chunk_range, requested_range};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let size = u64::from_le_bytes(data[..8].try_into().unwrap());
    let Ok(header) = std::str::from_utf8(&data[8..]) else {
        return;
    };
    if let Ok(Some(range)) = requested_range(Some(header), size) {
        assert!(
            range.start < range.end && range.end <= size,
            "{range:?} of {size}"
        );
    }
    if let Some(chunk) = content_range(header) {
        assert!(0 <= chunk.start && chunk.start <= chunk.end_inclusive);
    }
    if let Some((start, length)) = oci_chunk_range(header) {
        assert!(start >= 0 && length >= 1);
    }
});

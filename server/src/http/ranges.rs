//! The byte ranges HTTP headers carry (parsed by `kiln_core::byte_ranges`), as the API's errors.

use std::ops::Range;

pub use kiln_core::byte_ranges::{content_range, oci_chunk_range};

use crate::error::Error;

/// The byte range a `Range` header asks for (RFC 9110), or 416 with the file's size.
pub fn requested_range(header: Option<&str>, size: u64) -> Result<Option<Range<u64>>, Error> {
    kiln_core::byte_ranges::requested_range(header, size).map_err(|unsatisfiable| {
        Error::RangeNotSatisfiable {
            size: unsatisfiable.size as i64,
        }
    })
}

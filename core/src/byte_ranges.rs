//! The byte ranges HTTP headers carry, parsed in one place: `Range` on downloads (RFC 9110) and
//! `Content-Range` on upload chunks (kiln's and OCI's). Pure functions of the header text, so the
//! fuzzers (fuzz/) reach them without a server.

use std::ops::Range;

/// One chunk's place in a blob, as its `Content-Range: bytes START-END/TOTAL` said (END inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRange {
    pub start: i64,
    pub end_inclusive: i64,
    pub total: i64,
}

impl ChunkRange {
    pub fn len(&self) -> i64 {
        (self.end_inclusive - self.start).saturating_add(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() <= 0
    }
}

/// A `Range` no byte of the file satisfies (HTTP 416): the file's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable {
    pub size: u64,
}

/// The byte range a `Range` header asks for, per RFC 9110: one `bytes=` range is honoured; anything the
/// server may ignore (several ranges, other units, bad syntax) means the whole file.
pub fn requested_range(
    header: Option<&str>,
    size: u64,
) -> Result<Option<Range<u64>>, Unsatisfiable> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let unsatisfiable = Unsatisfiable { size };
    let range = match (start.trim(), end.trim()) {
        ("", suffix) => match suffix.parse::<u64>() {
            Ok(0) => return Err(unsatisfiable),
            Ok(n) => size.saturating_sub(n)..size,
            Err(_) => return Ok(None),
        },
        (start, end) => {
            let Ok(start) = start.parse::<u64>() else {
                return Ok(None);
            };
            let end = match end {
                "" => size,
                end => match end.parse::<u64>() {
                    Ok(end) if end >= start => end.saturating_add(1).min(size),
                    _ => return Ok(None),
                },
            };
            if start >= size {
                return Err(unsatisfiable);
            }
            start..end
        }
    };
    if range.is_empty() {
        return Err(unsatisfiable);
    }
    Ok(Some(range))
}

/// `Content-Range: bytes START-END/TOTAL` of an upload chunk; None unless it is exactly that, with
/// 0 <= START <= END.
pub fn content_range(header: &str) -> Option<ChunkRange> {
    let rest = header.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let parsed = ChunkRange {
        start: start.trim().parse().ok()?,
        end_inclusive: end.trim().parse().ok()?,
        total: total.trim().parse().ok()?,
    };
    (parsed.start >= 0 && parsed.end_inclusive >= parsed.start).then_some(parsed)
}

/// The `Content-Range` of an OCI chunk: `START-END` (END inclusive), as the distribution spec writes
/// it, also taken with a `bytes ` prefix and a `/TOTAL` suffix; the start and the length.
pub fn oci_chunk_range(header: &str) -> Option<(i64, i64)> {
    let text = header.trim();
    let text = text
        .strip_prefix("bytes ")
        .or_else(|| text.strip_prefix("bytes="))
        .unwrap_or(text);
    let range = text.split_once('/').map_or(text, |(range, _)| range);
    let (start, end) = range.split_once('-')?;
    let (start, end): (i64, i64) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    // `then`, not `then_some`: the length of a range that ends before it starts must not be computed.
    (start >= 0 && end >= start)
        .then(|| (end - start).checked_add(1).map(|length| (start, length)))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_chunk_ranges_parse_in_the_spec_form_and_the_http_one() {
        assert_eq!(oci_chunk_range("0-21"), Some((0, 22)));
        assert_eq!(oci_chunk_range("bytes 22-41/42"), Some((22, 20)));
        for bad in [
            "",
            "5",
            "9-3",
            "-1-4",
            "a-b",
            "1-",
            // Found by the byte_ranges fuzzer: an end far below the start overflowed the length.
            "bytes 5--009223372036854775807/0",
            "0-9223372036854775807",
        ] {
            assert_eq!(oci_chunk_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn content_range_parses_and_rejects_garbage() {
        assert_eq!(
            content_range("bytes 0-9/10"),
            Some(ChunkRange {
                start: 0,
                end_inclusive: 9,
                total: 10
            })
        );
        for bad in [
            "0-9/10",
            "bytes 9-0/10",
            "bytes -1-3/10",
            "bytes a-b/c",
            "bytes 0-9",
            "bytes */10",
        ] {
            assert_eq!(content_range(bad), None, "{bad}");
        }
    }

    fn range(header: &str, size: u64) -> Result<Option<Range<u64>>, u16> {
        requested_range(Some(header), size).map_err(|_| 416)
    }

    #[test]
    fn single_ranges_follow_rfc_9110() {
        assert_eq!(range("bytes=0-9", 100), Ok(Some(0..10)));
        assert_eq!(range("bytes=90-", 100), Ok(Some(90..100)));
        assert_eq!(range("bytes=-10", 100), Ok(Some(90..100)));
        assert_eq!(range("bytes=-1000", 100), Ok(Some(0..100)));
        assert_eq!(range("bytes=50-1000", 100), Ok(Some(50..100)));
        assert_eq!(
            range("bytes=0-18446744073709551615", 100),
            Ok(Some(0..100)),
            "an end at u64::MAX does not overflow"
        );
    }

    #[test]
    fn ranges_the_server_may_ignore_serve_the_whole_file() {
        for header in [
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=abc",
            "bytes=5-2",
            "bytes=x-",
        ] {
            assert_eq!(range(header, 100), Ok(None), "{header}");
        }
        assert_eq!(requested_range(None, 100).unwrap(), None);
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        assert_eq!(range("bytes=100-", 100), Err(416));
        assert_eq!(range("bytes=-0", 100), Err(416));
        assert_eq!(range("bytes=0-", 0), Err(416));
    }

    proptest::proptest! {
        #[test]
        fn any_range_header_gives_a_range_inside_the_file_or_an_answer(
            header in "(bytes=)?[0-9 ,-]{0,24}|\\PC{0,24}",
            size in 0u64..1_000_000,
        ) {
            match requested_range(Some(&header), size) {
                Ok(Some(range)) => {
                    proptest::prop_assert!(range.start < range.end && range.end <= size)
                }
                Ok(None) => {}
                Err(e) => proptest::prop_assert_eq!(e.size, size),
            }
        }

        #[test]
        fn any_content_range_parses_to_an_ordered_chunk_or_nothing(header in "\\PC{0,40}") {
            if let Some(chunk) = content_range(&header) {
                proptest::prop_assert!(0 <= chunk.start && chunk.start <= chunk.end_inclusive);
            }
        }

        #[test]
        fn a_written_content_range_reads_back(start in 0i64..1 << 40, len in 1i64..1 << 30) {
            let end = start + len - 1;
            let total = end + 1;
            proptest::prop_assert_eq!(
                content_range(&format!("bytes {start}-{end}/{total}")),
                Some(ChunkRange { start, end_inclusive: end, total })
            );
        }
    }
}

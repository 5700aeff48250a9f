//! What a `ModelInfer` message will take once decoded, read from its protobuf wire format before tonic
//! decodes it. A message's size says little about its decoded one: an input tensor with no fields is two
//! bytes on the wire and a few hundred decoded, an empty `bytes_contents` element two bytes and 32, a
//! packed int64 of zero one byte and 8; a 7.6 MiB message of four million empty input tensors took a
//! runner to 1,260 MB, and the 64 MiB a message may have (`--max-request-mib`) would have been some
//! 10 GB, the OOM killer's business. So the layer that holds a call's memory (`grpc_memory`) counts this
//! estimate before tonic decodes, and refuses a message whose estimate would pass the limit.
//!
//! The estimate follows prost's types field by field: a repeated field's elements at their size (a
//! vector's capacity may reach twice its length, so twice that), a string's text, a map entry at its
//! key, value and a table slot; `bytes` fields are slices of the received message (`Bytes`) and cost
//! their handle alone. Malformed data ends the walk: prost refuses it anyway.

use std::mem::size_of;

use bytes::Bytes;

use super::grpc::inference::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use super::grpc::inference::{InferParameter, ModelInferRequest};

/// How prost holds one field of a message.
#[derive(Clone, Copy)]
enum Field {
    /// A string: its text (every string here is a single field, its `String` inside its message).
    Text,
    /// `bytes`: a `Bytes` slice of the message.
    Slice,
    /// A varint or fixed-width scalar decoded into `size` bytes, alone or packed.
    Scalar { size: usize, fixed: Option<usize> },
    /// A message of `size` bytes (`schema` its fields).
    Message { size: usize, schema: Schema },
    /// One entry of a `map<string, InferParameter>`.
    ParameterEntry,
    /// A field prost skips.
    Unknown,
}

type Schema = fn(u64) -> Field;

const VARINT: usize = 0;
const FIXED64: usize = 1;
const LENGTH_DELIMITED: usize = 2;
const FIXED32: usize = 5;

/// What a serialized `ModelInferRequest`, the bytes `message` holds after skipping `skip` and up to
/// `length`, takes decoded, in bytes. The message may come in several chunks (HTTP/2 frames): they are
/// walked where they lie, not copied together.
pub fn model_infer_request(message: &[Bytes], skip: usize, length: usize) -> usize {
    let mut whole = Cursor {
        chunks: message,
        chunk: 0,
        offset: 0,
        left: usize::MAX,
    };
    if !whole.skip(skip) {
        return size_of::<ModelInferRequest>();
    }
    whole.left = length;
    size_of::<ModelInferRequest>().saturating_add(walk(whole, request))
}

fn request(field: u64) -> Field {
    match field {
        1..=3 => Field::Text,
        4 => Field::ParameterEntry,
        5 => Field::Message {
            size: size_of::<InferInputTensor>(),
            schema: input,
        },
        6 => Field::Message {
            size: size_of::<InferRequestedOutputTensor>(),
            schema: requested_output,
        },
        7 => Field::Slice,
        _ => Field::Unknown,
    }
}

fn input(field: u64) -> Field {
    match field {
        1 | 2 => Field::Text,
        3 => Field::Scalar {
            size: 8,
            fixed: None,
        },
        4 => Field::ParameterEntry,
        // Singular, held inline; each occurrence is merged into it, and its elements are what cost.
        5 => Field::Message {
            size: 0,
            schema: contents,
        },
        _ => Field::Unknown,
    }
}

fn requested_output(field: u64) -> Field {
    match field {
        1 => Field::Text,
        2 => Field::ParameterEntry,
        _ => Field::Unknown,
    }
}

fn contents(field: u64) -> Field {
    let varint = |size| Field::Scalar { size, fixed: None };
    match field {
        1 => varint(size_of::<bool>()),
        2 | 4 => varint(4),
        3 | 5 => varint(8),
        6 => Field::Scalar {
            size: 4,
            fixed: Some(4),
        },
        7 => Field::Scalar {
            size: 8,
            fixed: Some(8),
        },
        8 => Field::Slice,
        _ => Field::Unknown,
    }
}

fn parameter(field: u64) -> Field {
    match field {
        3 => Field::Text,
        _ => Field::Unknown,
    }
}

fn parameter_entry(field: u64) -> Field {
    match field {
        1 => Field::Text,
        2 => Field::Message {
            size: 0,
            schema: parameter,
        },
        _ => Field::Unknown,
    }
}

/// The decoded cost of the fields under `schema` that `data` holds.
fn walk(mut data: Cursor<'_>, schema: Schema) -> usize {
    let mut cost = 0usize;
    while data.left > 0 {
        let Some(key) = data.varint() else {
            break;
        };
        let (number, wire) = (key >> 3, (key & 7) as usize);
        let length = match wire {
            VARINT => data.varint().map(|_| 0),
            FIXED64 => data.skip(8).then_some(0),
            FIXED32 => data.skip(4).then_some(0),
            LENGTH_DELIMITED => data.varint().and_then(|n| usize::try_from(n).ok()),
            _ => None,
        };
        let Some(length) = length else {
            break;
        };
        if wire != LENGTH_DELIMITED {
            if let Field::Scalar { size, .. } = schema(number) {
                cost = cost.saturating_add(2 * size);
            }
            continue;
        }
        let Some(payload) = data.split(length) else {
            break;
        };
        cost = cost.saturating_add(match schema(number) {
            Field::Text => length,
            Field::Slice => 2 * size_of::<Bytes>(),
            Field::Scalar { size, fixed } => {
                let elements = match fixed {
                    Some(width) => length / width,
                    None => payload.varint_ends(),
                };
                (2 * size).saturating_mul(elements)
            }
            Field::Message { size, schema } => (2 * size).saturating_add(walk(payload, schema)),
            // A hash table's slot (key, value and its control byte), at most half empty.
            Field::ParameterEntry => (2 * (size_of::<String>() + size_of::<InferParameter>() + 1))
                .saturating_add(walk(payload, parameter_entry)),
            Field::Unknown => 0,
        });
    }
    cost
}

/// A stretch of a message lying in chunks: `left` bytes from `offset` into chunk `chunk`.
#[derive(Clone, Copy)]
struct Cursor<'a> {
    chunks: &'a [Bytes],
    chunk: usize,
    offset: usize,
    left: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Option<u8> {
        if self.left == 0 {
            return None;
        }
        loop {
            let chunk = self.chunks.get(self.chunk)?;
            if let Some(&byte) = chunk.get(self.offset) {
                self.offset += 1;
                self.left -= 1;
                return Some(byte);
            }
            self.chunk += 1;
            self.offset = 0;
        }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }

    /// Moves `n` bytes on; false when fewer are left.
    fn skip(&mut self, mut n: usize) -> bool {
        if n > self.left {
            return false;
        }
        self.left -= n;
        while n > 0 {
            let Some(chunk) = self.chunks.get(self.chunk) else {
                return false;
            };
            let here = (chunk.len() - self.offset.min(chunk.len())).min(n);
            n -= here;
            self.offset += here;
            if n > 0 {
                self.chunk += 1;
                self.offset = 0;
            }
        }
        true
    }

    /// The next `n` bytes as a cursor of their own, and this one moved past them.
    fn split(&mut self, n: usize) -> Option<Cursor<'a>> {
        let mut part = *self;
        part.left = n;
        self.skip(n).then_some(part)
    }

    /// How many varints end in what is left (packed scalars).
    fn varint_ends(mut self) -> usize {
        let mut ends = 0;
        while let Some(byte) = self.byte() {
            ends += usize::from(byte < 0x80);
        }
        ends
    }
}

#[cfg(test)]
mod tests {
    use super::super::grpc::inference::InferTensorContents;
    use super::*;
    use prost::Message;

    fn estimate(request: &ModelInferRequest) -> usize {
        let message = Bytes::from(request.encode_to_vec());
        model_infer_request(std::slice::from_ref(&message), 0, message.len())
    }

    /// `data` cut into chunks at `cuts`, behind a 5-byte prefix.
    fn chunked(data: &[u8], cuts: &[usize]) -> Vec<Bytes> {
        let framed: Vec<u8> = [&[0u8; 5][..], data].concat();
        let mut at: Vec<usize> = cuts.iter().map(|&c| c % (framed.len() + 1)).collect();
        at.extend([0, framed.len()]);
        at.sort_unstable();
        at.windows(2)
            .map(|w| Bytes::copy_from_slice(&framed[w[0]..w[1]]))
            .collect()
    }

    #[test]
    fn empty_input_tensors_cost_their_size_not_their_two_bytes() {
        let request = ModelInferRequest {
            inputs: vec![InferInputTensor::default(); 1000],
            ..Default::default()
        };
        assert_eq!(request.encoded_len(), 2000);
        assert!(estimate(&request) >= 1000 * size_of::<InferInputTensor>());
    }

    #[test]
    fn typed_contents_cost_their_elements_and_raw_ones_their_handles() {
        let typed = ModelInferRequest {
            inputs: vec![InferInputTensor {
                name: "x".into(),
                datatype: "INT64".into(),
                shape: vec![1 << 16],
                contents: Some(InferTensorContents {
                    int64_contents: vec![0; 1 << 16],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        // Zeros are a byte each on the wire and eight decoded.
        assert!(typed.encoded_len() < 70_000);
        assert!(estimate(&typed) >= 8 << 16, "{}", estimate(&typed));
        let raw = ModelInferRequest {
            raw_input_contents: vec![Bytes::from(vec![0u8; 1 << 20])],
            ..Default::default()
        };
        assert!(estimate(&raw) < 1024, "{}", estimate(&raw));
    }

    #[test]
    fn the_estimate_covers_what_prost_holds_for_every_kind_of_field() {
        let parameters = || {
            [("a".to_owned(), InferParameter::default())]
                .into_iter()
                .collect()
        };
        let request = ModelInferRequest {
            model_name: "m".repeat(100),
            parameters: parameters(),
            inputs: vec![
                InferInputTensor {
                    name: "n".repeat(50),
                    parameters: parameters(),
                    contents: Some(InferTensorContents {
                        bytes_contents: vec![Bytes::new(); 100],
                        fp32_contents: vec![1.0; 100],
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                10
            ],
            outputs: vec![InferRequestedOutputTensor::default(); 10],
            ..Default::default()
        };
        let held = size_of::<ModelInferRequest>()
            + 100
            + 10 * (size_of::<InferInputTensor>() + 50 + 100 * (size_of::<Bytes>() + 4))
            + 10 * size_of::<InferRequestedOutputTensor>();
        assert!(
            estimate(&request) >= held,
            "{} < {held}",
            estimate(&request)
        );
    }

    #[test]
    fn a_message_in_chunks_costs_what_it_costs_whole() {
        let request = ModelInferRequest {
            model_name: "m".into(),
            inputs: vec![
                InferInputTensor {
                    name: "x".into(),
                    shape: vec![3, 300],
                    contents: Some(InferTensorContents {
                        int_contents: vec![1, 200, -3],
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                3
            ],
            raw_input_contents: vec![Bytes::from(vec![7u8; 100])],
            ..Default::default()
        };
        let whole = estimate(&request);
        let data = request.encode_to_vec();
        for cut in 0..=data.len() + 5 {
            let chunks = chunked(&data, &[cut, cut / 2, cut + 7]);
            assert_eq!(
                model_infer_request(&chunks, 5, data.len()),
                whole,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn malformed_data_ends_the_walk_without_panicking() {
        for data in [
            &[0xff; 12][..],
            &[0x2a, 0xff, 0xff, 0xff, 0x0f],
            &[0x2a, 0x05, 1],
        ] {
            let _ = model_infer_request(&chunked(data, &[3]), 5, data.len());
            let _ = model_infer_request(&chunked(data, &[]), 5, data.len() + 100);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_in_any_chunks_are_walked_without_panicking(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
            cuts in proptest::collection::vec(0usize..600, 0..6),
            length in 0usize..700,
        ) {
            let _ = model_infer_request(&chunked(&data, &cuts), 5, length);
        }
    }
}

//! NaN and the infinities in the protocol's JSON, as Triton and tritonclient write them: `NaN`, `Infinity`
//! and `-Infinity` (rapidjson's `kWriteNanAndInfFlag`; it also reads `Inf`, `-Inf` and `-NaN`). Strict
//! JSON has no such numbers, so serde_json refuses them in a request and writes `null` for them in an
//! answer: a tritonclient request of features with a missing value (NaN, what tree models take for
//! "missing") was a 400, and an output's infinity came back as `null`, which the client reads as NaN.
//!
//! A request's bare tokens are rewritten, outside strings, into strings no client sends (they start with
//! a NUL character, which a `BYTES` element may not hold) before the request is parsed; `json_values`
//! reads those as the float. An answer's non-finite floats are written as `null` by serde_json where
//! `Marks` records their offsets, and the tokens replace those `null`s.

use std::cell::{Cell, RefCell};
use std::io::Write;

use bytes::{Bytes, BytesMut};
use serde::{Serialize, Serializer};

/// The tokens read, longest first where one begins another, with the strings they are rewritten to.
const TOKENS: [(&[u8], &str); 6] = [
    (b"-Infinity", "\"\\u0000-Infinity\""),
    (b"Infinity", "\"\\u0000Infinity\""),
    (b"-Inf", "\"\\u0000-Infinity\""),
    (b"Inf", "\"\\u0000Infinity\""),
    (b"-NaN", "\"\\u0000NaN\""),
    (b"NaN", "\"\\u0000NaN\""),
];

/// The float a rewritten token stands for (`text` as serde_json read the string).
pub fn rewritten(text: &str) -> Option<f64> {
    match text {
        "\0NaN" => Some(f64::NAN),
        "\0Infinity" => Some(f64::INFINITY),
        "\0-Infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// `json` with its bare non-finite tokens rewritten (`rewritten` reads them back); `json` itself when it
/// has none, found without a pass over it of our own unless `NaN` or `Inf` appears somewhere.
pub fn rewrite_tokens(json: Bytes) -> Bytes {
    if memchr::memmem::find(&json, b"NaN").is_none()
        && memchr::memmem::find(&json, b"Inf").is_none()
    {
        return json;
    }
    let mut out = Vec::with_capacity(json.len() + 64);
    let (mut at, mut in_string, mut changed) = (0, false, false);
    while at < json.len() {
        let byte = json[at];
        if in_string {
            match byte {
                b'\\' => {
                    out.extend_from_slice(&json[at..(at + 2).min(json.len())]);
                    at += 2;
                    continue;
                }
                b'"' => in_string = false,
                _ => {}
            }
        } else if byte == b'"' {
            in_string = true;
        } else if let Some((token, string)) = TOKENS.iter().find(|(t, _)| json[at..].starts_with(t))
        {
            out.extend_from_slice(string.as_bytes());
            at += token.len();
            changed = true;
            continue;
        }
        out.push(byte);
        at += 1;
    }
    if changed { Bytes::from(out) } else { json }
}

/// Where an answer's non-finite floats were written, while serde_json writes it through `Marks::writer`.
#[derive(Default)]
pub struct Marks {
    written: Cell<usize>,
    at: RefCell<Vec<(usize, &'static str)>>,
}

/// A writer counting what passes, for `Marks`.
pub struct Counted<'a, W> {
    inner: W,
    marks: &'a Marks,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.marks.written.set(self.marks.written.get() + n);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<W> Counted<'_, W> {
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl Marks {
    pub fn writer<W: Write>(&self, inner: W) -> Counted<'_, W> {
        Counted { inner, marks: self }
    }

    /// `value` as an element of a JSON array: written as serde_json writes it, a non-finite one marked.
    pub fn float(&self, value: f64) -> Marked<'_> {
        Marked { value, marks: self }
    }

    /// `body` with each marked `null` replaced by its token.
    pub fn replace(&self, body: BytesMut) -> BytesMut {
        let at = self.at.borrow();
        if at.is_empty() {
            return body;
        }
        let mut out = BytesMut::with_capacity(body.len() + 5 * at.len());
        let mut from = 0;
        for &(offset, token) in at.iter() {
            debug_assert_eq!(&body[offset..offset + 4], b"null");
            out.extend_from_slice(&body[from..offset]);
            out.extend_from_slice(token.as_bytes());
            from = offset + 4;
        }
        out.extend_from_slice(&body[from..]);
        out
    }
}

pub struct Marked<'a> {
    value: f64,
    marks: &'a Marks,
}

impl Serialize for Marked<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let token = match self.value {
            v if v.is_nan() => "NaN",
            f64::INFINITY => "Infinity",
            f64::NEG_INFINITY => "-Infinity",
            v => return serializer.serialize_f64(v),
        };
        // serde_json writes `null` for it, here: the array's comma is already out.
        self.marks
            .at
            .borrow_mut()
            .push((self.marks.written.get(), token));
        serializer.serialize_unit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use proptest::prelude::*;

    fn text(json: &str) -> String {
        String::from_utf8(rewrite_tokens(Bytes::from(json.to_owned())).to_vec()).unwrap()
    }

    #[test]
    fn bare_tokens_become_marked_strings_and_strings_stay() {
        assert_eq!(
            text(r#"{"data": [NaN, Infinity, -Infinity, Inf, -Inf, -NaN, 1.5]}"#),
            r#"{"data": ["\u0000NaN", "\u0000Infinity", "\u0000-Infinity", "\u0000Infinity", "\u0000-Infinity", "\u0000NaN", 1.5]}"#
        );
        let strings = r#"{"name": "NaN \"Infinity\" \\", "data": ["Inf"]}"#;
        assert_eq!(text(strings), strings);
        let parsed: Vec<String> = serde_json::from_str(&text("[NaN,-Infinity]")).unwrap();
        assert_eq!(
            parsed.iter().map(|s| rewritten(s)).collect::<Vec<_>>()[1],
            Some(f64::NEG_INFINITY)
        );
        assert!(
            rewritten("NaN").is_none(),
            "a client's own string stays a string"
        );
    }

    #[test]
    fn marked_floats_are_written_as_the_tokens() {
        let marks = Marks::default();
        let values = [1.5, f64::NAN, f64::INFINITY, -0.0, f64::NEG_INFINITY];
        let elements: Vec<Marked> = values.iter().map(|&v| marks.float(v)).collect();
        let mut writer = marks.writer(BytesMut::new().writer());
        serde_json::to_writer(&mut writer, &serde_json::json!({"id": null}))
            .and_then(|()| serde_json::to_writer(&mut writer, &elements))
            .unwrap();
        let body = marks.replace(writer.into_inner().into_inner());
        assert_eq!(
            &body[..],
            br#"{"id":null}[1.5,NaN,Infinity,-0.0,-Infinity]"#
        );
    }

    /// One element of a request's `data` as a client may write it, and the float it stands for (`None`:
    /// a string, which stays a string).
    fn element() -> impl Strategy<Value = (String, Option<f64>)> {
        prop_oneof![
            prop_oneof![
                Just(("NaN", f64::NAN)),
                Just(("-NaN", f64::NAN)),
                Just(("Inf", f64::INFINITY)),
                Just(("Infinity", f64::INFINITY)),
                Just(("-Inf", f64::NEG_INFINITY)),
                Just(("-Infinity", f64::NEG_INFINITY)),
            ]
            .prop_map(|(token, value)| (token.to_owned(), Some(value))),
            any::<f32>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(|v| (serde_json::to_string(&v).unwrap(), Some(f64::from(v)))),
            "[a-zA-Z \\\"NaInfty-]{0,12}"
                .prop_map(|text| (serde_json::to_string(&text).unwrap(), None)),
        ]
    }

    proptest! {
        /// Tokens, numbers and strings (holding the tokens' letters, quotes and backslashes) in one array:
        /// after the rewrite serde_json reads every token as its float and every string as itself.
        #[test]
        fn tokens_read_back_as_their_floats(elements in proptest::collection::vec(element(), 0..12),
                                            spaced in any::<bool>()) {
            let separator = if spaced { " , " } else { "," };
            let json = format!("{{\"data\":[{}]}}", elements.iter().map(|(text, _)| text.as_str())
                .collect::<Vec<_>>().join(separator));
            let read: serde_json::Value = serde_json::from_slice(&rewrite_tokens(Bytes::from(json.clone())))
                .unwrap_or_else(|e| panic!("{json}: {e}"));
            let read = read["data"].as_array().unwrap().clone();
            prop_assert_eq!(read.len(), elements.len());
            for (value, (text, float)) in read.iter().zip(&elements) {
                match (value, float) {
                    (serde_json::Value::String(s), Some(f)) if f.is_nan() => prop_assert!(rewritten(s).unwrap().is_nan()),
                    (serde_json::Value::String(s), Some(f)) if f.is_infinite() => prop_assert_eq!(rewritten(s), Some(*f)),
                    (serde_json::Value::Number(n), Some(f)) => prop_assert_eq!(n.as_f64().map(|n| n as f32), Some(*f as f32)),
                    (serde_json::Value::String(s), None) => {
                        prop_assert_eq!(serde_json::to_string(s).unwrap(), text.clone());
                        prop_assert!(rewritten(s).is_none());
                    }
                    other => prop_assert!(false, "{other:?} read from {text}"),
                }
            }
        }

        /// Any bytes at all: no panic, and bytes without the tokens' letters come back as they were.
        #[test]
        fn any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let out = rewrite_tokens(Bytes::from(bytes.clone()));
            if !bytes.windows(3).any(|w| w == b"NaN" || w == b"Inf") {
                prop_assert_eq!(&out[..], &bytes[..]);
            }
        }

        /// Valid JSON is left as it is, byte for byte.
        #[test]
        fn valid_json_is_unchanged(values in proptest::collection::vec(
            prop_oneof![any::<f64>().prop_filter("finite", |v| v.is_finite()).prop_map(serde_json::Value::from),
                        ".*".prop_map(serde_json::Value::from)], 0..8)) {
            let json = serde_json::to_string(&values).unwrap();
            prop_assert_eq!(text(&json), json);
        }
    }
}

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

/// The float a rewritten token stands for (`text` as serde_json read the string), and its name.
pub fn rewritten(text: &str) -> Option<(f64, &'static str)> {
    match text {
        "\0NaN" => Some((f64::NAN, "NaN")),
        "\0Infinity" => Some((f64::INFINITY, "Infinity")),
        "\0-Infinity" => Some((f64::NEG_INFINITY, "-Infinity")),
        _ => None,
    }
}

/// `json` with its bare non-finite tokens rewritten (`rewritten` reads them back), or `json` itself when
/// it has none; looked through only when `NaN` or `Inf` appears somewhere. The copy is made once, its
/// size given to `count` first: a token grows three to four times, and a body of nothing else would
/// otherwise take several times what it was admitted for.
pub fn rewrite_tokens<E>(
    json: Bytes,
    count: impl FnOnce(usize) -> Result<(), E>,
) -> Result<Bytes, E> {
    if memchr::memmem::find(&json, b"NaN").is_none()
        && memchr::memmem::find(&json, b"Inf").is_none()
    {
        return Ok(json);
    }
    let (mut any, mut grown) = (false, 0);
    bare_tokens(&json, |_, token, string| {
        any = true;
        grown += string.len() - token.len();
    });
    if !any {
        return Ok(json);
    }
    count(json.len() + grown)?;
    let mut out = Vec::with_capacity(json.len() + grown);
    let mut from = 0;
    bare_tokens(&json, |at, token, string| {
        out.extend_from_slice(&json[from..at]);
        out.extend_from_slice(string.as_bytes());
        from = at + token.len();
    });
    out.extend_from_slice(&json[from..]);
    Ok(Bytes::from(out))
}

/// Calls `found(offset, token, its string)` for each token of `json` outside its strings, in order.
fn bare_tokens(json: &[u8], mut found: impl FnMut(usize, &'static [u8], &'static str)) {
    let (mut at, mut in_string) = (0, false);
    while at < json.len() {
        match json[at] {
            // The escaped character is skipped with the backslash: `\"` does not end the string.
            b'\\' if in_string => at += 1,
            b'"' => in_string = !in_string,
            b'N' | b'I' | b'-' if !in_string => {
                if let Some(&(token, string)) =
                    TOKENS.iter().find(|(t, _)| json[at..].starts_with(t))
                {
                    found(at, token, string);
                    at += token.len();
                    continue;
                }
            }
            _ => {}
        }
        at += 1;
    }
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

    // serde_json writes with `write_all`, a call for each value and each comma: std's default, a loop
    // over `write`, made an answer's 4,096 floats take 69 µs instead of 54 (as written straight to a Vec).
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(buf)?;
        self.marks.written.set(self.marks.written.get() + buf.len());
        Ok(())
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

    /// `body` with each marked `null` replaced by its token. Were a mark not on a `null` (the JSON written
    /// through another writer than `writer`'s), the body would be left as serde_json wrote it: valid JSON,
    /// the values `null`, never a token spliced into the middle of something else.
    pub fn replace(&self, body: BytesMut) -> BytesMut {
        let at = self.at.borrow();
        let on_nulls = at
            .iter()
            .all(|&(offset, _)| body.get(offset..offset + 4) == Some(&b"null"[..]));
        if at.is_empty() || !on_nulls {
            return body;
        }
        let mut out = BytesMut::with_capacity(body.len() + 5 * at.len());
        let mut from = 0;
        for &(offset, token) in at.iter() {
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
        let rewritten = rewrite_tokens(Bytes::from(json.to_owned()), |_| Ok::<_, ()>(()));
        String::from_utf8(rewritten.unwrap().to_vec()).unwrap()
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
            rewritten(&parsed[1]),
            Some((f64::NEG_INFINITY, "-Infinity"))
        );
        assert!(
            rewritten("NaN").is_none(),
            "a client's own string stays a string"
        );
        let escaped = r#"["a\\", NaN, "\"NaN\\\"", Inf]"#;
        assert_eq!(
            text(escaped),
            r#"["a\\", "\u0000NaN", "\"NaN\\\"", "\u0000Infinity"]"#
        );
    }

    #[test]
    fn the_copy_is_counted_before_it_is_made_and_only_when_a_token_is_bare() {
        let mut counted = Vec::new();
        let json = Bytes::from_static(br#"{"data": [NaN, 1]}"#);
        let out = rewrite_tokens(json.clone(), |n| {
            counted.push(n);
            Ok::<_, ()>(())
        });
        assert_eq!(counted, [out.unwrap().len()]);
        assert!(rewrite_tokens(json, |_| Err("refused")).is_err());
        let in_strings = Bytes::from_static(br#"{"name": "Information about NaN"}"#);
        let same = rewrite_tokens(in_strings.clone(), |_| Err("counted"));
        assert_eq!(same, Ok(in_strings), "nothing to copy, nothing counted");
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

    /// Strings of the tokens' letters, spaces, quotes and backslashes: escapes around would-be tokens.
    const STRINGS: &str = r#"[NaIfinty \\"-]{0,12}"#;

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
            STRINGS.prop_map(|text| (serde_json::to_string(&text).unwrap(), None)),
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
            let read: serde_json::Value = serde_json::from_slice(text(&json).as_bytes())
                .unwrap_or_else(|e| panic!("{json}: {e}"));
            let read = read["data"].as_array().unwrap().clone();
            prop_assert_eq!(read.len(), elements.len());
            for (value, (text, float)) in read.iter().zip(&elements) {
                match (value, float) {
                    (serde_json::Value::String(s), Some(f)) if f.is_nan() => prop_assert!(rewritten(s).unwrap().0.is_nan()),
                    (serde_json::Value::String(s), Some(f)) if f.is_infinite() => prop_assert_eq!(rewritten(s).map(|r| r.0), Some(*f)),
                    (serde_json::Value::Number(n), Some(f)) => prop_assert_eq!(n.as_f64().map(|n| n as f32), Some(*f as f32)),
                    (serde_json::Value::String(s), None) => {
                        prop_assert_eq!(serde_json::to_string(s).unwrap(), text.clone());
                        prop_assert!(rewritten(s).is_none());
                    }
                    other => prop_assert!(false, "{other:?} read from {text}"),
                }
            }
        }

        /// Any bytes, mostly the tokens' letters, quotes, backslashes and JSON's punctuation: no panic;
        /// a copy exactly when a token is bare, grown by what the tokens' strings add; and no bare token
        /// left in it (each string closes where it opens, so what follows is read as it was).
        #[test]
        fn any_bytes(bytes in proptest::collection::vec(
            prop_oneof![proptest::sample::select(b"NaIfinty-\\\"[],: ".to_vec()), any::<u8>()], 0..64)) {
            let out = rewrite_tokens(Bytes::from(bytes.clone()), |_| Ok::<_, ()>(())).unwrap();
            let mut grown = Vec::new();
            bare_tokens(&bytes, |_, token, string| grown.push(string.len() - token.len()));
            prop_assert_eq!(grown.is_empty(), out == bytes);
            prop_assert_eq!(out.len(), bytes.len() + grown.iter().sum::<usize>());
            let mut left = 0;
            bare_tokens(&out, |_, _, _| left += 1);
            prop_assert_eq!(left, 0);
        }

        /// Valid JSON is left as it is, byte for byte.
        #[test]
        fn valid_json_is_unchanged(values in proptest::collection::vec(
            prop_oneof![any::<f64>().prop_filter("finite", |v| v.is_finite()).prop_map(serde_json::Value::from),
                        STRINGS.prop_map(serde_json::Value::from)], 0..8)) {
            let json = serde_json::to_string(&values).unwrap();
            prop_assert_eq!(text(&json), json);
        }
    }
}

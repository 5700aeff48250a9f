//! A JSON `data` member read straight into a tensor's little-endian bytes: the request is parsed once with
//! `data` kept as its raw text, and the text is read here knowing the input's datatype, so no JSON value
//! tree is built (one took 32 bytes and more an element: a 30 MiB body of zeros made the process peak at
//! 731 MB, now 251 MB).

use std::fmt::Display;

use serde::de::{self, DeserializeSeed, IgnoredAny, SeqAccess, Visitor};

use super::tensor::{Datatype, push_bytes_element};

/// JSON's nesting is bounded: a shape of more dims than this is not a tensor anyone serves.
const MAX_NESTING: usize = 32;

/// The elements of `raw` (a JSON array, nested in row-major order, or one scalar), as `datatype`'s bytes,
/// and how many there were; the error names the element and why, as the request's error says it.
pub fn read(raw: &str, datatype: Datatype) -> Result<(Vec<u8>, usize), String> {
    // Every element takes at least one character of the text: the text bounds what is reserved.
    let mut out = Elements {
        bytes: Vec::with_capacity((raw.len() / 2 + 1) * datatype.size().unwrap_or(8)),
        count: 0,
        datatype,
        refused: None,
    };
    let mut reader = serde_json::Deserializer::from_str(raw);
    let read = Element {
        out: &mut out,
        depth: 0,
    }
    .deserialize(&mut reader);
    match (read, out.refused) {
        (_, Some(why)) => Err(why),
        (Err(e), None) => Err(format!("data is not valid JSON: {e}")),
        (Ok(()), None) => Ok((out.bytes, out.count)),
    }
}

struct Elements {
    bytes: Vec<u8>,
    count: usize,
    datatype: Datatype,
    /// Why the data was refused: kept here so that the message is ours, not serde's with a position.
    refused: Option<String>,
}

impl Elements {
    fn refuse<E: de::Error>(&mut self, why: String) -> E {
        let error = E::custom(&why);
        self.refused.get_or_insert(why);
        error
    }

    /// Element `count` refused: `shown` as the request wrote it, `why` ending with "as" before the type.
    fn refuse_element<E: de::Error>(&mut self, shown: impl Display, why: &str) -> E {
        let message = format!(
            "element {} ({shown}) {why} {}",
            self.count,
            self.datatype.as_str()
        );
        self.refuse(message)
    }

    fn integer<E: de::Error>(&mut self, value: i128, shown: impl Display) -> Result<(), E> {
        let out = &mut self.bytes;
        let fits = match self.datatype {
            Datatype::Bool => {
                out.push(u8::from(value != 0));
                Some(())
            }
            Datatype::Uint8 => narrowed(out, value, u8::to_le_bytes),
            Datatype::Int8 => narrowed(out, value, i8::to_le_bytes),
            Datatype::Uint16 => narrowed(out, value, u16::to_le_bytes),
            Datatype::Int16 => narrowed(out, value, i16::to_le_bytes),
            Datatype::Uint32 => narrowed(out, value, u32::to_le_bytes),
            Datatype::Int32 => narrowed(out, value, i32::to_le_bytes),
            Datatype::Uint64 => narrowed(out, value, u64::to_le_bytes),
            Datatype::Int64 => narrowed(out, value, i64::to_le_bytes),
            // An integer is a float's value exactly where the float can hold it, as JSON means it.
            Datatype::Fp16 | Datatype::Bf16 | Datatype::Fp32 | Datatype::Fp64 => {
                return self.float(value as f64, shown);
            }
            Datatype::Bytes => return Err(self.refuse_element(shown, "is not a string, as")),
        };
        match fits {
            Some(()) => {
                self.count += 1;
                Ok(())
            }
            None => Err(self.refuse_element(shown, "is out of the range of")),
        }
    }

    fn float<E: de::Error>(&mut self, value: f64, shown: impl Display) -> Result<(), E> {
        let out = &mut self.bytes;
        match self.datatype {
            Datatype::Fp16 => out.extend(half::f16::from_f64(value).to_le_bytes()),
            Datatype::Bf16 => out.extend(half::bf16::from_f64(value).to_le_bytes()),
            Datatype::Fp32 => out.extend((value as f32).to_le_bytes()),
            Datatype::Fp64 => out.extend(value.to_le_bytes()),
            Datatype::Bytes => return Err(self.refuse_element(shown, "is not a string, as")),
            _ => return Err(self.refuse_element(shown, "is not an integer, as")),
        }
        self.count += 1;
        Ok(())
    }
}

/// `value` as a `T`'s bytes, when a `T` holds it.
fn narrowed<T: TryFrom<i128>, const N: usize>(
    out: &mut Vec<u8>,
    value: i128,
    to_le: fn(T) -> [u8; N],
) -> Option<()> {
    T::try_from(value).ok().map(|v| out.extend(to_le(v)))
}

/// One element, or an array of them, `depth` arrays deep.
struct Element<'a> {
    out: &'a mut Elements,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Element<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Element<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number, a boolean, a string or an array of them")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<(), E> {
        match self.out.datatype {
            Datatype::Bool
            | Datatype::Uint8
            | Datatype::Int8
            | Datatype::Uint16
            | Datatype::Int16
            | Datatype::Uint32
            | Datatype::Int32
            | Datatype::Uint64
            | Datatype::Int64 => self.out.integer(i128::from(value), value),
            Datatype::Bytes => Err(self.out.refuse_element(value, "is not a string, as")),
            _ => Err(self.out.refuse_element(value, "is not a number, as")),
        }
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        self.out.integer(i128::from(value), value)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        self.out.integer(i128::from(value), value)
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        self.out.float(value, value)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        // Written back as JSON (quoted, escaped) only when refused: a valid string costs no copy.
        let shown = || serde_json::Value::from(text);
        if let Some((value, token)) = super::json_non_finite::rewritten(text) {
            // A bare NaN or infinity of the request, as tritonclient writes one.
            return self.out.float(value, token);
        }
        if self.out.datatype != Datatype::Bytes {
            return Err(self.out.refuse_element(shown(), "is not a number, as"));
        }
        if text.contains('\0') {
            return Err(self
                .out
                .refuse_element(shown(), "contains a NUL character, as"));
        }
        if push_bytes_element(&mut self.out.bytes, text.as_bytes()).is_none() {
            return Err(self.out.refuse_element(shown(), "is too long, as"));
        }
        self.out.count += 1;
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self
            .out
            .refuse("data holds null, not a number or a string".to_owned()))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _map: A) -> Result<(), A::Error> {
        Err(self
            .out
            .refuse("data holds an object, not a number or a string".to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth >= MAX_NESTING {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Err(self
                .out
                .refuse(format!("data is nested more than {MAX_NESTING} deep")));
        }
        while seq
            .next_element_seed(Element {
                out: &mut *self.out,
                depth: self.depth + 1,
            })?
            .is_some()
        {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn refused(raw: &str, datatype: Datatype) -> String {
        read(raw, datatype).unwrap_err()
    }

    #[test]
    fn structure_is_refused_in_the_requests_terms() {
        assert_eq!(
            refused("[1, null]", Datatype::Fp32),
            "data holds null, not a number or a string"
        );
        assert_eq!(
            refused(r#"[{"a": 1}]"#, Datatype::Int64),
            "data holds an object, not a number or a string"
        );
        let deep = format!("{}1{}", "[".repeat(33), "]".repeat(33));
        assert_eq!(
            refused(&deep, Datatype::Fp32),
            "data is nested more than 32 deep"
        );
        let allowed = format!("{}1{}", "[".repeat(32), "]".repeat(32));
        assert_eq!(read(&allowed, Datatype::Fp32).unwrap().1, 1);
    }

    #[test]
    fn each_datatype_takes_what_json_can_say_of_it() {
        assert_eq!(
            read("[true, 0, 2]", Datatype::Bool).unwrap(),
            (vec![1, 0, 1], 3)
        );
        assert_eq!(read("[true, 7]", Datatype::Int8).unwrap(), (vec![1, 7], 2));
        assert_eq!(
            refused("[1, 2.5]", Datatype::Int64),
            "element 1 (2.5) is not an integer, as INT64"
        );
        assert_eq!(
            refused("[18446744073709551615]", Datatype::Int64),
            "element 0 (18446744073709551615) is out of the range of INT64"
        );
        assert_eq!(
            refused("[true]", Datatype::Fp32),
            "element 0 (true) is not a number, as FP32"
        );
        assert_eq!(
            refused(r#"["a\u0000"]"#, Datatype::Bytes),
            r#"element 0 ("a\u0000") contains a NUL character, as BYTES"#
        );
        assert_eq!(
            refused("[1]", Datatype::Bytes),
            "element 0 (1) is not a string, as BYTES"
        );
        assert_eq!(read("3", Datatype::Uint8).unwrap(), (vec![3], 1));
        let (bytes, count) = read("[1, -2.5, 3e2]", Datatype::Fp32).unwrap();
        let floats: Vec<f32> = bytes
            .chunks(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!((floats, count), (vec![1.0, -2.5, 300.0], 3));
    }

    proptest! {
        /// Integers nested any way read back in row-major order, as many as were written.
        #[test]
        fn nested_integers_read_in_row_major_order(rows in proptest::collection::vec(
            proptest::collection::vec(any::<i64>(), 0..5), 0..5)
        ) {
            let raw = serde_json::to_string(&rows).unwrap();
            let (bytes, count) = read(&raw, Datatype::Int64).unwrap();
            let flat: Vec<i64> = rows.concat();
            prop_assert_eq!(count, flat.len());
            let read_back: Vec<i64> =
                bytes.chunks(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
            prop_assert_eq!(read_back, flat);
        }
    }
}

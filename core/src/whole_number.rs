//! Integer fields of request bodies that take any JSON number with no fraction. JSON Schema's `integer`
//! is such a number (`2.0` is one), and some clients (JavaScript's, spreadsheet exports) write whole
//! numbers that way; serde alone refuses `2.0` for an integer field.
//!
//! `#[serde(deserialize_with = "crate::whole_number::required")]`, or `optional` for an `Option` (with
//! `#[serde(default)]`).

use std::fmt;

use serde::Deserializer;
use serde::de::{self, Unexpected, Visitor};

struct Whole;

impl Visitor<'_> for Whole {
    type Value = i128;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a whole number")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
        Ok(v.into())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
        Ok(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i128, E> {
        // 2^63: beyond it no i64 (and no field here) can hold the value anyway.
        if v.fract() == 0.0 && v.abs() < 9.223_372_036_854_776e18 {
            Ok(v as i128)
        } else {
            Err(E::invalid_type(Unexpected::Float(v), &self))
        }
    }
}

fn narrow<T: TryFrom<i128>, E: de::Error>(v: i128) -> Result<T, E> {
    T::try_from(v).map_err(|_| {
        let shown = i64::try_from(v).unwrap_or(i64::MAX);
        E::invalid_value(Unexpected::Signed(shown), &"a number in the field's range")
    })
}

pub fn required<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<T, D::Error> {
    narrow(d.deserialize_any(Whole)?)
}

pub fn optional<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<Option<T>, D::Error> {
    struct MaybeWhole;
    impl<'de> Visitor<'de> for MaybeWhole {
        type Value = Option<i128>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a whole number or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(Whole).map(Some)
        }
    }
    d.deserialize_option(MaybeWhole)?.map(narrow).transpose()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Sample {
        #[serde(deserialize_with = "super::required")]
        size: i64,
        #[serde(default, deserialize_with = "super::optional")]
        days: Option<u32>,
    }

    fn parse(json: &str) -> Result<Sample, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn whole_numbers_are_taken_in_either_spelling() {
        let s = parse(r#"{"size": 13918.0, "days": 2.0}"#).unwrap();
        assert_eq!((s.size, s.days), (13918, Some(2)));
        let s = parse(r#"{"size": 7}"#).unwrap();
        assert_eq!((s.size, s.days), (7, None));
        assert_eq!(parse(r#"{"size": 1, "days": null}"#).unwrap().days, None);
    }

    #[test]
    fn fractions_strings_and_out_of_range_values_are_refused() {
        for bad in [
            r#"{"size": 1.5}"#,
            r#"{"size": "1"}"#,
            r#"{"size": 1e300}"#,
            r#"{"size": 18446744073709551615}"#,
            r#"{"size": 1, "days": -1}"#,
            r#"{"size": 1, "days": 4294967296}"#,
            r#"{"size": 1, "days": 2.5}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}

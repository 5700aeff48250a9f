//! Bounds on a REST request's JSON structure, so that what it decodes to stays near its size. Unbounded,
//! a body's structure decoded to many times the body, uncounted: a 33 MiB body of three million request
//! parameters took a runner to 455 MB (14×), five million requested outputs 352 MB from 57 MiB, and a
//! parameter's value could be any JSON tree (32 bytes a value, from two bytes of text). The protocol's
//! parameters are strings, numbers and booleans; a request names at most as many tensors as a model has,
//! and a tensor's shape a handful of dimensions: these bounds are far above what any request needs, and
//! each error says which was passed. Tensor data is not bound here: it is kept as text and read knowing
//! its datatype (`json_values`), its decoded bytes counted in the request's memory.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Tensors a request may name (inputs, and outputs asked for).
pub const MAX_TENSORS: usize = 4096;
/// Dimensions in a tensor's shape.
pub const MAX_DIMENSIONS: usize = 64;
/// Parameters in one `parameters` object.
pub const MAX_PARAMETERS: usize = 64;

/// A list of at most [`MAX_TENSORS`] tensors.
pub struct Tensors<T>(pub Vec<T>);

/// A `parameters` object: at most [`MAX_PARAMETERS`], each a string, a number or a boolean.
#[derive(Default)]
pub struct Parameters(Map<String, Value>);

impl Deref for Parameters {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Map<String, Value> {
        &self.0
    }
}

/// A shape of at most [`MAX_DIMENSIONS`].
pub fn shape<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<i64>, D::Error> {
    deserializer.deserialize_seq(AtMost {
        max: MAX_DIMENSIONS,
        what: "dimensions in a shape",
        items: PhantomData,
    })
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Tensors<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_seq(AtMost {
                max: MAX_TENSORS,
                what: "tensors in a request",
                items: PhantomData,
            })
            .map(Tensors)
    }
}

struct AtMost<T> {
    max: usize,
    what: &'static str,
    items: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for AtMost<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a list of at most {} {}", self.max, self.what)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max));
        while let Some(item) = seq.next_element()? {
            if items.len() == self.max {
                return Err(de::Error::custom(format!(
                    "more than {} {}",
                    self.max, self.what
                )));
            }
            items.push(item);
        }
        Ok(items)
    }
}

impl<'de> Deserialize<'de> for Parameters {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ParametersVisitor)
    }
}

struct ParametersVisitor;

impl<'de> Visitor<'de> for ParametersVisitor {
    type Value = Parameters;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "an object of at most {MAX_PARAMETERS} parameters, each a string, a number or a boolean"
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parameters, A::Error> {
        let mut parameters = Map::new();
        while let Some((name, Scalar(value))) = map.next_entry::<String, Scalar>()? {
            if parameters.len() == MAX_PARAMETERS && !parameters.contains_key(&name) {
                return Err(de::Error::custom(format!(
                    "more than {MAX_PARAMETERS} parameters in one object"
                )));
            }
            parameters.insert(name, value);
        }
        Ok(Parameters(parameters))
    }
}

/// A parameter's value: refused at its first `[` or `{`, before any of it is decoded.
struct Scalar(Value);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a parameter's value: a string, a number or a boolean")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar(Value::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Number::from_f64(v)
            .map(|n| Scalar(Value::Number(n)))
            .ok_or_else(|| E::custom("a parameter's number is not finite"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar(Value::String(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar(Value::String(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Request {
        #[serde(default)]
        parameters: Parameters,
        #[serde(default)]
        inputs: Option<Tensors<u8>>,
        #[serde(default, deserialize_with = "shape")]
        shape: Vec<i64>,
    }

    fn parse(json: &str) -> Result<Request, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn scalar_parameters_are_taken_and_trees_refused() {
        let request =
            parse(r#"{"parameters": {"a": 1, "b": true, "c": "x", "d": 2.5, "e": -3}}"#).unwrap();
        assert_eq!(request.parameters.len(), 5);
        assert_eq!(request.parameters.get("b"), Some(&Value::Bool(true)));
        for tree in [
            r#"{"parameters": {"a": [1, 2]}}"#,
            r#"{"parameters": {"a": {"b": 1}}}"#,
        ] {
            let refused = parse(tree).err().unwrap();
            assert!(
                refused.contains("a string, a number or a boolean"),
                "{refused}"
            );
        }
        assert!(parse(r#"{"parameters": {"a": null}}"#).is_err());
    }

    #[test]
    fn each_bound_is_taken_to_its_limit_and_refused_past_it() {
        let list = |n: usize, item: &str| vec![item; n].join(",");
        let parameters = |n: usize| {
            (0..n)
                .map(|i| format!("\"p{i}\": {i}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert!(parse(&format!(r#"{{"parameters": {{{}}}}}"#, parameters(64))).is_ok());
        let refused = parse(&format!(r#"{{"parameters": {{{}}}}}"#, parameters(65)));
        assert!(refused.err().unwrap().contains("more than 64 parameters"));
        let inputs = parse(&format!(r#"{{"inputs": [{}]}}"#, list(4096, "1"))).unwrap();
        assert_eq!(inputs.inputs.map(|t| t.0.len()), Some(4096));
        let refused = parse(&format!(r#"{{"inputs": [{}]}}"#, list(4097, "1")));
        assert!(refused.err().unwrap().contains("more than 4096 tensors"));
        let shape = parse(&format!(r#"{{"shape": [{}]}}"#, list(64, "2"))).unwrap();
        assert_eq!(shape.shape, vec![2; 64]);
        let refused = parse(&format!(r#"{{"shape": [{}]}}"#, list(65, "2")));
        assert!(refused.err().unwrap().contains("more than 64 dimensions"));
    }

    #[test]
    fn a_repeated_parameter_counts_once() {
        let repeated = vec![r#""a": 1"#; 100].join(",");
        assert!(parse(&format!(r#"{{"parameters": {{{repeated}}}}}"#)).is_ok());
    }
}

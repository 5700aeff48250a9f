//! OneHotEncoder and LabelEncoder over numbers. Their string forms need string tensors, which kiln's
//! evaluator does not hold: those are refused, naming the attribute.

use std::collections::HashMap;

use candle_core::{DType, Tensor};

use super::super::super::node::{Node, required};
use super::super::super::tensor_io;
use super::scores::evaluation;
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

fn refuse_strings(node: &Node<'_>, names: &[&str]) -> Result<(), ModelError> {
    for name in names {
        if node.strings(name).is_some_and(|s| !s.is_empty()) {
            return Err(evaluation(format!(
                "{} over strings ({name}): kiln's evaluator has no string tensors (serve the model \
                 with --engine ort)",
                node.op_type()
            )));
        }
    }
    Ok(())
}

/// Y = X's shape + [categories], 1.0 where a value (truncated to an integer) is that category. A value
/// of no category gives a row of zeros, or an error when `zeros` is 0.
pub fn one_hot_encoder(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    refuse_strings(node, &["cats_strings"])?;
    let x = required(inputs, 0)?;
    let categories = node.ints("cats_int64s").unwrap_or_default();
    if categories.is_empty() {
        return Err(evaluation("OneHotEncoder has no cats_int64s"));
    }
    // A category listed twice answers to its last place, as in ONNX Runtime.
    let place: HashMap<i64, usize> = categories
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, i))
        .collect();
    let n = categories.len();
    let values = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let cells = values
        .len()
        .checked_mul(n)
        .filter(|&c| c as u64 <= crate::model_check::MAX_ELEMENTS)
        .ok_or_else(|| evaluation("OneHotEncoder's output is too large"))?;
    let zeros = node.int("zeros", 1) != 0;
    let mut y = vec![0f32; cells];
    for (i, v) in values.iter().enumerate() {
        let key = (v.is_finite()).then(|| v.trunc() as i64);
        match key.and_then(|k| place.get(&k)) {
            Some(&at) => y[i * n + at] = 1.0,
            None if zeros => {}
            None => {
                return Err(evaluation(format!(
                    "OneHotEncoder: {v} is no category and zeros is 0"
                )));
            }
        }
    }
    let mut shape = x.dims().to_vec();
    shape.push(n);
    Ok(vec![Tensor::from_vec(y, shape, x.device())?])
}

/// The keys or values of a LabelEncoder: the `*_int64s` or `*_floats` list, else the `*_tensor`.
fn numbers(node: &Node<'_>, prefix: &str) -> Result<Option<(Vec<f64>, DType)>, ModelError> {
    if let Some(ints) = node
        .ints(&format!("{prefix}_int64s"))
        .filter(|v| !v.is_empty())
    {
        return Ok(Some((ints.iter().map(|&v| v as f64).collect(), DType::I64)));
    }
    if let Some(floats) = node
        .floats(&format!("{prefix}_floats"))
        .filter(|v| !v.is_empty())
    {
        return Ok(Some((
            floats.iter().map(|&v| f64::from(v)).collect(),
            DType::F32,
        )));
    }
    node.tensor(&format!("{prefix}_tensor"))
        .map(|t| {
            let t = tensor_io::from_proto(t, None, &candle_core::Device::Cpu)?;
            let dtype = t.dtype();
            Ok((
                t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?,
                dtype,
            ))
        })
        .transpose()
}

/// A key as the map holds it: -0 is 0, and every NaN the same (ONNX Runtime matches NaN keys).
fn key_bits(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        (v + 0.0).to_bits()
    }
}

/// Each value of X mapped through `keys_*` to `values_*` (the first of a repeated key), or to the
/// default. int64 keys and values go through f64, exact below 2^53.
pub fn label_encoder(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    refuse_strings(node, &["keys_strings", "values_strings", "classes_strings"])?;
    let x = required(inputs, 0)?;
    let (Some((keys, key_type)), Some((values, value_type))) =
        (numbers(node, "keys")?, numbers(node, "values")?)
    else {
        return Err(evaluation(
            "LabelEncoder needs numeric keys and values (keys_int64s, keys_floats or keys_tensor; \
             the same for values)",
        ));
    };
    if keys.len() != values.len() {
        return Err(evaluation(format!(
            "LabelEncoder has {} keys and {} values",
            keys.len(),
            values.len()
        )));
    }
    if (key_type == DType::I64) != (x.dtype() == DType::I64) {
        return Err(evaluation(format!(
            "LabelEncoder keys are {key_type:?}, X is {:?}",
            x.dtype()
        )));
    }
    let mut map = HashMap::new();
    for (k, v) in keys.iter().zip(&values) {
        map.entry(key_bits(*k)).or_insert(*v);
    }
    let default = match node.tensor("default_tensor") {
        Some(t) => tensor_io::from_proto(t, None, &candle_core::Device::Cpu)?
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?
            .first()
            .copied()
            .unwrap_or(-1.0),
        None if value_type == DType::I64 => node.int("default_int64", -1) as f64,
        None => f64::from(node.float("default_float", -0.0)),
    };
    let mapped: Vec<f64> = x
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?
        .into_iter()
        .map(|v| map.get(&key_bits(v)).copied().unwrap_or(default))
        .collect();
    let y = Tensor::from_vec(mapped, x.dims(), x.device())?;
    Ok(vec![y.to_dtype(value_type)?])
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::super::DOMAIN;
    use crate::eval::ops::testing::{flat, int, ints, run_in};

    #[test]
    fn one_hot_marks_each_values_category() {
        let x = Some(Tensor::new(&[[2i64, 9], [5, 2]], &Device::Cpu).unwrap());
        let out = run_in(
            DOMAIN,
            "OneHotEncoder",
            vec![ints("cats_int64s", &[2, 5])],
            &[x],
        );
        assert_eq!(out[0].dims(), &[2, 2, 2]);
        assert_eq!(flat(&out[0]), vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn label_encoder_maps_and_defaults() {
        let x = Some(Tensor::new(&[3i64, 4, 5], &Device::Cpu).unwrap());
        let out = run_in(
            DOMAIN,
            "LabelEncoder",
            vec![
                ints("keys_int64s", &[3, 5, 3]),
                ints("values_int64s", &[30, 50, 99]),
                int("default_int64", 7),
            ],
            &[x],
        );
        assert_eq!(out[0].to_vec1::<i64>().unwrap(), vec![30, 7, 50]);
    }
}

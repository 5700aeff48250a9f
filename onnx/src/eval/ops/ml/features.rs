//! Feature transforms: Binarizer, ArrayFeatureExtractor, Normalizer, Scaler, Imputer, FeatureVectorizer.

use candle_core::{DType, Tensor};

use super::super::super::node::{Node, int_values, required};
use super::scores::{Rows, evaluation};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// 1 where x > threshold, else 0, in x's type.
pub fn binarizer(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let threshold = Tensor::new(f64::from(node.float("threshold", 0.0)), x.device())?;
    let above = x.to_dtype(DType::F64)?.broadcast_gt(&threshold)?;
    Ok(vec![above.to_dtype(x.dtype())?])
}

/// The entries of X's last axis that the indices name, in their order. A 1-D X gives one row, as ONNX
/// Runtime does.
pub fn array_feature_extractor(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let indices = int_values(required(inputs, 1)?)?;
    let last = x.dims().last().copied().ok_or_else(|| {
        ModelError::Evaluation("ArrayFeatureExtractor needs an X of rank 1 or more".to_owned())
    })?;
    let positions = indices
        .iter()
        .map(|&i| {
            u32::try_from(i)
                .ok()
                .filter(|&i| (i as usize) < last)
                .ok_or_else(|| {
                    ModelError::Evaluation(format!(
                        "ArrayFeatureExtractor index {i} is out of range for {last} features"
                    ))
                })
        })
        .collect::<Result<Vec<u32>, _>>()?;
    let count = positions.len();
    let positions = Tensor::from_vec(positions, count, x.device())?;
    let picked = x.index_select(&positions, x.rank() - 1)?;
    let mut shape = if x.rank() == 1 {
        vec![1]
    } else {
        x.dims()[..x.rank() - 1].to_vec()
    };
    shape.push(count);
    Ok(vec![picked.reshape(shape)?])
}

/// Each row divided by its largest value (`MAX`, signed, NaN skipped), the sum of its magnitudes (`L1`)
/// or its Euclidean length (`L2`); a row whose norm is 0 is left as it is. Y is f32.
pub fn normalizer(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let mut rows = Rows::<f32>::of(x, "Normalizer")?;
    let norm = node.string("norm").unwrap_or_else(|| "MAX".to_owned());
    if !matches!(norm.as_str(), "MAX" | "L1" | "L2") {
        return Err(evaluation(format!(
            "Normalizer norm {norm:?} is none of MAX, L1, L2"
        )));
    }
    for row in rows.values.chunks_mut(rows.features.max(1)) {
        match norm.as_str() {
            "MAX" => {
                let max = row.iter().fold(f32::MIN, |m, &v| if m < v { v } else { m });
                if max != 0.0 {
                    row.iter_mut().for_each(|v| *v /= max);
                }
            }
            "L1" => {
                let sum: f32 = row.iter().map(|v| v.abs()).sum();
                if sum != 0.0 {
                    row.iter_mut().for_each(|v| *v /= sum);
                }
            }
            _ => {
                let sum: f32 = row.iter().map(|v| v * v).sum();
                if sum != 0.0 {
                    // sqrt(x²/sum) with x's sign, as ONNX Runtime rounds it (not x/sqrt(sum)).
                    row.iter_mut()
                        .for_each(|v| *v = ((*v * *v) / sum).sqrt().copysign(*v));
                }
            }
        }
    }
    Ok(vec![Tensor::from_vec(rows.values, x.dims(), x.device())?])
}

/// (X - offset) · scale, per feature when the attributes have one value per feature, else their one
/// value for all. Y is f32.
pub fn scaler(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let mut rows = Rows::<f32>::of(x, "Scaler")?;
    let scale = node.floats("scale").unwrap_or_default();
    let offset = node
        .floats("offset")
        .unwrap_or_else(|| vec![0.0; scale.len()]);
    if scale.is_empty()
        || offset.len() != scale.len()
        || (scale.len() != 1 && scale.len() != rows.features)
    {
        return Err(evaluation(format!(
            "Scaler has {} scales and {} offsets for {} features: both need one per feature, or one",
            scale.len(),
            offset.len(),
            rows.features
        )));
    }
    let per_feature = scale.len() == rows.features;
    for (i, v) in rows.values.iter_mut().enumerate() {
        let k = if per_feature { i % rows.features } else { 0 };
        *v = (*v - offset[k]) * scale[k];
    }
    Ok(vec![Tensor::from_vec(rows.values, x.dims(), x.device())?])
}

/// Values equal to `replaced_value_*` (NaN matching NaN) replaced by `imputed_value_*`, per feature
/// when there is one per feature, else the first; Y has X's type.
pub fn imputer(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let features = match x.dims() {
        [] => return Err(evaluation("Imputer needs an X of rank 1 or more")),
        [n] => *n,
        [_, n, ..] => *n,
    };
    let floats = node.floats("imputed_value_floats").unwrap_or_default();
    let ints = node.ints("imputed_value_int64s").unwrap_or_default();
    let pick = |count: usize, i: usize| {
        if count == features {
            i % features.max(1)
        } else {
            0
        }
    };
    match x.dtype() {
        DType::I64 => {
            if ints.is_empty() {
                return Err(evaluation("Imputer of int64 X has no imputed_value_int64s"));
            }
            let replaced = node.int("replaced_value_int64", 0);
            let mut values = x.flatten_all()?.to_vec1::<i64>()?;
            for (i, v) in values.iter_mut().enumerate() {
                if *v == replaced {
                    *v = ints[pick(ints.len(), i)];
                }
            }
            Ok(vec![Tensor::from_vec(values, x.dims(), x.device())?])
        }
        DType::F32 | DType::F64 | DType::F16 | DType::BF16 => {
            if floats.is_empty() {
                return Err(evaluation("Imputer of float X has no imputed_value_floats"));
            }
            // In f64, which holds every float type's values exactly: what is not replaced is unchanged.
            let replaced = f64::from(node.float("replaced_value_float", 0.0));
            let mut values = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
            for (i, v) in values.iter_mut().enumerate() {
                if (v.is_nan() && replaced.is_nan()) || *v == replaced {
                    *v = f64::from(floats[pick(floats.len(), i)]);
                }
            }
            let y = Tensor::from_vec(values, x.dims(), x.device())?;
            Ok(vec![y.to_dtype(x.dtype())?])
        }
        other => Err(evaluation(format!(
            "Imputer takes float or int64 X, not {other:?}"
        ))),
    }
}

/// The inputs' rows side by side, each cut or zero-padded to its `inputdimensions` width. Y is f32
/// [rows, total width].
pub fn feature_vectorizer(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let widths = node.ints("inputdimensions").unwrap_or_default();
    if widths.is_empty() || widths.len() != inputs.len() {
        return Err(evaluation(format!(
            "FeatureVectorizer has {} inputdimensions for {} inputs",
            widths.len(),
            inputs.len()
        )));
    }
    let widths = widths
        .iter()
        .map(|&w| usize::try_from(w).map_err(|_| evaluation("FeatureVectorizer width below 0")))
        .collect::<Result<Vec<usize>, _>>()?;
    let total = widths
        .iter()
        .try_fold(0usize, |sum, &w| sum.checked_add(w))
        .ok_or_else(|| evaluation("FeatureVectorizer's widths overflow"))?;
    let first = required(inputs, 0)?;
    let rows = if first.rank() <= 1 {
        1
    } else {
        first.dims()[0]
    };
    let cells = super::scores::cells(rows, total, "FeatureVectorizer")?;
    let mut y = vec![0f32; cells];
    let mut column = 0;
    for (index, &width) in widths.iter().enumerate() {
        let input = required(inputs, index)?;
        let (input_rows, size) = match input.dims() {
            [] => (1, 1),
            [n] => (1, *n),
            [n, rest @ ..] => (*n, rest.iter().product()),
        };
        if input_rows > rows {
            return Err(evaluation(format!(
                "FeatureVectorizer input {index} has {input_rows} rows, the first {rows}"
            )));
        }
        let values = input
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let taken = size.min(width);
        for r in 0..input_rows {
            y[r * total + column..][..taken].copy_from_slice(&values[r * size..][..taken]);
        }
        column += width;
    }
    Ok(vec![Tensor::from_vec(y, (rows, total), first.device())?])
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::super::DOMAIN;
    use crate::eval::ops::testing::{f32s, flat, float, floats, ints, run_in, string};

    #[test]
    fn normalizer_divides_rows_by_their_norm() {
        let x = || f32s(&[3.0, -4.0, 0.0, 0.0], &[2, 2]);
        let max = run_in(DOMAIN, "Normalizer", vec![string("norm", "MAX")], &[x()]);
        assert_eq!(flat(&max[0]), vec![1.0, -4.0 / 3.0, 0.0, 0.0]);
        let l1 = run_in(DOMAIN, "Normalizer", vec![string("norm", "L1")], &[x()]);
        assert_eq!(flat(&l1[0]), vec![3.0 / 7.0, -4.0 / 7.0, 0.0, 0.0]);
        let l2 = run_in(DOMAIN, "Normalizer", vec![string("norm", "L2")], &[x()]);
        assert_eq!(flat(&l2[0]), vec![0.6, -0.8, 0.0, 0.0]);
    }

    #[test]
    fn scaler_and_imputer_work_per_feature() {
        let scaled = run_in(
            DOMAIN,
            "Scaler",
            vec![floats("offset", &[1.0, 2.0]), floats("scale", &[2.0, 0.5])],
            &[f32s(&[2.0, 4.0], &[1, 2])],
        );
        assert_eq!(flat(&scaled[0]), vec![2.0, 1.0]);
        let imputed = run_in(
            DOMAIN,
            "Imputer",
            vec![
                floats("imputed_value_floats", &[7.0, 8.0]),
                float("replaced_value_float", f32::NAN),
            ],
            &[f32s(&[f32::NAN, 1.0, 2.0, f32::NAN], &[2, 2])],
        );
        assert_eq!(flat(&imputed[0]), vec![7.0, 1.0, 2.0, 8.0]);
    }

    #[test]
    fn feature_vectorizer_pads_and_cuts_each_input() {
        let out = run_in(
            DOMAIN,
            "FeatureVectorizer",
            vec![ints("inputdimensions", &[3, 1])],
            &[
                f32s(&[1.0, 2.0, 3.0, 4.0], &[2, 2]),
                f32s(&[5.0, 6.0, 7.0, 8.0], &[2, 2]),
            ],
        );
        assert_eq!(flat(&out[0]), vec![1.0, 2.0, 0.0, 5.0, 3.0, 4.0, 0.0, 7.0]);
    }

    #[test]
    fn binarizer_is_strictly_above_the_threshold() {
        let out = run_in(
            DOMAIN,
            "Binarizer",
            vec![float("threshold", 1.0)],
            &[f32s(&[0.5, 1.0, 1.5], &[3])],
        );
        assert_eq!(flat(&out[0]), vec![0.0, 0.0, 1.0]);
    }

    #[test]
    fn array_feature_extractor_picks_last_axis_entries() {
        let indices = Some(Tensor::new(&[2i64, 0], &Device::Cpu).unwrap());
        let out = run_in(
            DOMAIN,
            "ArrayFeatureExtractor",
            vec![],
            &[f32s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]), indices],
        );
        assert_eq!(out[0].dims(), &[2, 2]);
        assert_eq!(flat(&out[0]), vec![3.0, 1.0, 6.0, 4.0]);
    }

    #[test]
    fn array_feature_extractor_rejects_an_index_past_the_end() {
        let proto = crate::proto::NodeProto::default();
        let node = crate::eval::node::Node::new(&proto, 1);
        let indices = Some(Tensor::new(&[3i64], &Device::Cpu).unwrap());
        let x = f32s(&[1.0, 2.0, 3.0], &[3]);
        assert!(super::array_feature_extractor(&node, &[x, indices]).is_err());
    }
}

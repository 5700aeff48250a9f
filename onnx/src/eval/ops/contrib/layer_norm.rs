//! ONNX Runtime's fused layer normalizations for transformers: `SkipLayerNormalization` (residual + bias +
//! LayerNorm), `SkipSimplifiedLayerNormalization` (the same with RMS normalization) and
//! `EmbedLayerNormalization` (word + position + segment embeddings, LayerNorm, and a mask index).

use candle_core::{D, DType, Device, Tensor};

use super::super::super::node::{Node, int_values, optional, required};
use super::{Out, evaluation, last_axis_vector};
use crate::ModelError;

/// ONNX Runtime's default epsilon for these operators (not LayerNormalization's 1e-5).
const DEFAULT_EPSILON: f32 = 1e-12;

/// input + skip (+ bias), checked to share the hidden (last) width; skip may broadcast over the batch.
fn residual_sum(inputs: &[Option<Tensor>]) -> Result<Tensor, ModelError> {
    let x = required(inputs, 0)?;
    let skip = required(inputs, 1)?;
    let hidden = x.dims().last().copied();
    if hidden.is_none() || skip.dims().last().copied() != hidden || skip.rank() > x.rank() {
        return Err(evaluation(format!(
            "skip of shape {:?} does not match the input's {:?}",
            skip.dims(),
            x.dims()
        )));
    }
    // The normalizations below use candle's float functions, which panic on integers.
    if !x.dtype().is_float() {
        return Err(evaluation(format!(
            "the input must be floating point, not {:?}",
            x.dtype()
        )));
    }
    let sum = x.broadcast_add(skip)?;
    match optional(inputs, 4) {
        Some(bias) => Ok(sum.broadcast_add(last_axis_vector(&sum, bias, "bias")?)?),
        None => Ok(sum),
    }
}

/// Scales by gamma and shifts by the optional beta, both `[hidden]`.
fn scale_and_shift(
    normalized: &Tensor,
    gamma: &Tensor,
    beta: Option<&Tensor>,
) -> Result<Tensor, ModelError> {
    let scaled = normalized.broadcast_mul(last_axis_vector(normalized, gamma, "gamma")?)?;
    match beta {
        Some(beta) => Ok(scaled.broadcast_add(last_axis_vector(&scaled, beta, "beta")?)?),
        None => Ok(scaled),
    }
}

/// LayerNorm over the last axis; returns (normalized, mean, 1/σ), the statistics with a kept axis.
fn normalize(x: &Tensor, epsilon: f64) -> Result<(Tensor, Tensor, Tensor), ModelError> {
    if !x.dtype().is_float() {
        return Err(evaluation(format!(
            "embeddings must be floating point, not {:?}",
            x.dtype()
        )));
    }
    let mean = x.mean_keepdim(D::Minus1)?;
    let centered = x.broadcast_sub(&mean)?;
    let variance = centered.sqr()?.mean_keepdim(D::Minus1)?;
    let inv_std = (variance + epsilon)?.sqrt()?.recip()?;
    Ok((centered.broadcast_mul(&inv_std)?, mean, inv_std))
}

/// Outputs: the normalized sum, its mean, its 1/σ, and the sum itself (input + skip + bias).
pub fn skip_layer_normalization(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let sum = residual_sum(inputs)?;
    let epsilon = f64::from(node.float("epsilon", DEFAULT_EPSILON));
    let (normalized, mean, inv_std) = normalize(&sum, epsilon)?;
    let out = scale_and_shift(&normalized, required(inputs, 2)?, optional(inputs, 3))?;
    Ok(vec![out, mean, inv_std, sum])
}

/// RMS normalization: x / √(mean(x²) + ε) · gamma; inputs are input, skip, gamma, bias (no beta).
pub fn skip_simplified_layer_normalization(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    // The bias is input 3 here, where SkipLayerNormalization has beta; shift it to 4 for residual_sum.
    let shifted = [
        inputs.first().cloned().flatten(),
        inputs.get(1).cloned().flatten(),
        None,
        None,
        inputs.get(3).cloned().flatten(),
    ];
    let sum = residual_sum(&shifted)?;
    let epsilon = f64::from(node.float("epsilon", DEFAULT_EPSILON));
    let mean_square = sum.sqr()?.mean_keepdim(D::Minus1)?;
    let inv_std = (mean_square + epsilon)?.sqrt()?.recip()?;
    let out = scale_and_shift(&sum.broadcast_mul(&inv_std)?, required(inputs, 2)?, None)?;
    // Output 1 (mean) is not computed by RMS normalization; ONNX Runtime leaves it unset too.
    Ok(vec![out, inv_std.zeros_like()?, inv_std, sum])
}

/// Rows of an embedding table `[rows, hidden]` for `[batch, sequence]` ids, checked to be in range.
fn embed(
    table: &Tensor,
    ids: &[i64],
    batch: usize,
    sequence: usize,
    what: &str,
) -> Result<Tensor, ModelError> {
    let (rows, hidden) = table.dims2().map_err(|_| {
        evaluation(format!(
            "{what} must be [rows, hidden], not {:?}",
            table.dims()
        ))
    })?;
    let indices = ids
        .iter()
        .map(|&id| {
            usize::try_from(id)
                .ok()
                .filter(|&i| i < rows)
                .map(|_| id)
                .ok_or_else(|| evaluation(format!("{what}: id {id} is outside 0 to {rows}")))
        })
        .collect::<Result<Vec<i64>, ModelError>>()?;
    let indices = Tensor::from_vec(indices, ids.len(), table.device())?;
    Ok(table
        .index_select(&indices, 0)?
        .reshape((batch, sequence, hidden))?)
}

/// Integer ids of a `[batch, sequence]` input (or `[1, sequence]` when `broadcast`), as `batch·sequence` values.
fn ids_of(
    tensor: &Tensor,
    batch: usize,
    sequence: usize,
    broadcast: bool,
    what: &str,
) -> Result<Vec<i64>, ModelError> {
    let values = int_values(tensor)?;
    match tensor.dims() {
        [b, s] if *b == batch && *s == sequence => Ok(values),
        [1, s] if broadcast && *s == sequence => Ok(values.repeat(batch)),
        other => Err(evaluation(format!(
            "{what} has shape {other:?}, expected [{batch}, {sequence}]"
        ))),
    }
}

/// Inputs: input_ids, segment_ids?, word, position and segment? embeddings, gamma, beta, mask?,
/// position_ids?. Outputs: the normalized embedding sum, the mask index (ones per row of the mask, 0
/// without one), and the sum before normalization.
pub fn embed_layer_normalization(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let input_ids = required(inputs, 0)?;
    let (batch, sequence) = input_ids.dims2().map_err(|_| {
        evaluation(format!(
            "input_ids must be [batch, sequence], not {:?}",
            input_ids.dims()
        ))
    })?;
    let words = ids_of(input_ids, batch, sequence, false, "input_ids")?;
    let mut sum = embed(
        required(inputs, 2)?,
        &words,
        batch,
        sequence,
        "word_embedding",
    )?;
    let positions = match optional(inputs, 8) {
        Some(p) => ids_of(p, batch, sequence, true, "position_ids")?,
        None => (0..batch).flat_map(|_| 0..sequence as i64).collect(),
    };
    let position_table = required(inputs, 3)?;
    sum = sum.add(&embed(
        position_table,
        &positions,
        batch,
        sequence,
        "position_embedding",
    )?)?;
    match (optional(inputs, 1), optional(inputs, 4)) {
        (Some(segment_ids), Some(table)) => {
            let segments = ids_of(segment_ids, batch, sequence, false, "segment_ids")?;
            sum = sum.add(&embed(
                table,
                &segments,
                batch,
                sequence,
                "segment_embedding",
            )?)?;
        }
        (None, None) => {}
        _ => {
            return Err(evaluation(
                "segment_ids and segment_embedding must be given together",
            ));
        }
    }
    let epsilon = f64::from(node.float("epsilon", DEFAULT_EPSILON));
    let (normalized, _, _) = normalize(&sum, epsilon)?;
    let out = scale_and_shift(
        &normalized,
        required(inputs, 5)?,
        Some(required(inputs, 6)?),
    )?;
    let mask_index = match optional(inputs, 7) {
        Some(mask) => ids_of(mask, batch, sequence, false, "mask")?
            .chunks(sequence.max(1))
            .map(|row| row.iter().filter(|&&v| v == 1).count() as i64)
            .collect(),
        None => vec![0i64; batch],
    };
    let mask_index = Tensor::from_vec(mask_index, batch, &Device::Cpu)?.to_dtype(DType::I64)?;
    Ok(vec![out, mask_index, sum])
}

#[cfg(test)]
mod tests {
    use candle_core::Tensor;

    use super::super::testing::run;
    use crate::eval::ops::testing::{f32s, float, i64s};

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(a, b)| (a - b).abs() < 1e-4)
    }

    #[test]
    fn skip_layer_norm_is_layer_norm_of_the_residual_sum() {
        // input + skip + bias = [1, 2, 3, 6]: mean 3, variance 3.5.
        let x = f32s(&[0., 1., 1., 4.], &[1, 1, 4]);
        let skip = f32s(&[1., 1., 1., 1.], &[1, 1, 4]);
        let gamma = f32s(&[1., 2., 1., 1.], &[4]);
        let beta = f32s(&[0., 0., 0., 10.], &[4]);
        let bias = f32s(&[0., 0., 1., 1.], &[4]);
        let out = run(
            "SkipLayerNormalization",
            vec![float("epsilon", 0.0)],
            &[x, skip, gamma, beta, bias],
        );
        let s = 3.5f32.sqrt();
        assert!(close(
            &values(&out[0]),
            &[-2. / s, -2. / s, 0., 3. / s + 10.]
        ));
        assert!(close(&values(&out[1]), &[3.]));
        assert!(close(&values(&out[2]), &[1. / s]));
        assert!(close(&values(&out[3]), &[1., 2., 3., 6.]));
    }

    #[test]
    fn skip_simplified_layer_norm_divides_by_the_root_mean_square() {
        let x = f32s(&[3., 4.], &[1, 2]);
        let skip = f32s(&[0., 0.], &[1, 2]);
        let out = run(
            "SkipSimplifiedLayerNormalization",
            vec![float("epsilon", 0.0)],
            &[x, skip, f32s(&[1., 1.], &[2])],
        );
        let rms = 12.5f32.sqrt();
        assert!(close(&values(&out[0]), &[3. / rms, 4. / rms]));
    }

    #[test]
    fn embed_layer_norm_sums_three_embeddings_and_counts_the_mask() {
        let ids = i64s(&[1, 0, 2, 1]).map(|t| t.reshape((2, 2)).unwrap());
        let segments = i64s(&[0, 1, 0, 0]).map(|t| t.reshape((2, 2)).unwrap());
        let words = f32s(&[0., 0., 1., 3., 5., 1.], &[3, 2]);
        let positions = f32s(&[0., 1., 1., 0.], &[2, 2]);
        let segment_table = f32s(&[0., 0., 2., 2.], &[2, 2]);
        let mask = i64s(&[1, 1, 1, 0]).map(|t| t.reshape((2, 2)).unwrap());
        let out = run(
            "EmbedLayerNormalization",
            vec![float("epsilon", 0.0)],
            &[
                ids,
                segments,
                words,
                positions,
                segment_table,
                f32s(&[1., 1.], &[2]),
                f32s(&[0., 0.], &[2]),
                mask,
            ],
        );
        // Sums: [1,4], [3,2], [5,2], [2,3]; two values normalize to ∓1 by their order.
        assert!(close(&values(&out[2]), &[1., 4., 3., 2., 5., 2., 2., 3.]));
        assert!(close(
            &values(&out[0]),
            &[-1., 1., 1., -1., 1., -1., -1., 1.]
        ));
        assert_eq!(out[1].to_vec1::<i64>().unwrap(), vec![2, 1]);
    }

    #[test]
    fn an_embedding_id_out_of_range_is_an_error() {
        let proto = crate::proto::NodeProto::default();
        let node = crate::eval::node::Node::new(&proto, 17);
        let inputs = [
            i64s(&[7]).map(|t| t.reshape((1, 1)).unwrap()),
            None,
            f32s(&[0., 0.], &[1, 2]),
            f32s(&[0., 0.], &[1, 2]),
            None,
            f32s(&[1., 1.], &[2]),
            f32s(&[0., 0.], &[2]),
        ];
        let err = super::embed_layer_normalization(&node, &inputs)
            .unwrap_err()
            .to_string();
        assert!(err.contains("id 7 is outside"), "{err}");
    }
}

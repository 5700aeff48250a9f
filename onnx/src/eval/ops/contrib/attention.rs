//! ONNX Runtime's `Attention` (com.microsoft): multi-head self-attention over a packed QKV projection.
//!
//! Implemented: `num_heads`, `qkv_hidden_sizes` (V may differ from Q and K), the optional bias, `scale`,
//! `unidirectional`, `mask_filter_value`, `past` → `present` (concatenated, not a shared buffer), an
//! additive `attention_bias` (input 5), and `mask_index` as a 1-D `[batch]` end position or `[2·batch]`
//! end and start positions, a 2-D `[batch, total]` raw mask (or the `[batch|1, 1]` dummy, no mask), or a
//! 3-D `[batch, sequence, total]` raw mask; as in ONNX Runtime a hidden key gets `mask_filter_value`
//! (-10000) added, not -∞, and causality adds it again.
//! Not implemented, each refused with its own message: the 4-D Megatron mask, `do_rotary`,
//! `past_present_share_buffer`.

use candle_core::Tensor;

use super::super::super::node::{Node, int_values, optional, required};
use super::{Out, evaluation, last_axis_vector};
use crate::ModelError;

/// The sizes a mask is checked against: keys are the past and the new positions together.
#[derive(Clone, Copy)]
struct MaskShape {
    batch: usize,
    sequence: usize,
    past: usize,
    total: usize,
}

/// The additive `[batch, sequence, total]` mask: 0 where a query may attend a key, `filter` where the
/// mask forbids it, plus `filter` again for a future key when `causal` (ONNX Runtime adds the two).
fn mask_bias(
    mask: Option<&Tensor>,
    shape: MaskShape,
    causal: bool,
    filter: f32,
) -> Result<Option<Vec<f32>>, ModelError> {
    let MaskShape {
        batch,
        sequence,
        past,
        total,
    } = shape;
    if mask.is_none() && !causal {
        return Ok(None);
    }
    let mut bias = vec![0f32; batch * sequence * total];
    if let Some(mask) = mask {
        let values = int_values(mask)?;
        let allowed: Box<dyn Fn(usize, usize, usize) -> bool> = match mask.dims() {
            [n] if *n == batch => Box::new(|b, _, t| (t as i64) < values[b]),
            [n] if *n == 2 * batch => {
                Box::new(|b, _, t| (t as i64) < values[b] && (t as i64) >= values[b + batch])
            }
            [b, t] if *b == batch && *t == total => Box::new(|b, _, t| values[b * total + t] > 0),
            // ONNX Runtime's dummy mask: the same as none.
            [b, 1] if *b == batch || *b == 1 => Box::new(|_, _, _| true),
            [b, s, t] if *b == batch && *s == sequence && *t == total => {
                Box::new(|b, s, t| values[(b * sequence + s) * total + t] > 0)
            }
            [_, _, _, _] => {
                return Err(evaluation(
                    "Attention's 4-D mask_index (Megatron form) is not implemented",
                ));
            }
            other => {
                return Err(evaluation(format!(
                    "Attention's mask_index has shape {other:?}; kiln implements [{batch}], \
                     [{}], [{batch}, {total}] and [{batch}, {sequence}, {total}]",
                    2 * batch
                )));
            }
        };
        for b in 0..batch {
            for s in 0..sequence {
                for t in 0..total {
                    if !allowed(b, s, t) {
                        bias[(b * sequence + s) * total + t] = filter;
                    }
                }
            }
        }
    }
    if causal {
        for b in 0..batch {
            for s in 0..sequence {
                for t in past + s + 1..total {
                    bias[(b * sequence + s) * total + t] += filter;
                }
            }
        }
    }
    Ok(Some(bias))
}

/// The Q, K and V widths: `qkv_hidden_sizes`, or the weights' columns in three equal parts.
fn qkv_sizes(node: &Node<'_>, columns: usize, heads: usize) -> Result<[usize; 3], ModelError> {
    let sizes = match node.ints("qkv_hidden_sizes") {
        Some(sizes) => match sizes[..] {
            [q, k, v] if q > 0 && k > 0 && v > 0 => [q as usize, k as usize, v as usize],
            _ => {
                return Err(evaluation(format!(
                    "qkv_hidden_sizes {sizes:?} must be three positive sizes"
                )));
            }
        },
        None if columns.is_multiple_of(3) => [columns / 3; 3],
        None => {
            return Err(evaluation(format!(
                "{columns} weight columns do not split into Q, K and V"
            )));
        }
    };
    let [q, k, v] = sizes;
    if q != k || q.checked_add(k).and_then(|s| s.checked_add(v)) != Some(columns) {
        return Err(evaluation(format!(
            "qkv_hidden_sizes {sizes:?} must have Q = K and add up to the {columns} weight columns"
        )));
    }
    if q % heads != 0 || v % heads != 0 {
        return Err(evaluation(format!(
            "hidden sizes {sizes:?} do not divide into {heads} heads"
        )));
    }
    Ok(sizes)
}

/// `[batch, sequence, heads·size]` → `[batch, heads, sequence, size]`.
fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor, ModelError> {
    let (batch, sequence, width) = x.dims3()?;
    Ok(x.reshape((batch, sequence, heads, width / heads))?
        .transpose(1, 2)?
        .contiguous()?)
}

fn refuse_unimplemented(node: &Node<'_>) -> Result<(), ModelError> {
    for name in ["do_rotary", "past_present_share_buffer"] {
        if node.int(name, 0) != 0 {
            return Err(evaluation(format!(
                "Attention with {name} set is not implemented"
            )));
        }
    }
    Ok(())
}

/// Inputs: input `[B, S, in]`, weights `[in, q+k+v]`, bias?, mask_index?, past? `[2, B, N, P, head]`,
/// attention_bias? `[B|1, N|1, S, P+S]`. Outputs: `[B, S, v]` and present `[2, B, N, P+S, head]`.
pub fn attention(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    refuse_unimplemented(node)?;
    let x = required(inputs, 0)?;
    let weights = required(inputs, 1)?;
    let (batch, sequence, width) = x.dims3().map_err(|_| {
        evaluation(format!(
            "Attention's input must be [batch, sequence, hidden], not {:?}",
            x.dims()
        ))
    })?;
    let (rows, columns) = weights.dims2().map_err(|_| {
        evaluation(format!(
            "Attention's weights must be 2-D, not {:?}",
            weights.dims()
        ))
    })?;
    if rows != width {
        return Err(evaluation(format!(
            "weights have {rows} rows for an input of width {width}"
        )));
    }
    let heads = usize::try_from(node.int("num_heads", 0))
        .ok()
        .filter(|&h| h > 0)
        .ok_or_else(|| evaluation("Attention needs a positive num_heads"))?;
    let [q_size, k_size, v_size] = qkv_sizes(node, columns, heads)?;
    let mut qkv = x.broadcast_matmul(weights)?;
    if let Some(bias) = optional(inputs, 2) {
        qkv = qkv.broadcast_add(last_axis_vector(&qkv, bias, "bias")?)?;
    }
    let q = split_heads(&qkv.narrow(2, 0, q_size)?, heads)?;
    let mut k = split_heads(&qkv.narrow(2, q_size, k_size)?, heads)?;
    let mut v = split_heads(&qkv.narrow(2, q_size + k_size, v_size)?, heads)?;
    let head_size = q_size / heads;
    let mut past_length = 0;
    if let Some(past) = optional(inputs, 4) {
        let expected = [
            2,
            batch,
            heads,
            past.dims().get(3).copied().unwrap_or(0),
            head_size,
        ];
        if past.dims() != expected || k_size != v_size {
            return Err(evaluation(format!(
                "past has shape {:?}; expected [2, {batch}, {heads}, past, {head_size}] with V as wide as K",
                past.dims()
            )));
        }
        past_length = expected[3];
        k = Tensor::cat(&[&past.get(0)?, &k], 2)?;
        v = Tensor::cat(&[&past.get(1)?, &v], 2)?;
    }
    // A copy of every key and value: skipped where the node declares its output alone (no cache).
    let present = (node.output_count() != 1)
        .then(|| Tensor::stack(&[&k, &v], 0))
        .transpose()?;
    let total = past_length + sequence;
    let scale = match node.float("scale", 0.0) {
        s if s != 0.0 => f64::from(s),
        _ => 1.0 / (head_size as f64).sqrt(),
    };
    let mut scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?;
    let shape = MaskShape {
        batch,
        sequence,
        past: past_length,
        total,
    };
    let causal = node.int("unidirectional", 0) != 0;
    let filter = node.float("mask_filter_value", -10000.0);
    if let Some(bias) = mask_bias(optional(inputs, 3), shape, causal, filter)? {
        let bias = Tensor::from_vec(bias, (batch, 1, sequence, total), x.device())?;
        scores = scores.broadcast_add(&bias.to_dtype(scores.dtype())?)?;
    }
    if let Some(extra) = optional(inputs, 5) {
        scores = scores.broadcast_add(extra)?;
    }
    let probabilities = candle_nn::ops::softmax_last_dim(&scores)?;
    let out = probabilities
        .matmul(&v)?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((batch, sequence, v_size))?;
    Ok(std::iter::once(out).chain(present).collect())
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};

    use super::super::testing::run;
    use crate::eval::ops::testing::{f32s, i64s, int};

    /// Attention composed from plain tensor operations, one head at a time, with an explicit mask.
    fn reference(
        x: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        heads: usize,
        allowed: impl Fn(usize, usize, usize) -> bool,
    ) -> Vec<f32> {
        let (batch, sequence, _) = x.dims3().unwrap();
        let hidden = w.dims()[1] / 3;
        let head = hidden / heads;
        let qkv = x.broadcast_matmul(w).unwrap().broadcast_add(bias).unwrap();
        let qkv = qkv.to_vec3::<f32>().unwrap();
        let mut out = vec![0f32; batch * sequence * hidden];
        for b in 0..batch {
            for n in 0..heads {
                for s in 0..sequence {
                    let q = &qkv[b][s][n * head..(n + 1) * head];
                    let scores: Vec<f32> = (0..sequence)
                        .map(|t| {
                            let k = &qkv[b][t][hidden + n * head..hidden + (n + 1) * head];
                            let dot: f32 = q.iter().zip(k).map(|(a, b)| a * b).sum();
                            dot / (head as f32).sqrt()
                                + if allowed(b, s, t) { 0.0 } else { -10000.0 }
                        })
                        .collect();
                    let max = scores.iter().cloned().fold(f32::MIN, f32::max);
                    let exps: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f32 = exps.iter().sum();
                    for d in 0..head {
                        out[(b * sequence + s) * hidden + n * head + d] = (0..sequence)
                            .map(|t| exps[t] / total * qkv[b][t][2 * hidden + n * head + d])
                            .sum();
                    }
                }
            }
        }
        out
    }

    fn inputs() -> (Tensor, Tensor, Tensor) {
        let device = Device::Cpu;
        let x = Tensor::arange(0f32, 24., &device)
            .unwrap()
            .reshape((2, 3, 4))
            .unwrap();
        let x = (x * 0.1).unwrap().sin().unwrap();
        let w = Tensor::arange(0f32, 48., &device)
            .unwrap()
            .reshape((4, 12))
            .unwrap();
        let w = (w * 0.37).unwrap().cos().unwrap();
        let bias = (Tensor::arange(0f32, 12., &device).unwrap() * 0.05).unwrap();
        (x, w, bias)
    }

    fn assert_close(actual: &Tensor, expected: &[f32]) {
        let actual = actual.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(
            actual
                .iter()
                .zip(expected)
                .all(|(a, b)| (a - b).abs() < 1e-5),
            "{actual:?} vs {expected:?}"
        );
    }

    #[test]
    fn unmasked_attention_matches_the_composed_reference() {
        let (x, w, bias) = inputs();
        let out = run(
            "Attention",
            vec![int("num_heads", 2)],
            &[Some(x.clone()), Some(w.clone()), Some(bias.clone())],
        );
        assert_eq!(out[0].dims(), &[2, 3, 4]);
        assert_eq!(out[1].dims(), &[2, 2, 2, 3, 2]);
        assert_close(&out[0], &reference(&x, &w, &bias, 2, |_, _, _| true));
    }

    #[test]
    fn raw_and_end_position_masks_and_causality_hide_keys() {
        let (x, w, bias) = inputs();
        let raw = Tensor::new(&[[1i64, 1, 0], [1, 0, 1]], &Device::Cpu).unwrap();
        let out = run(
            "Attention",
            vec![int("num_heads", 2)],
            &[
                Some(x.clone()),
                Some(w.clone()),
                Some(bias.clone()),
                Some(raw),
            ],
        );
        let keep = [[true, true, false], [true, false, true]];
        assert_close(&out[0], &reference(&x, &w, &bias, 2, |b, _, t| keep[b][t]));
        let ends = run(
            "Attention",
            vec![int("num_heads", 1), int("unidirectional", 1)],
            &[
                Some(x.clone()),
                Some(w.clone()),
                Some(bias.clone()),
                i64s(&[2, 3]),
            ],
        );
        let ends_and_causal = |b: usize, s: usize, t: usize| t < [2, 3][b] && t <= s;
        assert_close(&ends[0], &reference(&x, &w, &bias, 1, ends_and_causal));
        let dummy = Tensor::ones((1, 1), DType::I64, &Device::Cpu).unwrap();
        let unmasked = run(
            "Attention",
            vec![int("num_heads", 2)],
            &[
                Some(x.clone()),
                Some(w.clone()),
                Some(bias.clone()),
                Some(dummy),
            ],
        );
        assert_close(&unmasked[0], &reference(&x, &w, &bias, 2, |_, _, _| true));
    }

    #[test]
    fn past_keys_and_values_are_prepended() {
        let (x, w, bias) = inputs();
        // Running the first two positions, then the third with their present as its past, matches one
        // causal run over all three.
        let full = run(
            "Attention",
            vec![int("num_heads", 2), int("unidirectional", 1)],
            &[Some(x.clone()), Some(w.clone()), Some(bias.clone())],
        );
        let first = run(
            "Attention",
            vec![int("num_heads", 2), int("unidirectional", 1)],
            &[
                Some(x.narrow(1, 0, 2).unwrap()),
                Some(w.clone()),
                Some(bias.clone()),
            ],
        );
        let last = run(
            "Attention",
            vec![int("num_heads", 2), int("unidirectional", 1)],
            &[
                Some(x.narrow(1, 2, 1).unwrap()),
                Some(w),
                Some(bias),
                None,
                Some(first[1].clone()),
            ],
        );
        let expected = full[0].narrow(1, 2, 1).unwrap().flatten_all().unwrap();
        assert_close(&last[0], &expected.to_vec1::<f32>().unwrap());
        assert_eq!(last[1].dims(), &[2, 2, 2, 3, 2]);
    }

    #[test]
    fn unimplemented_forms_are_named_errors() {
        let (x, w, _) = inputs();
        let attempt = |attrs, mask: Option<Tensor>| {
            let proto = crate::proto::NodeProto {
                attribute: attrs,
                ..Default::default()
            };
            let node = crate::eval::node::Node::new(&proto, 17);
            super::attention(&node, &[Some(x.clone()), Some(w.clone()), None, mask])
                .unwrap_err()
                .to_string()
        };
        let four_d = Tensor::ones((2, 1, 3, 3), DType::I64, &Device::Cpu).unwrap();
        assert!(attempt(vec![int("num_heads", 2)], Some(four_d)).contains("Megatron"));
        assert!(
            attempt(vec![int("num_heads", 2), int("do_rotary", 1)], None).contains("do_rotary")
        );
        assert!(attempt(vec![int("num_heads", 5)], None).contains("heads"));
        assert!(attempt(vec![], None).contains("num_heads"));
        let odd_mask = f32s(&[1.; 5], &[5]);
        assert!(attempt(vec![int("num_heads", 2)], odd_mask).contains("mask_index has shape"));
    }
}

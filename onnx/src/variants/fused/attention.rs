//! Multi-head self-attention spelled out in primitive operators, as kiln's converter and PyTorch's exporter
//! write BERT's, found and fused into ONNX Runtime's `Attention` (com.microsoft): one node over Q, K and V
//! packed into one weight, where the spelled-out form runs about twenty operators a layer.
//!
//! The form recognized, from the `Softmax` outwards:
//!
//! ```text
//! q, k, v = Add(MatMul(x, W), b)             one x; W [hidden, H·D] and b [H·D] constant floats
//! heads(t) = Transpose<0,2,1,3>(Reshape(t, [0, 0, H, D]))
//! kᵀ = Transpose<0,1,3,2>(heads(k))  or  Transpose<0,2,3,1>(Reshape(k, [0, 0, H, D]))
//! scores = Mul(MatMul(heads(q), kᵀ), c)  or  Div(MatMul(heads(q), kᵀ), 1/c)
//! p = Softmax<axis=-1>(Add(scores, mask))     (or of scores, with no mask)
//! out = Reshape(Transpose<0,2,1,3>(MatMul(p, heads(v))), [0, 0, H·D])
//! ```
//!
//! where `mask` is the additive padding mask `Unsqueeze<1,2>((1 - Cast<float>(m)) · f)` of an integer
//! graph input `m` [batch, sequence]. It becomes `Attention`'s raw `mask_index` (`m` as int32) with
//! `mask_filter_value` f, which is what the spelled-out form adds for a 0 and nothing for a 1: the same
//! for the 0/1 masks tokenizers write (a mask value other than 0 and 1 is scaled by the spelled-out form,
//! and is only "attend" or "not" to `Attention`). Every value between must be read only inside the form.

use std::collections::BTreeSet;

use super::view::{View, close_to, int_attribute, ints_attribute};

/// One attention block found, with what its fused node needs.
pub struct Found {
    /// Every node the fused node replaces.
    pub nodes: BTreeSet<usize>,
    /// The last of them, where the fused node goes.
    pub at: usize,
    pub input: String,
    pub output: String,
    pub heads: i64,
    pub scale: f32,
    /// Q, K and V's weights, [hidden, H·D] each, and their biases.
    pub hidden: usize,
    pub weights: [Vec<f32>; 3],
    pub biases: [Vec<f32>; 3],
    pub mask: Option<PaddingMask>,
}

/// A padding mask read from an integer graph input.
#[derive(Debug, Clone, PartialEq)]
pub struct PaddingMask {
    pub input: String,
    pub filter: f32,
    /// Whether the input is int32 already, as `Attention` reads it (otherwise it is cast once).
    pub int32: bool,
}

/// The attention block whose `Softmax` is node `softmax`, if it has the form above.
pub fn find(view: &View, softmax: usize) -> Option<Found> {
    let node = view.node(softmax);
    let axis = int_attribute(node, "axis");
    // Before opset 13 Softmax's default axis is 1; -1 (or 3 of the rank-4 scores) is the last either way.
    let last_axis = matches!(axis, Some(-1 | 3)) || (axis.is_none() && view.opset >= 13);
    if !last_axis {
        return None;
    }
    let mut nodes = BTreeSet::from([softmax]);
    let logits = node.input.first()?;
    let (scores, mask) = match view.producer(logits, "Add") {
        Some(add) if view.usage.only_read_by_one(logits) => {
            nodes.insert(add);
            let [a, b] = view.node(add).input.as_slice() else {
                return None;
            };
            match (padding_mask(view, b), padding_mask(view, a)) {
                (Some(mask), _) => (a.as_str(), Some(mask)),
                (None, Some(mask)) => (b.as_str(), Some(mask)),
                (None, None) => return None,
            }
        }
        _ => (logits.as_str(), None),
    };
    let (scale, qk) = scaled_product(view, scores, &mut nodes)?;
    let [q, kt] = view.node(qk).input.as_slice() else {
        return None;
    };
    let (q, heads, dim) = split_heads(view, q, &mut nodes)?;
    let (k, k_heads, k_dim) = transposed_key(view, kt, &mut nodes)?;
    let probs = node.output.first()?;
    let pv = view.sole_reader(probs, "MatMul")?;
    nodes.insert(pv);
    if view.node(pv).input.first() != Some(probs) {
        return None;
    }
    let (v, v_heads, v_dim) = split_heads(view, view.node(pv).input.get(1)?, &mut nodes)?;
    if (k_heads, k_dim, v_heads, v_dim) != (heads, dim, heads, dim) {
        return None;
    }
    // H and D come from a Reshape's shape: a hostile model's product may not fit.
    let width = heads.checked_mul(dim)?;
    let at = merge_heads(view, pv, width, &mut nodes)?;
    let (x, wq, bq) = projection(view, q, &mut nodes)?;
    let (xk, wk, bk) = projection(view, k, &mut nodes)?;
    let (xv, wv, bv) = projection(view, v, &mut nodes)?;
    let width = usize::try_from(width).ok()?;
    let hidden = wq.0[0];
    let fits = |(dims, _): &(Vec<usize>, Vec<f32>), b: &Vec<f32>| {
        dims.as_slice() == [hidden, width] && b.len() == width
    };
    if xk != x || xv != x || !fits(&wq, &bq) || !fits(&wk, &bk) || !fits(&wv, &bv) {
        return None;
    }
    Some(Found {
        nodes,
        at,
        input: x.to_owned(),
        output: view.node(at).output.first()?.clone(),
        heads,
        scale,
        hidden,
        weights: [wq.1, wk.1, wv.1],
        biases: [bq, bk, bv],
        mask,
    })
}

/// `Mul(MatMul(q, kᵀ), c)` or `Div(MatMul(q, kᵀ), d)`: the scale and the MatMul.
fn scaled_product(view: &View, scores: &str, nodes: &mut BTreeSet<usize>) -> Option<(f32, usize)> {
    let (scaling, scale) = if let Some(mul) = view.producer(scores, "Mul") {
        let [a, b] = view.node(mul).input.as_slice() else {
            return None;
        };
        match (view.scalar(a), view.scalar(b)) {
            (None, Some(c)) => ((mul, a), c),
            (Some(c), None) => ((mul, b), c),
            _ => return None,
        }
    } else {
        let div = view.producer(scores, "Div")?;
        let [a, d] = view.node(div).input.as_slice() else {
            return None;
        };
        ((div, a), 1.0 / view.scalar(d)?)
    };
    let (scaling, product) = scaling;
    let qk = view.producer(product, "MatMul")?;
    // ONNX Runtime's Attention reads a scale of 0 as its default, 1/√D.
    if !scale.is_finite()
        || scale == 0.0
        || !view.usage.only_read_by_one(scores)
        || !view.usage.only_read_by_one(product)
    {
        return None;
    }
    nodes.extend([scaling, qk]);
    Some((scale, qk))
}

/// `Reshape(t, [0, 0, H, D])` read only by its one reader: t, H and D.
fn head_reshape<'a>(
    view: &View<'a>,
    value: &str,
    nodes: &mut BTreeSet<usize>,
) -> Option<(&'a str, i64, i64)> {
    let reshape = view.producer(value, "Reshape")?;
    let node = view.node(reshape);
    if int_attribute(node, "allowzero") == Some(1) || !view.usage.only_read_by_one(value) {
        return None;
    }
    let [t, shape] = node.input.as_slice() else {
        return None;
    };
    let [0, 0, heads, dim] = view.ints(shape)?[..] else {
        return None;
    };
    (heads > 0 && dim > 0 && view.usage.only_read_by_one(t)).then_some(())?;
    nodes.insert(reshape);
    Some((t, heads, dim))
}

/// A Transpose of `value`'s producer with this permutation, its output read only once: its input.
fn transpose<'a>(view: &View<'a>, value: &str, perm: &[i64]) -> Option<(usize, &'a str)> {
    let index = view.producer(value, "Transpose")?;
    let node = view.node(index);
    (ints_attribute(node, "perm") == Some(perm) && view.usage.only_read_by_one(value))
        .then_some((index, node.input.first()?.as_str()))
}

/// `Transpose<0,2,1,3>(Reshape(t, [0, 0, H, D]))`: t, H and D.
fn split_heads<'a>(
    view: &View<'a>,
    value: &str,
    nodes: &mut BTreeSet<usize>,
) -> Option<(&'a str, i64, i64)> {
    let (index, reshaped) = transpose(view, value, &[0, 2, 1, 3])?;
    let found = head_reshape(view, reshaped, nodes)?;
    nodes.insert(index);
    Some(found)
}

/// Kᵀ by heads, in either spelling: the projected keys, H and D.
fn transposed_key<'a>(
    view: &View<'a>,
    value: &str,
    nodes: &mut BTreeSet<usize>,
) -> Option<(&'a str, i64, i64)> {
    if let Some((index, reshaped)) = transpose(view, value, &[0, 2, 3, 1]) {
        let found = head_reshape(view, reshaped, nodes)?;
        nodes.insert(index);
        return Some(found);
    }
    let (index, by_heads) = transpose(view, value, &[0, 1, 3, 2])?;
    let found = split_heads(view, by_heads, nodes)?;
    nodes.insert(index);
    Some(found)
}

/// `Reshape(Transpose<0,2,1,3>(MatMul output), [0, 0, width | -1])`: the Reshape.
fn merge_heads(
    view: &View,
    matmul: usize,
    width: i64,
    nodes: &mut BTreeSet<usize>,
) -> Option<usize> {
    let transposed = view.sole_reader_of(matmul, "Transpose")?;
    if ints_attribute(view.node(transposed), "perm") != Some(&[0, 2, 1, 3]) {
        return None;
    }
    let reshape = view.sole_reader_of(transposed, "Reshape")?;
    let node = view.node(reshape);
    let shape = view.ints(node.input.get(1)?)?;
    let merged = matches!(shape.as_slice(), [0, 0, w] if *w == width || *w == -1);
    if !merged || int_attribute(node, "allowzero") == Some(1) {
        return None;
    }
    nodes.extend([transposed, reshape]);
    Some(reshape)
}

type Weight = (Vec<usize>, Vec<f32>);

/// `Add(MatMul(x, W), b)` with W and b constant floats: x, W and b.
fn projection<'a>(
    view: &View<'a>,
    value: &str,
    nodes: &mut BTreeSet<usize>,
) -> Option<(&'a str, Weight, Vec<f32>)> {
    let add = view.producer(value, "Add")?;
    let [a, b] = view.node(add).input.as_slice() else {
        return None;
    };
    let (product, bias) = match (view.producer(a, "MatMul"), view.producer(b, "MatMul")) {
        (Some(_), None) => (a, b),
        (None, Some(_)) => (b, a),
        _ => return None,
    };
    let matmul = view.producer(product, "MatMul")?;
    let [x, w] = view.node(matmul).input.as_slice() else {
        return None;
    };
    let (bias_dims, bias) = view.floats(bias)?;
    let weight = view.floats(w)?;
    if bias_dims.len() != 1 || weight.0.len() != 2 || !view.usage.only_read_by_one(product) {
        return None;
    }
    nodes.extend([add, matmul]);
    Some((x, weight, bias))
}

/// `Unsqueeze<1,2>((1 - Cast<float>(m)) · f)` of an integer graph input m of rank 2 (the Unsqueezes may
/// come anywhere in the chain, one or two of them).
fn padding_mask(view: &View, value: &str) -> Option<PaddingMask> {
    let mut steps = Vec::new();
    let value = unsqueezes(view, value, &mut steps)?;
    let mul = view.producer(value, "Mul")?;
    let [a, b] = view.node(mul).input.as_slice() else {
        return None;
    };
    let (inverted, filter) = match (view.scalar(a), view.scalar(b)) {
        (None, Some(f)) => (a, f),
        (Some(f), None) => (b, f),
        _ => return None,
    };
    let sub = view.producer(inverted, "Sub")?;
    let [one, cast] = view.node(sub).input.as_slice() else {
        return None;
    };
    let cast = view.producer(cast, "Cast")?;
    const FLOAT: i64 = crate::proto::tensor_proto::DataType::Float as i64;
    if !close_to(view.scalar(one)?, 1.0) || int_attribute(view.node(cast), "to") != Some(FLOAT) {
        return None;
    }
    let input = unsqueezes(view, view.node(cast).input.first()?, &mut steps)?;
    // The steps were collected from the Add down; they apply from the input up.
    steps.reverse();
    let mut dims = vec![1, 2];
    for axes in steps {
        let rank = (dims.len() + axes.len()) as i64;
        let mut axes: Vec<usize> = axes
            .iter()
            .map(|&a| usize::try_from(if a < 0 { a + rank } else { a }).ok())
            .collect::<Option<_>>()?;
        axes.sort_unstable();
        for axis in axes {
            (axis <= dims.len()).then_some(())?;
            dims.insert(axis, 0);
        }
    }
    let elem_type = view
        .graph
        .input
        .iter()
        .find(|i| i.name.as_deref() == Some(input))
        .and_then(integer_type_of_rank_2)?;
    (dims == [1, 0, 0, 2] && filter.is_finite()).then(|| PaddingMask {
        input: input.to_owned(),
        filter,
        int32: elem_type == crate::proto::tensor_proto::DataType::Int32 as i32,
    })
}

/// Follows Unsqueezes up from `value`, collecting their axes; where they end.
fn unsqueezes<'a>(view: &View<'a>, value: &'a str, steps: &mut Vec<Vec<i64>>) -> Option<&'a str> {
    let mut value = value;
    while let Some(index) = view.producer(value, "Unsqueeze") {
        let node = view.node(index);
        let axes = match node.input.get(1).filter(|n| !n.is_empty()) {
            Some(axes) => view.ints(axes)?,
            None => ints_attribute(node, "axes")?.to_vec(),
        };
        steps.push(axes);
        value = node.input.first()?;
    }
    Some(value)
}

/// The element type of an integer graph input declared of rank 2.
fn integer_type_of_rank_2(input: &crate::proto::ValueInfoProto) -> Option<i32> {
    use crate::proto::tensor_proto::DataType as T;
    use crate::proto::type_proto::Value;
    let Some(Value::TensorType(tensor)) = input.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return None;
    };
    let integer = [
        T::Int64,
        T::Int32,
        T::Int16,
        T::Int8,
        T::Uint8,
        T::Uint16,
        T::Uint32,
        T::Uint64,
        T::Bool,
    ]
    .iter()
    .any(|t| tensor.elem_type == Some(*t as i32));
    // A 1-D mask_index would mean end positions to Attention: the rank must be declared.
    let rank_2 = tensor.shape.as_ref().is_some_and(|s| s.dim.len() == 2);
    (integer && rank_2).then_some(tensor.elem_type?)
}

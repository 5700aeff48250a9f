//! The ONNX element type of each value of a graph, as far as the graph tells it: what it declares (its
//! inputs, outputs, `value_info` and initializers), carried forward through the operators whose result
//! type follows from their inputs' types or their attributes. The evaluator holds ONNX's narrower
//! integers as i64 (candle has no int32), so an operator learns here that its int32 sum past 2^31 must
//! wrap as ONNX Runtime's does ([`super::super::narrow_integers`]). A value no rule reaches stays
//! unknown: the operators then compute as before, on what they hold.

use std::collections::{HashMap, HashSet};

use crate::proto::tensor_proto::DataType;
use crate::proto::{GraphProto, NodeProto};

/// Operators of the default domain whose every output has the element type of their first input: the
/// arithmetic, and the ones that move, pick or reshape values without changing them.
const LIKE_FIRST_INPUT: &[&str] = &[
    "Abs",
    "Add",
    "BitShift",
    "BitwiseAnd",
    "BitwiseNot",
    "BitwiseOr",
    "BitwiseXor",
    "Clip",
    "Compress",
    "Concat",
    "CumSum",
    "DepthToSpace",
    "Div",
    "Einsum",
    "Expand",
    "Flatten",
    "Gather",
    "GatherElements",
    "GatherND",
    "Gemm",
    "Identity",
    "MatMul",
    "Max",
    "Min",
    "Mod",
    "Mul",
    "Neg",
    "Pad",
    "Pow",
    "Range",
    "ReduceL1",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "Relu",
    "Reshape",
    "ReverseSequence",
    "ScatterElements",
    "ScatterND",
    "Sign",
    "Slice",
    "SpaceToDepth",
    "Split",
    "Squeeze",
    "Sub",
    "Sum",
    "Tile",
    "Transpose",
    "Trilu",
    "Unsqueeze",
];

/// Operators whose first output is always int64 (indices, shapes, counts).
const FIRST_OUTPUT_INT64: &[&str] = &[
    "ArgMax",
    "ArgMin",
    "NonMaxSuppression",
    "NonZero",
    "Shape",
    "Size",
];

/// Operators whose only output is a boolean.
const BOOLEAN: &[&str] = &[
    "And",
    "Equal",
    "Greater",
    "GreaterOrEqual",
    "IsInf",
    "IsNaN",
    "Less",
    "LessOrEqual",
    "Not",
    "Or",
    "Xor",
];

/// Every value of `graph` whose element type it declares or whose type follows from declared ones, in
/// node order (a graph's nodes are topologically sorted), with `outer`'s: the types of the values of the
/// graphs enclosing a subgraph, which its nodes read by name.
pub(crate) fn element_types(
    graph: &GraphProto,
    outer: &HashMap<String, i32>,
) -> HashMap<String, i32> {
    let declared = super::declared_types(graph);
    // Only the outer values this graph (or a graph inside it) reads: a copy of every enclosing value
    // in every subgraph grew with their product (20,000 If nodes, 400 million entries).
    let mut read = HashSet::new();
    names_read(graph, &mut read);
    let mut types: HashMap<String, i32> = read
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), *outer.get(name)?)))
        .collect();
    types.extend(declared.iter().map(|(name, &t)| (name.clone(), t)));
    for node in &graph.node {
        if !matches!(node.domain.as_deref().unwrap_or(""), "" | "ai.onnx") {
            continue;
        }
        let inputs: Vec<Option<i32>> = node
            .input
            .iter()
            .map(|name| types.get(name).copied())
            .collect();
        for (name, found) in node.output.iter().zip(output_types(node, &inputs)) {
            // What the graph declares stands; what is found fills the gaps (and shadows an outer
            // value of the same name, as the value itself does).
            if let Some(found) = found
                && !name.is_empty()
                && !declared.contains_key(name)
            {
                types.insert(name.clone(), found);
            }
        }
    }
    types
}

/// Every name a node of `graph`, or of a graph inside it, reads.
fn names_read<'g>(graph: &'g GraphProto, read: &mut HashSet<&'g str>) {
    for node in &graph.node {
        read.extend(node.input.iter().map(String::as_str));
        for attribute in &node.attribute {
            if let Some(sub) = &attribute.g {
                names_read(sub, read);
            }
        }
    }
}

/// The element types of `node`'s outputs, in order, from its inputs' (`inputs`, where known) and its
/// attributes.
fn output_types(node: &NodeProto, inputs: &[Option<i32>]) -> Vec<Option<i32>> {
    let op = node.op_type.as_deref().unwrap_or("");
    let input = |index: usize| inputs.get(index).copied().flatten();
    let int64 = Some(DataType::Int64 as i32);
    let outputs = node.output.len();
    match op {
        _ if LIKE_FIRST_INPUT.contains(&op) => vec![input(0); outputs],
        _ if FIRST_OUTPUT_INT64.contains(&op) => vec![int64],
        _ if BOOLEAN.contains(&op) => vec![Some(DataType::Bool as i32)],
        "Cast" => vec![attribute(node, "to").and_then(|a| a.i).map(|to| to as i32)],
        "CastLike" => vec![input(1)],
        "Where" => vec![input(1)],
        "OneHot" => vec![input(2)],
        "MatMulInteger" | "ConvInteger" => vec![Some(DataType::Int32 as i32)],
        // Quantized values are their zero point's type (uint8 without one), or `output_dtype`'s.
        "QuantizeLinear" => vec![chosen(node).or(input(2)).or(Some(DataType::Uint8 as i32))],
        "DequantizeLinear" => vec![chosen(node).or(input(1))],
        "DynamicQuantizeLinear" => vec![
            Some(DataType::Uint8 as i32),
            Some(DataType::Float as i32),
            Some(DataType::Uint8 as i32),
        ],
        "QLinearMatMul" | "QLinearConv" => vec![input(7).or(Some(DataType::Uint8 as i32))],
        "TopK" => vec![input(0), int64],
        "Unique" => vec![input(0), int64, int64, int64],
        "Constant" => vec![constant_type(node)],
        "ConstantOfShape" => vec![Some(
            attribute(node, "value")
                .and_then(|a| a.t.as_ref())
                .and_then(|t| t.data_type)
                .unwrap_or(DataType::Float as i32),
        )],
        _ => Vec::new(),
    }
}

/// The element type an `output_dtype` attribute asks for (0, its default, asks for none).
fn chosen(node: &NodeProto) -> Option<i32> {
    attribute(node, "output_dtype")
        .and_then(|a| a.i)
        .filter(|&t| t != 0)
        .map(|t| t as i32)
}

fn attribute<'n>(node: &'n NodeProto, name: &str) -> Option<&'n crate::proto::AttributeProto> {
    node.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
}

fn constant_type(node: &NodeProto) -> Option<i32> {
    let attribute = node.attribute.first()?;
    match attribute.name.as_deref()? {
        "value" => attribute.t.as_ref()?.data_type,
        "value_int" | "value_ints" => Some(DataType::Int64 as i32),
        "value_float" | "value_floats" => Some(DataType::Float as i32),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph_builder::{DimSpec, GraphBuilder, attr_int};

    #[test]
    fn types_follow_casts_arithmetic_and_reshaping_and_declarations_stand() {
        let mut g = GraphBuilder::new();
        let x = g.input("x", DataType::Int64, &[DimSpec::Fixed(2)]);
        let narrow = g.op("Cast", &[&x], vec![attr_int("to", DataType::Int32 as i64)]);
        let doubled = g.op("Add", &[&narrow, &narrow], vec![]);
        let shape = g.op("Shape", &[&doubled], vec![]);
        let same = g.op("Equal", &[&doubled, &narrow], vec![]);
        let flat = g.op("Reshape", &[&doubled, &shape], vec![]);
        let unknown = g.op("Softmax", &[&flat], vec![]);
        let scale = g.scalar("scale", 0.5).unwrap();
        let quantized = g.op("QuantizeLinear", &[&unknown, &scale], vec![]);
        let int16 = vec![attr_int("output_dtype", DataType::Int16 as i64)];
        let quantized_int16 = g.op("QuantizeLinear", &[&unknown, &scale], int16);
        // Declared otherwise than a rule would find (a graph's word stands).
        let declared = g.op("Identity", &[&x], vec![]);
        g.output(&declared, DataType::Uint8, &[DimSpec::Fixed(2)]);
        let model = g.finish("types", 17, Vec::new());
        let types = element_types(model.graph.as_ref().unwrap(), &HashMap::new());
        let int32 = DataType::Int32 as i32;
        assert_eq!(types[&x], DataType::Int64 as i32);
        assert_eq!(types[&narrow], int32);
        assert_eq!(types[&doubled], int32);
        assert_eq!(types[&shape], DataType::Int64 as i32);
        assert_eq!(types[&same], DataType::Bool as i32);
        assert_eq!(types[&flat], int32);
        assert!(!types.contains_key(&unknown));
        assert_eq!(types[&quantized], DataType::Uint8 as i32);
        assert_eq!(types[&quantized_int16], DataType::Int16 as i32);
        assert_eq!(types[&declared], DataType::Uint8 as i32);
    }
}

//! Narrow integers brought into range as ONNX Runtime 1.32.0 brings them, on graphs whose answers were
//! taken from it on this project's (x86-64) host.

use std::collections::HashMap;

use super::*;
use crate::eval::Session;
use crate::graph_builder::{DimSpec, GraphBuilder, attr_int};

/// What ONNX Runtime 1.32.0 answers for the same graph: int32 and uint32 arithmetic wrap, and so does
/// a Cast from int64 to int32.
#[test]
fn int32_and_uint32_results_wrap_as_onnx_runtime_computes_them() {
    let mut g = GraphBuilder::new();
    let two = [DimSpec::Fixed(2)];
    let x = g.input("x", DataType::Int32, &two);
    let w = g.input("w", DataType::Int64, &[DimSpec::Fixed(1)]);
    let cast = |to: DataType| vec![attr_int("to", to as i64)];
    let one = g.ints("one", &[1]).unwrap();
    let one = g.op("Cast", &[&one], cast(DataType::Int32));
    let sum = g.op("Add", &[&x, &one], vec![]);
    g.op_into("Cast", &[&sum], cast(DataType::Float), "sum_as_float");
    g.op_into("Cast", &[&w], cast(DataType::Int32), "narrowed");
    let unsigned = g.op("Cast", &[&x], cast(DataType::Uint32));
    let zero = g.ints("zero", &[0]).unwrap();
    let zero = g.op("Cast", &[&zero], cast(DataType::Uint32));
    g.op_into("Sub", &[&zero, &unsigned], vec![], "negated");
    g.output("sum_as_float", DataType::Float, &two);
    g.output("narrowed", DataType::Int32, &[DimSpec::Fixed(1)]);
    g.output("negated", DataType::Uint32, &two);
    let model = g.finish("wraps", 17, Vec::new());
    let session = Session::new(&model, None, &Device::Cpu).unwrap();
    let inputs = HashMap::from([
        (
            "x".to_owned(),
            Tensor::new(&[i64::from(i32::MAX), -5], &Device::Cpu).unwrap(),
        ),
        (
            "w".to_owned(),
            Tensor::new(&[(1i64 << 32) + 1], &Device::Cpu).unwrap(),
        ),
    ]);
    let out = session.run(&inputs).unwrap();
    assert_eq!(out[0].1.to_vec1::<f32>().unwrap(), [-2_147_483_648., -4.]);
    assert_eq!(out[1].1.to_vec1::<i64>().unwrap(), [1]);
    assert_eq!(out[2].1.to_vec1::<i64>().unwrap(), [2_147_483_649, 5]);
}

/// 33,100 products of 255 by 255 pass 2^31: ONNX Runtime 1.32.0 answers -2,142,639,796.
#[test]
fn a_matmul_integer_summing_past_an_int32_wraps() {
    const K: usize = 33_100;
    let mut g = GraphBuilder::new();
    let a = g.input(
        "a",
        DataType::Uint8,
        &[DimSpec::Fixed(1), DimSpec::Fixed(K as i64)],
    );
    let b = g.input(
        "b",
        DataType::Uint8,
        &[DimSpec::Fixed(K as i64), DimSpec::Fixed(1)],
    );
    g.op_into("MatMulInteger", &[&a, &b], vec![], "y");
    g.output(
        "y",
        DataType::Int32,
        &[DimSpec::Fixed(1), DimSpec::Fixed(1)],
    );
    let model = g.finish("wraps", 17, Vec::new());
    let session = Session::new(&model, None, &Device::Cpu).unwrap();
    let full = |dims: (usize, usize)| Tensor::full(255u8, dims, &Device::Cpu).unwrap();
    let inputs = HashMap::from([
        ("a".to_owned(), full((1, K))),
        ("b".to_owned(), full((K, 1))),
    ]);
    let out = session.run(&inputs).unwrap();
    assert_eq!(out[0].1.to_vec2::<i64>().unwrap(), [[-2_142_639_796]]);
}

#[test]
fn each_type_keeps_its_low_bits_signed_or_not() {
    assert_eq!(
        Narrow::Int32.wrap(i64::from(i32::MAX) + 1),
        i64::from(i32::MIN)
    );
    assert_eq!(Narrow::Int32.wrap(-1), -1);
    assert_eq!(Narrow::Uint32.wrap(-1), i64::from(u32::MAX));
    assert_eq!(Narrow::Uint32.wrap(1 << 32), 0);
    assert_eq!(Narrow::Int16.wrap(40_000), 40_000 - 65_536);
    assert_eq!(Narrow::Int8.wrap(128), -128);
    assert_eq!(Narrow::Uint16.wrap(65_536 + 7), 7);
    assert_eq!(Narrow::of(DataType::Int64 as i32), None);
    assert_eq!(Narrow::of(DataType::Uint8 as i32), None);
}

fn one_node(
    op: &str,
    inputs: &[(&str, DataType)],
    attributes: Vec<crate::proto::AttributeProto>,
    output: DataType,
    opset: i64,
) -> Session {
    let mut g = GraphBuilder::new();
    let names: Vec<String> = inputs
        .iter()
        .map(|&(name, t)| g.input(name, t, &[]))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    g.op_into(op, &names, attributes, "y");
    g.output("y", output, &[]);
    Session::new(&g.finish(op, opset, Vec::new()), None, &Device::Cpu).unwrap()
}

fn answer(session: &Session, feeds: Vec<(&str, Tensor)>) -> Vec<i64> {
    let feeds = feeds.into_iter().map(|(n, t)| (n.to_owned(), t)).collect();
    let out = session.run(&feeds).unwrap();
    out[0].1.flatten_all().unwrap().to_vec1::<i64>().unwrap()
}

fn i64s(values: &[i64]) -> Tensor {
    Tensor::new(values, &Device::Cpu).unwrap()
}

/// A float that does not fit, or NaN: i32::MIN to int32 and what its low bits hold to int16, int8 and
/// uint16; to uint32 as ONNX Runtime's vectorized loop converts the first four (2^31 for -3e9 and NaN)
/// and one at a time the last two (the same for these).
#[test]
fn a_float_cast_to_a_narrow_integer_comes_out_as_onnx_runtime_on_x86_64() {
    let x = Tensor::new(
        &[3e9f32, -3e9, f32::NAN, 300.7, -1.5, 70000.2],
        &Device::Cpu,
    )
    .unwrap();
    let expected: [(DataType, [i64; 6]); 5] = [
        (
            DataType::Int32,
            [
                -2_147_483_648,
                -2_147_483_648,
                -2_147_483_648,
                300,
                -1,
                70000,
            ],
        ),
        (DataType::Int16, [0, 0, 0, 300, -1, 4464]),
        (DataType::Int8, [0, 0, 0, 44, -1, 112]),
        (
            DataType::Uint32,
            [
                3_000_000_000,
                2_147_483_648,
                2_147_483_648,
                300,
                4_294_967_295,
                70000,
            ],
        ),
        (DataType::Uint16, [0, 0, 0, 300, 65535, 4464]),
    ];
    for (to, values) in expected {
        let session = one_node(
            "Cast",
            &[("x", DataType::Float)],
            vec![attr_int("to", to as i64)],
            to,
            17,
        );
        assert_eq!(answer(&session, vec![("x", x.clone())]), values, "{to:?}");
    }
}

/// ONNX Runtime 1.32.0's answers for eight floats (two vectorized blocks) and for float16s.
#[test]
fn a_float_out_of_uint32s_range_comes_out_as_onnx_runtimes_vectorized_cast() {
    let floats = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        5e9,
        -5e9,
        -3e9,
        3e9,
        -5.5,
    ];
    let cast_from = |from: DataType| {
        one_node(
            "Cast",
            &[("x", from)],
            vec![attr_int("to", DataType::Uint32 as i64)],
            DataType::Uint32,
            17,
        )
    };
    let x = Tensor::new(&floats, &Device::Cpu).unwrap();
    assert_eq!(
        answer(&cast_from(DataType::Float), vec![("x", x)]),
        [
            2_147_483_648,
            0,
            2_147_483_648,
            0,
            2_147_483_648,
            2_147_483_648,
            3_000_000_000,
            4_294_967_291
        ]
    );
    let halves =
        [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -5.5, 60000.0].map(half::f16::from_f32);
    let x = Tensor::new(&halves, &Device::Cpu).unwrap();
    assert_eq!(
        answer(&cast_from(DataType::Float16), vec![("x", x)]),
        [0, 0, 0, 4_294_967_291, 60000]
    );
}

/// ONNX Runtime multiplies for an exponent of a lone 2 (65536² wraps to 0) and converts `pow`'s double
/// otherwise (3^20 does not fit: i32::MIN).
#[test]
fn int32_pow_wraps_when_multiplied_and_is_indefinite_when_converted() {
    let session = one_node(
        "Pow",
        &[("x", DataType::Int32), ("e", DataType::Int32)],
        vec![],
        DataType::Int32,
        17,
    );
    let x = i64s(&[3, 65536]);
    assert_eq!(
        answer(&session, vec![("x", x.clone()), ("e", i64s(&[2]))]),
        [9, 0]
    );
    assert_eq!(
        answer(&session, vec![("x", x), ("e", i64s(&[20]))]),
        [-2_147_483_648, -2_147_483_648]
    );
}

#[test]
fn a_scatter_that_adds_wraps() {
    let add = crate::proto::AttributeProto {
        name: Some("reduction".into()),
        r#type: Some(crate::proto::attribute_proto::AttributeType::String as i32),
        s: Some(b"add".to_vec().into()),
        ..Default::default()
    };
    let inputs = [
        ("d", DataType::Int32),
        ("i", DataType::Int64),
        ("u", DataType::Int32),
    ];
    let session = one_node("ScatterElements", &inputs, vec![add], DataType::Int32, 18);
    let feeds = vec![
        ("d", i64s(&[2_147_483_647, 5])),
        ("i", i64s(&[0])),
        ("u", i64s(&[1])),
    ];
    assert_eq!(answer(&session, feeds), [-2_147_483_648, 5]);
}

/// A branch's product of an outer int32 wraps before the branch divides it (65536² / 2 is 0 in ONNX
/// Runtime); the branch's own graph does not say what its outer values are.
#[test]
fn a_subgraph_knows_the_types_of_the_values_it_reads_from_outside() {
    use crate::eval::control_flow::tests::{body, graph_attr, model, node, value};
    let two = crate::proto::TensorProto {
        name: Some("two".into()),
        dims: vec![1],
        data_type: Some(DataType::Int32 as i32),
        int32_data: vec![2],
        ..Default::default()
    };
    let then_branch = body(
        vec![
            node("Mul", &["x", "x"], &["t"], vec![]),
            node("Div", &["t", "two"], &["z"], vec![]),
        ],
        vec![two],
        vec![],
        vec![value("z", DataType::Int32)],
    );
    let else_branch = body(
        vec![node("Identity", &["x"], &["z2"], vec![])],
        vec![],
        vec![],
        vec![value("z2", DataType::Int32)],
    );
    let graph = crate::proto::GraphProto {
        node: vec![node(
            "If",
            &["c"],
            &["y"],
            vec![
                graph_attr("then_branch", then_branch),
                graph_attr("else_branch", else_branch),
            ],
        )],
        input: vec![value("c", DataType::Bool), value("x", DataType::Int32)],
        output: vec![value("y", DataType::Int32)],
        ..Default::default()
    };
    let session = Session::new(&model(graph, 17), None, &Device::Cpu).unwrap();
    let condition = Tensor::new(&[1u8], &Device::Cpu)
        .unwrap()
        .squeeze(0)
        .unwrap();
    let feeds = HashMap::from([
        ("c".to_owned(), condition),
        ("x".to_owned(), i64s(&[65536])),
    ]);
    let out = session.run(&feeds).unwrap();
    assert_eq!(out[0].1.to_vec1::<i64>().unwrap(), [0]);
}

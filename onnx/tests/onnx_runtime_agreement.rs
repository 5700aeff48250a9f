//! One-operator graphs on the values where kiln's evaluator disagreed with ONNX Runtime: integers past
//! 2^53 (held through f64, they were rounded), integer overflow (wrapping, or x86-64's "integer
//! indefinite" where ONNX Runtime converts a double), NaN (kept where ONNX Runtime keeps it), empty
//! inputs. Each expected value is ONNX Runtime 1.32.0's answer on this project's x86-64 host; the
//! differential check (`scripts/onnx-differential.sh`) found them and draws thousands more like them.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use kiln_onnx::eval::Session;
use kiln_onnx::graph_builder::{DimSpec, GraphBuilder};
use kiln_onnx::proto::AttributeProto;
use kiln_onnx::proto::tensor_proto::DataType;

const MAX: i64 = i64::MAX;
const MIN: i64 = i64::MIN;

/// Runs `op` on `inputs` (each declared as its ONNX type), returning its outputs.
fn run(
    op: &str,
    inputs: Vec<(DataType, Tensor)>,
    attributes: Vec<AttributeProto>,
    outputs: usize,
) -> Vec<Tensor> {
    let mut g = GraphBuilder::new();
    let names: Vec<String> = inputs
        .iter()
        .enumerate()
        .map(|(i, (t, _))| g.input(&format!("x{i}"), *t, &[DimSpec::Fixed(1)]))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let outs: Vec<String> = (0..outputs).map(|i| format!("y{i}")).collect();
    let node = kiln_onnx::proto::NodeProto {
        op_type: Some(op.to_owned()),
        input: refs.iter().map(|s| (*s).to_owned()).collect(),
        output: outs.clone(),
        attribute: attributes,
        ..Default::default()
    };
    let mut model = g.finish(op, 18, Vec::new());
    let graph = model.graph.as_mut().unwrap();
    graph.node.push(node);
    graph.output = outs
        .iter()
        .map(|name| kiln_onnx::proto::ValueInfoProto {
            name: Some(name.clone()),
            ..Default::default()
        })
        .collect();
    let session = Session::new(&model, None, &Device::Cpu).unwrap();
    let feeds: HashMap<String, Tensor> = names
        .into_iter()
        .zip(inputs)
        .map(|(name, (_, t))| (name, t))
        .collect();
    session
        .run(&feeds)
        .unwrap()
        .into_iter()
        .map(|(_, t)| t)
        .collect()
}

fn int(name: &str, value: i64) -> AttributeProto {
    kiln_onnx::graph_builder::attr_int(name, value)
}

fn string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_owned()),
        r#type: Some(kiln_onnx::proto::attribute_proto::AttributeType::String as i32),
        s: Some(value.as_bytes().to_vec().into()),
        ..Default::default()
    }
}

fn i64s(values: &[i64]) -> (DataType, Tensor) {
    (DataType::Int64, Tensor::new(values, &Device::Cpu).unwrap())
}

fn f32s(values: &[f32]) -> (DataType, Tensor) {
    (DataType::Float, Tensor::new(values, &Device::Cpu).unwrap())
}

fn ints(t: &Tensor) -> Vec<i64> {
    t.flatten_all().unwrap().to_vec1::<i64>().unwrap()
}

fn floats(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

/// NaN where `expected` has NaN, the value elsewhere.
fn same(actual: &[f64], expected: &[f64]) -> bool {
    actual.len() == expected.len()
        && actual
            .iter()
            .zip(expected)
            .all(|(a, e)| (a.is_nan() && e.is_nan()) || a == e)
}

#[test]
fn int64_values_past_2_to_the_53_are_exact() {
    let big = 1i64 << 62;
    let column = (
        DataType::Int64,
        Tensor::new(&[[1i64], [0]], &Device::Cpu).unwrap(),
    );
    let gathered = run(
        "GatherND",
        vec![i64s(&[big + 1, big + 3]), column],
        vec![],
        1,
    );
    assert_eq!(ints(&gathered[0]), [big + 3, big + 1]);
    let top = run(
        "TopK",
        vec![i64s(&[big + 1, big + 2, big]), i64s(&[2])],
        vec![],
        2,
    );
    assert_eq!(
        (ints(&top[0]), ints(&top[1])),
        (vec![big + 2, big + 1], vec![1, 0])
    );
    let bound = 1i64 << 60;
    let clipped = run(
        "Clip",
        vec![
            i64s(&[bound + 3, bound + 2]),
            i64s(&[0]),
            i64s(&[bound + 2]),
        ],
        vec![],
        1,
    );
    assert_eq!(ints(&clipped[0]), [bound + 2, bound + 2]);
    let scattered = run(
        "ScatterElements",
        vec![i64s(&[0, 0]), i64s(&[1]), i64s(&[MAX - 1])],
        vec![],
        1,
    );
    assert_eq!(ints(&scattered[0]), [0, MAX - 1]);
}

#[test]
fn integer_arithmetic_wraps_or_is_indefinite_as_onnx_runtime_computes_it() {
    assert_eq!(
        ints(&run("Abs", vec![i64s(&[MIN, -5])], vec![], 1)[0]),
        [MIN, 5]
    );
    let pow = |base: &[i64], exponent: i64| {
        ints(&run("Pow", vec![i64s(base), i64s(&[exponent])], vec![], 1)[0])
    };
    assert_eq!(pow(&[0, 2], -3), [MIN, 0]);
    assert_eq!(pow(&[3, 2], 40), [MIN, 1 << 40]);
    assert_eq!(pow(&[3_037_000_500, 2], 2), [-9_223_372_036_709_301_616, 4]);
    let rows = (
        DataType::Int64,
        Tensor::new(&[[MAX, 1]], &Device::Cpu).unwrap(),
    );
    let column = (
        DataType::Int64,
        Tensor::new(&[[2i64], [1]], &Device::Cpu).unwrap(),
    );
    assert_eq!(ints(&run("MatMul", vec![rows, column], vec![], 1)[0]), [-1]);
    let added = run(
        "ScatterElements",
        vec![i64s(&[5]), i64s(&[0]), i64s(&[MAX])],
        vec![string("reduction", "add")],
        1,
    );
    assert_eq!(ints(&added[0]), [MIN + 4]);
    let cast = run(
        "Cast",
        vec![f32s(&[f32::NAN, 2.7, -1e30])],
        vec![int("to", DataType::Int64 as i64)],
        1,
    );
    assert_eq!(ints(&cast[0]), [MIN, 2, MIN]);
    let bytes = run(
        "Cast",
        vec![f32s(&[65504.0, -2.7, 300.7])],
        vec![int("to", DataType::Uint8 as i64)],
        1,
    );
    assert_eq!(bytes[0].to_vec1::<u8>().unwrap(), [224, 254, 44]);
    // Four doubles, one block of ONNX Runtime's vectorized cast (its last len % 4 values it converts
    // one at a time, where -1e30 is 0: narrow_integers.rs).
    let double = (
        DataType::Double,
        Tensor::new(&[-1e30f64, -4.01, 0.5, 7.0], &Device::Cpu).unwrap(),
    );
    let unsigned = run(
        "Cast",
        vec![double],
        vec![int("to", DataType::Uint32 as i64)],
        1,
    );
    assert_eq!(ints(&unsigned[0]), [1 << 31, 4_294_967_292, 0, 7]);
}

#[test]
fn nan_is_kept_where_onnx_runtime_keeps_it() {
    let nan = f64::NAN;
    let pair = || vec![f32s(&[1.0, f32::NAN, 3.0]), f32s(&[f32::NAN, 2.0, 1.0])];
    assert!(same(
        &floats(&run("Max", pair(), vec![], 1)[0]),
        &[nan, nan, 3.0]
    ));
    assert!(same(
        &floats(&run("Min", pair(), vec![], 1)[0]),
        &[nan, nan, 1.0]
    ));
    let x = || f32s(&[f32::NAN, -1.0, 2.0]);
    assert!(same(
        &floats(&run("Relu", vec![x()], vec![], 1)[0]),
        &[nan, 0.0, 2.0]
    ));
    assert!(same(
        &floats(&run("Sign", vec![x()], vec![], 1)[0]),
        &[nan, -1.0, 1.0]
    ));
    let clipped = run(
        "Clip",
        vec![f32s(&[f32::NAN, 5.0]), f32s(&[0.0]), f32s(&[1.0])],
        vec![],
        1,
    );
    assert!(same(&floats(&clipped[0]), &[nan, 1.0]));
    // float16's sign of NaN is 0 in ONNX Runtime.
    let half = (
        DataType::Float16,
        Tensor::new(&[f32::NAN, -0.5], &Device::Cpu)
            .unwrap()
            .to_dtype(DType::F16)
            .unwrap(),
    );
    assert_eq!(floats(&run("Sign", vec![half], vec![], 1)[0]), [0.0, -1.0]);
    // A scatter's minimum or maximum keeps the old value only when it compares smaller (greater): a NaN
    // update replaces it, a NaN already there is replaced.
    let scatter = |reduction: &str, data: &[f32]| {
        floats(
            &run(
                "ScatterElements",
                vec![f32s(data), i64s(&[0, 1]), f32s(&[f32::NAN, 1.0])],
                vec![string("reduction", reduction)],
                1,
            )[0],
        )
    };
    assert!(same(&scatter("min", &[1.0, 2.0]), &[nan, 1.0]));
    assert!(same(&scatter("max", &[1.0, f32::NAN]), &[nan, 1.0]));
}

#[test]
fn empty_inputs_and_half_precision_sums() {
    let empty = (
        DataType::Double,
        Tensor::zeros((4, 2, 0), DType::F64, &Device::Cpu).unwrap(),
    );
    let mean = run("ReduceMean", vec![empty], vec![], 1);
    assert_eq!(
        (mean[0].dims().to_vec(), floats(&mean[0])),
        (vec![1, 1, 1], vec![0.0])
    );
    let none = (
        DataType::Int8,
        Tensor::zeros(0, DType::I64, &Device::Cpu).unwrap(),
    );
    assert_eq!(ints(&run("ReduceMin", vec![none], vec![], 1)[0]), [127]);
    let half = |v: f32| {
        (
            DataType::Float16,
            Tensor::new(&[v], &Device::Cpu)
                .unwrap()
                .to_dtype(DType::F16)
                .unwrap(),
        )
    };
    let sum = run(
        "Sum",
        vec![half(3.469), half(-0.807), half(-2.36)],
        vec![],
        1,
    );
    assert_eq!(
        sum[0].to_vec1::<half::f16>().unwrap(),
        [half::f16::from_f32(0.3022)]
    );
}

#[test]
fn slices_scalars_and_quantization_edges() {
    // Backwards from -2 on an axis of 1: the start is clamped into the axis, one value.
    let sliced = run(
        "Slice",
        vec![
            f32s(&[7.0]),
            i64s(&[-2]),
            i64s(&[-(1 << 62)]),
            i64s(&[0]),
            i64s(&[-1]),
        ],
        vec![],
        1,
    );
    assert_eq!(floats(&sliced[0]), [7.0]);
    let scalar = (DataType::Float, Tensor::new(5f32, &Device::Cpu).unwrap());
    let found = run("NonZero", vec![scalar], vec![], 1);
    assert_eq!(
        (found[0].dims().to_vec(), ints(&found[0])),
        (vec![1, 1], vec![0])
    );
    let int32 = |v: &[i64]| (DataType::Int32, Tensor::new(v, &Device::Cpu).unwrap());
    let scale = || (DataType::Float, Tensor::new(3.7f32, &Device::Cpu).unwrap());
    let restored = run(
        "DequantizeLinear",
        vec![int32(&[-2_147_483_647, 5]), scale(), int32(&[3])],
        vec![],
        1,
    );
    assert_eq!(floats(&restored[0]), [7_945_689_600.0, f64::from(7.4f32)]);
    let zero_point = (
        DataType::Int8,
        Tensor::new(&[5i64], &Device::Cpu)
            .unwrap()
            .squeeze(0)
            .unwrap(),
    );
    let half = (DataType::Float, Tensor::new(0.5f32, &Device::Cpu).unwrap());
    let quantized = run(
        "QuantizeLinear",
        vec![f32s(&[f32::NAN, 1.0]), half, zero_point],
        vec![],
        1,
    );
    assert_eq!(ints(&quantized[0]), [-128, 7]);
    let celu = run("Celu", vec![f32s(&[f32::NAN, -1.0])], vec![celu_alpha()], 1);
    assert!(same(
        &floats(&celu[0]),
        &[f64::NAN, f64::from(-0.729_874_3f32)]
    ));
}

fn celu_alpha() -> AttributeProto {
    kiln_onnx::graph_builder::attr_float("alpha", 1.5)
}

#[test]
fn lp_normalization_leaves_a_zero_row_zero() {
    let rows = (
        DataType::Float,
        Tensor::new(&[[3f32, 4.0], [0.0, 0.0], [1.0, -1.0]], &Device::Cpu).unwrap(),
    );
    let two = run(
        "LpNormalization",
        vec![rows.clone()],
        vec![int("axis", 1), int("p", 2)],
        1,
    );
    let half_root = f64::from(std::f32::consts::FRAC_1_SQRT_2);
    assert_eq!(
        floats(&two[0]),
        [0.6, 0.8, 0.0, 0.0, half_root, -half_root].map(|v| f64::from(v as f32))
    );
    let one = run(
        "LpNormalization",
        vec![rows],
        vec![int("axis", 0), int("p", 1)],
        1,
    );
    assert_eq!(
        floats(&one[0]),
        [0.75, 0.8, 0.0, 0.0, 0.25, -0.2].map(|v| f64::from(v as f32))
    );
}

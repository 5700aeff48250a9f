//! The bounds against the sizes operators make, and a run refused before a broadcast it cannot hold.

use candle_core::{DType, Device, Tensor};

use super::*;
use crate::eval::control_flow::tests::node as proto;
use crate::graph_builder::attr_int;

fn zeros(dims: &[usize], dtype: DType) -> Option<Tensor> {
    Some(Tensor::zeros(dims, dtype, &Device::Cpu).unwrap())
}

fn i64s(values: &[i64]) -> Option<Tensor> {
    Some(Tensor::new(values, &Device::Cpu).unwrap())
}

/// The bound of `op` over `inputs`.
fn bound_of(
    op: &str,
    attributes: Vec<crate::proto::AttributeProto>,
    inputs: &[Option<Tensor>],
) -> Option<Bound> {
    let names: Vec<String> = (0..inputs.len()).map(|i| format!("x{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut proto = proto(op, &names, &["y"], attributes);
    if op == "Attention" || op == "FusedMatMul" {
        proto.domain = Some("com.microsoft".into());
    }
    bound(&Node::new(&proto, 17), inputs)
}

/// The bytes of `op`'s result over `inputs`.
fn bytes(
    op: &str,
    attributes: Vec<crate::proto::AttributeProto>,
    inputs: &[Option<Tensor>],
) -> Option<u128> {
    bound_of(op, attributes, inputs).map(|b| b.result)
}

/// A client's column and row, 400 kB each, whose sum would be 40 GB: without the bound candle's
/// allocation fails and aborts the process (the test binary with it).
#[test]
fn a_run_is_refused_before_a_broadcast_past_its_memory_limit_is_allocated() {
    use std::collections::HashMap;

    use crate::ModelError;
    use crate::eval::Session;
    use crate::eval::control_flow::tests::{body, model, value};
    use crate::proto::tensor_proto::DataType;

    let graph = body(
        vec![proto("Add", &["column", "row"], &["sum"], vec![])],
        vec![],
        vec![
            value("column", DataType::Float),
            value("row", DataType::Float),
        ],
        vec![value("sum", DataType::Float)],
    );
    let session = Session::new(&model(graph, 17), None, &Device::Cpu)
        .unwrap()
        .with_memory_limit(Some(64 << 20));
    let inputs = |n: usize| {
        HashMap::from([
            ("column".to_owned(), zeros(&[n, 1], DType::F32).unwrap()),
            ("row".to_owned(), zeros(&[1, n], DType::F32).unwrap()),
        ])
    };
    let refused = session.run(&inputs(100_000)).unwrap_err();
    assert!(
        matches!(refused, ModelError::MemoryLimit { needed, limit } if needed > 40_000_000_000 && limit == 64 << 20),
        "{refused}"
    );
    let sum = session.run(&inputs(1000)).unwrap();
    assert_eq!(sum[0].1.dims(), [1000, 1000]);
}

/// A broadcast with an empty input of long other dimensions makes an empty result, and candle walks
/// those dimensions one by one to make it (minutes, found by the evaluator's fuzzer): the bound counts
/// them beside the result, so that a run whose room they pass is refused.
#[test]
fn an_empty_input_of_long_dimensions_counts_beside_an_operators_result() {
    let slope = zeros(&[30207, 4614, 258, 0], DType::F32);
    let bound = bound_of("PRelu", vec![], &[zeros(&[258, 1], DType::F32), slope]).unwrap();
    assert_eq!(bound.result, 0, "the result is empty");
    assert_eq!(bound.total(), 30207 * 4614 * 258 * 8);
    let small = bound_of(
        "PRelu",
        vec![],
        &[zeros(&[2, 1], DType::F32), zeros(&[3, 0], DType::F32)],
    );
    assert_eq!(small.unwrap().total(), 3 * 8);
}

/// The bound against what the operator itself makes, `op` with `inputs` run through the evaluator's
/// table: equal where the operator runs (a refused shape may have no bound); says whether it ran.
fn agrees_with_the_operator(
    op: &str,
    attributes: Vec<crate::proto::AttributeProto>,
    inputs: &[Option<Tensor>],
) -> Result<bool, proptest::test_runner::TestCaseError> {
    let names: Vec<String> = (0..inputs.len()).map(|i| format!("x{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let proto = proto(op, &names, &["y"], attributes);
    let node = Node::new(&proto, 17);
    let run = crate::eval::ops::lookup("", op).unwrap();
    if let Ok(made) = run(&node, inputs) {
        let made: u128 = made
            .iter()
            .map(|t| u128::from(crate::eval::run_memory::tensor_bytes(t)))
            .sum();
        proptest::prop_assert_eq!(
            bound(&node, inputs).map(|b| b.result),
            Some(made),
            "{} {:?}",
            op,
            inputs
                .iter()
                .flatten()
                .map(Tensor::dims)
                .collect::<Vec<_>>()
        );
        return Ok(true);
    }
    Ok(false)
}

proptest::proptest! {
    #[test]
    fn bounds_equal_what_operators_make(
        dims in proptest::collection::vec(0usize..4, 0..4),
        ones in proptest::collection::vec(proptest::bool::ANY, 4),
        (m, k, n) in (1usize..5, 1usize..5, 1usize..5),
        batch in proptest::collection::vec(1usize..3, 0..3),
        (kernel, stride, dilation, pad) in (1usize..4, 1i64..4, 1i64..3, 0i64..3),
        size in 1usize..12,
        axis in 0i64..3,
    ) {
        use proptest::prop_assert as ran;
        let f32s = |dims: &[usize]| zeros(dims, DType::F32);
        // Broadcasts: `dims` against itself with some axes set to one, in each operand type.
        let other: Vec<usize> =
            dims.iter().zip(&ones).map(|(&d, &one)| if one { 1 } else { d }).collect();
        let shorter = &other[1.min(other.len())..];
        for dtype in [DType::F32, DType::I64, DType::U8] {
            ran!(agrees_with_the_operator("Add", vec![], &[zeros(&dims, dtype), zeros(shorter, dtype)])?);
        }
        ran!(agrees_with_the_operator("Less", vec![], &[f32s(&other), f32s(&dims)])?);
        let choices = [zeros(&other, DType::U8), zeros(&dims, DType::F64), zeros(&[1], DType::F64)];
        ran!(agrees_with_the_operator("Where", vec![], &choices)?);
        // Products over broadcast batches, a 1-D operand included.
        let a: Vec<usize> = batch.iter().copied().chain([m, k]).collect();
        let b: Vec<usize> = batch.iter().rev().copied().chain([k, n]).collect();
        ran!(agrees_with_the_operator("MatMul", vec![], &[f32s(&a), f32s(&b)])?);
        ran!(agrees_with_the_operator("MatMul", vec![], &[f32s(&[k]), f32s(&b)])?);
        let transposed = vec![attr_int("transA", 1)];
        ran!(agrees_with_the_operator("Gemm", transposed, &[f32s(&[k, m]), f32s(&[k, n])])?);
        // Gathers along each axis of a rank-3 tensor.
        let indices = zeros(&batch, DType::I64);
        ran!(agrees_with_the_operator("Gather", vec![attr_int("axis", axis)], &[f32s(&[m, k, n]), indices])?);
        // Convolutions of every window (one whose kernel does not fit is refused, unbounded).
        let window = vec![
            crate::graph_builder::attr_ints("strides", &[stride, stride]),
            crate::graph_builder::attr_ints("dilations", &[dilation, dilation]),
            crate::graph_builder::attr_ints("pads", &[pad, 0, pad, 1]),
        ];
        let operands = [f32s(&[1, 2, size, size + 1]), f32s(&[n, 2, kernel, kernel])];
        agrees_with_the_operator("Conv", window, &operands)?;
        // Shapes read from values.
        let shape: Vec<i64> = other.iter().map(|&d| d as i64).collect();
        ran!(agrees_with_the_operator("Expand", vec![], &[f32s(&dims), i64s(&shape)])?);
        let repeats: Vec<i64> = dims.iter().map(|&d| d as i64 + 1).collect();
        ran!(agrees_with_the_operator("Tile", vec![], &[f32s(&other), i64s(&repeats)])?);
        ran!(agrees_with_the_operator("ConstantOfShape", vec![], &[i64s(&shape)])?);
        let padded: Vec<usize> = batch.iter().take(2).map(|&d| d + 1).collect();
        let pads: Vec<i64> = [pad, -1, pad, 2].into_iter().take(2 * padded.len()).collect();
        ran!(agrees_with_the_operator("Pad", vec![], &[f32s(&padded), i64s(&pads)])?);
        let target: Vec<i64> = [m as i64, pad - 1].into_iter().take(padded.len()).collect();
        ran!(agrees_with_the_operator("CenterCropPad", vec![], &[f32s(&padded), i64s(&target)])?);
        // Resized to sizes, or by scales (their floor).
        let image = f32s(&[1, 2, size, size + 1]);
        let sizes: Vec<i64> = [1, 2, m as i64, (size + n) as i64].to_vec();
        ran!(agrees_with_the_operator("Resize", vec![], &[image.clone(), None, None, i64s(&sizes)])?);
        let factors = Tensor::new(&[1f32, 1.0, 0.5 + k as f32 * 0.7, n as f32 / 3.0][..], &Device::Cpu).unwrap();
        ran!(agrees_with_the_operator("Resize", vec![], &[image, None, Some(factors)])?);
    }
}

#[test]
fn a_column_against_a_row_broadcasts_to_their_product() {
    let column = zeros(&[100_000, 1], DType::F32);
    let row = zeros(&[1, 100_000], DType::F32);
    assert_eq!(
        bytes("Add", vec![], &[column.clone(), row.clone()]),
        Some(40_000_000_000)
    );
    // Where's condition is narrower than its values: the widest input sets the width.
    let condition = zeros(&[100_000, 1], DType::U8);
    let wide = zeros(&[1, 100_000], DType::F64);
    assert_eq!(
        bytes("Where", vec![], &[condition, wide, zeros(&[1], DType::F64)]),
        Some(80_000_000_000)
    );
    // A comparison's result is a byte an element.
    assert_eq!(
        bytes(
            "Less",
            vec![],
            &[zeros(&[10, 1], DType::F64), zeros(&[1, 10], DType::F64)]
        ),
        Some(100)
    );
    // Ranks differ; shapes that do not broadcast are left to the operator.
    assert_eq!(
        bytes(
            "Mul",
            vec![],
            &[zeros(&[3, 1, 5], DType::F32), zeros(&[4, 1], DType::F32)]
        ),
        Some(3 * 4 * 5 * 4)
    );
    assert_eq!(
        bytes(
            "Sub",
            vec![],
            &[zeros(&[3], DType::F32), zeros(&[4], DType::F32)]
        ),
        None
    );
    // A reduction of an empty axis makes the input's other dimensions: counted for any operator given
    // an empty input, as f64.
    let nothing = bytes(
        "GlobalAveragePool",
        vec![],
        &[zeros(&[512, 65_428, 0], DType::F32)],
    );
    assert_eq!(nothing, Some(512 * 65_428 * 8));
    // An operator that makes no more than its inputs is not worked out.
    assert_eq!(bytes("Relu", vec![], &[column]), None);
}

#[test]
fn a_matrix_product_is_rows_by_columns_over_broadcast_batches() {
    let a = zeros(&[8, 1, 4096, 2], DType::F32);
    let b = zeros(&[1, 12, 2, 4096], DType::F32);
    assert_eq!(
        bytes("MatMul", vec![], &[a, b]),
        Some(8 * 12 * 4096 * 4096 * 4)
    );
    assert_eq!(
        bytes(
            "MatMul",
            vec![],
            &[zeros(&[5], DType::F32), zeros(&[5, 7], DType::F32)]
        ),
        Some(7 * 4)
    );
    assert_eq!(
        bytes(
            "MatMul",
            vec![],
            &[zeros(&[3, 5], DType::F32), zeros(&[5], DType::F32)]
        ),
        Some(3 * 4)
    );
    let transposed = bytes(
        "Gemm",
        vec![attr_int("transA", 1), attr_int("transB", 1)],
        &[zeros(&[2, 300], DType::F32), zeros(&[500, 2], DType::F32)],
    );
    assert_eq!(transposed, Some(300 * 500 * 4));
    let fused = bytes(
        "FusedMatMul",
        vec![attr_int("transB", 1)],
        &[zeros(&[300, 2], DType::F16), zeros(&[500, 2], DType::F16)],
    );
    assert_eq!(fused, Some(300 * 500 * 2));
    let integer = bytes(
        "MatMulInteger",
        vec![],
        &[zeros(&[300, 2], DType::U8), zeros(&[2, 500], DType::U8)],
    );
    assert_eq!(integer, Some(300 * 500 * 8));
}

#[test]
fn shapes_read_from_values_and_gathers_are_worked_out() {
    let x = zeros(&[1, 3], DType::F32);
    assert_eq!(
        bytes("Expand", vec![], &[x.clone(), i64s(&[1_000_000, 1])]),
        Some(3_000_000 * 4)
    );
    assert_eq!(
        bytes("Tile", vec![], &[x.clone(), i64s(&[1000, 1000])]),
        Some(3_000_000 * 4)
    );
    assert_eq!(bytes("Tile", vec![], &[x.clone(), i64s(&[2])]), None);
    assert_eq!(
        bytes("ConstantOfShape", vec![], &[i64s(&[1000, 1000])]),
        Some(4_000_000)
    );
    let data = zeros(&[2, 100_000], DType::F32);
    let indices = zeros(&[100_000], DType::I64);
    assert_eq!(
        bytes("Gather", vec![], &[data.clone(), indices.clone()]),
        Some(100_000u128 * 100_000 * 4)
    );
    assert_eq!(
        bytes(
            "Gather",
            vec![attr_int("axis", -1)],
            &[data.clone(), indices.clone()]
        ),
        Some(2 * 100_000u128 * 4)
    );
    assert_eq!(
        bytes("Gather", vec![attr_int("axis", 2)], &[data, indices]),
        None
    );
    assert_eq!(
        bytes("Range", vec![], &[i64s(&[0]), i64s(&[1 << 40]), i64s(&[1])]),
        Some(8 << 40)
    );
    assert_eq!(
        bytes("Range", vec![], &[i64s(&[5]), i64s(&[0]), i64s(&[1])]),
        Some(0)
    );
    let one_hot = bound_of(
        "OneHot",
        vec![],
        &[
            zeros(&[1000], DType::I64),
            i64s(&[1_000_000]),
            zeros(&[2], DType::F32),
        ],
    );
    // In the values' type, computed as f64 first.
    assert_eq!(
        one_hot,
        Some(Bound {
            result: 4_000_000_000,
            scratch: 8_000_000_000
        })
    );
    let pad = bytes(
        "Pad",
        vec![],
        &[zeros(&[2, 3], DType::F32), i64s(&[1, 100_000, 1, -3])],
    );
    assert_eq!(pad, Some(4 * 100_000 * 4));
    let conv = bytes(
        "Conv",
        vec![
            crate::graph_builder::attr_ints("pads", &[1, 1, 1, 1]),
            crate::graph_builder::attr_ints("strides", &[2, 2]),
        ],
        &[
            zeros(&[1, 3, 224, 224], DType::F32),
            zeros(&[64, 3, 7, 7], DType::F32),
        ],
    );
    // ⌊(224 + 2 - 7) / 2⌋ + 1 = 110 on each axis.
    assert_eq!(conv, Some(64 * 110 * 110 * 4));
    let same = bytes(
        "Conv",
        vec![
            crate::proto::AttributeProto {
                name: Some("auto_pad".into()),
                r#type: Some(crate::proto::attribute_proto::AttributeType::String as i32),
                s: Some(b"SAME_UPPER".to_vec().into()),
                ..Default::default()
            },
            crate::graph_builder::attr_ints("strides", &[2, 2]),
        ],
        &[
            zeros(&[2, 3, 225, 225], DType::F32),
            zeros(&[8, 3, 3, 3], DType::F32),
        ],
    );
    assert_eq!(same, Some(2 * 8 * 113 * 113 * 4));
    let attention = bound_of(
        "Attention",
        vec![attr_int("num_heads", 16)],
        &[
            zeros(&[1, 50_000, 64], DType::F32),
            zeros(&[64, 192], DType::F32),
        ],
    );
    // Its scores and their softmax.
    assert_eq!(
        attention.map(|b| b.scratch),
        Some(2 * 16 * 50_000u128 * 50_000 * 4)
    );
}

/// Scratch an operator allocates beside its result, and results whose width is not their widest
/// input's: each seen wrong by a review of the first version of these bounds.
#[test]
fn scratch_and_widths_follow_what_the_operators_allocate() {
    // A 2-D weight times a client's batch: candle copies the weight to every batch item.
    let weight = zeros(&[1024, 4096], DType::F32);
    let batch = zeros(&[2048, 4096, 1], DType::F32);
    let product = bound_of("MatMul", vec![], &[weight, batch.clone()]).unwrap();
    assert_eq!(product.result, 2048 * 1024 * 4);
    assert_eq!(product.scratch, 2048 * 1024 * 4096 * 4);
    // A batched input times a 2-D weight is multiplied in place.
    let in_place = bound_of(
        "MatMul",
        vec![],
        &[
            zeros(&[8, 16, 64], DType::F32),
            zeros(&[64, 32], DType::F32),
        ],
    );
    assert_eq!(
        in_place,
        Some(Bound {
            result: 8 * 16 * 32 * 4,
            scratch: 0
        })
    );
    // Half precision on the CPU is computed in f32: both operands and the product widened.
    let half = bound_of(
        "MatMul",
        vec![],
        &[zeros(&[16, 64], DType::F16), zeros(&[64, 32], DType::F16)],
    )
    .unwrap();
    assert_eq!(
        half,
        Bound {
            result: 16 * 32 * 2,
            scratch: (16 * 64 + 64 * 32 + 16 * 32) * 4
        }
    );
    let half_conv = bound_of(
        "Conv",
        vec![],
        &[
            zeros(&[1, 2, 5, 5], DType::F16),
            zeros(&[3, 2, 1, 1], DType::F16),
        ],
    );
    assert_eq!(
        half_conv,
        Some(Bound {
            result: 75 * 2,
            scratch: (50 + 75) * 4
        })
    );
    // Mod, the bitwise operators and integer Div compute in f64 or i64 on the host.
    let column = zeros(&[100, 1], DType::U8);
    let row = zeros(&[1, 100], DType::U8);
    let shifted = bound_of("BitShift", vec![], &[column.clone(), row.clone()]).unwrap();
    assert_eq!(
        shifted,
        Bound {
            result: 10_000,
            scratch: 10_000 * HOST_BYTES_PER_ELEMENT
        }
    );
    let float = bound_of(
        "Div",
        vec![],
        &[zeros(&[100, 1], DType::F32), zeros(&[1, 100], DType::F32)],
    )
    .unwrap();
    assert_eq!(float.scratch, 0);
    // Pow's result is its base's type.
    let pow = bytes("Pow", vec![], &[zeros(&[10, 10], DType::F32), i64s(&[2])]);
    assert_eq!(pow, Some(400));
    // ConstantOfShape's value decides the width: a boolean mask is a byte an element.
    let mask = crate::proto::AttributeProto {
        name: Some("value".into()),
        r#type: Some(crate::proto::attribute_proto::AttributeType::Tensor as i32),
        t: Some(crate::proto::TensorProto {
            dims: vec![1],
            data_type: Some(crate::proto::tensor_proto::DataType::Bool as i32),
            int32_data: vec![1],
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        bytes("ConstantOfShape", vec![mask], &[i64s(&[1, 16384, 16384])]),
        Some(1 << 28)
    );
    // A binary operator's unread third input does not hide its bound (the fuzzer's BitwiseOr).
    assert_eq!(
        bytes(
            "BitwiseOr",
            vec![],
            &[
                zeros(&[514], DType::I64),
                zeros(&[1530, 1], DType::I64),
                zeros(&[0], DType::I64)
            ]
        ),
        Some(1530 * 514 * 8)
    );
    // CenterCropPad's result is what was asked for, however large its input (the fuzzer's `[1, 10^6]` to
    // `[1000, 1]` was padded to 10^9 elements before it was cropped).
    assert_eq!(
        bytes(
            "CenterCropPad",
            vec![],
            &[zeros(&[1, 1_000_000], DType::F32), i64s(&[1000, 1])]
        ),
        Some(4000)
    );
    // Pad crops an axis by its negative pads before it grows it: 3 - 5 keeps nothing, then 10.
    assert_eq!(
        bytes("Pad", vec![], &[zeros(&[3], DType::F32), i64s(&[-5, 10])]),
        Some(40)
    );
    // VALID ignores pads; Gemm's C broadcasts the product.
    let valid = vec![
        crate::proto::AttributeProto {
            name: Some("auto_pad".into()),
            r#type: Some(crate::proto::attribute_proto::AttributeType::String as i32),
            s: Some(b"VALID".to_vec().into()),
            ..Default::default()
        },
        crate::graph_builder::attr_ints("pads", &[5, 5, 5, 5]),
    ];
    let conv = bytes(
        "Conv",
        valid,
        &[
            zeros(&[1, 1, 8, 8], DType::F32),
            zeros(&[1, 1, 3, 3], DType::F32),
        ],
    );
    assert_eq!(conv, Some(6 * 6 * 4));
    let c = zeros(&[500, 7], DType::F32);
    let gemm = bytes(
        "Gemm",
        vec![],
        &[zeros(&[1, 3], DType::F32), zeros(&[3, 7], DType::F32), c],
    );
    assert_eq!(gemm, Some(500 * 7 * 4));
}

//! Every registered operator, called directly on inputs filled with its types' extremes (the largest and
//! least integers, NaN, the infinities, the largest finite floats) in a few shapes (empty and rank 0
//! among them), one to three at a time, with and without the attributes pooling reads: each answer must
//! be a result or an error, never a panic (AveragePool of integers divided by zero in candle, in any build).
//! kiln's own integer arithmetic is overflow-checked in a test build too; candle's is not (its dev profile
//! turns the checks off), so an overflow there is the memory fuzzer's to find.

use candle_core::{DType, Device, Tensor};

use super::testing::{int, ints};
use crate::eval::node::Node;
use crate::proto::{AttributeProto, NodeProto};

/// Operators whose result's size is read from an input's values (a shape, a count, a length): filled
/// with 2^32 - 1 they would ask for more memory than any test has. In a graph, the output bound refuses
/// them before they run; the evaluator's memory fuzzer (fuzz/fuzz_targets/eval_memory.rs) drives them.
const SIZED_BY_VALUES: &[&str] = &[
    "ConstantOfShape",
    "Range",
    "Tile",
    "Expand",
    "Resize",
    "Upsample",
    "Pad",
    "OneHot",
    "CenterCropPad",
    "MelWeightMatrix",
    "HannWindow",
    "HammingWindow",
    "BlackmanWindow",
    "DFT",
    "STFT",
    "Col2Im",
    "MaxUnpool",
];

fn extremes() -> Vec<(DType, f64)> {
    vec![
        (DType::U8, 255.0),
        (DType::U8, 0.0),
        // Past i64's range: the conversion saturates to i64::MAX and i64::MIN.
        (DType::I64, 1e19),
        (DType::I64, -1e19),
        (DType::U32, 4_294_967_295.0),
        (DType::F16, 65504.0),
        (DType::F16, f64::NAN),
        (DType::BF16, 3.0e38),
        (DType::F32, f64::INFINITY),
        (DType::F32, f64::NAN),
        (DType::F32, -3.0e38),
        (DType::F64, f64::NEG_INFINITY),
        (DType::F64, 1.0e308),
    ]
}

fn attribute_sets() -> Vec<Vec<AttributeProto>> {
    vec![
        vec![],
        vec![ints("kernel_shape", &[2, 2])],
        vec![ints("kernel_shape", &[2, 2]), ints("dilations", &[2, 1])],
        vec![
            ints("kernel_shape", &[2, 2]),
            ints("pads", &[1, 1, 1, 1]),
            int("count_include_pad", 1),
        ],
        vec![int("axis", 1)],
        vec![ints("axes", &[1])],
    ]
}

/// The calls of `op` that panicked, described.
fn panics_of(domain: &str, op: &str) -> Vec<String> {
    let f = super::lookup(domain, op).expect("registered");
    let mut panics = Vec::new();
    for (dtype, value) in extremes() {
        for shape in [
            vec![1usize, 2, 3, 3],
            vec![2, 3],
            vec![1, 1, 5],
            vec![],
            vec![0, 3],
        ] {
            let filled = Tensor::full(value, shape.clone(), &Device::Cpu)
                .and_then(|t| t.to_dtype(dtype))
                .expect("a filled tensor");
            for count in 1..=3 {
                let inputs = vec![Some(filled.clone()); count];
                for attributes in attribute_sets() {
                    let proto = NodeProto {
                        op_type: Some(op.to_owned()),
                        domain: Some(domain.to_owned()),
                        attribute: attributes,
                        ..Default::default()
                    };
                    let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let _ = f(&Node::new(&proto, 21), &inputs);
                    }));
                    if called.is_err() {
                        panics.push(format!(
                            "{domain}::{op} on {count} × {dtype:?} {value} {shape:?}, attributes {:?}",
                            proto.attribute.iter().map(|a| a.name()).collect::<Vec<_>>()
                        ));
                    }
                }
            }
        }
    }
    panics
}

#[test]
fn no_operator_panics_on_its_types_extremes() {
    let panics: Vec<String> = super::registered()
        .filter(|(_, op)| !SIZED_BY_VALUES.contains(op))
        .flat_map(|(domain, op)| panics_of(domain, op))
        .collect();
    assert!(
        panics.is_empty(),
        "{} calls panicked, among them:\n{}",
        panics.len(),
        panics[..panics.len().min(10)].join("\n")
    );
}

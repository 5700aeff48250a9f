//! No input makes an operator panic: every operator `ops::registered` lists runs on random attributes
//! (any name an operator reads, with every field a hostile file could set) and random inputs (missing
//! ones, ranks 0 to 5, empty dims, f32/i64/u8/f16, NaN and extreme values), and must answer `Ok` or
//! `Err`. `tensor_io::from_proto` gets the same treatment with random `TensorProto`s.
//!
//! The runs are deterministic: each operator's cases come from a fixed seed (derived from its name), so
//! a failure reproduces on every machine and CI never turns red on a case nobody saw locally. Failure
//! files are off because the fixed seed already replays a failure; a fixed one becomes a unit test
//! beside the operator. `PROPTEST_RNG_SEED=<n>` explores other cases, `PROPTEST_CASES=<n>` more of them.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use bytes::Bytes;
use candle_core::{Device, Tensor};
use kiln_onnx::eval::node::Node;
use kiln_onnx::eval::{ops, tensor_io};
use kiln_onnx::proto::{AttributeProto, NodeProto, StringStringEntryProto, TensorProto};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

/// Cases per operator: about 215 operators × this stays well under a minute in a debug build.
const CASES_PER_OP: u32 = 48;
const SEED: u64 = 0x6b69_6c6e;

/// Every attribute name an operator reads (gathered from `onnx/src/eval/ops`); a node carries a random
/// subset of them, so each operator sees its own attributes both set and absent.
const ATTRIBUTES: &[&str] = &[
    "activation",
    "activation_alpha",
    "activation_beta",
    "activation_params",
    "activations",
    "aggregate_function",
    "align_corners",
    "allowzero",
    "alpha",
    "antialias",
    "approximate",
    "auto_pad",
    "axes",
    "axis",
    "batch_axis",
    "batch_dims",
    "beta",
    "bias",
    "block_size",
    "blocksize",
    "ceil_mode",
    "center_point_box",
    "clip",
    "coordinate_transformation_mode",
    "count_include_pad",
    "cubic_coeff_a",
    "decay_factor",
    "detect_negative",
    "detect_positive",
    "dilations",
    "direction",
    "do_rotary",
    "dtype",
    "end",
    "ends",
    "epsilon",
    "equation",
    "exclude_outside",
    "exclusive",
    "extrapolation_value",
    "fmod",
    "gamma",
    "group",
    "hidden_size",
    "ignore_index",
    "input_forget",
    "inverse",
    "k",
    "keep_aspect_ratio_policy",
    "keepdims",
    "kernel_shape",
    "lambd",
    "largest",
    "layout",
    "leaf_targetids",
    "leaf_weights",
    "linear_before_reset",
    "mask_filter_value",
    "max",
    "max_gram_length",
    "max_skip_count",
    "membership_values",
    "min",
    "min_gram_length",
    "mode",
    "momentum",
    "n_targets",
    "nearest_mode",
    "ngram_counts",
    "ngram_indexes",
    "nodes_falseleafs",
    "nodes_falsenodeids",
    "nodes_featureids",
    "nodes_missing_value_tracks_true",
    "nodes_modes",
    "nodes_splits",
    "nodes_trueleafs",
    "nodes_truenodeids",
    "noop_with_empty_axes",
    "norm_coefficient",
    "norm_coefficient_post",
    "num_groups",
    "num_heads",
    "num_outputs",
    "onesided",
    "output_datatype",
    "output_dtype",
    "output_height",
    "output_padding",
    "output_shape",
    "output_width",
    "p",
    "padding_mode",
    "pads",
    "past_present_share_buffer",
    "periodic",
    "perm",
    "pool_int64s",
    "pool_strings",
    "post_transform",
    "qkv_hidden_sizes",
    "reduction",
    "reverse",
    "sampling_ratio",
    "saturate",
    "scale",
    "scales",
    "select_last_index",
    "size",
    "sorted",
    "spatial_scale",
    "split",
    "start",
    "starts",
    "strides",
    "threshold",
    "time_axis",
    "to",
    "training_mode",
    "transA",
    "transB",
    "transBatchA",
    "transBatchB",
    "tree_roots",
    "unidirectional",
    "upper",
    "value",
    "value_float",
    "value_floats",
    "value_int",
    "value_ints",
    "weights",
];

/// String attribute values operators match on, beside random ones.
const WORDS: &[&str] = &[
    "",
    "constant",
    "reflect",
    "edge",
    "wrap",
    "nearest",
    "linear",
    "cubic",
    "bilinear",
    "bicubic",
    "DCR",
    "CRD",
    "NOTSET",
    "SAME_UPPER",
    "SAME_LOWER",
    "VALID",
    "forward",
    "reverse",
    "bidirectional",
    "Tanh",
    "Sigmoid",
    "Relu",
    "LeakyRelu",
    "Affine",
    "HardSigmoid",
    "ScaledTanh",
    "ThresholdedRelu",
    "Elu",
    "Softsign",
    "Softplus",
    "half_pixel",
    "asymmetric",
    "align_corners",
    "pytorch_half_pixel",
    "tf_crop_and_resize",
    "half_pixel_symmetric",
    "output_half_pixel",
    "round_prefer_floor",
    "round_prefer_ceil",
    "floor",
    "ceil",
    "none",
    "mean",
    "sum",
    "avg",
    "max",
    "TF",
    "IDF",
    "TFIDF",
    "tanh",
    "stretch",
    "not_larger",
    "not_smaller",
    "zeros",
    "border",
    "reflection",
    "ij,jk->ik",
    "...ii->...i",
    "i,i",
    "ab,bc->ac",
    "a->",
    "bij,bjk->bik",
    "...,...->...",
    "BRANCH_LEQ",
];

/// Integers from attributes and integer tensors: mostly small (valid axes, dims, counts) with the
/// negative and huge values that break unchecked arithmetic.
fn hostile_int() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => -3i64..=6,
        1 => prop::sample::select(vec![
            i64::MIN, i64::MAX, -(1 << 40), 1 << 40, 1 << 31, -(1 << 31), 1 << 20, 1 << 62,
        ]),
    ]
}

fn hostile_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => (-3i64..=6).prop_map(|v| v as f64),
        3 => -4.0f64..4.0,
        1 => prop::sample::select(vec![
            f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e12, -1e12, 1e30, 1e-30, 4_294_967_296.0,
        ]),
    ]
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(WORDS).prop_map(str::to_owned),
        1 => "[a-z,.> -]{0,12}",
    ]
}

/// A `TensorProto` as a hostile file could write it: any element type number, dims that are negative,
/// huge or disagree with the data, any mix of the typed fields, and external data in a folder holding
/// one 64-byte file.
fn tensor_proto() -> impl Strategy<Value = TensorProto> {
    let dims = prop::collection::vec(
        prop_oneof![6 => 0i64..=4, 1 => hostile_int(), 1 => Just(-1i64)],
        0..=4,
    );
    let location = prop::sample::select(vec!["data.bin", "missing.bin", "../data.bin", ""]);
    let number = prop_oneof![
        "[0-9]{1,3}".prop_map(String::from),
        Just("18446744073709551615".to_owned()),
        Just("-1".to_owned()),
        Just("x".to_owned()),
    ];
    let external = prop::collection::vec(
        (
            prop::sample::select(vec!["location", "offset", "length"]),
            location,
            number,
        )
            .prop_map(|(key, location, number)| StringStringEntryProto {
                key: Some(key.to_owned()),
                value: Some(if key == "location" {
                    location.to_owned()
                } else {
                    number
                }),
            }),
        0..=3,
    );
    (
        (
            prop::option::of(-1i32..=26),
            dims,
            prop::option::of(prop::collection::vec(any::<u8>(), 0..=40)),
        ),
        (
            prop::collection::vec(hostile_float().prop_map(|v| v as f32), 0..=12),
            prop::collection::vec(hostile_int().prop_map(|v| v as i32), 0..=12),
            prop::collection::vec(hostile_int(), 0..=12),
            prop::collection::vec(hostile_float(), 0..=6),
            prop::collection::vec(hostile_int().prop_map(|v| v as u64), 0..=6),
        ),
        (prop::option::of(0i32..=2), external),
    )
        .prop_map(
            |(
                (data_type, dims, raw),
                (floats, int32s, int64s, doubles, uint64s),
                (location, external),
            )| {
                TensorProto {
                    data_type,
                    dims,
                    raw_data: raw.map(Bytes::from),
                    float_data: floats,
                    int32_data: int32s,
                    int64_data: int64s,
                    double_data: doubles,
                    uint64_data: uint64s,
                    data_location: location,
                    external_data: external,
                    ..Default::default()
                }
            },
        )
}

/// One attribute with a random set of its value fields filled: operators read a field by name and
/// must cope with the type tag disagreeing with it.
fn attribute(name: &'static str) -> impl Strategy<Value = AttributeProto> {
    (
        (
            prop::option::of(hostile_int()),
            prop::option::of(hostile_float().prop_map(|v| v as f32)),
            prop::option::of(prop::collection::vec(hostile_int(), 0..=8)),
            prop::option::of(prop::collection::vec(
                hostile_float().prop_map(|v| v as f32),
                0..=8,
            )),
        ),
        (
            prop::option::of(word()),
            prop::option::of(prop::collection::vec(word(), 0..=4)),
            prop::option::weighted(0.2, tensor_proto()),
            prop::option::of(0i32..=14),
        ),
    )
        .prop_map(
            move |((i, f, ints, floats), (s, strings, t, kind))| AttributeProto {
                name: Some(name.to_owned()),
                r#type: kind,
                i,
                f,
                ints: ints.unwrap_or_default(),
                floats: floats.unwrap_or_default(),
                s: s.map(Bytes::from),
                strings: strings
                    .unwrap_or_default()
                    .into_iter()
                    .map(Bytes::from)
                    .collect(),
                t,
                ..Default::default()
            },
        )
}

fn attributes() -> impl Strategy<Value = Vec<AttributeProto>> {
    prop::sample::subsequence(ATTRIBUTES, 0..=24)
        .prop_flat_map(|names| names.into_iter().map(attribute).collect::<Vec<_>>())
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    F32,
    I64,
    U8,
    F16,
}

/// An input: its dtype, shape and values (cycled to fill the shape).
#[derive(Clone, Debug)]
struct Input {
    kind: Kind,
    dims: Vec<usize>,
    values: Vec<f64>,
}

impl Input {
    fn tensor(&self) -> Tensor {
        let count: usize = self.dims.iter().product();
        let values = self.values.iter().copied().cycle().take(count);
        let device = &Device::Cpu;
        let dims = self.dims.as_slice();
        match self.kind {
            Kind::F32 => Tensor::from_vec(values.map(|v| v as f32).collect(), dims, device),
            Kind::I64 => Tensor::from_vec(values.map(|v| v as i64).collect(), dims, device),
            Kind::U8 => Tensor::from_vec(values.map(|v| v as u8).collect(), dims, device),
            Kind::F16 => Tensor::from_vec(values.map(half::f16::from_f64).collect(), dims, device),
        }
        .expect("values fill the shape")
    }
}

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..=4, 0..=5)
}

/// Inputs whose shapes often agree (a case's shared shape, or it with one dim changed), since operators
/// check shapes first and random shapes alone would rarely get past those checks.
fn inputs() -> impl Strategy<Value = Vec<Option<Input>>> {
    shape().prop_flat_map(|common| {
        let dims = prop_oneof![
            3 => Just(common.clone()),
            2 => shape(),
            1 => (Just(common.clone()), any::<prop::sample::Index>(), 0usize..=4).prop_map(
                |(mut dims, at, dim)| {
                    if !dims.is_empty() {
                        let at = at.index(dims.len());
                        dims[at] = dim;
                    }
                    dims
                },
            ),
            1 => (0usize..=6).prop_map(|n| vec![n]),
        ];
        let kind = prop_oneof![
            3 => Just(Kind::F32),
            2 => Just(Kind::I64),
            1 => Just(Kind::U8),
            1 => Just(Kind::F16),
        ];
        let values = prop::collection::vec(hostile_float(), 1..=12);
        let input =
            (kind, dims, values).prop_map(|(kind, dims, values)| Input { kind, dims, values });
        prop::collection::vec(prop::option::weighted(0.85, input), 0..=8)
    })
}

#[derive(Clone, Debug)]
struct Case {
    opset: i64,
    outputs: usize,
    input_types: Vec<Option<i32>>,
    attributes: Vec<AttributeProto>,
    inputs: Vec<Option<Input>>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec![
            1i64, 6, 7, 9, 10, 11, 12, 13, 16, 17, 18, 19, 20, 21, 22,
        ]),
        0usize..=4,
        prop::collection::vec(prop::option::of(0i32..=24), 0..=8),
        attributes(),
        inputs(),
    )
        .prop_map(|(opset, outputs, input_types, attributes, inputs)| Case {
            opset,
            outputs,
            input_types,
            attributes,
            inputs,
        })
}

thread_local! {
    /// Where the last panic on this thread happened, recorded instead of printed while a case runs.
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    static QUIET: RefCell<bool> = const { RefCell::new(false) };
}

/// Panics inside a case are recorded with their location (the payload alone does not say where);
/// any other panic, such as a failed assertion, is printed as usual.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if QUIET.with(|q| *q.borrow()) {
                PANIC.with(|p| *p.borrow_mut() = Some(info.to_string()));
            } else {
                default(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into a test failure that says where it happened.
fn never_panics<T>(f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    QUIET.with(|q| *q.borrow_mut() = true);
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| *q.borrow_mut() = false);
    result.map_err(|_| {
        let message = PANIC.with(|p| p.borrow_mut().take()).unwrap_or_default();
        TestCaseError::fail(message)
    })
}

fn runner(name: &str) -> TestRunner {
    let defaults = Config::default();
    // FNV-1a of the name: each operator its own stream of cases, the same on every run.
    let salt = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let rng_seed = match defaults.rng_seed {
        RngSeed::Fixed(seed) => RngSeed::Fixed(seed ^ salt),
        RngSeed::Random => RngSeed::Fixed(SEED ^ salt),
    };
    let cases = match std::env::var("PROPTEST_CASES") {
        Ok(_) => defaults.cases,
        Err(_) => CASES_PER_OP,
    };
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        rng_seed,
        ..defaults
    })
}

fn run_case(domain: &str, op: &str, case: &Case) -> Result<(), TestCaseError> {
    let f = ops::lookup(domain, op).expect("registered operators resolve");
    let proto = NodeProto {
        op_type: Some(op.to_owned()),
        domain: Some(domain.to_owned()),
        attribute: case.attributes.clone(),
        output: (0..case.outputs).map(|i| format!("y{i}")).collect(),
        ..Default::default()
    };
    let node = Node::new(&proto, case.opset).with_input_types(&case.input_types);
    let inputs: Vec<Option<Tensor>> = case
        .inputs
        .iter()
        .map(|input| input.as_ref().map(Input::tensor))
        .collect();
    never_panics(|| f(&node, &inputs)).map(drop)
}

#[test]
fn no_operator_panics_on_any_input() {
    install_panic_hook();
    let strategy = case();
    let mut failures = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    // KILN_OPS=Tile,Pad narrows a run to some operators (an abort on huge allocation ends the process).
    let only = std::env::var("KILN_OPS").ok();
    for (domain, op) in ops::registered() {
        let name = if domain.is_empty() {
            op.to_owned()
        } else {
            format!("{domain}::{op}")
        };
        if only
            .as_deref()
            .is_some_and(|only| !only.split(',').any(|o| o == name))
        {
            continue;
        }
        let started = Instant::now();
        if let Err(error) = runner(&name).run(&strategy, |case| run_case(domain, op, &case)) {
            failures.push(format!("{name}: {error}"));
        }
        slowest = slowest.max((started.elapsed(), name));
    }
    eprintln!("slowest operator: {} in {:?}", slowest.1, slowest.0);
    assert!(
        failures.is_empty(),
        "{} operators panic:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn decoding_any_tensor_proto_never_panics() {
    install_panic_hook();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.bin"), [7u8; 64]).unwrap();
    let mut runner = runner("from_proto");
    let result = runner.run(&(tensor_proto(), any::<bool>()), |(proto, in_folder)| {
        let base = in_folder.then(|| dir.path());
        never_panics(|| tensor_io::from_proto(&proto, base, &Device::Cpu)).map(drop)
    });
    if let Err(error) = result {
        panic!("from_proto panics: {error}");
    }
}

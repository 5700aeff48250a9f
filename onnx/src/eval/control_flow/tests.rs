//! If, Loop and Scan on small hand-built graphs, and the models the optimizer's and variants' tests
//! run (subgraphs reading outer values).

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use crate::ModelError;
use crate::eval::Session;
use crate::eval::graph::MAX_NESTING;
use crate::graph_builder::{attr_int, attr_ints};
use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TypeProto,
    ValueInfoProto, attribute_proto::AttributeType, tensor_proto::DataType, type_proto,
};

pub(crate) fn value(name: &str, elem: DataType) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.to_owned()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem as i32),
                shape: None,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) fn node(
    op: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        name: Some(format!("{op}:{}", outputs.join(","))),
        op_type: Some(op.to_owned()),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: outputs.iter().map(|s| (*s).to_owned()).collect(),
        attribute,
        ..Default::default()
    }
}

pub(crate) fn graph_attr(name: &str, graph: GraphProto) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_owned()),
        r#type: Some(AttributeType::Graph as i32),
        g: Some(graph),
        ..Default::default()
    }
}

pub(crate) fn floats(name: &str, values: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.to_owned()),
        dims: vec![values.len() as i64],
        data_type: Some(DataType::Float as i32),
        float_data: values.to_vec(),
        ..Default::default()
    }
}

pub(crate) fn body(
    nodes: Vec<NodeProto>,
    initializer: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
) -> GraphProto {
    GraphProto {
        name: Some("body".to_owned()),
        node: nodes,
        initializer,
        input: inputs,
        output: outputs,
        ..Default::default()
    }
}

pub(crate) fn model(graph: GraphProto, opset: i64) -> ModelProto {
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        graph: Some(graph),
        ..Default::default()
    }
}

/// y = If(cond, then: (x·w + b)·c, else: (x·w - b) + x), where w is an outer initializer, h = x·w an outer
/// node output read through an Identity only the branches read, c an outer Constant, and b initializers
/// of the branches themselves (then) or of the outer graph (else). Inputs: x (float, [2]) and cond.
pub(crate) fn if_model() -> ModelProto {
    let then_branch = body(
        vec![
            node("Add", &["h_copy", "b_then"], &["t"], vec![]),
            node("Constant", &[], &["half"], vec![constant_attr(&[0.5, 0.5])]),
            node("Mul", &["t", "c"], &["t2"], vec![]),
            node("Mul", &["t2", "half"], &["then_out"], vec![]),
        ],
        vec![floats("b_then", &[3.0, 4.0])],
        vec![],
        vec![value("then_out", DataType::Float)],
    );
    let else_branch = body(
        vec![
            node("Sub", &["h_copy", "b_else"], &["e"], vec![]),
            node("Add", &["e", "x"], &["else_out"], vec![]),
        ],
        vec![],
        vec![],
        vec![value("else_out", DataType::Float)],
    );
    let graph = GraphProto {
        name: Some("if".to_owned()),
        node: vec![
            node("Constant", &[], &["c"], vec![constant_attr(&[2.0, 2.0])]),
            node("Mul", &["x", "w"], &["h"], vec![]),
            node("Identity", &["h"], &["h_copy"], vec![]),
            node(
                "If",
                &["cond"],
                &["y"],
                vec![
                    graph_attr("then_branch", then_branch),
                    graph_attr("else_branch", else_branch),
                ],
            ),
        ],
        initializer: vec![floats("w", &[1.0, 2.0]), floats("b_else", &[5.0, 6.0])],
        input: vec![value("x", DataType::Float), value("cond", DataType::Bool)],
        output: vec![value("y", DataType::Float)],
        ..Default::default()
    };
    model(graph, 17)
}

fn constant_attr(values: &[f32]) -> AttributeProto {
    AttributeProto {
        name: Some("value".to_owned()),
        r#type: Some(AttributeType::Tensor as i32),
        t: Some(floats("value", values)),
        ..Default::default()
    }
}

pub(crate) fn run(
    model: &ModelProto,
    inputs: &[(&str, Tensor)],
) -> Result<Vec<Tensor>, ModelError> {
    let inputs: HashMap<String, Tensor> = inputs
        .iter()
        .map(|(n, t)| ((*n).to_owned(), t.clone()))
        .collect();
    let outputs = Session::new(model, None, &Device::Cpu)?.run(&inputs)?;
    Ok(outputs.into_iter().map(|(_, t)| t).collect())
}

pub(crate) fn if_inputs(cond: bool) -> Vec<(&'static str, Tensor)> {
    vec![
        ("x", Tensor::new(&[1f32, -1.0], &Device::Cpu).unwrap()),
        ("cond", Tensor::new(u8::from(cond), &Device::Cpu).unwrap()),
    ]
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn if_branches_read_outer_initializers_and_node_outputs() {
    let model = if_model();
    // h = x·w = [1, -2]
    let then = run(&model, &if_inputs(true)).unwrap();
    assert_eq!(f32s(&then[0]), [4.0, 2.0]); // ([1,-2] + [3,4])·2·0.5
    let other = run(&model, &if_inputs(false)).unwrap();
    assert_eq!(f32s(&other[0]), [-3.0, -9.0]); // [1,-2] - [5,6] + [1,-1]
}

/// A Loop summing x into a carried value: body (i, cond, acc) → (cond, acc + x, acc + x).
fn sum_loop(trip_count: Option<i64>, opset: i64) -> ModelProto {
    let loop_body = body(
        vec![
            node("Add", &["acc_in", "x"], &["acc_out"], vec![]),
            node("Identity", &["cond_in"], &["cond_out"], vec![]),
            node("Identity", &["acc_out"], &["scanned"], vec![]),
        ],
        vec![],
        vec![
            value("i", DataType::Int64),
            value("cond_in", DataType::Bool),
            value("acc_in", DataType::Float),
        ],
        vec![
            value("cond_out", DataType::Bool),
            value("acc_out", DataType::Float),
            value("scanned", DataType::Float),
        ],
    );
    let mut initializer = vec![floats("zero", &[0.0, 0.0])];
    let trip = match trip_count {
        Some(m) => {
            initializer.push(TensorProto {
                name: Some("m".to_owned()),
                data_type: Some(DataType::Int64 as i32),
                int64_data: vec![m],
                ..Default::default()
            });
            "m"
        }
        None => "",
    };
    let graph = GraphProto {
        node: vec![node(
            "Loop",
            &[trip, "", "zero"],
            &["total", "partials"],
            vec![graph_attr("body", loop_body)],
        )],
        initializer,
        input: vec![value("x", DataType::Float)],
        output: vec![
            value("total", DataType::Float),
            value("partials", DataType::Float),
        ],
        ..Default::default()
    };
    model(graph, opset)
}

#[test]
fn loop_carries_values_and_stacks_scan_outputs() {
    let x = Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap();
    let out = run(&sum_loop(Some(3), 11), &[("x", x)]).unwrap();
    assert_eq!(f32s(&out[0]), [3.0, 6.0]);
    assert_eq!(out[1].dims(), [3, 2]);
    assert_eq!(f32s(&out[1]), [1.0, 2.0, 2.0, 4.0, 3.0, 6.0]);
}

#[test]
fn a_loop_that_never_runs_gives_its_initial_values_and_empty_scans() {
    let x = Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap();
    let out = run(&sum_loop(Some(0), 11), &[("x", x)]).unwrap();
    assert_eq!(f32s(&out[0]), [0.0, 0.0]);
    assert_eq!(out[1].dims(), [0]);
}

#[test]
fn endless_and_huge_loops_stop_at_the_iteration_budget() {
    let x = Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap();
    let inputs = HashMap::from([("x".to_owned(), x)]);
    for trips in [Some(1i64 << 62), None] {
        let session = Session::new(&sum_loop(trips, 11), None, &Device::Cpu)
            .unwrap()
            .with_iteration_budget(1000);
        let err = session.run(&inputs).unwrap_err().to_string();
        assert!(err.contains("budget of 1000 loop iterations"), "{err}");
    }
}

/// A run stopped from another thread ends before its next node, inside a loop's body too: a loop of a
/// billion trips (without the flag it runs until the budget of a million, seconds) ends within
/// milliseconds of the flag being set, and the same session runs again once it is cleared.
#[test]
fn a_run_stops_between_nodes_once_its_stop_flag_is_set() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    let x = Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap();
    let inputs = HashMap::from([("x".to_owned(), x)]);
    let stop = Arc::new(AtomicBool::new(false));
    let endless = Session::new(&sum_loop(Some(1 << 30), 11), None, &Device::Cpu)
        .unwrap()
        .with_stop_flag(stop.clone());
    let setter = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            stop.store(true, Ordering::Relaxed);
            Instant::now()
        })
    };
    let stopped = endless.run(&inputs).unwrap_err();
    let ended = Instant::now();
    let set = setter.join().unwrap();
    assert_eq!(stopped, ModelError::Stopped);
    assert!(ended.duration_since(set) < Duration::from_millis(50));

    stop.store(false, Ordering::Relaxed);
    let few = Session::new(&sum_loop(Some(3), 11), None, &Device::Cpu)
        .unwrap()
        .with_stop_flag(stop);
    assert_eq!(f32s(&few.run(&inputs).unwrap()[0].1), [3.0, 6.0]);
}

/// A run's memory limit counts each body run's values only while that run lasts, and the scan outputs a
/// loop keeps from one run to the next as they are kept: 200 trips over 1,000 floats make 2.4 MB of body
/// values in all, 0.8 MB kept for `partials` and 0.8 MB more when they are stacked. Before the kept
/// outputs were counted, a limit was passed only once they were stacked: a trip count a client sends
/// could keep a million body outputs each within the limit.
#[test]
fn a_memory_limit_counts_a_loop_s_kept_outputs_and_their_stacking() {
    let x = Tensor::ones((500, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
    let inputs = HashMap::from([("x".to_owned(), x)]);
    let limited = |bytes| {
        Session::new(&sum_loop(Some(200), 11), None, &Device::Cpu)
            .unwrap()
            .with_memory_limit(Some(bytes))
    };
    let out = limited(2 << 20).run(&inputs).unwrap();
    assert_eq!(out[1].1.dims(), [200, 500, 2]);
    // The kept outputs fit; their stacked copy beside them does not.
    let refused = limited(1 << 20).run(&inputs).unwrap_err();
    assert!(
        matches!(refused, ModelError::MemoryLimit { needed, .. } if needed > 1_600_000),
        "{refused}"
    );
    // Refused at the trip whose output passes the limit, not after all 200.
    let refused = limited(500_000).run(&inputs).unwrap_err();
    assert!(
        matches!(refused, ModelError::MemoryLimit { limit: 500_000, needed } if needed < 520_000),
        "{refused}"
    );
}

/// Loop with a condition and no trip count (a while loop): runs while i + 1 < 4.
#[test]
fn a_while_loop_stops_when_its_condition_turns_false() {
    let loop_body = body(
        vec![
            node("Add", &["i", "one"], &["next"], vec![]),
            node("Less", &["next", "four"], &["cond_out"], vec![]),
            node("Identity", &["next"], &["count_out"], vec![]),
        ],
        vec![],
        vec![
            value("i", DataType::Int64),
            value("cond_in", DataType::Bool),
            value("count_in", DataType::Int64),
        ],
        vec![
            value("cond_out", DataType::Bool),
            value("count_out", DataType::Int64),
        ],
    );
    let int = |name: &str, v: i64| TensorProto {
        name: Some(name.to_owned()),
        data_type: Some(DataType::Int64 as i32),
        int64_data: vec![v],
        ..Default::default()
    };
    let bool_true = TensorProto {
        name: Some("go".to_owned()),
        data_type: Some(DataType::Bool as i32),
        int32_data: vec![1],
        ..Default::default()
    };
    let graph = GraphProto {
        node: vec![node(
            "Loop",
            &["", "go", "start"],
            &["count"],
            vec![graph_attr("body", loop_body)],
        )],
        initializer: vec![int("one", 1), int("four", 4), int("start", 0), bool_true],
        output: vec![value("count", DataType::Int64)],
        ..Default::default()
    };
    let out = run(&model(graph, 13), &[]).unwrap();
    assert_eq!(out[0].to_vec0::<i64>().unwrap(), 4);
}

/// Scan-11 over axis 1 of a [2, 3] input, reversed; the running sum is stacked on output axis 1.
#[test]
fn scan_follows_input_axes_directions_and_output_axes() {
    let scan_body = body(
        vec![
            node("Add", &["sum_in", "column"], &["sum_out"], vec![]),
            node("Identity", &["sum_out"], &["running"], vec![]),
        ],
        vec![],
        vec![
            value("sum_in", DataType::Float),
            value("column", DataType::Float),
        ],
        vec![
            value("sum_out", DataType::Float),
            value("running", DataType::Float),
        ],
    );
    let graph = GraphProto {
        node: vec![node(
            "Scan",
            &["init", "x"],
            &["sum", "sums"],
            vec![
                graph_attr("body", scan_body),
                attr_int("num_scan_inputs", 1),
                attr_ints("scan_input_axes", &[-1]),
                attr_ints("scan_input_directions", &[1]),
                attr_ints("scan_output_axes", &[1]),
            ],
        )],
        initializer: vec![floats("init", &[0.0, 0.0])],
        input: vec![value("x", DataType::Float)],
        output: vec![
            value("sum", DataType::Float),
            value("sums", DataType::Float),
        ],
        ..Default::default()
    };
    let x = Tensor::new(&[[1f32, 2.0, 3.0], [10.0, 20.0, 30.0]], &Device::Cpu).unwrap();
    let out = run(&model(graph, 11), &[("x", x)]).unwrap();
    assert_eq!(f32s(&out[0]), [6.0, 60.0]);
    // Columns visited 3, 2, 1: running sums [3, 30], [5, 50], [6, 60], stacked on axis 1.
    assert_eq!(out[1].dims(), [2, 3]);
    assert_eq!(f32s(&out[1]), [3.0, 5.0, 6.0, 30.0, 50.0, 60.0]);
}

/// A Scan's outputs kept from step to step are counted as they are kept: 100 steps each adding a column's
/// value to an outer 1 MB tensor are refused at the step that passes a 20 MB limit, not once 100 MB of
/// them are kept and stacked.
#[test]
fn a_memory_limit_counts_a_scan_s_kept_outputs() {
    let scan_body = body(
        vec![node("Add", &["big", "column"], &["wide"], vec![])],
        vec![],
        vec![value("column", DataType::Float)],
        vec![value("wide", DataType::Float)],
    );
    let graph = GraphProto {
        node: vec![node(
            "Scan",
            &["x"],
            &["stacked"],
            vec![
                graph_attr("body", scan_body),
                attr_int("num_scan_inputs", 1),
                attr_ints("scan_input_axes", &[1]),
            ],
        )],
        input: vec![value("x", DataType::Float), value("big", DataType::Float)],
        output: vec![value("stacked", DataType::Float)],
        ..Default::default()
    };
    let inputs = HashMap::from([
        (
            "x".to_owned(),
            Tensor::ones((1, 100), candle_core::DType::F32, &Device::Cpu).unwrap(),
        ),
        (
            "big".to_owned(),
            Tensor::ones(250_000, candle_core::DType::F32, &Device::Cpu).unwrap(),
        ),
    ]);
    let limited = |bytes| {
        Session::new(&model(graph.clone(), 11), None, &Device::Cpu)
            .unwrap()
            .with_memory_limit(Some(bytes))
    };
    assert_eq!(
        limited(250 << 20).run(&inputs).unwrap()[0].1.dims(),
        [100, 250_000]
    );
    let refused = limited(20 << 20).run(&inputs).unwrap_err();
    assert!(
        matches!(refused, ModelError::MemoryLimit { needed, .. } if needed < 22 << 20),
        "{refused}"
    );
}

/// If nested `depth` times, the innermost branch computing x + x.
fn nested_if(depth: usize) -> ModelProto {
    let leaf = |out: &str| {
        body(
            vec![node("Add", &["x", "x"], &[out], vec![])],
            vec![],
            vec![],
            vec![value(out, DataType::Float)],
        )
    };
    let mut inner = leaf("level0");
    for level in 1..=depth {
        let out = format!("level{level}");
        let if_node = node(
            "If",
            &["cond"],
            &[&out],
            vec![
                graph_attr("then_branch", inner),
                graph_attr("else_branch", leaf(&format!("{out}_else"))),
            ],
        );
        inner = body(
            vec![if_node],
            vec![],
            vec![],
            vec![value(&out, DataType::Float)],
        );
    }
    inner.input = vec![value("x", DataType::Float), value("cond", DataType::Bool)];
    model(inner, 17)
}

#[test]
fn nesting_is_capped_with_a_clear_error() {
    let x = Tensor::new(&[1f32], &Device::Cpu).unwrap();
    let cond = Tensor::new(1u8, &Device::Cpu).unwrap();
    let out = run(&nested_if(MAX_NESTING), &[("x", x), ("cond", cond)]).unwrap();
    assert_eq!(f32s(&out[0]), [2.0]);
    let Err(err) = Session::new(&nested_if(40), None, &Device::Cpu) else {
        panic!("a 40-deep If is refused");
    };
    assert!(err.to_string().contains("nest deeper than 16"), "{err}");
}

#[test]
fn an_unknown_op_inside_a_branch_is_named() {
    let mut model = if_model();
    let graph = model.graph.as_mut().unwrap();
    let if_node = graph.node.last_mut().unwrap();
    if_node.attribute[1].g.as_mut().unwrap().node[0].op_type = Some("Frobnicate".to_owned());
    let Err(err) = Session::new(&model, None, &Device::Cpu) else {
        panic!("Frobnicate is not an ONNX op");
    };
    assert_eq!(err, ModelError::UnsupportedOp("Frobnicate".to_owned()));
}

#[test]
fn a_branch_with_the_wrong_output_count_is_an_error() {
    let mut model = if_model();
    let graph = model.graph.as_mut().unwrap();
    graph
        .node
        .last_mut()
        .unwrap()
        .output
        .push("extra".to_owned());
    let err = run(&model, &if_inputs(true)).unwrap_err().to_string();
    assert!(
        err.contains("computes 1 outputs and the node declares 2"),
        "{err}"
    );
}

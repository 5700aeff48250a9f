//! ONNX's own backend node tests (the 1288 one-operator models with inputs and expected outputs shipped in
//! the `onnx` 1.17.0 wheel) run through kiln's evaluator. `scripts/onnx-node-suite.sh` fetches the wheel
//! and runs this (an ignored test, `--ignored`) with `KILN_ONNX_NODE_TESTS=<.../onnx/backend/test/data/node>`;
//! run without that variable it fails, saying how to get the data. Any folder of cases in that layout
//! runs the same way: `scripts/onnx-differential.sh` writes random one-operator models with ONNX
//! Runtime's answers as the expected outputs.
//!
//! It prints a table by outcome and the operators that fail most, and fails when fewer tests pass than
//! `KILN_ONNX_NODE_TESTS_FLOOR` (the last recorded number, so a change that breaks an operator is caught),
//! or when a test that passes stops passing after kiln's optimization passes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use kiln_onnx::ModelError;
use kiln_onnx::eval::{Session, tensor_io};
use kiln_onnx::proto::{
    ModelProto, TensorProto, ValueInfoProto, tensor_proto::DataType, type_proto,
};
use prost::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Pass,
    WrongNumbers,
    UnsupportedOp,
    UnsupportedData,
    Error,
    /// Passes as given, fails after kiln's optimization passes: a bug in a pass.
    BrokenByOptimization,
}

fn load_tensor(path: &Path) -> Option<Tensor> {
    let proto = TensorProto::decode(std::fs::read(path).ok()?.as_slice()).ok()?;
    tensor_io::from_proto(&proto, None, &Device::Cpu).ok()
}

/// numpy has no bfloat16, so ONNX's test data holds a bfloat16 tensor as its bits in a uint16 tensor (read
/// here as int64) and its runner reads them as the model declares: so does this.
fn as_declared(t: Tensor, value: Option<&ValueInfoProto>) -> Option<Tensor> {
    let declared = value
        .and_then(|v| v.r#type.as_ref())
        .and_then(|t| match &t.value {
            Some(type_proto::Value::TensorType(t)) => t.elem_type,
            _ => None,
        });
    if declared != Some(DataType::Bfloat16 as i32) || t.dtype() != DType::I64 {
        return Some(t);
    }
    let bits = t.flatten_all().ok()?.to_vec1::<i64>().ok()?;
    let values: Vec<half::bf16> = bits
        .iter()
        .map(|&b| half::bf16::from_bits(b as u16))
        .collect();
    Tensor::from_vec(values, t.dims(), &Device::Cpu).ok()
}

fn close(actual: &Tensor, expected: &Tensor) -> bool {
    if actual.dims() != expected.dims() {
        return false;
    }
    let (Ok(a), Ok(e)) = (
        actual
            .to_dtype(DType::F64)
            .and_then(|t| t.flatten_all()?.to_vec1::<f64>()),
        expected
            .to_dtype(DType::F64)
            .and_then(|t| t.flatten_all()?.to_vec1::<f64>()),
    ) else {
        return false;
    };
    // The tolerance ONNX's own backend tests use.
    a.iter().zip(&e).all(|(a, e)| {
        (a.is_nan() && e.is_nan()) || a == e || (a - e).abs() <= 1e-7 + 1e-3 * e.abs()
    })
}

/// Runs a case's model as given, and again after kiln's optimization passes.
fn run_case(dir: &Path) -> (Outcome, String) {
    let (outcome, op) = run_model(dir, false);
    if outcome == Outcome::Pass {
        let (optimized, _) = run_model(dir, true);
        if optimized != Outcome::Pass {
            return (Outcome::BrokenByOptimization, op);
        }
    }
    (outcome, op)
}

fn run_model(dir: &Path, optimized: bool) -> (Outcome, String) {
    let Ok(bytes) = std::fs::read(dir.join("model.onnx")) else {
        return (Outcome::Error, "no model".into());
    };
    let mut model = match ModelProto::decode(bytes.as_slice()) {
        Ok(m) => m,
        Err(e) => return (Outcome::Error, e.to_string()),
    };
    if optimized && kiln_onnx::optimize::optimize(&mut model).is_err() {
        return (Outcome::BrokenByOptimization, String::new());
    }
    let op = model
        .graph
        .as_ref()
        .and_then(|g| g.node.first())
        .and_then(|n| n.op_type.clone())
        .unwrap_or_default();
    let session = match Session::new(&model, Some(dir), &Device::Cpu) {
        Ok(s) => s,
        Err(ModelError::UnsupportedOp(missing)) => {
            return (Outcome::UnsupportedOp, missing);
        }
        Err(e) => {
            if std::env::var("KILN_NODE_TESTS_VERBOSE").is_ok() {
                eprintln!("{}: {e}", dir.display());
            }
            return (Outcome::UnsupportedData, op);
        }
    };
    let graph = model.graph.as_ref().unwrap();
    let initialized: std::collections::HashSet<&str> = graph
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    let input_names: Vec<&str> = graph
        .input
        .iter()
        .filter_map(|v| v.name.as_deref())
        .filter(|n| !initialized.contains(n))
        .collect();
    let Ok(sets) = std::fs::read_dir(dir) else {
        return (Outcome::Error, op);
    };
    let mut sets: Vec<_> = sets
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    sets.sort();
    for set in sets {
        let mut inputs = HashMap::new();
        for (i, name) in input_names.iter().enumerate() {
            let declared = graph
                .input
                .iter()
                .find(|v| v.name.as_deref() == Some(*name));
            match load_tensor(&set.join(format!("input_{i}.pb")))
                .and_then(|t| as_declared(t, declared))
            {
                Some(t) => inputs.insert((*name).to_owned(), t),
                None => return (Outcome::UnsupportedData, op),
            };
        }
        let outputs = match session.run(&inputs) {
            Ok(o) => o,
            Err(e) => {
                if std::env::var("KILN_NODE_TESTS_VERBOSE").is_ok() {
                    eprintln!("{}: {e}", dir.display());
                }
                return (Outcome::Error, op);
            }
        };
        for (i, (_, actual)) in outputs.iter().enumerate() {
            let expected = load_tensor(&set.join(format!("output_{i}.pb")));
            let Some(expected) = expected.and_then(|t| as_declared(t, graph.output.get(i))) else {
                return (Outcome::UnsupportedData, op);
            };
            if !close(actual, &expected) {
                if std::env::var("KILN_NODE_TESTS_VERBOSE").is_ok() {
                    eprintln!(
                        "{}: output {i}: got {actual}, expected {expected}",
                        dir.display()
                    );
                }
                return (Outcome::WrongNumbers, op);
            }
        }
    }
    (Outcome::Pass, op)
}

#[test]
#[ignore = "needs ONNX's node test data: scripts/onnx-node-suite.sh fetches it and runs this"]
fn onnx_backend_node_tests() {
    let root = std::env::var("KILN_ONNX_NODE_TESTS")
        .expect("KILN_ONNX_NODE_TESTS names the node test folder: run scripts/onnx-node-suite.sh");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .expect("KILN_ONNX_NODE_TESTS is a folder")
        .flatten()
        .map(|e| e.path())
        .collect();
    cases.sort();
    if let Ok(filter) = std::env::var("KILN_NODE_TESTS_FILTER") {
        cases.retain(|c| c.to_string_lossy().contains(&filter));
    }
    let mut by_outcome: BTreeMap<Outcome, usize> = BTreeMap::new();
    let mut failing_ops: BTreeMap<String, usize> = BTreeMap::new();
    let mut wrong = Vec::new();
    for case in &cases {
        // A panic inside candle on odd input is an error, not the end of the measurement.
        let (outcome, op) = std::panic::catch_unwind(|| run_case(case))
            .unwrap_or((Outcome::Error, "panic".to_owned()));
        *by_outcome.entry(outcome).or_default() += 1;
        if outcome != Outcome::Pass {
            *failing_ops.entry(op).or_default() += 1;
        }
        if matches!(
            outcome,
            Outcome::WrongNumbers | Outcome::Error | Outcome::BrokenByOptimization
        ) {
            wrong.push(case.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    let passed = by_outcome.get(&Outcome::Pass).copied().unwrap_or(0);
    println!("| outcome | tests |\n|---|---|");
    for (outcome, count) in &by_outcome {
        println!("| {outcome:?} | {count} |");
    }
    println!(
        "| **passed** | **{passed} of {} ({:.1} %)** |",
        cases.len(),
        100.0 * passed as f64 / cases.len() as f64
    );
    let mut ops: Vec<_> = failing_ops.into_iter().collect();
    ops.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    println!("\nfailing tests by operator: {ops:?}");
    println!("\nwrong numbers or errors: {wrong:?}");
    let floor: usize = std::env::var("KILN_ONNX_NODE_TESTS_FLOOR")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        passed >= floor,
        "{passed} node tests pass, fewer than the recorded {floor}"
    );
    assert_eq!(
        by_outcome.get(&Outcome::BrokenByOptimization),
        None,
        "optimization changed results: {wrong:?}"
    );
}

//! The model the Open Inference Protocol fuzzers send requests to, loaded as `kiln-runner serve
//! --model-dir` loads one (`served_folder`), on kiln's evaluator: five inputs of five datatypes sharing a batch dimension
//! (one more dimension dynamic), and outputs that are scores with labels (the classification extension),
//! booleans, a widened fp16, a mean over the dynamic dimension and an input passed through.

use candle_core::{Device, Tensor};
use kiln_onnx::graph_builder::{DimSpec, GraphBuilder, attr_int, attr_ints};
use kiln_onnx::proto::tensor_proto::DataType;
use kiln_runner::serve::in_process::InProcess;
use prost::Message;

/// The served model's name in the protocol's paths.
pub const NAME: &str = "fuzzed";

fn model() -> kiln_onnx::proto::ModelProto {
    let mut g = GraphBuilder::new();
    let batch = DimSpec::Named("batch");
    let x = g.input(
        "x",
        DataType::Float,
        &[DimSpec::Named("batch"), DimSpec::Fixed(4)],
    );
    let ids = g.input("ids", DataType::Int64, &[batch, DimSpec::Named("length")]);
    let flags = g.input(
        "flags",
        DataType::Bool,
        &[DimSpec::Named("batch"), DimSpec::Fixed(2)],
    );
    let half = g.input("half", DataType::Float16, &[DimSpec::Named("batch")]);
    let pixels = g.input(
        "pixels",
        DataType::Uint8,
        &[DimSpec::Named("batch"), DimSpec::Fixed(3)],
    );
    let weights = (0..12).map(|i| i as f32 / 6.0 - 1.0).collect::<Vec<_>>();
    let w = Tensor::from_vec(weights, (4, 3), &Device::Cpu).expect("a 4×3 weight");
    let w = g.weight("w", &w).expect("a weight");
    let b = g
        .weight(
            "b",
            &Tensor::new(&[0.5f32, -0.5, 0.0], &Device::Cpu).expect("a bias"),
        )
        .expect("a weight");
    let scores = g.op("MatMul", &[&x, &w], vec![]);
    g.op_into("Add", &[&scores, &b], vec![], "scores");
    let ids = g.op(
        "Cast",
        &[&ids],
        vec![attr_int("to", DataType::Float as i64)],
    );
    g.op_into(
        "ReduceMean",
        &[&ids],
        vec![attr_ints("axes", &[1]), attr_int("keepdims", 0)],
        "mean",
    );
    g.op_into("Not", &[&flags], vec![], "flipped");
    g.op_into(
        "Cast",
        &[&half],
        vec![attr_int("to", DataType::Float as i64)],
        "widened",
    );
    g.op_into("Identity", &[&pixels], vec![], "pixels_out");
    let batched = |d: DimSpec<'static>| [DimSpec::Named("batch"), d];
    g.output("scores", DataType::Float, &batched(DimSpec::Fixed(3)));
    g.output("mean", DataType::Float, &[DimSpec::Named("batch")]);
    g.output("flipped", DataType::Bool, &batched(DimSpec::Fixed(2)));
    g.output("widened", DataType::Float, &[DimSpec::Named("batch")]);
    g.output("pixels_out", DataType::Uint8, &batched(DimSpec::Fixed(3)));
    g.finish(NAME, 17, vec![])
}

/// Serves the model, its output's labels beside it, on kiln's evaluator.
pub async fn load() -> InProcess {
    let model = model().encode_to_vec();
    let dir = crate::served_folder::folder(
        NAME,
        &[("model.onnx", &model), ("scores.txt", b"cat\ndog\nbird\n")],
    );
    let labels = format!("scores={}", dir.join("scores.txt").display());
    let flags = [
        "--engine",
        "kiln",
        "--max-in-flight-mib",
        "8",
        "--labels",
        &labels,
    ];
    crate::served_folder::serve(dir, NAME, &flags)
        .await
        .expect("the fuzzed model loads")
}

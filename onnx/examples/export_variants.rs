//! Writes, for a few architectures, the original ONNX model, kiln's optimized fp32, fp16 and int8
//! variants (and the fused one where it applies), and sample inputs, for scripts/bench-variants.sh to compare with the tools users would
//! otherwise run: `cargo run --release -p kiln-onnx --example export_variants -- OUT_DIR`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use kiln_onnx::checkpoint::Checkpoint;
use kiln_onnx::graph_builder::{DimSpec, GraphBuilder, attr_float, attr_int, attr_ints};
use kiln_onnx::proto::{ModelProto, tensor_proto::DataType};
use kiln_onnx::sample_models;
use kiln_onnx::variants::{VariantKind, inputs};
use prost::Message;

fn randn(shape: &[usize], std: f64) -> Tensor {
    Tensor::randn(0f32, std as f32, shape, &Device::Cpu).unwrap()
}

/// An MLP classifier: 784 → 512 → 256 → 10.
fn mlp() -> ModelProto {
    let mut g = GraphBuilder::new();
    let mut x = g.input(
        "x",
        DataType::Float,
        &[DimSpec::Named("batch"), DimSpec::Fixed(784)],
    );
    let sizes = [784, 512, 256, 10];
    for i in 0..3 {
        let w = g
            .weight(
                &format!("fc{i}.weight"),
                &randn(&[sizes[i], sizes[i + 1]], (1.0 / sizes[i] as f64).sqrt()),
            )
            .unwrap();
        let b = g
            .weight(&format!("fc{i}.bias"), &randn(&[sizes[i + 1]], 0.01))
            .unwrap();
        let y = g.op("MatMul", &[&x, &w], vec![]);
        let y = g.op("Add", &[&y, &b], vec![]);
        x = if i < 2 {
            g.op("Relu", &[&y], vec![])
        } else {
            y
        };
    }
    g.op_into("Identity", &[&x], vec![], "logits");
    g.output(
        "logits",
        DataType::Float,
        &[DimSpec::Named("batch"), DimSpec::Fixed(10)],
    );
    g.finish("mlp", 17, vec![])
}

/// A small CNN with BatchNorm: 3×32×32 → conv 32 → BN → ReLU → maxpool → conv 64 → BN → ReLU → GAP → FC 10.
fn cnn() -> ModelProto {
    let mut g = GraphBuilder::new();
    let mut x = g.input(
        "image",
        DataType::Float,
        &[
            DimSpec::Named("batch"),
            DimSpec::Fixed(3),
            DimSpec::Fixed(32),
            DimSpec::Fixed(32),
        ],
    );
    let mut channels = 3;
    for (i, out) in [32usize, 64].into_iter().enumerate() {
        let w = g
            .weight(
                &format!("conv{i}.weight"),
                &randn(&[out, channels, 3, 3], (2.0 / (channels * 9) as f64).sqrt()),
            )
            .unwrap();
        let c = g.op("Conv", &[&x, &w], vec![attr_ints("pads", &[1, 1, 1, 1])]);
        let p = |g: &mut GraphBuilder, name: &str, t: Tensor| {
            g.weight(&format!("bn{i}.{name}"), &t).unwrap()
        };
        let gamma = p(
            &mut g,
            "weight",
            randn(&[out], 0.1).affine(1.0, 1.0).unwrap(),
        );
        let beta = p(&mut g, "bias", randn(&[out], 0.1));
        let mean = p(&mut g, "running_mean", randn(&[out], 0.1));
        let var = p(
            &mut g,
            "running_var",
            randn(&[out], 0.1).abs().unwrap().affine(1.0, 0.9).unwrap(),
        );
        let n = g.op(
            "BatchNormalization",
            &[&c, &gamma, &beta, &mean, &var],
            vec![attr_float("epsilon", 1e-5)],
        );
        x = g.op("Relu", &[&n], vec![]);
        if i == 0 {
            x = g.op(
                "MaxPool",
                &[&x],
                vec![
                    attr_ints("kernel_shape", &[2, 2]),
                    attr_ints("strides", &[2, 2]),
                ],
            );
        }
        channels = out;
    }
    let pooled = g.op("GlobalAveragePool", &[&x], vec![]);
    let flat = g.op("Flatten", &[&pooled], vec![attr_int("axis", 1)]);
    let w = g.weight("fc.weight", &randn(&[10, 64], 0.1)).unwrap();
    let b = g.weight("fc.bias", &randn(&[10], 0.01)).unwrap();
    g.op_into(
        "Gemm",
        &[&flat, &w, &b],
        vec![attr_int("transB", 1)],
        "logits",
    );
    g.output(
        "logits",
        DataType::Float,
        &[DimSpec::Named("batch"), DimSpec::Fixed(10)],
    );
    g.finish("cnn", 17, vec![])
}

fn write(dir: &Path, name: &str, model: &ModelProto) {
    std::fs::write(dir.join(format!("{name}.onnx")), model.encode_to_vec()).unwrap();
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .expect("usage: export_variants OUT_DIR");
    let bert = sample_models::bert(4000, 128, 4, 4).unwrap();
    let gpt2 = sample_models::gpt2(4000, 128, 4, 4).unwrap();
    let llama = sample_models::llama(4000, 128, 4, 4, 2).unwrap();
    let models = vec![
        ("mlp", mlp()),
        ("cnn", cnn()),
        (
            "bert",
            kiln_onnx::convert::bert::build(&bert.config, &Checkpoint::from_tensors(bert.tensors))
                .unwrap(),
        ),
        (
            "gpt2",
            kiln_onnx::convert::gpt2::build(&gpt2.config, &Checkpoint::from_tensors(gpt2.tensors))
                .unwrap(),
        ),
        (
            "llama",
            kiln_onnx::convert::llama::build(
                &llama.config,
                &Checkpoint::from_tensors(llama.tensors),
            )
            .unwrap(),
        ),
    ];
    for (name, original) in models {
        let dir = Path::new(&out).join(name);
        std::fs::create_dir_all(&dir).unwrap();
        write(&dir, "original", &original);
        let mut optimized = original.clone();
        let reports = kiln_onnx::optimize::optimize(&mut optimized).unwrap();
        std::fs::write(
            dir.join("kiln-passes.json"),
            serde_json::to_vec_pretty(&reports).unwrap(),
        )
        .unwrap();
        for kind in [
            VariantKind::Fp32,
            VariantKind::Fp16,
            VariantKind::Int8,
            VariantKind::Int8Dynamic,
        ] {
            write(
                &dir,
                &format!("kiln-{}", kind.name()),
                &kind.make(&optimized).unwrap(),
            );
        }
        // Only where there is attention or a GELU to fuse (the BERT and the GPT-2 here).
        match VariantKind::Fused.make(&optimized) {
            Ok(fused) => write(&dir, "kiln-fused", &fused),
            Err(e) => println!("{name}: no fused variant ({e})"),
        }
        let (sample, _) = inputs::generate(&original).unwrap();
        let sample: HashMap<String, Tensor> = sample;
        candle_core::safetensors::save(&sample, dir.join("inputs.safetensors")).unwrap();
        println!("{name}: written to {}", dir.display());
    }
}

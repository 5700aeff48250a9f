//! The CNN families users push most, built in the shape torch.onnx.export writes them (eval mode:
//! BatchNorm already folded into Conv, opset 13-17, dynamic batch): ResNet, MobileNetV3, SqueezeNet,
//! ShuffleNetV2 and EfficientNet blocks with random weights. Each must evaluate, survive every
//! optimization pass, and give fp32, fp16 and int8 variants within their tolerances.

use candle_core::{Device, Tensor};
use kiln_onnx::eval::Session;
use kiln_onnx::graph_builder::{DimSpec, GraphBuilder, attr_float, attr_int, attr_ints};
use kiln_onnx::optimize::optimize;
use kiln_onnx::proto::{ModelProto, tensor_proto::DataType};
use kiln_onnx::variants::{VariantKind, inputs, validate};

struct Net {
    g: GraphBuilder,
    next: usize,
}

impl Net {
    fn new() -> (Self, String) {
        let mut g = GraphBuilder::new();
        let x = g.input(
            "input",
            DataType::Float,
            &[
                DimSpec::Named("batch"),
                DimSpec::Fixed(3),
                DimSpec::Fixed(32),
                DimSpec::Fixed(32),
            ],
        );
        (Self { g, next: 0 }, x)
    }

    fn tensor(&mut self, shape: &[usize], std: f64) -> String {
        self.next += 1;
        let t = Tensor::randn(0f32, std as f32, shape, &Device::Cpu).unwrap();
        self.g.weight(&format!("w{}", self.next), &t).unwrap()
    }

    /// Conv with bias (BatchNorm folded, as torch exports in eval mode).
    fn conv(
        &mut self,
        x: &str,
        cin: usize,
        cout: usize,
        k: usize,
        stride: i64,
        group: usize,
    ) -> String {
        let fan_in = cin / group * k * k;
        let w = self.tensor(&[cout, cin / group, k, k], (2.0 / fan_in as f64).sqrt());
        let b = self.tensor(&[cout], 0.05);
        let pad = (k / 2) as i64;
        self.g.op(
            "Conv",
            &[x, &w, &b],
            vec![
                attr_ints("kernel_shape", &[k as i64, k as i64]),
                attr_ints("pads", &[pad, pad, pad, pad]),
                attr_ints("strides", &[stride, stride]),
                attr_int("group", group as i64),
            ],
        )
    }

    fn op(&mut self, op: &str, inputs: &[&str]) -> String {
        self.g.op(op, inputs, vec![])
    }

    fn classifier(mut self, x: &str, channels: usize, tail: &[&str]) -> ModelProto {
        let pooled = self.op("GlobalAveragePool", &[x]);
        let flat = self.g.op("Flatten", &[&pooled], vec![attr_int("axis", 1)]);
        let mut h = flat;
        for act in tail {
            h = self.op(act, &[&h]);
        }
        let w = self.tensor(&[10, channels], (1.0 / channels as f64).sqrt());
        let b = self.tensor(&[10], 0.01);
        self.g.op_into(
            "Gemm",
            &[&h, &w, &b],
            vec![
                attr_float("alpha", 1.0),
                attr_float("beta", 1.0),
                attr_int("transB", 1),
            ],
            "logits",
        );
        self.g.output(
            "logits",
            DataType::Float,
            &[DimSpec::Named("batch"), DimSpec::Fixed(10)],
        );
        self.g.finish("cnn", 17, vec![])
    }
}

fn resnet() -> ModelProto {
    let (mut n, x) = Net::new();
    let stem = n.conv(&x, 3, 16, 3, 1, 1);
    let stem = n.op("Relu", &[&stem]);
    let pooled = n.g.op(
        "MaxPool",
        &[&stem],
        vec![
            attr_ints("kernel_shape", &[3, 3]),
            attr_ints("strides", &[2, 2]),
            attr_ints("pads", &[1, 1, 1, 1]),
        ],
    );
    // Basic block with a strided 1x1 downsample on the skip path.
    let a = n.conv(&pooled, 16, 32, 3, 2, 1);
    let a = n.op("Relu", &[&a]);
    let a = n.conv(&a, 32, 32, 3, 1, 1);
    let skip = n.conv(&pooled, 16, 32, 1, 2, 1);
    let sum = n.op("Add", &[&a, &skip]);
    let out = n.op("Relu", &[&sum]);
    n.classifier(&out, 32, &[])
}

fn mobilenet_v3() -> ModelProto {
    let (mut n, x) = Net::new();
    let stem = n.conv(&x, 3, 16, 3, 2, 1);
    let stem = n.op("HardSwish", &[&stem]);
    let expand = n.conv(&stem, 16, 32, 1, 1, 1);
    let expand = n.op("HardSwish", &[&expand]);
    let depthwise = n.conv(&expand, 32, 32, 3, 1, 32);
    // Squeeze-and-excitation.
    let squeezed = n.op("GlobalAveragePool", &[&depthwise]);
    let reduce = n.conv(&squeezed, 32, 8, 1, 1, 1);
    let reduce = n.op("Relu", &[&reduce]);
    let excite = n.conv(&reduce, 8, 32, 1, 1, 1);
    let gate = n.g.op(
        "HardSigmoid",
        &[&excite],
        vec![attr_float("alpha", 1.0 / 6.0), attr_float("beta", 0.5)],
    );
    let scaled = n.op("Mul", &[&depthwise, &gate]);
    let project = n.conv(&scaled, 32, 16, 1, 1, 1);
    let out = n.op("Add", &[&project, &stem]);
    n.classifier(&out, 16, &["HardSwish"])
}

fn squeezenet() -> ModelProto {
    let (mut n, x) = Net::new();
    let stem = n.conv(&x, 3, 32, 3, 2, 1);
    let stem = n.op("Relu", &[&stem]);
    let pooled = n.g.op(
        "MaxPool",
        &[&stem],
        vec![
            attr_ints("kernel_shape", &[3, 3]),
            attr_ints("strides", &[2, 2]),
            attr_int("ceil_mode", 1),
        ],
    );
    let squeeze = n.conv(&pooled, 32, 8, 1, 1, 1);
    let squeeze = n.op("Relu", &[&squeeze]);
    let e1 = n.conv(&squeeze, 8, 16, 1, 1, 1);
    let e1 = n.op("Relu", &[&e1]);
    let e3 = n.conv(&squeeze, 8, 16, 3, 1, 1);
    let e3 = n.op("Relu", &[&e3]);
    let fire = n.g.op("Concat", &[&e1, &e3], vec![attr_int("axis", 1)]);
    let dropped = n.op("Dropout", &[&fire]);
    let head = n.conv(&dropped, 32, 32, 1, 1, 1);
    let head = n.op("Relu", &[&head]);
    n.classifier(&head, 32, &[])
}

fn shufflenet_v2() -> ModelProto {
    let (mut n, x) = Net::new();
    let stem = n.conv(&x, 3, 24, 3, 2, 1);
    let stem = n.op("Relu", &[&stem]);
    // Split channels in two, transform one half, concatenate, then shuffle the channels.
    // Each half as a Slice over the channels, as torch exports `chunk` at these opsets.
    let (zero_c, mid, end, axis) = (
        n.g.ints("s", &[0]).unwrap(),
        n.g.ints("m", &[12]).unwrap(),
        n.g.ints("e", &[24]).unwrap(),
        n.g.ints("a", &[1]).unwrap(),
    );
    let halves_a = n.op("Slice", &[&stem, &zero_c, &mid, &axis]);
    let halves_b = n.op("Slice", &[&stem, &mid, &end, &axis]);
    let b = n.conv(&halves_b, 12, 12, 1, 1, 1);
    let b = n.op("Relu", &[&b]);
    let b = n.conv(&b, 12, 12, 3, 1, 12);
    let b = n.conv(&b, 12, 12, 1, 1, 1);
    let b = n.op("Relu", &[&b]);
    let joined =
        n.g.op("Concat", &[&halves_a, &b], vec![attr_int("axis", 1)]);
    // Channel shuffle with the batch taken from the tensor's shape, as dynamic-batch exports do.
    let shape = n.op("Shape", &[&joined]);
    let zero = n.g.ints("zero", &[0]).unwrap();
    let batch =
        n.g.op("Gather", &[&shape, &zero], vec![attr_int("axis", 0)]);
    let rest = n.g.ints("rest", &[2, 12, 16, 16]).unwrap();
    let grouped_shape =
        n.g.op("Concat", &[&batch, &rest], vec![attr_int("axis", 0)]);
    let grouped = n.op("Reshape", &[&joined, &grouped_shape]);
    let swapped = n.g.op(
        "Transpose",
        &[&grouped],
        vec![attr_ints("perm", &[0, 2, 1, 3, 4])],
    );
    let flat_rest = n.g.ints("flat", &[24, 16, 16]).unwrap();
    let flat_shape =
        n.g.op("Concat", &[&batch, &flat_rest], vec![attr_int("axis", 0)]);
    let shuffled = n.op("Reshape", &[&swapped, &flat_shape]);
    n.classifier(&shuffled, 24, &[])
}

fn efficientnet() -> ModelProto {
    let (mut n, x) = Net::new();
    let silu = |n: &mut Net, x: &str| {
        let s = n.op("Sigmoid", &[x]);
        n.op("Mul", &[x, &s])
    };
    let stem = n.conv(&x, 3, 16, 3, 2, 1);
    let stem = silu(&mut n, &stem);
    let depthwise = n.conv(&stem, 16, 16, 3, 1, 16);
    let depthwise = silu(&mut n, &depthwise);
    let squeezed = n.op("GlobalAveragePool", &[&depthwise]);
    let reduce = n.conv(&squeezed, 16, 4, 1, 1, 1);
    let reduce = silu(&mut n, &reduce);
    let excite = n.conv(&reduce, 4, 16, 1, 1, 1);
    let gate = n.op("Sigmoid", &[&excite]);
    let scaled = n.op("Mul", &[&depthwise, &gate]);
    let project = n.conv(&scaled, 16, 24, 1, 1, 1);
    let head = n.conv(&project, 24, 32, 1, 1, 1);
    let head = silu(&mut n, &head);
    n.classifier(&head, 32, &[])
}

fn check(name: &str, model: ModelProto) {
    kiln_onnx::model_check::check_model(&model).unwrap_or_else(|e| panic!("{name}: {e}"));
    let session = Session::new(&model, None, &Device::Cpu).unwrap();
    let (sample, described) = inputs::generate(&model).unwrap();
    let mut optimized = model.clone();
    optimize(&mut optimized).unwrap();
    for kind in [
        VariantKind::Fp32,
        VariantKind::Fp16,
        VariantKind::Int8,
        VariantKind::Int8Dynamic,
    ] {
        let variant = kind.make(&optimized).unwrap();
        let v = validate(
            &session,
            &variant,
            &sample,
            &described,
            kind.default_tolerance(),
        )
        .unwrap();
        assert!(
            v.passed,
            "{name} {}: relative L2 {:e}",
            kind.name(),
            v.rel_l2_error
        );
    }
}

#[test]
fn resnet_block() {
    check("resnet", resnet());
}

#[test]
fn mobilenet_v3_block() {
    check("mobilenet_v3", mobilenet_v3());
}

#[test]
fn squeezenet_fire_module() {
    check("squeezenet", squeezenet());
}

#[test]
fn shufflenet_v2_unit() {
    check("shufflenet_v2", shufflenet_v2());
}

#[test]
fn efficientnet_block() {
    check("efficientnet", efficientnet());
}

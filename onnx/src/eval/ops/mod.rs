//! The operators kiln's evaluator implements, by ONNX name. Adding one is a function in the module of its
//! kind, a line in [`lookup`], and its own test beside it.

mod affine_grid;
mod average_pool_cpu;
mod col2im;
mod contrib;
mod conv_depthwise;
mod conv_gemm;
mod conv_integer;
mod conv_integer_packed;
mod conv_transpose;
mod conv_transpose_gemm;
mod cpu_f32;
// What `output_bound` works out as the operators do: a half-precision operand on the CPU (computed in
// f32), Tile's shape.
pub(crate) use cpu_f32::is_half_on_cpu;
pub(crate) use elementwise::multiplied_power;
pub(crate) use resize::scaled_length;
pub(crate) use shape::tiled;
mod determinant;
mod einsum;
mod elementwise;
mod f32_math;
mod fourier;
mod grid_sample;
mod half_through_f32;
pub(crate) mod host;
mod im2col;
mod indexing;
mod int8_gemm;
mod integer_product;
mod layout;
#[cfg(test)]
mod limits_sweep;
mod logic;
mod loss;
mod matmul;
mod matrix_product;
mod max_pool_cpu;
mod max_unpool;
mod ml;
mod non_max_suppression;
mod normalization;
mod pool_nd;
mod pool_windows;
mod qlinear_matmul;
mod quantize;
mod recurrent;
mod recurrent_activation;
mod recurrent_cell;
mod recurrent_weights;
mod reduce;
mod resize;
mod roi_align;
mod shape;
mod signal;
mod spatial;
mod tf_idf_vectorizer;
mod training;
mod unary;
mod unique;
mod values;

use candle_core::Tensor;

use super::node::{self, Node};
use crate::ModelError;
use crate::proto::ModelProto;

pub type OpFn = fn(&Node<'_>, &[Option<Tensor>]) -> Result<Vec<Tensor>, ModelError>;

/// The operator for a node, when kiln implements it: the default `ai.onnx` domain, `ai.onnx.ml`, the
/// preview training optimizers and ONNX Runtime's `com.microsoft` contrib operators.
pub fn lookup(domain: &str, op_type: &str) -> Option<OpFn> {
    let domain = if domain == "ai.onnx" { "" } else { domain };
    let (_, table) = DOMAINS.iter().find(|(d, _)| *d == domain)?;
    table
        .iter()
        .find(|(name, _)| *name == op_type)
        .map(|&(_, f)| f)
}

/// Every (domain, operator) pair [`lookup`] resolves, the default domain spelled `""`: for docs, the
/// node-test report and the tests that run every operator.
pub fn registered() -> impl Iterator<Item = (&'static str, &'static str)> {
    DOMAINS
        .iter()
        .flat_map(|&(domain, table)| table.iter().map(move |&(op, _)| (domain, op)))
}

/// One table per domain, so that [`lookup`] and [`registered`] cannot disagree.
const DOMAINS: &[(&str, &[(&str, OpFn)])] = &[
    ("", DEFAULT_OPS),
    (contrib::DOMAIN, contrib::OPS),
    (ml::DOMAIN, ml::OPS),
    (training::DOMAIN, training::OPS),
];

const DEFAULT_OPS: &[(&str, OpFn)] = &[
    ("Add", elementwise::add),
    ("Sub", elementwise::sub),
    ("Mul", elementwise::mul),
    ("Div", elementwise::div),
    ("Pow", elementwise::pow),
    ("Equal", elementwise::equal),
    ("Greater", elementwise::greater),
    ("Less", elementwise::less),
    ("Cos", elementwise::cos),
    ("Sin", elementwise::sin),
    ("Where", elementwise::where_),
    ("Neg", elementwise::neg),
    ("Sqrt", elementwise::sqrt),
    ("Exp", elementwise::exp),
    ("Erf", elementwise::erf),
    ("Tanh", elementwise::tanh),
    ("Sigmoid", elementwise::sigmoid),
    ("Relu", elementwise::relu),
    ("MatMul", matmul::matmul),
    ("Gemm", matmul::gemm),
    ("MatMulInteger", matmul::matmul_integer),
    ("Softmax", normalization::softmax),
    ("LayerNormalization", normalization::layer_normalization),
    ("LpNormalization", normalization::lp_normalization),
    ("ReduceMean", normalization::reduce_mean),
    ("Shape", shape::shape),
    ("Reshape", shape::reshape),
    ("Unsqueeze", shape::unsqueeze),
    ("Squeeze", shape::squeeze),
    ("Expand", shape::expand),
    ("Transpose", layout::transpose),
    ("Concat", layout::concat),
    ("Slice", layout::slice),
    ("Gather", layout::gather),
    ("Constant", values::constant),
    ("Cast", values::cast),
    ("Identity", values::identity),
    ("Dropout", dropout),
    ("CastLike", values::cast_like),
    ("Abs", unary::abs),
    ("Acos", unary::acos),
    ("Asin", unary::asin),
    ("Atan", unary::atan),
    ("Acosh", unary::acosh),
    ("Asinh", unary::asinh),
    ("Atanh", unary::atanh),
    ("Cosh", unary::cosh),
    ("Sinh", unary::sinh),
    ("Tan", unary::tan),
    ("Log", unary::log),
    ("Ceil", unary::ceil),
    ("Floor", unary::floor),
    ("Round", unary::round),
    ("Sign", unary::sign),
    ("Reciprocal", unary::reciprocal),
    ("Softplus", unary::softplus),
    ("Softsign", unary::softsign),
    ("Mish", unary::mish),
    ("LeakyRelu", unary::leaky_relu),
    ("Elu", unary::elu),
    ("Selu", unary::selu),
    ("Celu", unary::celu),
    ("ThresholdedRelu", unary::thresholded_relu),
    ("HardSigmoid", unary::hard_sigmoid),
    ("HardSwish", unary::hard_swish),
    ("Shrink", unary::shrink),
    ("Gelu", unary::gelu),
    ("PRelu", unary::prelu),
    ("Clip", unary::clip),
    ("GreaterOrEqual", logic::greater_or_equal),
    ("LessOrEqual", logic::less_or_equal),
    ("And", logic::and),
    ("Or", logic::or),
    ("Xor", logic::xor),
    ("Not", logic::not),
    ("IsNaN", logic::is_nan),
    ("IsInf", logic::is_inf),
    ("Max", logic::max),
    ("Min", logic::min),
    ("Sum", logic::sum),
    ("Mean", logic::mean),
    ("Mod", logic::modulo),
    ("ReduceSum", reduce::reduce_sum),
    ("ReduceSumSquare", reduce::reduce_sum_square),
    ("ReduceL1", reduce::reduce_l1),
    ("ReduceL2", reduce::reduce_l2),
    ("ReduceLogSum", reduce::reduce_log_sum),
    ("ReduceLogSumExp", reduce::reduce_log_sum_exp),
    ("ReduceProd", reduce::reduce_prod),
    ("ReduceMax", reduce::reduce_max),
    ("ReduceMin", reduce::reduce_min),
    ("ArgMax", reduce::arg_max),
    ("ArgMin", reduce::arg_min),
    ("CumSum", reduce::cum_sum),
    ("Conv", spatial::conv),
    ("ConvTranspose", conv_transpose::conv_transpose),
    ("CenterCropPad", shape::center_crop_pad),
    ("MaxPool", spatial::max_pool),
    ("AveragePool", spatial::average_pool),
    ("LpPool", pool_nd::lp_pool),
    ("GlobalAveragePool", spatial::global_average_pool),
    ("GlobalMaxPool", spatial::global_max_pool),
    ("BatchNormalization", normalization::batch_normalization),
    (
        "InstanceNormalization",
        normalization::instance_normalization,
    ),
    ("LRN", spatial::lrn),
    ("LogSoftmax", normalization::log_softmax),
    ("Hardmax", normalization::hardmax),
    ("Flatten", shape::flatten),
    ("Size", shape::size),
    ("ConstantOfShape", shape::constant_of_shape),
    ("Tile", shape::tile),
    ("Range", shape::range),
    ("Split", layout::split),
    ("Pad", layout::pad),
    ("Trilu", layout::trilu),
    ("GatherElements", layout::gather_elements),
    ("DepthToSpace", layout::depth_to_space),
    ("SpaceToDepth", layout::space_to_depth),
    ("Resize", resize::resize),
    ("Upsample", resize::resize),
    ("OneHot", indexing::one_hot),
    ("EyeLike", indexing::eye_like),
    ("TopK", indexing::top_k),
    ("GatherND", indexing::gather_nd),
    ("ScatterElements", indexing::scatter_elements),
    ("Scatter", indexing::scatter_elements),
    ("HannWindow", signal::hann_window),
    ("HammingWindow", signal::hamming_window),
    ("BlackmanWindow", signal::blackman_window),
    ("MelWeightMatrix", signal::mel_weight_matrix),
    ("DFT", fourier::dft),
    ("STFT", fourier::stft),
    ("DynamicQuantizeLinear", signal::dynamic_quantize_linear),
    (
        "MeanVarianceNormalization",
        normalization::mean_variance_normalization,
    ),
    ("ScatterND", indexing::scatter_nd),
    ("NonZero", indexing::non_zero),
    ("Compress", indexing::compress),
    ("BitwiseAnd", logic::bitwise_and),
    ("BitwiseOr", logic::bitwise_or),
    ("BitwiseXor", logic::bitwise_xor),
    ("BitwiseNot", logic::bitwise_not),
    ("BitShift", logic::bit_shift),
    (
        "NegativeLogLikelihoodLoss",
        loss::negative_log_likelihood_loss,
    ),
    ("SoftmaxCrossEntropyLoss", loss::softmax_cross_entropy_loss),
    ("DequantizeLinear", quantize::dequantize_linear),
    ("QuantizeLinear", quantize::quantize_linear),
    ("LSTM", recurrent::lstm),
    ("GRU", recurrent::gru),
    ("RNN", recurrent::rnn),
    ("Einsum", einsum::einsum),
    ("GridSample", grid_sample::grid_sample),
    (
        "NonMaxSuppression",
        non_max_suppression::non_max_suppression,
    ),
    ("Unique", unique::unique),
    ("QLinearMatMul", qlinear_matmul::qlinear_matmul),
    ("AffineGrid", affine_grid::affine_grid),
    ("Col2Im", col2im::col2im),
    ("RoiAlign", roi_align::roi_align),
    ("TfIdfVectorizer", tf_idf_vectorizer::tf_idf_vectorizer),
    ("Det", determinant::det),
    ("ConvInteger", conv_integer::conv_integer),
    ("MaxUnpool", max_unpool::max_unpool),
    ("ReverseSequence", layout::reverse_sequence),
    ("GroupNormalization", normalization::group_normalization),
];

/// Which of a model's operators kiln can run, judged against the opsets the model imports.
pub struct OpSupport<'a> {
    model: &'a ModelProto,
}

impl<'a> OpSupport<'a> {
    pub fn new(model: &'a ModelProto) -> Self {
        Self { model }
    }

    /// None when kiln runs `op` of `domain` (`is_control_flow`: the evaluator runs it itself); else its
    /// name for the error: `Op` in the default domain, `domain::Op` in any other, and
    /// `Op (domain opset N)` when the model imports a version of the domain newer than kiln knows (its
    /// operators may have changed meaning there).
    pub fn unsupported(&self, domain: &str, op: &str, is_control_flow: bool) -> Option<String> {
        let domain = canonical_domain(domain);
        let imported = self
            .model
            .opset_import
            .iter()
            .find(|o| canonical_domain(o.domain.as_deref().unwrap_or("")) == domain)
            .and_then(|o| o.version);
        match (imported, crate::model_check::newest_opset(domain)) {
            (Some(version), Some(newest)) if version > newest => {
                Some(format!("{op} ({domain} opset {version})"))
            }
            _ if is_control_flow || lookup(domain, op).is_some() => None,
            _ if domain == "ai.onnx" => Some(op.to_owned()),
            _ => Some(format!("{domain}::{op}")),
        }
    }
}

/// `ai.onnx` for the default domain, which models spell either way.
fn canonical_domain(domain: &str) -> &str {
    if domain.is_empty() { "ai.onnx" } else { domain }
}

/// Dropout at inference is the identity; its optional mask output is all true.
fn dropout(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>, ModelError> {
    let x = node::required(inputs, 0)?;
    let mut out = vec![x.clone()];
    if node.output_count() > 1 {
        out.push(x.ones_like()?.to_dtype(candle_core::DType::U8)?);
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Runs one operator on literal tensors, as a one-node graph would.
    use candle_core::{Device, Tensor};

    use crate::eval::node::Node;
    use crate::proto::{AttributeProto, NodeProto};

    pub fn run(
        op: &str,
        opset: i64,
        attributes: Vec<AttributeProto>,
        inputs: &[Option<Tensor>],
    ) -> Vec<Tensor> {
        let proto = NodeProto {
            op_type: Some(op.to_owned()),
            attribute: attributes,
            ..Default::default()
        };
        let f = super::lookup("", op).expect("op is registered");
        f(&Node::new(&proto, opset), inputs).expect("op runs")
    }

    /// [`run`] for a node that declares `outputs` outputs (operators whose optional outputs are computed
    /// only when declared).
    pub fn run_outputs(
        op: &str,
        opset: i64,
        attributes: Vec<AttributeProto>,
        inputs: &[Option<Tensor>],
        outputs: usize,
    ) -> Vec<Tensor> {
        let proto = NodeProto {
            op_type: Some(op.to_owned()),
            attribute: attributes,
            output: (0..outputs).map(|i| format!("y{i}")).collect(),
            ..Default::default()
        };
        let f = super::lookup("", op).expect("op is registered");
        f(&Node::new(&proto, opset), inputs).expect("op runs")
    }

    /// The error an operator gives (it must fail, not panic).
    pub fn error(
        op: &str,
        opset: i64,
        attributes: Vec<AttributeProto>,
        inputs: &[Option<Tensor>],
    ) -> String {
        let proto = NodeProto {
            op_type: Some(op.to_owned()),
            attribute: attributes,
            ..Default::default()
        };
        let f = super::lookup("", op).expect("op is registered");
        match f(&Node::new(&proto, opset), inputs) {
            Ok(_) => panic!("{op} should fail"),
            Err(e) => e.to_string(),
        }
    }

    /// [`run`] for an operator of another domain (opset 1 of it).
    pub fn run_in(
        domain: &str,
        op: &str,
        attributes: Vec<AttributeProto>,
        inputs: &[Option<Tensor>],
    ) -> Vec<Tensor> {
        let proto = NodeProto {
            op_type: Some(op.to_owned()),
            domain: Some(domain.to_owned()),
            attribute: attributes,
            ..Default::default()
        };
        let f = super::lookup(domain, op).expect("op is registered");
        f(&Node::new(&proto, 1), inputs).expect("op runs")
    }

    pub fn int(name: &str, value: i64) -> AttributeProto {
        AttributeProto {
            name: Some(name.to_owned()),
            i: Some(value),
            r#type: Some(2),
            ..Default::default()
        }
    }

    pub fn ints(name: &str, values: &[i64]) -> AttributeProto {
        AttributeProto {
            name: Some(name.to_owned()),
            ints: values.to_vec(),
            r#type: Some(7),
            ..Default::default()
        }
    }

    pub fn float(name: &str, value: f32) -> AttributeProto {
        AttributeProto {
            name: Some(name.to_owned()),
            f: Some(value),
            r#type: Some(1),
            ..Default::default()
        }
    }

    pub fn floats(name: &str, values: &[f32]) -> AttributeProto {
        AttributeProto {
            name: Some(name.to_owned()),
            floats: values.to_vec(),
            r#type: Some(6),
            ..Default::default()
        }
    }

    pub fn strings(name: &str, values: &[&str]) -> AttributeProto {
        AttributeProto {
            name: Some(name.to_owned()),
            strings: values
                .iter()
                .map(|v| v.as_bytes().to_vec().into())
                .collect(),
            r#type: Some(8),
            ..Default::default()
        }
    }

    pub fn string(name: &str, value: &str) -> AttributeProto {
        AttributeProto {
            name: Some(name.to_owned()),
            s: Some(value.as_bytes().to_vec().into()),
            r#type: Some(3),
            ..Default::default()
        }
    }

    pub fn f32s(values: &[f32], shape: &[usize]) -> Option<Tensor> {
        Some(Tensor::from_vec(values.to_vec(), shape, &Device::Cpu).unwrap())
    }

    pub fn i64s(values: &[i64]) -> Option<Tensor> {
        Some(Tensor::from_vec(values.to_vec(), values.len(), &Device::Cpu).unwrap())
    }

    /// A result's values in order, as f32.
    pub fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::OpSupport;
    use crate::proto::{ModelProto, OperatorSetIdProto};

    fn importing(domain: &str, version: i64) -> ModelProto {
        ModelProto {
            opset_import: vec![OperatorSetIdProto {
                domain: Some(domain.to_owned()),
                version: Some(version),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn every_registered_operator_resolves_once() {
        let all: Vec<_> = super::registered().collect();
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len(), "an operator is listed twice");
        for &(domain, op) in &all {
            assert!(super::lookup(domain, op).is_some(), "{domain}::{op}");
        }
        assert!(super::lookup("ai.onnx", "Add").is_some());
        assert!(super::lookup("org.example", "Add").is_none());
    }

    #[test]
    fn ml_operators_run_and_unknown_ones_name_their_domain() {
        let model = importing("ai.onnx.ml", 5);
        let support = OpSupport::new(&model);
        assert_eq!(
            support.unsupported("ai.onnx.ml", "TreeEnsemble", false),
            None
        );
        assert_eq!(
            support.unsupported("ai.onnx.ml", "ZipMap", false),
            Some("ai.onnx.ml::ZipMap".to_owned())
        );
        assert_eq!(
            support.unsupported("org.example", "Custom", false),
            Some("org.example::Custom".to_owned())
        );
    }
}

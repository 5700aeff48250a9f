//! ONNX Runtime's contrib operators (domain `com.microsoft`) that its exporters and transformer optimizer
//! write into models, one file per family. Each documents the forms it implements; any other form is an
//! evaluation error that names it, never a guess.

mod attention;
mod fused;
mod gelu;
mod layer_norm;
mod matmul_nbits;

use candle_core::Tensor;

use super::OpFn;
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// The ONNX Runtime contrib domain.
pub const DOMAIN: &str = "com.microsoft";

/// Every contrib operator kiln implements, by name (read through [`super::lookup`]).
pub const OPS: &[(&str, OpFn)] = &[
    ("FusedMatMul", fused::fused_matmul),
    ("FusedConv", fused::fused_conv),
    ("Gelu", gelu::gelu),
    ("BiasGelu", gelu::bias_gelu),
    ("FastGelu", gelu::fast_gelu),
    ("QuickGelu", gelu::quick_gelu),
    (
        "SkipLayerNormalization",
        layer_norm::skip_layer_normalization,
    ),
    (
        "SkipSimplifiedLayerNormalization",
        layer_norm::skip_simplified_layer_normalization,
    ),
    (
        "EmbedLayerNormalization",
        layer_norm::embed_layer_normalization,
    ),
    ("Attention", attention::attention),
    ("MatMulNBits", matmul_nbits::matmul_nbits),
    (
        "DynamicQuantizeLSTM",
        super::recurrent::dynamic_quantize_lstm,
    ),
];

fn evaluation(message: impl Into<String>) -> ModelError {
    ModelError::Evaluation(message.into())
}

/// A 1-D `[hidden]` vector (bias, gamma, beta) checked against `x`'s last axis, ready to broadcast.
fn last_axis_vector<'a>(
    x: &Tensor,
    vector: &'a Tensor,
    what: &str,
) -> Result<&'a Tensor, ModelError> {
    match (vector.dims(), x.dims().last()) {
        ([width], Some(hidden)) if width == hidden => Ok(vector),
        (dims, _) => Err(evaluation(format!(
            "{what} has shape {dims:?}; it must be [{}], the input's last axis",
            x.dims().last().copied().unwrap_or(0)
        ))),
    }
}

#[cfg(test)]
mod testing {
    //! Runs one contrib operator on literal tensors.
    use candle_core::Tensor;

    use crate::eval::node::Node;
    use crate::proto::{AttributeProto, NodeProto};

    pub fn run(
        op: &str,
        attributes: Vec<AttributeProto>,
        inputs: &[Option<Tensor>],
    ) -> Vec<Tensor> {
        let proto = NodeProto {
            op_type: Some(op.to_owned()),
            domain: Some(super::DOMAIN.to_owned()),
            attribute: attributes,
            ..Default::default()
        };
        let f = super::super::lookup(super::DOMAIN, op).expect("op is registered");
        f(&Node::new(&proto, 17), inputs).expect("op runs")
    }
}

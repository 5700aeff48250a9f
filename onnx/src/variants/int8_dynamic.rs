//! `int8-dynamic`: MatMul and Gemm run on integers, as ONNX Runtime's `quantize_dynamic` makes them:
//! activations quantized per tensor at run time (DynamicQuantizeLinear, uint8), weights int8 with one
//! scale per output column, MatMulInteger, then one multiply by both scales. Conv weights and embedding
//! tables get the weight-only treatment of `int8`.

use bytes::Bytes;
use candle_core::{DType, Device, Tensor};

use crate::ModelError;
use crate::eval::tensor_io;
use crate::graph_builder::attr_int;
use crate::proto::{ModelProto, NodeProto, TensorProto, tensor_proto::DataType};

fn node(
    op: &str,
    inputs: Vec<String>,
    outputs: Vec<String>,
    attribute: Vec<crate::proto::AttributeProto>,
) -> NodeProto {
    NodeProto {
        name: Some(outputs[0].clone()),
        op_type: Some(op.to_owned()),
        input: inputs,
        output: outputs,
        attribute,
        ..Default::default()
    }
}

/// Per-column int8 weights [K, N] and their scales [N].
fn quantize_columns(w: &Tensor) -> Result<(Vec<u8>, Vec<f32>), ModelError> {
    let (k, n) = w.dims2()?;
    let values = w.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let mut scales = vec![0f32; n];
    for (i, v) in values.iter().enumerate() {
        scales[i % n] = scales[i % n].max(v.abs());
    }
    for s in &mut scales {
        *s = if *s == 0.0 { 1.0 } else { *s / 127.0 };
    }
    let q = (0..k * n)
        .map(|i| (values[i] / scales[i % n]).round().clamp(-127.0, 127.0) as i8 as u8)
        .collect();
    Ok((q, scales))
}

pub fn quantize(optimized: &ModelProto) -> Result<ModelProto, ModelError> {
    if super::int8::opset(optimized) < 11 {
        return Err(ModelError::Unsupported(
            "int8-dynamic needs opset 11 or later (DynamicQuantizeLinear); the model declares an older one"
                .to_owned(),
        ));
    }
    let mut model = optimized.clone();
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| ModelError::InvalidModel("no graph".to_owned()))?;
    let inputs: std::collections::HashSet<String> =
        graph.input.iter().filter_map(|v| v.name.clone()).collect();
    let float_weight = |graph: &crate::proto::GraphProto, name: &str| {
        graph
            .initializer
            .iter()
            .find(|t| {
                t.name.as_deref() == Some(name)
                    && t.data_type == Some(DataType::Float as i32)
                    && t.dims.len() == 2
            })
            .filter(|_| !inputs.contains(name))
            .cloned()
    };
    let mut nodes = Vec::with_capacity(graph.node.len());
    let mut added: Vec<TensorProto> = Vec::new();
    for n in std::mem::take(&mut graph.node) {
        let op = n.op_type.as_deref().unwrap_or("");
        let attr = |name: &str| n.attribute.iter().find(|a| a.name.as_deref() == Some(name));
        let plain_gemm = op == "Gemm"
            && attr("transA").is_none_or(|a| a.i == Some(0))
            && attr("alpha").is_none_or(|a| a.f == Some(1.0))
            && attr("beta").is_none_or(|a| a.f == Some(1.0));
        let Some(weight) = (op == "MatMul" || plain_gemm)
            .then(|| n.input.get(1).and_then(|w| float_weight(graph, w)))
            .flatten()
        else {
            nodes.push(n);
            continue;
        };
        let mut w = tensor_io::from_proto(&weight, None, &Device::Cpu)?;
        if op == "Gemm" && attr("transB").is_some_and(|a| a.i == Some(1)) {
            w = w.t()?.contiguous()?;
        }
        let (k, cols) = w.dims2()?;
        let (q, scales) = quantize_columns(&w)?;
        let out = n.output[0].clone();
        let tag = |what: &str| format!("{out}.{what}");
        added.push(TensorProto {
            name: Some(tag("weight_int8")),
            dims: vec![k as i64, cols as i64],
            data_type: Some(DataType::Int8 as i32),
            raw_data: Some(Bytes::from(q)),
            ..Default::default()
        });
        added.push(tensor_io::to_proto(
            &tag("weight_scale"),
            &Tensor::from_vec(scales, cols, &Device::Cpu)?,
        )?);
        let x = n.input[0].clone();
        nodes.push(node(
            "DynamicQuantizeLinear",
            vec![x],
            vec![tag("x_uint8"), tag("x_scale"), tag("x_zero_point")],
            vec![],
        ));
        nodes.push(node(
            "MatMulInteger",
            vec![tag("x_uint8"), tag("weight_int8"), tag("x_zero_point")],
            vec![tag("int32")],
            vec![],
        ));
        nodes.push(node(
            "Cast",
            vec![tag("int32")],
            vec![tag("float")],
            vec![attr_int("to", DataType::Float as i64)],
        ));
        nodes.push(node(
            "Mul",
            vec![tag("x_scale"), tag("weight_scale")],
            vec![tag("scale")],
            vec![],
        ));
        let bias = (op == "Gemm")
            .then(|| n.input.get(2).filter(|c| !c.is_empty()).cloned())
            .flatten();
        match bias {
            Some(c) => {
                nodes.push(node(
                    "Mul",
                    vec![tag("float"), tag("scale")],
                    vec![tag("product")],
                    vec![],
                ));
                nodes.push(node("Add", vec![tag("product"), c], vec![out], vec![]));
            }
            None => nodes.push(node(
                "Mul",
                vec![tag("float"), tag("scale")],
                vec![out],
                vec![],
            )),
        }
    }
    graph.node = nodes;
    graph.initializer.extend(added);
    // Conv weights and embedding tables: weight-only int8, and the fp32 weights nothing reads any more go.
    let mut model = super::int8::quantize(&model)?;
    crate::optimize::remove_dead_code(&mut model)?;
    Ok(model)
}

//! Weight-only int8: each MatMul/Gemm/Conv weight becomes int8 with one fp32 scale per output channel
//! (symmetric, zero point 0), and a DequantizeLinear in front of its readers. About a quarter of the
//! weight bytes; compute stays fp32.

use bytes::Bytes;
use candle_core::{DType, Device};

use super::weight_channels;
use crate::ModelError;
use crate::eval::tensor_io;
use crate::graph_builder::attr_int;
use crate::proto::{ModelProto, NodeProto, TensorProto, tensor_proto::DataType};

/// The model's `ai.onnx` opset: per-axis DequantizeLinear and Unsqueeze with axes as an input need 13.
pub(super) fn opset(model: &ModelProto) -> i64 {
    crate::model_check::ai_onnx_opset(model).unwrap_or(1)
}

pub fn quantize(optimized: &ModelProto) -> Result<ModelProto, ModelError> {
    let mut model = optimized.clone();
    if opset(&model) < 10 {
        return Err(ModelError::Unsupported(
            "int8 needs opset 10 or later (DequantizeLinear); the model declares an older one"
                .to_owned(),
        ));
    }
    let per_channel = opset(&model) >= 13;
    let channels = weight_channels(&model);
    let graph = model.graph.as_mut().expect("weight_channels found a graph");
    let mut dequantize = Vec::new();
    let mut names: Vec<&String> = channels.keys().collect();
    names.sort();
    for name in names {
        let axis = channels[name];
        let index = graph
            .initializer
            .iter()
            .position(|t| t.name.as_ref() == Some(name))
            .expect("listed");
        let w = tensor_io::from_proto(&graph.initializer[index], None, &Device::Cpu)?
            .to_dtype(DType::F32)?;
        let dims = w.dims().to_vec();
        let moved = w.transpose(0, axis)?.contiguous()?;
        // Before opset 13 DequantizeLinear has no axis: one scale for the whole tensor.
        let count = if per_channel { dims[axis] } else { 1 };
        let per = moved.elem_count() / count.max(1);
        let values = moved.flatten_all()?.to_vec1::<f32>()?;
        let scales: Vec<f32> = values
            .chunks(per.max(1))
            .map(|c| {
                let max = c.iter().fold(0f32, |m, v| m.max(v.abs()));
                if max == 0.0 { 1.0 } else { max / 127.0 }
            })
            .collect();
        let quantized: Vec<i8> = w
            .flatten_all()?
            .to_vec1::<f32>()?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let stride: usize = dims[axis + 1..].iter().product();
                let c = (i / stride) % count;
                (v / scales[c]).round().clamp(-127.0, 127.0) as i8
            })
            .collect();
        let (q_name, s_name, dq_name) = (
            format!("{name}.int8"),
            format!("{name}.scale"),
            format!("{name}.dequantized"),
        );
        graph.initializer.push(TensorProto {
            name: Some(q_name.clone()),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(DataType::Int8 as i32),
            raw_data: Some(Bytes::from(
                quantized.iter().map(|&v| v as u8).collect::<Vec<u8>>(),
            )),
            ..Default::default()
        });
        let scale_len = scales.len();
        graph.initializer.push(tensor_io::to_proto(
            &s_name,
            &candle_core::Tensor::from_vec(scales, scale_len, &Device::Cpu)?,
        )?);
        graph.initializer.remove(index);
        for node in &mut graph.node {
            for input in &mut node.input {
                if input == name {
                    *input = dq_name.clone();
                }
            }
        }
        dequantize.push(NodeProto {
            name: Some(format!("{name}.dequantize")),
            op_type: Some("DequantizeLinear".to_owned()),
            input: vec![q_name, s_name],
            output: vec![dq_name],
            attribute: if per_channel {
                vec![attr_int("axis", axis as i64)]
            } else {
                Vec::new()
            },
            ..Default::default()
        });
    }
    // The dequantizations read only initializers: they go first, keeping the graph sorted.
    dequantize.append(&mut graph.node);
    graph.node = dequantize;
    if per_channel {
        quantize_embeddings(&mut model)?;
    }
    Ok(model)
}

/// Embedding tables read only by Gather (axis 0): int8 rows with one scale per row, and the rows a
/// lookup needs are dequantized after the lookup (Gather, Cast, Mul by the gathered scales), so a run
/// never dequantizes the whole table.
fn quantize_embeddings(model: &mut ModelProto) -> Result<(), ModelError> {
    let graph = model.graph.as_mut().expect("a graph");
    let usage = crate::optimize::usage::Usage::of(graph);
    let inputs: std::collections::HashSet<String> =
        graph.input.iter().filter_map(|v| v.name.clone()).collect();
    let tables: Vec<String> = graph
        .initializer
        .iter()
        .filter(|t| t.data_type == Some(DataType::Float as i32) && t.dims.len() == 2)
        .filter_map(|t| t.name.clone())
        .filter(|name| !inputs.contains(name) && !usage.graph_outputs.contains(name))
        .filter(|name| {
            usage.readers.get(name).is_some_and(|readers| {
                readers.iter().all(|&i| {
                    let n = &graph.node[i];
                    let lookup = n.op_type.as_deref() == Some("Gather")
                        && n.input.first() == Some(name)
                        && n.attribute
                            .iter()
                            .all(|a| a.name.as_deref() != Some("axis") || a.i == Some(0));
                    // A tied LM head reads the table transposed: it shares the int8 rows.
                    let transposed = n.op_type.as_deref() == Some("Transpose")
                        && n.attribute
                            .iter()
                            .any(|a| a.name.as_deref() == Some("perm") && a.ints == [1, 0]);
                    lookup || transposed
                })
            })
        })
        .collect();
    for name in tables {
        let index = graph
            .initializer
            .iter()
            .position(|t| t.name.as_ref() == Some(&name))
            .expect("listed");
        let table = tensor_io::from_proto(&graph.initializer[index], None, &Device::Cpu)?
            .to_dtype(DType::F32)?;
        let (rows, width) = table.dims2()?;
        let values = table.flatten_all()?.to_vec1::<f32>()?;
        let scales: Vec<f32> = values
            .chunks(width.max(1))
            .map(|row| {
                let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
                if max == 0.0 { 1.0 } else { max / 127.0 }
            })
            .collect();
        let quantized: Vec<u8> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (v / scales[i / width.max(1)]).round().clamp(-127.0, 127.0) as i8 as u8)
            .collect();
        let (q_name, s_name) = (format!("{name}.int8"), format!("{name}.row_scale"));
        graph.initializer[index] = TensorProto {
            name: Some(q_name.clone()),
            dims: vec![rows as i64, width as i64],
            data_type: Some(DataType::Int8 as i32),
            raw_data: Some(Bytes::from(quantized)),
            ..Default::default()
        };
        graph.initializer.push(tensor_io::to_proto(
            &s_name,
            &candle_core::Tensor::from_vec(scales, rows, &Device::Cpu)?,
        )?);
        let last_axis = format!("{name}.scale_axis");
        graph.initializer.push(tensor_io::to_proto(
            &last_axis,
            &candle_core::Tensor::new(&[-1i64], &Device::Cpu)?,
        )?);
        let mut rewritten = Vec::with_capacity(graph.node.len());
        for node in std::mem::take(&mut graph.node) {
            if node.op_type.as_deref() == Some("Transpose") && node.input.first() == Some(&name) {
                // The whole table, dequantized per row, then transposed for the head's MatMul.
                let dequantized = format!("{name}.dequantized");
                if !rewritten
                    .iter()
                    .any(|n: &NodeProto| n.output.first() == Some(&dequantized))
                {
                    rewritten.insert(
                        0,
                        NodeProto {
                            name: Some(format!("{name}.dequantize")),
                            op_type: Some("DequantizeLinear".to_owned()),
                            input: vec![q_name.clone(), s_name.clone()],
                            output: vec![dequantized.clone()],
                            attribute: vec![attr_int("axis", 0)],
                            ..Default::default()
                        },
                    );
                }
                let mut node = node;
                node.input[0] = dequantized;
                rewritten.push(node);
                continue;
            }
            if node.op_type.as_deref() != Some("Gather") || node.input.first() != Some(&name) {
                rewritten.push(node);
                continue;
            }
            let out = node.output[0].clone();
            let ids = node.input[1].clone();
            let tag = |what: &str| format!("{out}.{what}");
            let op = |op: &str, inputs: Vec<String>, output: String, attribute| NodeProto {
                name: Some(output.clone()),
                op_type: Some(op.to_owned()),
                input: inputs,
                output: vec![output],
                attribute,
                ..Default::default()
            };
            rewritten.push(op(
                "Gather",
                vec![q_name.clone(), ids.clone()],
                tag("int8_rows"),
                vec![attr_int("axis", 0)],
            ));
            rewritten.push(op(
                "Cast",
                vec![tag("int8_rows")],
                tag("rows"),
                vec![attr_int("to", DataType::Float as i64)],
            ));
            rewritten.push(op(
                "Gather",
                vec![s_name.clone(), ids],
                tag("scales"),
                vec![attr_int("axis", 0)],
            ));
            rewritten.push(op(
                "Unsqueeze",
                vec![tag("scales"), last_axis.clone()],
                tag("row_scales"),
                vec![],
            ));
            rewritten.push(op("Mul", vec![tag("rows"), tag("row_scales")], out, vec![]));
        }
        graph.node = rewritten;
    }
    Ok(())
}

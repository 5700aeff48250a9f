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

pub fn quantize(optimized: &ModelProto) -> Result<ModelProto, ModelError> {
    let mut model = optimized.clone();
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
        let count = dims[axis];
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
            attribute: vec![attr_int("axis", axis as i64)],
            ..Default::default()
        });
    }
    // The dequantizations read only initializers: they go first, keeping the graph sorted.
    dequantize.append(&mut graph.node);
    graph.node = dequantize;
    Ok(model)
}

//! Weight-only block quantization of a model's MatMul weights, written tensor by tensor from the model's
//! files to the variant's, so a model larger than memory is quantized holding one weight at a time.
//!
//! Two forms, both what ONNX Runtime runs fast:
//! - `MatMulNBits` (com.microsoft): the weight stays packed in memory and the kernel dequantizes inside
//!   the GEMM. The default for int4: ONNX Runtime's CPU and CUDA kernels for it are the fastest path it
//!   has for 4-bit weights (ONNX Runtime 1.20's CPU kernel takes 4 bits only).
//! - Blocked `DequantizeLinear` (opset 21) before the MatMul: standard ONNX, which any opset-21 runtime
//!   reads. The form for int8 (and int4 asked with `-qdq`); the model's opset is raised to 21
//!   ([`super::opset21`]).
//!
//! A weight qualifies when it is a 2-D float, fp16 or bf16 initializer read only by one MatMul as its
//! second input (directly or through the Cast that widens a 16-bit weight) and by no subgraph. Everything
//! else (embeddings, norms, biases) is copied as it is.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use crate::ModelError;
use crate::block_quant::{BlockSpec, Quantized, quantize_kn};
use crate::eval::tensor_io;
use crate::external_data::{ExternalDataWriter, SMALL_TENSOR_BYTES};
use crate::graph_builder::attr_int;
use crate::proto::{
    GraphProto, NodeProto, OperatorSetIdProto, TensorProto, tensor_proto::DataLocation,
    tensor_proto::DataType,
};

/// The operator form of a weight-only variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    MatMulNBits,
    BlockedDequantize,
}

/// A weight-only variant: how each weight is quantized and the form the graph reads it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightOnly {
    pub spec: BlockSpec,
    pub form: Form,
}

impl WeightOnly {
    /// `int4[-bN][-asym][-qdq]` (default block 64, symmetric, MatMulNBits) or `int8-bN[-asym]`
    /// (blocked DequantizeLinear). N is 16, 32, 64, 128 or 256.
    pub fn parse(name: &str) -> Option<Self> {
        let mut parts = name.split('-');
        let bits = match parts.next()? {
            "int4" => 4,
            "int8" => 8,
            _ => return None,
        };
        let (mut block_size, mut symmetric, mut qdq) = (None, true, bits == 8);
        for part in parts {
            match part {
                "asym" if symmetric => symmetric = false,
                "qdq" if !qdq => qdq = true,
                size if block_size.is_none() => {
                    let n: usize = size.strip_prefix('b')?.parse().ok()?;
                    if !(16..=256).contains(&n) || !n.is_power_of_two() {
                        return None;
                    }
                    block_size = Some(n);
                }
                _ => return None,
            }
        }
        // Plain `int8` is the per-channel variant; the blocked one always names its block.
        if bits == 8 && block_size.is_none() {
            return None;
        }
        Some(Self {
            spec: BlockSpec {
                bits,
                block_size: block_size.unwrap_or(DEFAULT_BLOCK),
                symmetric,
            },
            form: if qdq {
                Form::BlockedDequantize
            } else {
                Form::MatMulNBits
            },
        })
    }

    pub fn name(&self) -> String {
        let mut name = format!("int{}", self.spec.bits);
        if self.spec.bits == 8 || self.spec.block_size != DEFAULT_BLOCK {
            name.push_str(&format!("-b{}", self.spec.block_size));
        }
        if !self.spec.symmetric {
            name.push_str("-asym");
        }
        if self.spec.bits == 4 && self.form == Form::BlockedDequantize {
            name.push_str("-qdq");
        }
        name
    }
}

/// ONNX Runtime's contrib domain, where `MatMulNBits` is.
const CONTRIB_DOMAIN: &str = "com.microsoft";

/// int4's default block: with fp32 scales, 64 keeps an int4 7B-class model under 0.3 × its fp16 bytes
/// (32 would take 0.33 ×); `-b32` asks for the finer one.
pub const DEFAULT_BLOCK: usize = 64;

/// One weight to quantize: its MatMul, the Cast between them (if any), and its [K, N] shape.
struct Planned {
    node: usize,
    cast: Option<usize>,
    k: usize,
    n: usize,
}

/// Every name a subgraph reads, at any depth.
fn read_by_subgraphs(graph: &GraphProto, names: &mut HashSet<String>) {
    for node in &graph.node {
        for attribute in &node.attribute {
            for sub in attribute.g.iter().chain(&attribute.graphs) {
                for inner in &sub.node {
                    names.extend(inner.input.iter().cloned());
                }
                read_by_subgraphs(sub, names);
            }
        }
    }
}

fn plan(graph: &GraphProto) -> HashMap<String, Planned> {
    let initializers: HashMap<&str, &TensorProto> = graph
        .initializer
        .iter()
        .filter_map(|t| Some((t.name.as_deref()?, t)))
        .collect();
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for node in &graph.node {
        for input in &node.input {
            *readers.entry(input.as_str()).or_default() += 1;
        }
    }
    for output in &graph.output {
        *readers
            .entry(output.name.as_deref().unwrap_or(""))
            .or_default() += 1;
    }
    let mut in_subgraphs = HashSet::new();
    read_by_subgraphs(graph, &mut in_subgraphs);
    let producer: HashMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let float = [DataType::Float, DataType::Float16, DataType::Bfloat16].map(|t| t as i32);
    let mut planned = HashMap::new();
    for (index, node) in graph.node.iter().enumerate() {
        let default_domain = node.domain.as_deref().is_none_or(str::is_empty);
        if node.op_type.as_deref() != Some("MatMul") || !default_domain || node.input.len() != 2 {
            continue;
        }
        let b = node.input[1].as_str();
        let (weight, cast) = match producer.get(b).map(|&i| (i, &graph.node[i])) {
            Some((i, cast))
                if cast.op_type.as_deref() == Some("Cast")
                    && cast.attribute.iter().any(|a| {
                        a.name.as_deref() == Some("to") && a.i == Some(DataType::Float as i64)
                    }) =>
            {
                (
                    cast.input.first().map(String::as_str).unwrap_or(""),
                    Some(i),
                )
            }
            _ => (b, None),
        };
        let Some(tensor) = initializers.get(weight) else {
            continue;
        };
        let only_reader =
            |name: &str| readers.get(name) == Some(&1) && !in_subgraphs.contains(name);
        let ok = tensor.dims.len() == 2
            && tensor.dims.iter().all(|&d| d > 0)
            && float.contains(&tensor.data_type.unwrap_or(0))
            && only_reader(weight)
            && (cast.is_none() || only_reader(b))
            && !initializers.contains_key(node.input[0].as_str())
            && !planned.contains_key(weight);
        if ok {
            planned.insert(
                weight.to_owned(),
                Planned {
                    node: index,
                    cast,
                    k: tensor.dims[0] as usize,
                    n: tensor.dims[1] as usize,
                },
            );
        }
    }
    planned
}

/// Where the variant's initializers go: into the data file (large ones) or inline.
struct Sink {
    data: Option<ExternalDataWriter>,
}

impl Sink {
    fn tensor(
        &mut self,
        name: String,
        dims: Vec<i64>,
        data_type: DataType,
        raw: Vec<u8>,
    ) -> Result<TensorProto, ModelError> {
        let mut proto = TensorProto {
            name: Some(name),
            dims,
            data_type: Some(data_type as i32),
            ..Default::default()
        };
        match self.data.as_mut() {
            Some(data) if raw.len() >= SMALL_TENSOR_BYTES => data.append(&mut proto, &raw)?,
            _ => proto.raw_data = Some(raw.into()),
        }
        Ok(proto)
    }

    /// A source initializer as it is: external bytes copied into this variant's data file.
    fn copy(&mut self, source: &TensorProto, base_dir: &Path) -> Result<TensorProto, ModelError> {
        if source.data_location != Some(DataLocation::External as i32) {
            return Ok(source.clone());
        }
        let raw = tensor_io::read_external(source, Some(base_dir))?;
        let mut copy = source.clone();
        copy.external_data.clear();
        copy.data_location = None;
        match self.data.as_mut() {
            Some(data) => data.append(&mut copy, &raw)?,
            None => copy.raw_data = Some(raw),
        }
        Ok(copy)
    }
}

fn le_f32(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The QDQ form's codes: signed, [K, N] row-major (int8 one per byte; int4 two per byte, low nibble
/// first), and its scales and zero points as [k_blocks, N].
fn qdq_tensors(q: &Quantized, spec: BlockSpec) -> (Vec<u8>, Vec<f32>, Option<Vec<u8>>) {
    let (k, n) = (q.k, q.n);
    let blocks = spec.k_blocks(k);
    // ONNX's int8/int4 are signed: the unsigned codes shift down by the default zero point, and so do
    // the zero points, which leaves (code - zero point) unchanged.
    let offset = spec.default_zero_point() as i32;
    let codes = pack_signed(
        (0..k).flat_map(|kk| (0..n).map(move |c| q.code(spec, c, kk) as i32 - offset)),
        spec.bits,
        k * n,
    );
    let mut scales = vec![0f32; blocks * n];
    for c in 0..n {
        for b in 0..blocks {
            scales[b * n + c] = q.scales[c * blocks + b];
        }
    }
    let zero_points = q.zero_points.as_ref().map(|_| {
        pack_signed(
            (0..blocks).flat_map(|b| (0..n).map(move |c| q.zero_point(spec, c, b) as i32 - offset)),
            spec.bits,
            blocks * n,
        )
    });
    (codes, scales, zero_points)
}

/// Signed values as ONNX stores int8 (a byte each) or int4 (two a byte, low nibble first).
fn pack_signed(values: impl Iterator<Item = i32>, bits: u32, count: usize) -> Vec<u8> {
    if bits == 8 {
        return values.map(|v| v as i8 as u8).collect();
    }
    let mut packed = vec![0u8; count.div_ceil(2)];
    for (i, v) in values.enumerate() {
        packed[i / 2] |= ((v as u8) & 0x0f) << (4 * (i % 2));
    }
    packed
}

/// The rewritten nodes and initializers of one quantized weight.
fn quantized_weight(
    sink: &mut Sink,
    how: WeightOnly,
    name: &str,
    source: &TensorProto,
    base_dir: &Path,
    planned: &Planned,
) -> Result<(Vec<TensorProto>, NodeProto), ModelError> {
    let (k, n) = (planned.k, planned.n);
    let weight = tensor_io::from_proto(source, Some(base_dir), &Device::Cpu)?
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let q = quantize_kn(&weight, k, n, how.spec);
    drop(weight);
    let blocks = how.spec.k_blocks(k) as i64;
    let (k, n) = (k as i64, n as i64);
    let scales_name = format!("{name}.scales");
    let mut tensors = Vec::with_capacity(3);
    let node = match how.form {
        Form::MatMulNBits => {
            let codes_name = format!("{name}.q{}", how.spec.bits);
            let blob = how.spec.block_size as i64 * i64::from(how.spec.bits) / 8;
            let mut inputs = vec![String::new(), codes_name.clone(), scales_name.clone()];
            tensors.push(sink.tensor(
                codes_name,
                vec![n, blocks, blob],
                DataType::Uint8,
                q.codes,
            )?);
            tensors.push(sink.tensor(
                scales_name,
                vec![n * blocks],
                DataType::Float,
                le_f32(&q.scales),
            )?);
            if let Some(points) = q.zero_points {
                let zero_name = format!("{name}.zero_points");
                inputs.push(zero_name.clone());
                let len = points.len() as i64;
                tensors.push(sink.tensor(zero_name, vec![len], DataType::Uint8, points)?);
            }
            NodeProto {
                op_type: Some("MatMulNBits".to_owned()),
                domain: Some(CONTRIB_DOMAIN.to_owned()),
                input: inputs,
                attribute: vec![
                    attr_int("K", k),
                    attr_int("N", n),
                    attr_int("bits", i64::from(how.spec.bits)),
                    attr_int("block_size", how.spec.block_size as i64),
                ],
                ..Default::default()
            }
        }
        Form::BlockedDequantize => {
            let (codes, scales, zero_points) = qdq_tensors(&q, how.spec);
            drop(q);
            let code_type = if how.spec.bits == 8 {
                DataType::Int8
            } else {
                DataType::Int4
            };
            let codes_name = format!("{name}.q{}", how.spec.bits);
            let mut inputs = vec![codes_name.clone(), scales_name.clone()];
            tensors.push(sink.tensor(codes_name, vec![k, n], code_type, codes)?);
            tensors.push(sink.tensor(
                scales_name,
                vec![blocks, n],
                DataType::Float,
                le_f32(&scales),
            )?);
            if let Some(points) = zero_points {
                let zero_name = format!("{name}.zero_points");
                inputs.push(zero_name.clone());
                tensors.push(sink.tensor(zero_name, vec![blocks, n], code_type, points)?);
            }
            NodeProto {
                op_type: Some("DequantizeLinear".to_owned()),
                input: inputs,
                output: vec![format!("{name}.dequantized")],
                attribute: vec![
                    attr_int("axis", 0),
                    attr_int("block_size", how.spec.block_size as i64),
                ],
                ..Default::default()
            }
        }
    };
    Ok((tensors, node))
}

/// Writes the variant of the model at `source` (its external data beside it) as `out_dir/model.onnx`,
/// with `model.onnx.data` when the source keeps external data; returns (file name, path) pairs, the
/// model first, and how many weights were quantized. A model with no weight that qualifies is an error
/// that says so.
pub fn write(
    source: &Path,
    out_dir: &Path,
    how: WeightOnly,
) -> Result<(Vec<(String, PathBuf)>, usize), ModelError> {
    how.spec.check()?;
    let base_dir = source.parent().unwrap_or(Path::new("."));
    let mut model = crate::model_check::decode(std::fs::read(source)?.into())?;
    if how.form == Form::BlockedDequantize {
        super::opset21::upgrade(&mut model)?;
    }
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| ModelError::InvalidModel("the model has no graph".to_owned()))?;
    let planned = plan(graph);
    if planned.is_empty() {
        return Err(ModelError::Unsupported(
            "no MatMul reads a 2-D float weight of its own, so there is nothing to quantize weight-only"
                .to_owned(),
        ));
    }
    let external = graph
        .initializer
        .iter()
        .any(|t| t.data_location == Some(DataLocation::External as i32));
    let data_name = "model.onnx.data";
    let mut sink = Sink {
        data: external
            .then(|| ExternalDataWriter::create(out_dir, data_name))
            .transpose()?,
    };
    let mut initializers = Vec::with_capacity(graph.initializer.len() + planned.len() * 2);
    let mut dequantizers: HashMap<usize, NodeProto> = HashMap::new();
    let mut replaced: HashMap<usize, NodeProto> = HashMap::new();
    let mut dropped_casts = HashSet::new();
    for tensor in std::mem::take(&mut graph.initializer) {
        let name = tensor.name.clone().unwrap_or_default();
        let Some(p) = planned.get(&name) else {
            initializers.push(sink.copy(&tensor, base_dir)?);
            continue;
        };
        let (tensors, node) = quantized_weight(&mut sink, how, &name, &tensor, base_dir, p)?;
        initializers.extend(tensors);
        dropped_casts.extend(p.cast);
        let matmul = &graph.node[p.node];
        match how.form {
            Form::MatMulNBits => {
                let mut node = node;
                node.input[0] = matmul.input[0].clone();
                node.output = matmul.output.clone();
                node.name = matmul.name.clone();
                replaced.insert(p.node, node);
            }
            Form::BlockedDequantize => {
                let mut rewired = matmul.clone();
                rewired.input[1] = node.output[0].clone();
                replaced.insert(p.node, rewired);
                dequantizers.insert(p.node, node);
            }
        }
    }
    graph.initializer = initializers;
    let nodes = std::mem::take(&mut graph.node);
    for (index, node) in nodes.into_iter().enumerate() {
        if dropped_casts.contains(&index) {
            continue;
        }
        if let Some(dequantize) = dequantizers.remove(&index) {
            graph.node.push(dequantize);
        }
        graph.node.push(replaced.remove(&index).unwrap_or(node));
    }
    if how.form == Form::MatMulNBits
        && !model
            .opset_import
            .iter()
            .any(|i| i.domain.as_deref() == Some(CONTRIB_DOMAIN))
    {
        model.opset_import.push(OperatorSetIdProto {
            domain: Some(CONTRIB_DOMAIN.to_owned()),
            version: Some(1),
        });
    }
    let mut files = crate::model_writer::write(&mut model, out_dir, "model.onnx", u64::MAX)?;
    if let Some(data) = sink.data {
        files.push(data.finish());
    }
    Ok((files, planned.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_back() {
        for name in [
            "int4",
            "int4-b32",
            "int4-b128-asym",
            "int4-qdq",
            "int4-b32-asym-qdq",
            "int8-b32",
            "int8-b64-asym",
        ] {
            let parsed = WeightOnly::parse(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(parsed.name(), name);
        }
        let int4 = WeightOnly::parse("int4").unwrap();
        assert_eq!(
            (int4.spec.bits, int4.spec.block_size, int4.spec.symmetric),
            (4, 64, true)
        );
        assert_eq!(int4.form, Form::MatMulNBits);
        assert_eq!(
            WeightOnly::parse("int8-b32").unwrap().form,
            Form::BlockedDequantize
        );
        for bad in [
            "int8",
            "int4-b48",
            "int4-b8",
            "int4-asym-asym",
            "int4-x",
            "int3",
            "int4-b64-b32",
        ] {
            assert!(WeightOnly::parse(bad).is_none(), "{bad}");
        }
    }
}

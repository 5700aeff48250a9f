//! `MatMulNBits`: Y = A · dequantize(B)ᵀ (+ bias), B block-quantized along K in the layout
//! [`crate::block_quant`] describes. Zero points packed as uint8 or given as floats ([N · k_blocks], the
//! scales' type) are both read; `g_idx` (act-order) is not implemented and says so.

use candle_core::{DType, Tensor};

use super::super::super::node::{Node, float_input, optional, required};
use super::{Out, evaluation};
use crate::block_quant::{BlockSpec, dequantize_nk};

pub fn matmul_nbits(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let a = float_input(node, inputs, 0)?;
    let codes = required(inputs, 1)?;
    let scales = float_input(node, inputs, 2)?;
    if optional(inputs, 4).is_some() {
        return Err(evaluation(
            "MatMulNBits with g_idx (act-order) is not implemented",
        ));
    }
    let (k, n) = (node.int("K", 0), node.int("N", 0));
    let (Ok(k), Ok(n)) = (usize::try_from(k), usize::try_from(n)) else {
        return Err(evaluation(format!(
            "MatMulNBits K {k} and N {n} must be positive"
        )));
    };
    if k == 0 || n == 0 || a.dims().last() != Some(&k) {
        return Err(evaluation(format!(
            "MatMulNBits: A's last axis {:?} is not K {k}",
            a.dims().last()
        )));
    }
    let spec = BlockSpec {
        bits: u32::try_from(node.int("bits", 4)).unwrap_or(0),
        block_size: usize::try_from(node.int("block_size", 0)).unwrap_or(0),
        symmetric: true,
    };
    spec.check()?;
    if codes.dtype() != DType::U8 {
        return Err(evaluation("MatMulNBits: B must be uint8"));
    }
    let code_bytes = codes.flatten_all()?.to_vec1::<u8>()?;
    let scale_values = scales
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let weight = match optional(inputs, 3) {
        Some(points) if points.dtype() == DType::U8 => {
            let packed = points.flatten_all()?.to_vec1::<u8>()?;
            dequantize_nk(&code_bytes, &scale_values, Some(&packed), (n, k), spec)?
        }
        Some(points) => {
            // Float zero points: w = (code - zero) · scale per block, read unpacked.
            let zeros = points
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            if zeros.len() != scale_values.len() {
                return Err(evaluation(
                    "MatMulNBits: float zero_points must match the scales",
                ));
            }
            let unit = dequantize_nk(&code_bytes, &vec![1.0; zeros.len()], None, (n, k), spec)?;
            shift_blocks(unit, &scale_values, &zeros, (n, k), spec)
        }
        None => dequantize_nk(&code_bytes, &scale_values, None, (n, k), spec)?,
    };
    let weight = Tensor::from_vec(weight, (n, k), a.device())?.to_dtype(a.dtype())?;
    let mut y = a.broadcast_matmul(&weight.t()?)?;
    if let Some(bias) = optional(inputs, 5) {
        y = y.broadcast_add(bias)?;
    }
    Ok(vec![y])
}

/// From codes dequantized around the default zero point with unit scales to (code - zero) · scale with
/// each block's float zero point.
fn shift_blocks(
    unit: Vec<f32>,
    scales: &[f32],
    zeros: &[f32],
    (n, k): (usize, usize),
    spec: BlockSpec,
) -> Vec<f32> {
    let blocks = spec.k_blocks(k);
    let default = spec.default_zero_point() as f32;
    let mut out = unit;
    for column in 0..n {
        for kk in 0..k {
            let b = column * blocks + kk / spec.block_size;
            let code = out[column * k + kk] + default;
            out[column * k + kk] = (code - zeros[b]) * scales[b];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;
    use crate::block_quant::quantize_kn;
    use crate::graph_builder::attr_int;
    use crate::proto::NodeProto;

    fn node(k: i64, n: i64, bits: i64, block: i64) -> NodeProto {
        NodeProto {
            op_type: Some("MatMulNBits".into()),
            domain: Some("com.microsoft".into()),
            attribute: vec![
                attr_int("K", k),
                attr_int("N", n),
                attr_int("bits", bits),
                attr_int("block_size", block),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn computes_a_times_the_dequantized_weight() {
        let (k, n) = (48, 3);
        let w: Vec<f32> = (0..k * n)
            .map(|i| ((i * 37 % 19) as f32 - 9.0) / 9.0)
            .collect();
        for symmetric in [true, false] {
            let spec = BlockSpec {
                bits: 4,
                block_size: 32,
                symmetric,
            };
            let q = quantize_kn(&w, k, n, spec);
            let dequantized =
                dequantize_nk(&q.codes, &q.scales, q.zero_points.as_deref(), (n, k), spec).unwrap();
            let a = Tensor::from_vec(
                (0..2 * k).map(|i| i as f32 / 10.0).collect::<Vec<_>>(),
                (2, k),
                &Device::Cpu,
            )
            .unwrap();
            let blocks = spec.k_blocks(k);
            let codes = Tensor::from_vec(q.codes.clone(), (n, blocks, 16), &Device::Cpu).unwrap();
            let scales = Tensor::from_vec(q.scales.clone(), n * blocks, &Device::Cpu).unwrap();
            let points = q
                .zero_points
                .clone()
                .map(|p| Tensor::from_vec(p.clone(), p.len(), &Device::Cpu).unwrap());
            let proto = node(k as i64, n as i64, 4, 32);
            let got = matmul_nbits(
                &Node::new(&proto, 17),
                &[Some(a.clone()), Some(codes), Some(scales), points],
            )
            .unwrap()
            .remove(0);
            let w_nk = Tensor::from_vec(dequantized, (n, k), &Device::Cpu).unwrap();
            let expected = a.matmul(&w_nk.t().unwrap()).unwrap();
            let diff = (got - expected).unwrap().abs().unwrap().max_all().unwrap();
            assert!(diff.to_scalar::<f32>().unwrap() < 1e-4);
        }
    }

    #[test]
    fn a_wrong_k_is_an_error_not_a_panic() {
        let a = Tensor::zeros((2, 40), DType::F32, &Device::Cpu).unwrap();
        let codes = Tensor::zeros((3, 1, 16), DType::U8, &Device::Cpu).unwrap();
        let scales = Tensor::ones(3, DType::F32, &Device::Cpu).unwrap();
        let proto = node(32, 3, 4, 32);
        let err = matmul_nbits(
            &Node::new(&proto, 17),
            &[Some(a), Some(codes), Some(scales)],
        );
        assert!(err.is_err());
    }
}

//! Window functions (Hann, Hamming, Blackman) and DynamicQuantizeLinear.

use candle_core::{DType, Tensor};

use super::super::node::{Node, int_values, required};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

fn window(node: &Node<'_>, inputs: &[Option<Tensor>], f: impl Fn(f64) -> f64) -> Out {
    let size = int_values(required(inputs, 0)?)?[0].max(0) as usize;
    let periodic = node.int("periodic", 1) != 0;
    let denominator = if periodic {
        size as f64
    } else {
        size as f64 - 1.0
    };
    let values: Vec<f64> = (0..size)
        .map(|n| f(2.0 * std::f64::consts::PI * n as f64 / denominator))
        .collect();
    let dtype = super::super::tensor_io::dtype_of(node.int("output_datatype", 1) as i32)
        .unwrap_or(DType::F32);
    Ok(vec![
        Tensor::from_vec(values, size, required(inputs, 0)?.device())?.to_dtype(dtype)?,
    ])
}

pub fn hann_window(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    window(node, inputs, |x| 0.5 - 0.5 * x.cos())
}

pub fn hamming_window(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    window(node, inputs, |x| 25.0 / 46.0 - (21.0 / 46.0) * x.cos())
}

pub fn blackman_window(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    window(node, inputs, |x| {
        0.42 - 0.5 * x.cos() + 0.08 * (2.0 * x).cos()
    })
}

/// uint8 quantization with a scale and zero point computed from the data's range (always including 0).
pub fn dynamic_quantize_linear(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let values = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let max = values.iter().cloned().fold(0f32, f32::max);
    let min = values.iter().cloned().fold(0f32, f32::min);
    let scale = (max - min) / 255.0;
    let round = f32::round_ties_even;
    let zero_point = if scale == 0.0 {
        0.0
    } else {
        round(-min / scale).clamp(0.0, 255.0)
    };
    let quantized: Vec<u8> = values
        .iter()
        .map(|&v| if scale == 0.0 { zero_point } else { (round(v / scale) + zero_point).clamp(0.0, 255.0) } as u8)
        .collect();
    Ok(vec![
        Tensor::from_vec(quantized, x.shape(), x.device())?,
        Tensor::new(scale, x.device())?,
        Tensor::new(zero_point as u8, x.device())?,
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, i64s, run};

    #[test]
    fn periodic_hann_window_starts_at_zero() {
        let out = run("HannWindow", 17, vec![], &[i64s(&[4])]);
        let v = out[0].to_vec1::<f32>().unwrap();
        assert!(v[0].abs() < 1e-7 && (v[2] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn dynamic_quantization_covers_the_range_with_zero() {
        let out = run(
            "DynamicQuantizeLinear",
            13,
            vec![],
            &[f32s(&[0., 2.55], &[2])],
        );
        assert_eq!(out[0].to_vec1::<u8>().unwrap(), vec![0, 255]);
        assert!((out[1].to_vec0::<f32>().unwrap() - 0.01).abs() < 1e-6);
    }
}

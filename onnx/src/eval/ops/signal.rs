//! Window functions (Hann, Hamming, Blackman), MelWeightMatrix and DynamicQuantizeLinear.

use candle_core::{DType, Tensor};

use super::super::node::{Node, int_values, required};
use super::f32_math::byte;
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// The longest window or mel matrix side kiln builds: sizes come from the model, so they are bounded.
const MAX_SIGNAL_LENGTH: i64 = 1 << 26;

/// A scalar (or one-element) integer input such as a size, length or axis.
pub(super) fn scalar_input(tensor: &Tensor, what: &str) -> Result<i64, ModelError> {
    match int_values(tensor)?[..] {
        [value] => Ok(value),
        _ => Err(ModelError::Evaluation(format!(
            "{what} must be a scalar, not a tensor of shape {:?}",
            tensor.dims()
        ))),
    }
}

/// A size input in `0..=MAX_SIGNAL_LENGTH`.
fn size_input(tensor: &Tensor, what: &str) -> Result<usize, ModelError> {
    let value = scalar_input(tensor, what)?;
    if !(0..=MAX_SIGNAL_LENGTH).contains(&value) {
        return Err(ModelError::Evaluation(format!(
            "{what} {value} is outside 0 to {MAX_SIGNAL_LENGTH}"
        )));
    }
    // A window of this many f64 values is made first.
    crate::eval::run_memory::node_has_room(value as u128 * 8)?;
    Ok(value as usize)
}

/// The element type named by `output_datatype` (float unless given).
fn output_dtype(node: &Node<'_>) -> Result<DType, ModelError> {
    let code = node.int("output_datatype", 1);
    i32::try_from(code)
        .ok()
        .and_then(super::super::tensor_io::dtype_of)
        .ok_or_else(|| {
            ModelError::Evaluation(format!("output_datatype {code} is not a supported type"))
        })
}

/// A cosine-sum window `f(2πn/N)`, N the size (periodic) or the size minus one (symmetric).
fn window(node: &Node<'_>, inputs: &[Option<Tensor>], f: impl Fn(f64) -> f64) -> Out {
    let size_tensor = required(inputs, 0)?;
    let size = size_input(size_tensor, "the window size")?;
    let periodic = node.int("periodic", 1) != 0;
    let denominator = if periodic {
        size
    } else {
        size.saturating_sub(1)
    };
    let values: Vec<f64> = (0..size)
        .map(|n| {
            // A symmetric window of one value would divide 0 by 0; like NumPy and PyTorch it is [1].
            if denominator == 0 {
                1.0
            } else {
                f(2.0 * std::f64::consts::PI * n as f64 / denominator as f64)
            }
        })
        .collect();
    Ok(vec![
        Tensor::from_vec(values, size, size_tensor.device())?.to_dtype(output_dtype(node)?)?,
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

/// MelWeightMatrix (opset 17): `[dft_length/2 + 1, num_mel_bins]` triangular filters, evenly spaced on
/// the mel scale between the edge frequencies, computed as ONNX's reference does (bin edges floored
/// to spectrogram bins, so neighbouring filters may collapse to a single 1).
pub fn mel_weight_matrix(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let mel_bins = size_input(required(inputs, 0)?, "num_mel_bins")?;
    let dft_length = size_input(required(inputs, 1)?, "dft_length")?;
    let sample_rate = scalar_input(required(inputs, 2)?, "sample_rate")?;
    if sample_rate <= 0 {
        return Err(ModelError::Evaluation(format!(
            "sample_rate must be positive, not {sample_rate}"
        )));
    }
    let hertz = |index: usize, what: &str| -> Result<f64, ModelError> {
        match required(inputs, index)?
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?[..]
        {
            [value] if value.is_finite() => Ok(value),
            _ => Err(ModelError::Evaluation(format!(
                "{what} must be a finite scalar"
            ))),
        }
    };
    let (lower, upper) = (hertz(3, "lower_edge_hertz")?, hertz(4, "upper_edge_hertz")?);
    let rows = dft_length / 2 + 1;
    let count = rows
        .checked_mul(mel_bins)
        .filter(|&c| c <= MAX_SIGNAL_LENGTH as usize)
        .ok_or_else(|| {
            ModelError::Evaluation(format!("a {rows} x {mel_bins} mel matrix is too large"))
        })?;
    crate::eval::run_memory::node_has_room(count as u128 * 8)?;
    let mel = |hz: f64| 2595.0 * (1.0 + hz / 700.0).log10();
    let (low_mel, high_mel) = (mel(lower), mel(upper));
    let step = (high_mel - low_mel) / (mel_bins + 2) as f64;
    // Edges beyond the matrix are clamped to one past either end: such a filter is refused below either
    // way, and the clamp keeps the differences of edges far from i64's limits.
    let edges: Vec<i64> = (0..mel_bins + 2)
        .map(|i| {
            let hz = 700.0 * (10f64.powf((i as f64 * step + low_mel) / 2595.0) - 1.0);
            let bin = ((dft_length as f64 + 1.0) * hz / sample_rate as f64).floor();
            bin.clamp(-1.0, rows as f64 + 1.0) as i64
        })
        .collect();
    let mut matrix = vec![0f64; count];
    let mut set = |row: i64, column: usize, value: f64| -> Result<(), ModelError> {
        match usize::try_from(row).ok().filter(|&r| r < rows) {
            Some(r) => {
                matrix[r * mel_bins + column] = value;
                Ok(())
            }
            None => Err(ModelError::Evaluation(format!(
                "mel filter {column} reaches spectrogram bin {row}, outside 0 to {}",
                rows - 1
            ))),
        }
    };
    for (i, edge) in edges.windows(3).enumerate() {
        let (left, center, right) = (edge[0], edge[1], edge[2]);
        if center == left {
            set(center, i, 1.0)?;
        } else {
            for j in left..=center {
                set(j, i, (j - left) as f64 / (center - left) as f64)?;
            }
        }
        for j in center..right {
            set(j, i, (right - j) as f64 / (right - center) as f64)?;
        }
    }
    let device = required(inputs, 0)?.device();
    Ok(vec![
        Tensor::from_vec(matrix, (rows, mel_bins), device)?.to_dtype(output_dtype(node)?)?,
    ])
}

/// uint8 quantization with a scale and zero point computed from the data's range (always including 0).
/// Rounds half to even like `f32::round_ties_even`, which is a library call per element on x86-64's
/// baseline (no SSE4.1 `roundss`): adding and taking away 1.5·2^23 leaves the float rounded in the FPU's
/// default mode, exactly for |v| < 2^22. Past that it may be off by one, which the quantizer's clamp to
/// [0, 255] makes no difference to (and v/scale is within ±255 there anyway). No fallback branch: LLVM would
/// evaluate the call for every element to keep the loop branch-free.
fn round_ties_even_small(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (v + MAGIC) - MAGIC
}

pub fn dynamic_quantize_linear(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let values = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let (min, max) = range_with_zero(&values);
    let scale = (max - min) / 255.0;
    let round = f32::round_ties_even;
    let zero_point = if scale == 0.0 {
        0.0
    } else {
        round(-min / scale).clamp(0.0, 255.0)
    };
    let quantized = if scale == 0.0 {
        vec![zero_point as u8; values.len()]
    } else {
        let mut quantized = Vec::with_capacity(values.len());
        quantize_into(&values, scale, zero_point, &mut quantized);
        quantized
    };
    Ok(vec![
        Tensor::from_vec(quantized, x.shape(), x.device())?,
        Tensor::new(scale, x.device())?,
        Tensor::new(zero_point as u8, x.device())?,
    ])
}

/// The smallest and the largest of `values` and 0, NaNs passed over (as `f32::min` and `f32::max` pass
/// over them), in sixteen lanes so that it vectorizes; compiled per SIMD level.
#[multiversion::multiversion(targets = "simd")]
fn range_with_zero(values: &[f32]) -> (f32, f32) {
    const LANES: usize = 16;
    let (mut low, mut high) = ([0f32; LANES], [0f32; LANES]);
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for lane in 0..LANES {
            let v = chunk[lane];
            low[lane] = if v < low[lane] { v } else { low[lane] };
            high[lane] = if v > high[lane] { v } else { high[lane] };
        }
    }
    let low = low.iter().chain(rest).fold(0f32, |m, &v| m.min(v));
    let high = high.iter().chain(rest).fold(0f32, |m, &v| m.max(v));
    (low, high)
}

/// DynamicQuantizeLinear's step for a nonzero scale, compiled per SIMD level.
#[multiversion::multiversion(targets = "simd")]
fn quantize_into(values: &[f32], scale: f32, zero_point: f32, out: &mut Vec<u8>) {
    out.extend(
        values
            .iter()
            .map(|&v| byte((round_ties_even_small(v / scale) + zero_point).clamp(0.0, 255.0))),
    );
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, i64s, int, run};

    #[test]
    fn the_range_includes_zero_and_passes_over_nans() {
        for len in [0usize, 5, 16, 37] {
            let values: Vec<f32> = (0..len)
                .map(|i| {
                    if i % 7 == 3 {
                        f32::NAN
                    } else {
                        i as f32 - 10.0
                    }
                })
                .collect();
            let expected = values
                .iter()
                .fold((0f32, 0f32), |(l, h), &v| (l.min(v), h.max(v)));
            assert_eq!(super::range_with_zero(&values), expected, "{len} values");
        }
        assert_eq!(super::range_with_zero(&[3.0, 4.0]), (0.0, 4.0));
    }

    #[test]
    fn rounding_by_the_magic_number_is_rounding_half_to_even() {
        let mut v = -300.0f32;
        while v <= 300.0 {
            assert_eq!(super::round_ties_even_small(v), v.round_ties_even(), "{v}");
            v += 0.125;
        }
        for v in [
            0.5f32,
            1.5,
            2.5,
            -0.5,
            -2.5,
            4_194_303.5,
            -4_194_302.5,
            f32::INFINITY,
        ] {
            assert_eq!(super::round_ties_even_small(v), v.round_ties_even(), "{v}");
        }
        assert!(super::round_ties_even_small(f32::NAN).is_nan());
    }

    #[test]
    fn periodic_hann_window_starts_at_zero() {
        let out = run("HannWindow", 17, vec![], &[i64s(&[4])]);
        let v = out[0].to_vec1::<f32>().unwrap();
        assert!(v[0].abs() < 1e-7 && (v[2] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn a_symmetric_window_of_one_is_one_and_sizes_are_bounded() {
        let out = run("HammingWindow", 17, vec![int("periodic", 0)], &[i64s(&[1])]);
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![1.0]);
        let proto = crate::proto::NodeProto::default();
        let node = crate::eval::node::Node::new(&proto, 17);
        for bad in [i64s(&[-1]), i64s(&[1 << 40]), i64s(&[])] {
            assert!(super::hann_window(&node, &[bad]).is_err());
        }
    }

    #[test]
    fn mel_filters_are_triangles_between_mel_spaced_bins() {
        // ONNX's own case: 8 mel bins over a 16-point DFT at 8192 Hz, 0 to 4096 Hz.
        let out = run(
            "MelWeightMatrix",
            17,
            vec![],
            &[
                i64s(&[8]),
                i64s(&[16]),
                i64s(&[8192]),
                f32s(&[0.], &[]),
                f32s(&[4096.], &[]),
            ],
        );
        assert_eq!(out[0].dims(), &[9, 8]);
        let rows = out[0].to_vec2::<f32>().unwrap();
        assert_eq!(rows[0], vec![1., 1., 0., 0., 0., 0., 0., 0.]);
        assert_eq!(rows[1], vec![0., 0., 1., 1., 0., 0., 0., 0.]);
        assert_eq!(rows[5], vec![0., 0., 0., 0., 0., 0., 0., 1.]);
        assert!(rows[6..].iter().flatten().all(|&v| v == 0.0));
    }

    #[test]
    fn mel_filters_outside_the_spectrogram_are_errors() {
        let proto = crate::proto::NodeProto::default();
        let node = crate::eval::node::Node::new(&proto, 17);
        let inputs = [
            i64s(&[4]),
            i64s(&[16]),
            i64s(&[100]),
            f32s(&[0.], &[]),
            f32s(&[5000.], &[]),
        ];
        let err = super::mel_weight_matrix(&node, &inputs)
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside"), "{err}");
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

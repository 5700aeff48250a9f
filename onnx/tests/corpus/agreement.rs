//! Whether kiln's outputs are ONNX Runtime's: floats within a tolerance, everything else equal.

use std::collections::HashMap;

use candle_core::{DType, Tensor};

/// A float output agrees when its relative L2 error is at most this...
pub const MAX_RELATIVE_L2: f64 = 1e-4;
/// ...or this, for a model that quantizes its activations at run time (DynamicQuantizeLinear,
/// DynamicQuantizeLSTM): there a last-bit difference in a float before the quantization (kiln's and
/// ONNX Runtime's sigmoid and tanh are not the same bits) moves a value by a whole quantization step,
/// 1/255 of its tensor's range, and stacked layers carry it on. kiln computes those operators as ONNX
/// Runtime does (the same scales, zero points and rounding): a model with one such LSTM agrees within
/// the tolerance above, and the ensemble's argmax outputs are equal.
pub const MAX_RELATIVE_L2_DYNAMIC_QUANTIZATION: f64 = 1e-2;

/// The operators that quantize activations at run time.
pub const DYNAMIC_QUANTIZATION: &[&str] = &["DynamicQuantizeLinear", "DynamicQuantizeLSTM"];
/// ...or when no element is further than this from ORT's.
pub const MAX_ABS: f64 = 1e-5;

fn is_float(dtype: DType) -> bool {
    matches!(dtype, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
}

fn values(tensor: &Tensor) -> Result<Vec<f64>, String> {
    tensor
        .to_dtype(DType::F64)
        .and_then(|t| t.flatten_all()?.to_vec1::<f64>())
        .map_err(|e| e.to_string())
}

/// Why one output differs from ORT's, or `None` when it agrees.
fn disagreement(
    actual: &Tensor,
    expected: &Tensor,
    max_relative_l2: f64,
) -> Result<Option<String>, String> {
    if actual.dims() != expected.dims() {
        return Ok(Some(format!(
            "shape {:?}, ORT's is {:?}",
            actual.dims(),
            expected.dims()
        )));
    }
    let (a, e) = (values(actual)?, values(expected)?);
    if !is_float(expected.dtype()) {
        // Integers up to 2^53 are exact in f64; ids, labels and shapes are far below that.
        let differing = a.iter().zip(&e).filter(|(a, e)| a != e).count();
        return Ok(
            (differing > 0 || actual.dtype() != expected.dtype()).then(|| {
                format!(
                    "{differing} of {} elements differ ({:?}, ORT's is {:?})",
                    e.len(),
                    actual.dtype(),
                    expected.dtype()
                )
            }),
        );
    }
    let nan_mismatch = a.iter().zip(&e).any(|(a, e)| a.is_nan() != e.is_nan());
    let pairs = || {
        a.iter()
            .zip(&e)
            .filter(|(a, e)| !(a.is_nan() && e.is_nan()))
    };
    let max_abs = pairs().map(|(a, e)| (a - e).abs()).fold(0.0, f64::max);
    let error: f64 = pairs().map(|(a, e)| (a - e).powi(2)).sum::<f64>().sqrt();
    let norm: f64 = pairs().map(|(_, e)| e.powi(2)).sum::<f64>().sqrt();
    let relative = if norm > 0.0 { error / norm } else { error };
    let agrees = !nan_mismatch && (relative <= max_relative_l2 || max_abs <= MAX_ABS);
    Ok((!agrees).then(|| {
        format!(
            "relative L2 {relative:.2e}, max abs {max_abs:.2e}{}",
            if nan_mismatch {
                ", NaN where ORT has none (or the reverse)"
            } else {
                ""
            }
        )
    }))
}

/// Compares every output ORT stored with kiln's, floats within `max_relative_l2`; returns the
/// disagreements, one line each.
pub fn compare(
    actual: &[(String, Tensor)],
    expected: &HashMap<String, Tensor>,
    max_relative_l2: f64,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names: Vec<&String> = expected.keys().collect();
    names.sort();
    for name in names {
        let Some((_, tensor)) = actual.iter().find(|(n, _)| n == name) else {
            problems.push(format!("output {name:?}: kiln did not return it"));
            continue;
        };
        match disagreement(tensor, &expected[name], max_relative_l2) {
            Ok(None) => {}
            Ok(Some(why)) => problems.push(format!("output {name:?}: {why}")),
            Err(e) => problems.push(format!("output {name:?}: cannot be read: {e}")),
        }
    }
    problems
}

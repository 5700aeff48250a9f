//! Comparing what a converted model computes with what the original computes.

use candle_core::{DType, Tensor};
use serde::Serialize;

use crate::ModelError;

/// Conversions in fp32 must agree with the reference to this relative L2 error.
pub const FP32_REL_L2_TOLERANCE: f64 = 1e-4;

/// One output compared.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OutputComparison {
    pub name: String,
    pub shape: Vec<usize>,
    pub max_abs_error: f64,
    pub rel_l2_error: f64,
}

/// How a variant was proven: which engine ran it, what it was compared with, on what inputs, and how far
/// apart they were.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Validation {
    pub engine: String,
    pub reference: String,
    pub inputs: String,
    pub outputs: Vec<OutputComparison>,
    pub max_abs_error: f64,
    pub rel_l2_error: f64,
    pub tolerance_rel_l2: f64,
}

/// max |a - e| and ‖a - e‖₂ / ‖e‖₂, in f64.
pub fn compare(
    name: &str,
    actual: &Tensor,
    expected: &Tensor,
) -> Result<OutputComparison, ModelError> {
    if actual.dims() != expected.dims() {
        return Err(ModelError::Validation(format!(
            "output {name:?} has shape {:?}, the reference {:?}",
            actual.dims(),
            expected.dims()
        )));
    }
    let a = actual
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?;
    let e = expected
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?;
    let mut max_abs: f64 = 0.0;
    let (mut diff2, mut ref2) = (0.0, 0.0);
    for (a, e) in a.iter().zip(&e) {
        let d = a - e;
        // A NaN anywhere must fail, so it may not vanish in max().
        max_abs = if d.is_nan() {
            f64::NAN
        } else {
            max_abs.max(d.abs())
        };
        diff2 += d * d;
        ref2 += e * e;
    }
    let rel_l2 = if ref2 > 0.0 {
        (diff2 / ref2).sqrt()
    } else {
        diff2.sqrt()
    };
    Ok(OutputComparison {
        name: name.to_owned(),
        shape: actual.dims().to_vec(),
        max_abs_error: max_abs,
        rel_l2_error: rel_l2,
    })
}

/// The largest of some errors, NaN when any is: `f64::max` would drop a NaN and report a broken output
/// as a perfect one.
pub fn worst(errors: impl Iterator<Item = f64>) -> f64 {
    errors.fold(0.0, |worst, e| {
        if worst.is_nan() || e.is_nan() {
            f64::NAN
        } else {
            worst.max(e)
        }
    })
}

/// Gathers the comparisons; an error when any exceeds `tolerance` (or is NaN).
pub fn judge(
    engine: &str,
    reference: &str,
    inputs: &str,
    outputs: Vec<OutputComparison>,
    tolerance: f64,
) -> Result<Validation, ModelError> {
    let max_abs_error = worst(outputs.iter().map(|o| o.max_abs_error));
    let rel_l2_error = worst(outputs.iter().map(|o| o.rel_l2_error));
    if let Some(bad) = outputs
        .iter()
        .find(|o| o.rel_l2_error.is_nan() || o.rel_l2_error > tolerance || o.max_abs_error.is_nan())
    {
        return Err(ModelError::Validation(format!(
            "output {:?}: relative L2 error {:e} against {reference} exceeds {tolerance:e} (max abs error {:e})",
            bad.name, bad.rel_l2_error, bad.max_abs_error
        )));
    }
    Ok(Validation {
        engine: engine.to_owned(),
        reference: reference.to_owned(),
        inputs: inputs.to_owned(),
        outputs,
        max_abs_error,
        rel_l2_error,
        tolerance_rel_l2: tolerance,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_nan_error_is_the_worst() {
        assert!(super::worst([0.5, f64::NAN, 0.1].into_iter()).is_nan());
        assert_eq!(super::worst([0.5, 0.7].into_iter()), 0.7);
    }

    use candle_core::{Device, Tensor};

    use super::*;

    #[test]
    fn identical_outputs_pass_and_scaled_ones_fail() {
        let e = Tensor::new(&[1f32, 2., 3.], &Device::Cpu).unwrap();
        let same = compare("y", &e, &e).unwrap();
        assert_eq!(same.rel_l2_error, 0.0);
        assert!(judge("kiln", "ref", "x", vec![same], FP32_REL_L2_TOLERANCE).is_ok());
        let scaled = compare("y", &(e.clone() * 1.01).unwrap(), &e).unwrap();
        assert!((scaled.rel_l2_error - 0.01).abs() < 1e-6);
        let err = judge("kiln", "ref", "x", vec![scaled], FP32_REL_L2_TOLERANCE).unwrap_err();
        assert!(err.to_string().contains("exceeds"), "{err}");
    }

    #[test]
    fn nan_never_passes() {
        let e = Tensor::new(&[1f32, 2.], &Device::Cpu).unwrap();
        let a = Tensor::new(&[f32::NAN, 2.], &Device::Cpu).unwrap();
        let c = compare("y", &a, &e).unwrap();
        assert!(judge("kiln", "ref", "x", vec![c], 1.0).is_err());
    }
}

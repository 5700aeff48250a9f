//! Resize (and the older Upsample): nearest, linear and cubic resampling with every coordinate
//! transformation ONNX defines, applied one axis at a time in f64.

use candle_core::{DType, Tensor};

use super::super::node::{Node, axis, int_values, optional, required};
use super::host::element_count;
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// (source index, weight) pairs for one output position; `None` index means "extrapolation value".
type Taps = Vec<(Option<usize>, f64)>;

struct Axis {
    input: usize,
    output: usize,
    scale: f64,
    roi: (f64, f64),
}

fn source_coordinate(mode: &str, x: f64, a: &Axis) -> f64 {
    let (input, output, scale) = (a.input as f64, a.output as f64, a.scale);
    match mode {
        "align_corners" => {
            if a.output == 1 {
                0.0
            } else {
                x * (input - 1.0) / (output - 1.0)
            }
        }
        "asymmetric" => x / scale,
        "pytorch_half_pixel" => {
            if a.output > 1 {
                (x + 0.5) / scale - 0.5
            } else {
                0.0
            }
        }
        "tf_crop_and_resize" => {
            let (start, end) = a.roi;
            if a.output > 1 {
                start * (input - 1.0) + x * (end - start) * (input - 1.0) / (output - 1.0)
            } else {
                0.5 * (start + end) * (input - 1.0)
            }
        }
        "half_pixel_symmetric" => {
            let adjustment = output / (scale * input);
            let center = input / 2.0;
            center * (1.0 - adjustment) + (x + 0.5) / scale - 0.5
        }
        _ => (x + 0.5) / scale - 0.5,
    }
}

fn cubic(t: f64, a: f64) -> f64 {
    let t = t.abs();
    if t <= 1.0 {
        ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
    } else if t < 2.0 {
        ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a
    } else {
        0.0
    }
}

/// An axis of `input` values resized by `scale`: the product floored, in f32 as ONNX Runtime multiplies
/// (20 × 3.3 is 66 there; in f64, 65.99999…).
pub(crate) fn scaled_length(input: usize, scale: f64) -> usize {
    (input as f32 * scale as f32).floor() as usize
}

/// Upsample, or Resize before opset 11: scales only, asymmetric coordinates, no nearest_mode.
fn older(node: &Node<'_>) -> bool {
    node.opset < 11 || node.op_type() == "Upsample"
}

fn taps(node: &Node<'_>, a: &Axis, x: usize) -> Taps {
    let mode = node.string("mode").unwrap_or_else(|| "nearest".to_owned());
    let transform = node
        .string("coordinate_transformation_mode")
        .unwrap_or_else(|| {
            if node.opset < 11 {
                "asymmetric".to_owned()
            } else {
                "half_pixel".to_owned()
            }
        });
    // Before opset 11 ONNX Runtime divides in f32, and its floor or ceil reads the f32 quotient (at
    // 11/1.1 it is 10, where f64's 9.999… floors to 9).
    let src = if older(node) {
        f64::from(x as f32 / a.scale as f32)
    } else {
        source_coordinate(&transform, x as f64, a)
    };
    let last = a.input as f64 - 1.0;
    if transform == "tf_crop_and_resize" && (src < 0.0 || src > last) {
        return vec![(None, 1.0)];
    }
    if mode == "nearest" {
        // Before opset 11 (Upsample, Resize-10) there was no nearest_mode: ONNX Runtime rounds down when
        // enlarging and up when shrinking, which for whole scales repeats each value (Upsample's reference).
        let default = match (older(node), a.scale >= 1.0) {
            (true, true) => "floor",
            (true, false) => "ceil",
            (false, _) => "round_prefer_floor",
        };
        let nearest = match node.string("nearest_mode").as_deref().unwrap_or(default) {
            "floor" => src.floor(),
            "ceil" => src.ceil(),
            "round_prefer_ceil" => {
                if src.fract() == 0.5 {
                    src.ceil()
                } else {
                    src.round()
                }
            }
            _ => {
                if (src - src.floor()) == 0.5 {
                    src.floor()
                } else {
                    src.round()
                }
            }
        };
        return vec![(Some(nearest.clamp(0.0, last) as usize), 1.0)];
    }
    let antialias = node.int("antialias", 0) != 0 && a.scale < 1.0;
    let a_coef = f64::from(node.float("cubic_coeff_a", -0.75));
    let exclude = node.int("exclude_outside", 0) != 0;
    let (support, stretch) = match (mode.as_str(), antialias) {
        ("cubic", true) => (2.0 / a.scale, a.scale),
        ("cubic", false) => (2.0, 1.0),
        (_, true) => (1.0 / a.scale, a.scale),
        _ => (1.0, 1.0),
    };
    let kernel = |t: f64| {
        if mode == "cubic" {
            cubic(t * stretch, a_coef)
        } else {
            (1.0 - (t * stretch).abs()).max(0.0)
        }
    };
    let center = src.floor();
    let reach = (support.ceil() as i64).saturating_add(1);
    let (mut lo, mut hi) = (
        (center as i64).saturating_sub(reach),
        (center as i64).saturating_add(reach),
    );
    if exclude || antialias {
        // Taps outside the input are skipped: a tiny antialiasing scale must not loop over them.
        (lo, hi) = (lo.max(0), hi.min(last as i64));
    }
    let mut out: Taps = Vec::new();
    for i in lo..=hi {
        let w = kernel(src - i as f64);
        if w == 0.0 {
            continue;
        }
        let inside = i >= 0 && i <= last as i64;
        if !inside && (exclude || antialias) {
            continue;
        }
        out.push((Some(i.clamp(0, last as i64) as usize), w));
    }
    let total: f64 = out.iter().map(|(_, w)| w).sum();
    if antialias || exclude || mode == "linear" {
        for tap in &mut out {
            tap.1 /= total;
        }
    }
    out
}

/// Resamples `values` (shape `dims`) along `dim` to `a.output` positions.
fn resample(
    node: &Node<'_>,
    values: &[f64],
    dims: &mut [usize],
    dim: usize,
    a: &Axis,
    extrapolation: f64,
) -> Result<Vec<f64>, ModelError> {
    let outer: usize = dims[..dim].iter().product();
    let inner: usize = dims[dim + 1..].iter().product();
    dims[dim] = a.output;
    let mut out = vec![0.0; outer * a.output * inner];
    // An empty result has no position to weigh, however long its resized axis (the evaluator's fuzzer
    // found 189 million positions' taps, 4.5 GB, made for an empty result).
    if out.is_empty() {
        return Ok(out);
    }
    // Every position's taps in one list, weighed once and reused for every row; held to the run's room
    // as it grows (an antialiased downscale weighs many inputs a position).
    let (mut all, mut starts): (Taps, Vec<usize>) = (Vec::new(), Vec::with_capacity(a.output + 1));
    starts.push(0);
    for x in 0..a.output {
        all.extend(taps(node, a, x));
        starts.push(all.len());
        if x % 1024 == 0 {
            let bytes = all.capacity() * std::mem::size_of::<(Option<usize>, f64)>();
            crate::eval::run_memory::node_has_room(bytes as u128)?;
        }
    }
    for o in 0..outer {
        for x in 0..a.output {
            let taps = &all[starts[x]..starts[x + 1]];
            for i in 0..inner {
                out[(o * a.output + x) * inner + i] = taps
                    .iter()
                    .map(|(src, w)| match src {
                        Some(s) => w * values[(o * a.input + s) * inner + i],
                        None => w * extrapolation,
                    })
                    .sum();
            }
        }
    }
    Ok(out)
}

/// One size or one finite, positive scale per resized axis (a scale of NaN or infinity would make a
/// size of nothing or of everything).
fn check_factors(
    sizes: Option<&[i64]>,
    scales: Option<&[f64]>,
    n: usize,
) -> Result<(), ModelError> {
    let fits = match (sizes, scales) {
        (Some(sizes), _) => sizes.len() == n && sizes.iter().all(|&s| s >= 0),
        (None, Some(scales)) => {
            scales.len() == n && scales.iter().all(|&s| s.is_finite() && s > 0.0)
        }
        (None, None) => true,
    };
    if !fits {
        return Err(ModelError::Evaluation(format!(
            "Resize: sizes {sizes:?} or scales {scales:?} do not fit {n} axes"
        )));
    }
    Ok(())
}

pub fn resize(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let rank = x.rank();
    let (roi, scales, sizes) = if older(node) {
        let scales = match optional(inputs, 1) {
            Some(s) => Some(s.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?),
            None => node
                .floats("scales")
                .map(|v| v.iter().map(|&f| f64::from(f)).collect()),
        };
        (None, scales, None)
    } else {
        let floats = |i: usize| -> Result<Option<Vec<f64>>, ModelError> {
            Ok(match optional(inputs, i) {
                Some(t) if t.elem_count() > 0 => {
                    Some(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
                }
                _ => None,
            })
        };
        let sizes = match optional(inputs, 3) {
            Some(t) if t.elem_count() > 0 => Some(int_values(t)?),
            _ => None,
        };
        (floats(1)?, floats(2)?, sizes)
    };
    let axes: Vec<usize> = match node.ints("axes") {
        Some(a) => a.iter().map(|&a| axis(a, rank)).collect::<Result<_, _>>()?,
        None => (0..rank).collect(),
    };
    // ONNX leaves a repeated axis undefined; resampled twice, its second pass read past the first's.
    if let Some(twice) = axes
        .iter()
        .find(|&&a| axes.iter().filter(|&&b| b == a).count() > 1)
    {
        return Err(ModelError::Evaluation(format!(
            "Resize: axis {twice} is given twice in axes"
        )));
    }
    let n = axes.len();
    let dims_in = x.dims().to_vec();
    check_factors(sizes.as_deref(), scales.as_deref(), n)?;
    let mut plan: Vec<(usize, Axis)> = Vec::new();
    if let Some(sizes) = sizes {
        let mut ratios: Vec<f64> = axes
            .iter()
            .zip(&sizes)
            .map(|(&d, &s)| s as f64 / dims_in[d] as f64)
            .collect();
        let policy = node
            .string("keep_aspect_ratio_policy")
            .unwrap_or_else(|| "stretch".to_owned());
        if policy != "stretch" {
            let pick = if policy == "not_larger" {
                ratios.iter().cloned().fold(f64::INFINITY, f64::min)
            } else {
                ratios.iter().cloned().fold(0.0, f64::max)
            };
            ratios = vec![pick; n];
        }
        for (i, &d) in axes.iter().enumerate() {
            let output = if policy == "stretch" {
                sizes[i] as usize
            } else {
                (dims_in[d] as f64 * ratios[i]).round() as usize
            };
            plan.push((
                d,
                Axis {
                    input: dims_in[d],
                    output,
                    scale: ratios[i],
                    roi: (0.0, 1.0),
                },
            ));
        }
    } else {
        let scales = scales
            .ok_or_else(|| ModelError::Evaluation("Resize needs scales or sizes".to_owned()))?;
        for (i, &d) in axes.iter().enumerate() {
            let output = scaled_length(dims_in[d], scales[i]);
            plan.push((
                d,
                Axis {
                    input: dims_in[d],
                    output,
                    scale: scales[i],
                    roi: (0.0, 1.0),
                },
            ));
        }
    }
    // Each axis is resampled in turn: the largest intermediate has every axis at its larger size.
    let mut largest = dims_in.clone();
    for (d, a) in &plan {
        if a.input == 0 && a.output > 0 {
            return Err(ModelError::Evaluation(format!(
                "Resize: axis {d} is empty, nothing to resample to {}",
                a.output
            )));
        }
        largest[*d] = largest[*d].max(a.output);
    }
    element_count(&largest, "Resize's output")?;
    if let Some(roi) = roi.filter(|r| r.len() == 2 * n) {
        for (i, (_, a)) in plan.iter_mut().enumerate() {
            a.roi = (roi[i], roi[i + n]);
        }
    }
    let extrapolation = f64::from(node.float("extrapolation_value", 0.0));
    let mut values = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let mut dims = dims_in.clone();
    for (d, a) in &plan {
        if a.input == a.output && a.scale == 1.0 {
            continue;
        }
        values = resample(node, &values, &mut dims, *d, a, extrapolation)?;
    }
    Ok(vec![
        Tensor::from_vec(values, dims, x.device())?.to_dtype(x.dtype())?,
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, i64s, run};
    use crate::proto::AttributeProto;

    fn text(name: &str, value: &str) -> AttributeProto {
        AttributeProto {
            name: Some(name.to_owned()),
            s: Some(value.as_bytes().to_vec().into()),
            r#type: Some(3),
            ..Default::default()
        }
    }

    #[test]
    fn nearest_doubles_each_pixel() {
        let x = f32s(&[1., 2., 3., 4.], &[1, 1, 2, 2]);
        let out = run(
            "Resize",
            13,
            vec![],
            &[x, None, f32s(&[1., 1., 2., 2.], &[4])],
        );
        assert_eq!(out[0].dims(), &[1, 1, 4, 4]);
        assert_eq!(
            out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap()[..4],
            [1., 1., 2., 2.]
        );
    }

    #[test]
    fn nearest_before_opset_11_rounds_down_enlarging_and_up_shrinking() {
        // ONNX Runtime 1.32.0's answers for [0, 1, 2, 3, 4] (Resize-10 and Upsample-9 alike).
        let x = || f32s(&[0., 1., 2., 3., 4.], &[1, 1, 1, 5]);
        for (op, opset, scale, expected) in [
            ("Upsample", 9, 1.5, vec![0., 0., 1., 2., 2., 3., 4.]),
            ("Resize", 10, 1.5, vec![0., 0., 1., 2., 2., 3., 4.]),
            ("Resize", 10, 0.6, vec![0., 2., 4.]),
            ("Resize", 10, 0.4, vec![0., 3.]),
        ] {
            let out = run(
                op,
                opset,
                vec![text("mode", "nearest")],
                &[x(), f32s(&[1., 1., 1., scale], &[4])],
            );
            let got = out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(got, expected, "{op}-{opset} at {scale}");
        }
    }

    #[test]
    fn nearest_before_opset_11_divides_in_f32() {
        // ONNX Runtime 1.32.0, Resize-10 at 1.1 over 20 values: output 11 reads value 10 (11 / 1.1 is 10
        // in f32); its output length 22 (20 × 1.1 in f32).
        let x = f32s(
            &(0..20).map(|v| v as f32).collect::<Vec<_>>(),
            &[1, 1, 1, 20],
        );
        let out = run(
            "Resize",
            10,
            vec![text("mode", "nearest")],
            &[x, f32s(&[1., 1., 1., 1.1], &[4])],
        );
        let got = out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(got.len(), 22);
        assert_eq!(got[11], 10.0);
    }

    #[test]
    fn linear_align_corners_interpolates_between_the_ends() {
        let x = f32s(&[0., 3.], &[1, 1, 1, 2]);
        let attrs = vec![
            text("mode", "linear"),
            text("coordinate_transformation_mode", "align_corners"),
        ];
        let out = run(
            "Resize",
            13,
            attrs,
            &[x, None, f32s(&[1., 1., 1., 2.], &[4])],
        );
        assert_eq!(
            out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![0., 1., 2., 3.]
        );
    }

    /// An empty tensor resized to a long axis is an empty result, made without weighing a position (the
    /// evaluator's fuzzer found the taps of 189 million positions, 4.5 GB, made for an empty result: its
    /// input is `fuzz/seeds/eval_memory/resize_empty_to_long_axis`, where the allocations are counted).
    #[test]
    fn an_empty_tensor_resized_to_a_long_axis_is_empty() {
        let x = f32s(&[], &[0, 2]);
        let sizes = i64s(&[0, 200_000_000]);
        let out = run(
            "Resize",
            13,
            vec![text("mode", "linear")],
            &[x, None, None, sizes],
        );
        assert_eq!(out[0].dims(), &[0, 200_000_000]);
    }

    /// A repeated axis is refused: resampled twice, its second pass indexed past the first's result.
    #[test]
    fn a_repeated_axis_is_refused() {
        let x = f32s(&[1., 2., 3., 4.], &[1, 4]);
        let axes = AttributeProto {
            name: Some("axes".into()),
            ints: vec![1, 1],
            r#type: Some(7),
            ..Default::default()
        };
        let e =
            super::super::testing::error("Resize", 18, vec![axes], &[x, None, None, i64s(&[2, 8])]);
        assert!(e.contains("axis 1 is given twice"), "{e}");
    }
}

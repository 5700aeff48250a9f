//! AveragePool over one or two spatial axes of a contiguous f32 tensor on the CPU, each window clamped to
//! the input so that padding is never materialized: the sums across each window's columns for every
//! input row, then down each window's rows, divided by the cells the window counts. candle's path padded
//! the input, pooled it and a padded tensor of ones the same way, and divided the two: five passes.

use candle_core::{DType, Device, Tensor};
use multiversion::multiversion;

use super::cpu_f32::f32_slice;
use super::max_pool_cpu::Axis;
use crate::ModelError;

/// AveragePool of `x` [N, C, (H,) W] over `axes` (one per spatial axis, at most two; pads include
/// ceil_mode's extra end cells), when `x` is a contiguous f32 CPU tensor; `None` leaves it to the general
/// path. `explicit_end` is each axis's end padding without ceil_mode's cells: with `count_include_pad`
/// a window counts the explicit padding it covers, never those.
pub fn average_pool(
    x: &Tensor,
    axes: &[Axis],
    explicit_end: &[usize],
    count_include_pad: bool,
) -> Option<Result<Tensor, ModelError>> {
    let plain = matches!(x.device(), Device::Cpu) && x.dtype() == DType::F32 && x.is_contiguous();
    let ((rows, rows_end), (columns, columns_end)) = match (axes, explicit_end) {
        ([w], [we]) => ((Axis::UNIT, 0), (*w, *we)),
        ([h, w], [he, we]) => ((*h, *he), (*w, *we)),
        _ => return None,
    };
    if !plain || x.rank() != 2 + axes.len() || axes.iter().any(|a| a.kernel == 0 || a.stride == 0) {
        return None;
    }
    let counts = |axis: Axis, end: usize| -> Vec<f32> {
        (0..axis.output())
            .map(|o| {
                if count_include_pad {
                    let start = o * axis.stride;
                    let limit = axis.length + axis.pads.0 + end;
                    (start + axis.kernel).min(limit).saturating_sub(start) as f32
                } else {
                    axis.window(o).len() as f32
                }
            })
            .collect()
    };
    let counts = (counts(rows, rows_end), counts(columns, columns_end));
    Some(pool(x, (rows, columns), &counts))
}

fn pool(
    x: &Tensor,
    (rows, columns): (Axis, Axis),
    (row_counts, column_counts): &(Vec<f32>, Vec<f32>),
) -> Result<Tensor, ModelError> {
    let planes = x.dims()[..2].iter().product::<usize>();
    let (out_h, out_w) = (rows.output(), columns.output());
    super::host::element_count(&[planes, out_h, out_w], "AveragePool's output")?;
    let mut out = vec![0f32; planes * out_h * out_w];
    if !out.is_empty() {
        let (storage, layout) = x.storage_and_layout();
        let input = f32_slice(&storage, layout, planes * rows.length * columns.length)?;
        let column_windows: Vec<_> = (0..out_w).map(|o| columns.window(o)).collect();
        let row_windows: Vec<_> = (0..out_h).map(|o| rows.window(o)).collect();
        let windows = Windows {
            rows: &row_windows,
            columns: &column_windows,
            row_counts,
            column_counts,
        };
        sum_planes(
            input,
            &mut out,
            rows.length * columns.length,
            columns.length,
            &windows,
        );
    }
    let mut dims = x.dims()[..2].to_vec();
    if x.rank() == 4 {
        dims.push(out_h);
    }
    dims.push(out_w);
    Ok(Tensor::from_vec(out, dims, &Device::Cpu)?)
}

/// Each output's input rows and columns, and the cells it counts along each axis.
struct Windows<'a> {
    rows: &'a [std::ops::Range<usize>],
    columns: &'a [std::ops::Range<usize>],
    row_counts: &'a [f32],
    column_counts: &'a [f32],
}

/// Every plane's averages; compiled per SIMD level and picked at run time.
#[multiversion(targets = "simd")]
fn sum_planes(input: &[f32], out: &mut [f32], plane: usize, width: usize, w: &Windows<'_>) {
    let out_w = w.columns.len();
    let in_h = plane / width.max(1);
    let mut across = vec![0f32; in_h * out_w];
    for (source, target) in input
        .chunks_exact(plane.max(1))
        .zip(out.chunks_exact_mut((w.rows.len() * out_w).max(1)))
    {
        for (line, sums) in source
            .chunks_exact(width.max(1))
            .zip(across.chunks_exact_mut(out_w.max(1)))
        {
            for (sum, window) in sums.iter_mut().zip(w.columns) {
                *sum = line[window.clone()].iter().sum();
            }
        }
        for ((line_out, window), &row_count) in target
            .chunks_exact_mut(out_w.max(1))
            .zip(w.rows)
            .zip(w.row_counts)
        {
            line_out.fill(0.0);
            for iy in window.clone() {
                for (o, &v) in line_out
                    .iter_mut()
                    .zip(&across[iy * out_w..(iy + 1) * out_w])
                {
                    *o += v;
                }
            }
            for (o, &column_count) in line_out.iter_mut().zip(w.column_counts) {
                *o /= row_count * column_count;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::DType;
    use proptest::prelude::*;

    use super::super::testing::{int, ints, run};

    proptest! {
        /// The f32 path against candle's padded path (the one f64 inputs take), for one or two axes,
        /// any kernel, stride and padding, ceil_mode and count_include_pad.
        #[test]
        fn equals_the_padded_path(
            two_d in any::<bool>(),
            (n, c) in (1usize..3, 1usize..4),
            (h, w) in (1usize..9, 1usize..9),
            (kh, kw) in (1usize..4, 1usize..4),
            (sh, sw) in (1usize..4, 1usize..4),
            pads in proptest::collection::vec(0usize..3, 4),
            ceil_mode in any::<bool>(),
            count_include_pad in any::<bool>(),
            seed in any::<u64>(),
        ) {
            // ONNX: each pad below the kernel, and the kernel within the padded input.
            let (pt, pl, pb, pr) = (pads[0].min(kh - 1), pads[1].min(kw - 1), pads[2].min(kh - 1), pads[3].min(kw - 1));
            prop_assume!(h + pt + pb >= kh && w + pl + pr >= kw);
            let (dims, kernel, strides, pads): (Vec<usize>, Vec<i64>, Vec<i64>, Vec<i64>) = if two_d {
                (vec![n, c, h, w], vec![kh as i64, kw as i64], vec![sh as i64, sw as i64],
                 vec![pt as i64, pl as i64, pb as i64, pr as i64])
            } else {
                (vec![n, c, w], vec![kw as i64], vec![sw as i64], vec![pl as i64, pr as i64])
            };
            let count: usize = dims.iter().product();
            let values: Vec<f32> = (0..count)
                .map(|i| ((((i as u64) ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 1000) as f32 / 100.0 - 5.0)
                .collect();
            let x = candle_core::Tensor::from_vec(values, dims, &candle_core::Device::Cpu).unwrap();
            let attributes = || vec![
                ints("kernel_shape", &kernel),
                ints("strides", &strides),
                ints("pads", &pads),
                int("ceil_mode", i64::from(ceil_mode)),
                int("count_include_pad", i64::from(count_include_pad)),
            ];
            let fast = run("AveragePool", 19, attributes(), &[Some(x.clone())]);
            let padded = run("AveragePool", 19, attributes(), &[Some(x.to_dtype(DType::F64).unwrap())]);
            prop_assert_eq!(fast[0].dims(), padded[0].dims());
            let flat = |t: &candle_core::Tensor| t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            for (a, b) in flat(&fast[0]).iter().zip(flat(&padded[0])) {
                prop_assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
            }
        }
    }
}

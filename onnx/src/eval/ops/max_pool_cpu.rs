//! MaxPool over one or two spatial axes of a contiguous f32 tensor on the CPU, each window clamped to the
//! input so that padding is never materialized. candle's kernel needs its input padded with -inf first
//! (a copy) and reads every tap through generic strided indexing: a quarter of the bench CNN's run.
//!
//! A NaN in a window makes its maximum NaN, as NumPy's and PyTorch's max pooling do.

use std::ops::Range;

use candle_core::{DType, Device, Tensor};
use multiversion::multiversion;

use super::cpu_f32::f32_slice;
use super::im2col::outputs_inside;
use crate::ModelError;

/// One spatial axis of the pooling: its input length, kernel, stride and padding before and after
/// (ceil_mode's extra end padding included).
#[derive(Debug, Clone, Copy)]
pub struct Axis {
    pub length: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pads: (usize, usize),
}

impl Axis {
    /// The height of a 1-D pooling: one row, pooled by a kernel of one row.
    pub const UNIT: Self = Self {
        length: 1,
        kernel: 1,
        stride: 1,
        pads: (0, 0),
    };

    /// One per spatial axis, from the input's spatial lengths and the pooling's attributes (`pads`
    /// with ceil_mode's extra end padding included).
    pub fn each(
        lengths: &[usize],
        kernel: &[usize],
        strides: &[usize],
        pads: &[(usize, usize)],
    ) -> Vec<Self> {
        (lengths.iter().zip(kernel).zip(strides).zip(pads))
            .map(|(((&length, &kernel), &stride), &pads)| Self {
                length,
                kernel,
                stride,
                pads,
            })
            .collect()
    }

    pub(super) fn output(&self) -> usize {
        let padded = self.length + self.pads.0 + self.pads.1;
        padded.saturating_sub(self.kernel) / self.stride.max(1) + 1
    }

    /// For kernel position `k`: the outputs whose tap at `k` lies inside the input, and the first
    /// such tap's input position (the next ones follow at the stride).
    fn inside(&self, k: usize) -> (Range<usize>, usize) {
        let stride = self.stride.max(1);
        let outputs = outputs_inside(self.length, self.pads.0, stride, k, self.output());
        let first = (outputs.start * stride + k).saturating_sub(self.pads.0);
        (outputs, first)
    }

    /// The input positions of output `o`'s window, clamped to the input (empty when it reads only
    /// padding).
    pub(super) fn window(&self, o: usize) -> Range<usize> {
        let start = o * self.stride;
        let lo = start.saturating_sub(self.pads.0).min(self.length);
        let hi = (start + self.kernel)
            .saturating_sub(self.pads.0)
            .min(self.length);
        lo..hi.max(lo)
    }
}

/// MaxPool of `x` [N, C, (H,) W] over `axes` (one per spatial axis, at most two), when `x` is a
/// contiguous f32 CPU tensor; `None` leaves it to the general path.
pub fn max_pool(x: &Tensor, axes: &[Axis]) -> Option<Result<Tensor, ModelError>> {
    let plain = matches!(x.device(), Device::Cpu) && x.dtype() == DType::F32 && x.is_contiguous();
    let (rows, columns) = match *axes {
        [w] => (Axis::UNIT, w),
        [h, w] => (h, w),
        _ => return None,
    };
    if !plain || x.rank() != 2 + axes.len() || axes.iter().any(|a| a.kernel == 0) {
        return None;
    }
    Some(pool(x, rows, columns))
}

fn pool(x: &Tensor, rows: Axis, columns: Axis) -> Result<Tensor, ModelError> {
    let planes = x.dims()[..2].iter().product::<usize>();
    let (out_h, out_w) = (rows.output(), columns.output());
    let plane = rows.length * columns.length;
    super::host::element_count(&[planes, out_h, out_w], "MaxPool's output")?;
    let mut out = vec![f32::NEG_INFINITY; planes * out_h * out_w];
    {
        let (storage, layout) = x.storage_and_layout();
        let input = f32_slice(&storage, layout, planes * plane)?;
        if tiles_apply(rows, columns) {
            pool_tiles(input, &mut out, (rows, columns));
        } else {
            pool_planes(input, &mut out, (rows, columns));
        }
    }
    let mut dims = x.dims()[..2].to_vec();
    if x.rank() == 4 {
        dims.push(out_h);
    }
    dims.push(out_w);
    Ok(Tensor::from_vec(out, dims, &Device::Cpu)?)
}

/// Windows that tile the input exactly (kernel = stride, no padding, lengths that are multiples of the
/// stride: the 2x2 pooling between a CNN's stages), for [`pool_tiles`].
fn tiles_apply(rows: Axis, columns: Axis) -> bool {
    [rows, columns].iter().all(|a| {
        a.pads == (0, 0) && a.kernel == a.stride && a.length > 0 && a.length % a.stride == 0
    })
}

/// [`pool_planes`] for windows that tile the input: the maximum across each window's columns over the
/// whole plane at once (its rows are whole windows wide), then down each band of window rows. Long
/// runs instead of a short strided run per output row and kernel position.
#[multiversion(targets = "simd")]
fn pool_tiles(input: &[f32], out: &mut [f32], (rows, columns): (Axis, Axis)) {
    let (sh, sw) = (rows.stride, columns.stride);
    let plane = rows.length * columns.length;
    let out_w = columns.length / sw;
    let mut across = vec![0f32; plane / sw];
    for (source, target) in input
        .chunks_exact(plane)
        .zip(out.chunks_exact_mut(plane / (sh * sw)))
    {
        match sw {
            2 => windows_across::<2>(&mut across, source),
            3 => windows_across::<3>(&mut across, source),
            _ => {
                for (largest, window) in across.iter_mut().zip(source.chunks_exact(sw)) {
                    *largest = window[0];
                    for &v in &window[1..] {
                        fold_in(largest, v);
                    }
                }
            }
        }
        for (line_out, band) in target
            .chunks_exact_mut(out_w)
            .zip(across.chunks_exact(out_w * sh))
        {
            line_out.copy_from_slice(&band[..out_w]);
            for row in band.chunks_exact(out_w).skip(1) {
                for (largest, &v) in line_out.iter_mut().zip(row) {
                    fold_in(largest, v);
                }
            }
        }
    }
}

/// The maximum of each run of `WIDTH` values; a width known at compile time lets the loop vectorize.
#[inline(always)]
fn windows_across<const WIDTH: usize>(across: &mut [f32], source: &[f32]) {
    for (largest, window) in across.iter_mut().zip(source.chunks_exact(WIDTH)) {
        *largest = window[0];
        for &v in &window[1..WIDTH] {
            fold_in(largest, v);
        }
    }
}

/// Every plane's pooling, `out` filled with -inf beforehand; compiled per SIMD level (the build's
/// baseline is four-lane SSE) and picked at run time.
#[multiversion(targets = "simd")]
fn pool_planes(input: &[f32], out: &mut [f32], (rows, columns): (Axis, Axis)) {
    // Per kernel column, the output columns whose tap lies inside the input and the first such tap.
    let columns_inside: Vec<_> = (0..columns.kernel).map(|kx| columns.inside(kx)).collect();
    let plane = rows.length * columns.length;
    let (out_h, out_w) = (rows.output(), columns.output());
    for (source, target) in input
        .chunks_exact(plane.max(1))
        .zip(out.chunks_exact_mut((out_h * out_w).max(1)))
    {
        for (oy, line_out) in target.chunks_exact_mut(out_w.max(1)).enumerate() {
            for iy in rows.window(oy) {
                let line = &source[iy * columns.length..(iy + 1) * columns.length];
                for (outputs, first) in columns_inside
                    .iter()
                    .filter(|(outputs, _)| !outputs.is_empty())
                {
                    let (targets, first) = (&mut line_out[outputs.clone()], *first);
                    let taps = &line[first..];
                    match columns.stride {
                        1 => fold_strided::<1>(targets, taps),
                        2 => fold_strided::<2>(targets, taps),
                        stride => {
                            for (largest, &v) in targets.iter_mut().zip(taps.iter().step_by(stride))
                            {
                                fold_in(largest, v);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `largest` becomes the larger of itself and `v`, NaN if either is: written without branches (`&`
/// rather than `||`), which a max over random data would mispredict at every other tap.
#[inline(always)]
fn fold_in(largest: &mut f32, v: f32) {
    let take = ((v > *largest) | v.is_nan()) & !largest.is_nan();
    *largest = if take { v } else { *largest };
}

/// Folds `taps[i·STRIDE]` into `targets[i]`; a stride known at compile time lets the loop vectorize.
#[inline(always)]
fn fold_strided<const STRIDE: usize>(targets: &mut [f32], taps: &[f32]) {
    let Some((last, rest)) = targets.split_last_mut() else {
        return;
    };
    for (largest, chunk) in rest.iter_mut().zip(taps.chunks_exact(STRIDE)) {
        fold_in(largest, chunk[0]);
    }
    fold_in(last, taps[rest.len() * STRIDE]);
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};
    use proptest::prelude::*;

    use super::{Axis, max_pool};

    /// Max pooling by its definition over the padded input (padding is -inf).
    fn direct(
        x: &[f32],
        (planes, h, w): (usize, usize, usize),
        rows: Axis,
        columns: Axis,
    ) -> Vec<f32> {
        let (out_h, out_w) = (rows.output(), columns.output());
        let mut out = Vec::new();
        for p in 0..planes {
            for oy in 0..out_h {
                for ox in 0..out_w {
                    let mut largest = f32::NEG_INFINITY;
                    for ky in 0..rows.kernel {
                        for kx in 0..columns.kernel {
                            let iy = (oy * rows.stride + ky).checked_sub(rows.pads.0);
                            let ix = (ox * columns.stride + kx).checked_sub(columns.pads.0);
                            if let (Some(iy), Some(ix)) = (iy, ix)
                                && iy < h
                                && ix < w
                            {
                                largest = largest.max(x[(p * h + iy) * w + ix]);
                            }
                        }
                    }
                    out.push(largest);
                }
            }
        }
        out
    }

    fn axis() -> impl Strategy<Value = Axis> {
        (1usize..9, 1usize..4, 1usize..4, 0usize..3, 0usize..4).prop_filter_map(
            "the kernel fits the padded axis",
            |(length, kernel, stride, begin, end)| {
                (length + begin + end >= kernel).then_some(Axis {
                    length,
                    kernel,
                    stride,
                    pads: (begin.min(kernel - 1), end),
                })
            },
        )
    }

    proptest! {
        #[test]
        fn matches_pooling_by_definition(rows in axis(), columns in axis(), planes in 1usize..4, seed in 0u64..1000) {
            let len = planes * rows.length * columns.length;
            let x: Vec<f32> = (0..len).map(|i| ((i as u64 * 7919 + seed) % 211) as f32 - 100.0).collect();
            let t = Tensor::from_vec(x.clone(), (1, planes, rows.length, columns.length), &Device::Cpu).unwrap();
            let y = max_pool(&t, &[rows, columns]).unwrap().unwrap();
            prop_assert_eq!(y.dims(), &[1, planes, rows.output(), columns.output()]);
            let got = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            prop_assert_eq!(got, direct(&x, (planes, rows.length, columns.length), rows, columns));
        }
    }

    fn tiling_axis() -> impl Strategy<Value = Axis> {
        (1usize..4, 1usize..5).prop_map(|(stride, windows)| Axis {
            length: stride * windows,
            kernel: stride,
            stride,
            pads: (0, 0),
        })
    }

    proptest! {
        /// Windows that tile the input (the fast path) against the definition too.
        #[test]
        fn tiling_windows_match_pooling_by_definition(rows in tiling_axis(), columns in tiling_axis(), planes in 1usize..4, seed in 0u64..1000) {
            let len = planes * rows.length * columns.length;
            let x: Vec<f32> = (0..len).map(|i| ((i as u64 * 7919 + seed) % 211) as f32 - 100.0).collect();
            let t = Tensor::from_vec(x.clone(), (1, planes, rows.length, columns.length), &Device::Cpu).unwrap();
            let y = max_pool(&t, &[rows, columns]).unwrap().unwrap();
            let got = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            prop_assert_eq!(got, direct(&x, (planes, rows.length, columns.length), rows, columns));
        }
    }

    #[test]
    fn a_nan_in_a_window_is_its_maximum() {
        let x = Tensor::new(&[[[f32::NAN, 5.0, 3.0, 2.0, 1.0, f32::NAN]]], &Device::Cpu).unwrap();
        let axis = Axis {
            length: 6,
            kernel: 2,
            stride: 2,
            pads: (0, 0),
        };
        let y = max_pool(&x, &[axis]).unwrap().unwrap();
        let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(y[0].is_nan() && y[2].is_nan(), "{y:?}");
        assert_eq!(y[1], 3.0);
    }
}

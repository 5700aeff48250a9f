//! Patch matrices (im2col) for `conv_gemm`: for a tile of output positions, row (channel, ky, kx) holds
//! the input value each position's window reads at that kernel position, zero where it reads padding.
//! Both gathers are compiled per SIMD level and picked at run time, as `cpu_f32`'s loops.

use multiversion::multiversion;

use super::conv_gemm::{Geometry, Input};

/// The patch matrix for output positions `range`: row (channel, ky, kx), column position, zeros where
/// the window reads padding.
#[multiversion(targets = "simd")]
pub(super) fn gather(
    channels: &[f32],
    x: &Input<'_>,
    g: &Geometry,
    range: std::ops::Range<usize>,
    patches: &mut [f32],
) {
    let (kh, kw) = g.kernel;
    let (sh, sw) = g.strides;
    let (dh, dw) = g.dilations;
    let (ph, pw) = g.pads_begin;
    let out_w = g.output.1;
    let width = range.len();
    let plane = x.height * x.width;
    for (row, column) in patches.chunks_mut(width).enumerate() {
        let (channel, ky, kx) = (row / (kh * kw), row / kw % kh, row % kw);
        let source = &channels[channel * plane..(channel + 1) * plane];
        let shift = kx * dw;
        let inside = outputs_inside(x.width, pw, sw, shift, out_w);
        let (first_inside, past_inside) = (inside.start, inside.end);
        let (mut oy, mut ox_start) = (range.start / out_w, range.start % out_w);
        let mut at = 0;
        while at < width {
            let ox_end = out_w.min(ox_start + width - at);
            let dst = &mut column[at..at + ox_end - ox_start];
            let iy = (oy * sh + ky * dh)
                .checked_sub(ph)
                .filter(|&iy| iy < x.height);
            match iy {
                None => dst.fill(0.0),
                Some(iy) => {
                    let line = &source[iy * x.width..(iy + 1) * x.width];
                    let lo = first_inside.clamp(ox_start, ox_end);
                    let hi = past_inside.clamp(lo, ox_end);
                    // Padding is met at the edges only: most runs have nothing to zero, and an
                    // unconditional fill is a memset call per run.
                    if lo > ox_start {
                        dst[..lo - ox_start].fill(0.0);
                    }
                    if hi < ox_end {
                        dst[hi - ox_start..].fill(0.0);
                    }
                    // Past first_inside (hi > lo implies lo >= first_inside), the input column is
                    // lo·sw + shift - pw >= 0; before past_inside, the last one is inside the line.
                    if hi > lo {
                        let inside = &mut dst[lo - ox_start..hi - ox_start];
                        let first = lo * sw + shift - pw;
                        if sw == 1 {
                            copy_run(inside, &line[first..first + inside.len()]);
                        } else {
                            for (k, value) in inside.iter_mut().enumerate() {
                                *value = line[first + k * sw];
                            }
                        }
                    }
                }
            }
            at += ox_end - ox_start;
            oy += 1;
            ox_start = 0;
        }
    }
}

/// The outputs `o` (of `outputs`) whose tap at `offset` (kernel position × dilation) reads inside an axis
/// of `length`: `o·stride + offset - pad_begin` in [0, length). Empty when every such tap reads padding.
pub(super) fn outputs_inside(
    length: usize,
    pad_begin: usize,
    stride: usize,
    offset: usize,
    outputs: usize,
) -> std::ops::Range<usize> {
    let first = pad_begin.saturating_sub(offset).div_ceil(stride);
    let past = if length + pad_begin > offset {
        ((length + pad_begin - offset - 1) / stride + 1).min(outputs)
    } else {
        0
    };
    first.min(past)..past
}

/// `dst` = `src` (of equal lengths) for the short runs of a patch row, a few dozen values each: moved
/// eight at a time inline, where `copy_from_slice` calls `memmove` for every run.
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
    let mut targets = dst.chunks_exact_mut(8);
    let mut sources = src.chunks_exact(8);
    for (target, source) in (&mut targets).zip(&mut sources) {
        let source: &[f32; 8] = source.try_into().expect("chunks of eight");
        target.copy_from_slice(source);
    }
    for (target, source) in targets.into_remainder().iter_mut().zip(sources.remainder()) {
        *target = *source;
    }
}

/// Whether [`gather_shifted`] applies: stride 1 on both axes and output rows as wide as the input's,
/// so that every patch row is the input plane shifted by a constant (a 3×3 "same" convolution).
pub(super) fn shifts_apply(x: &Input<'_>, g: &Geometry) -> bool {
    g.strides == (1, 1) && g.output.1 == x.width
}

/// [`gather`] for convolutions [`shifts_apply`] to: position p of patch row (channel, ky, kx) reads the
/// input plane at p + (ky·dh - ph)·W + (kx·dw - pw), so each row is one copy of the plane, then zeros
/// where a row of the window falls outside the input (whole output rows) or a column does (the same
/// few columns of each output row). `gather` copies each output row separately, and those runs of a
/// few dozen values cost more than the product that follows on a small image.
#[multiversion(targets = "simd")]
pub(super) fn gather_shifted(
    channels: &[f32],
    x: &Input<'_>,
    g: &Geometry,
    range: std::ops::Range<usize>,
    patches: &mut [f32],
) {
    let (kh, kw) = g.kernel;
    let (dh, dw) = g.dilations;
    let (ph, pw) = g.pads_begin;
    let (out_h, width) = (g.output.0, x.width);
    let plane = x.height * width;
    let tile = range.len();
    for (row, patch) in patches.chunks_mut(tile).enumerate() {
        let (channel, ky, kx) = (row / (kh * kw), row / kw % kh, row % kw);
        let source = &channels[channel * plane..(channel + 1) * plane];
        let rows = outputs_inside(x.height, ph, 1, ky * dh, out_h);
        let columns = outputs_inside(width, pw, 1, kx * dw, width);
        // Source index p + shift = p + up·W + left, with up and left possibly negative.
        let (up, left) = (
            (ky * dh) as isize - ph as isize,
            (kx * dw) as isize - pw as isize,
        );
        let shift = up * width as isize + left;
        // Positions of the tile whose window row is inside and whose shifted index is in the plane;
        // the ones among them whose column is outside are zeroed below.
        let lo = (rows.start * width)
            .max(range.start)
            .max((-shift).max(0) as usize);
        let hi = (rows.end * width)
            .min(range.end)
            .min((plane as isize - shift).max(0) as usize);
        if lo >= hi {
            patch.fill(0.0);
            continue;
        }
        let (lo_at, hi_at) = (lo - range.start, hi - range.start);
        patch[..lo_at].fill(0.0);
        patch[hi_at..].fill(0.0);
        let from = (lo as isize + shift) as usize;
        patch[lo_at..hi_at].copy_from_slice(&source[from..from + (hi - lo)]);
        // Column by column down the rows (one or two columns for a 3x3 kernel): a fill per row
        // would be a memset call for a value or two.
        for column in (0..columns.start).chain(columns.end..width) {
            let first_row = lo.saturating_sub(column).div_ceil(width);
            for at in (first_row * width + column..hi).step_by(width) {
                patch[at - range.start] = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Geometry, Input, gather, gather_shifted, shifts_apply};

    proptest! {
        /// The shifted gather writes the same patch matrix as the run-by-run one, for any tile of
        /// positions (tiles start and end mid-row when images are large).
        #[test]
        fn shifted_patches_equal_gathered_ones(
            channels in 1usize..3, h in 1usize..8, w in 1usize..8, kh in 1usize..4, kw in 1usize..4,
            dh in 1usize..3, dw in 1usize..3, top in 0usize..4, split in 0usize..8,
            range in (0usize..64, 0usize..64),
        ) {
            let horizontal = (kw - 1) * dw;
            let (left, bottom) = (split.min(horizontal), (kh - 1) * dh);
            prop_assume!(h + top + bottom > (kh - 1) * dh);
            let out_h = (h + top + bottom - (kh - 1) * dh - 1) + 1;
            let data: Vec<f32> = (0..channels * h * w).map(|i| i as f32 + 1.0).collect();
            let x = Input { data: &data, images: 1, channels, height: h, width: w };
            let g = Geometry {
                groups: 1,
                kernel: (kh, kw),
                strides: (1, 1),
                dilations: (dh, dw),
                pads_begin: (top, left),
                output: (out_h, w),
            };
            prop_assert!(shifts_apply(&x, &g));
            let positions = out_h * w;
            let (a, b) = (range.0 % (positions + 1), range.1 % (positions + 1));
            let range = a.min(b)..a.max(b);
            prop_assume!(!range.is_empty());
            let rows = channels * kh * kw;
            let mut expected = vec![f32::NAN; rows * range.len()];
            let mut got = vec![f32::NAN; rows * range.len()];
            gather(&data, &x, &g, range.clone(), &mut expected);
            gather_shifted(&data, &x, &g, range, &mut got);
            prop_assert_eq!(got, expected);
        }
    }
}

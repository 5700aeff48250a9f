//! Depthwise convolution, where each group reads one input channel (MobileNet's, ShuffleNet's and most
//! OCR detectors' 3×3 layers), computed tap by tap: every tap adds its weight times a shifted row of the
//! input to a row of the output. As im2col and a matrix product (`conv_gemm`) each channel is a product
//! of one row, and gathering its patches costs more than the arithmetic: on the corpus's MobileNet-style
//! detectors the convolutions ran 5-7x ONNX Runtime's time.

use multiversion::multiversion;

use super::conv_gemm::{Geometry, Input};
use super::im2col::outputs_inside;

/// Whether this path computes the convolution: one input channel per group, of several groups. A
/// convolution of a single channel (an STFT as a Conv of 1 channel into hundreds of filters) is one
/// matrix product with many rows, which `conv_gemm` does better.
pub(super) fn applies(x: &Input<'_>, g: &Geometry) -> bool {
    g.groups == x.channels && g.groups > 1
}

/// `out` [N, M, oH, oW] = `x` convolved with `w` [M, 1, kH, kW] (+ `bias` [M]), M a multiple of the
/// channels.
pub(super) fn run(
    x: &Input<'_>,
    w: &[f32],
    bias: Option<&[f32]>,
    m: usize,
    g: &Geometry,
    out: &mut [f32],
) {
    if m == x.channels
        && x.channels >= CHANNELS_LAST_MIN_CHANNELS
        && g.output.1 < CHANNELS_LAST_BELOW_WIDTH
    {
        channels_last(x, w, bias, g, out);
    } else {
        planes(x, w, bias, m, g, out);
    }
}

/// Outputs narrower than this, of at least [`CHANNELS_LAST_MIN_CHANNELS`] channels, are computed
/// across channels: row by row, each tap would add a handful of values (a 4×4 map of 336 channels is
/// 12,000 loops of 4).
const CHANNELS_LAST_BELOW_WIDTH: usize = 8;
const CHANNELS_LAST_MIN_CHANNELS: usize = 16;

/// Depthwise convolution of one filter per channel with the channels innermost: the input and the
/// weights transposed to [position, channel] and [tap, channel], every output position a sum of taps
/// each a multiply-add across all channels, the result transposed back. Compiled per SIMD level.
#[multiversion(targets = "simd")]
fn channels_last(x: &Input<'_>, w: &[f32], bias: Option<&[f32]>, g: &Geometry, out: &mut [f32]) {
    let channels = x.channels;
    let (out_h, out_w) = g.output;
    let (kh, kw) = g.kernel;
    let plane = x.height * x.width;
    let positions = out_h * out_w;
    if positions == 0 || channels == 0 {
        return;
    }
    let taps = kh * kw;
    let mut weights = vec![0f32; taps * channels];
    for (c, filter) in w.chunks_exact(taps).take(channels).enumerate() {
        for (tap, &v) in filter.iter().enumerate() {
            weights[tap * channels + c] = v;
        }
    }
    let mut input = vec![0f32; plane * channels];
    let mut sums = vec![0f32; positions * channels];
    for (image, outputs) in out.chunks_exact_mut(channels * positions).enumerate() {
        let planes = &x.data[image * channels * plane..(image + 1) * channels * plane];
        for (c, values) in planes.chunks_exact(plane).enumerate() {
            for (p, &v) in values.iter().enumerate() {
                input[p * channels + c] = v;
            }
        }
        for sum in sums.chunks_exact_mut(channels) {
            match bias {
                Some(b) => sum.copy_from_slice(&b[..channels]),
                None => sum.fill(0.0),
            }
        }
        for (position, sum) in sums.chunks_exact_mut(channels).enumerate() {
            let (oy, ox) = (position / out_w, position % out_w);
            for ky in 0..kh {
                let Some(iy) = (oy * g.strides.0 + ky * g.dilations.0)
                    .checked_sub(g.pads_begin.0)
                    .filter(|&iy| iy < x.height)
                else {
                    continue;
                };
                for kx in 0..kw {
                    let Some(ix) = (ox * g.strides.1 + kx * g.dilations.1)
                        .checked_sub(g.pads_begin.1)
                        .filter(|&ix| ix < x.width)
                    else {
                        continue;
                    };
                    let source = &input[(iy * x.width + ix) * channels..][..channels];
                    let tap = &weights[(ky * kw + kx) * channels..][..channels];
                    for ((s, &v), &t) in sum.iter_mut().zip(source).zip(tap) {
                        *s += v * t;
                    }
                }
            }
        }
        for (c, target) in outputs.chunks_exact_mut(positions).enumerate() {
            for (p, t) in target.iter_mut().enumerate() {
                *t = sums[p * channels + c];
            }
        }
    }
}

/// Depthwise convolution plane by plane: each tap adds its weight times a shifted input row to an
/// output row. Compiled per SIMD level and picked at run time.
#[multiversion(targets = "simd")]
fn planes(x: &Input<'_>, w: &[f32], bias: Option<&[f32]>, m: usize, g: &Geometry, out: &mut [f32]) {
    let (out_h, out_w) = g.output;
    let positions = out_h * out_w;
    let filters_per_channel = m / x.channels.max(1);
    let (kh, kw) = g.kernel;
    let (sh, sw) = g.strides;
    let (dh, dw) = g.dilations;
    let (ph, pw) = g.pads_begin;
    let plane = x.height * x.width;
    // Per kernel column: the output columns whose tap reads inside the row, and that tap's first column.
    let columns: Vec<_> = (0..kw)
        .map(|kx| {
            let outputs = outputs_inside(x.width, pw, sw, kx * dw, out_w);
            let first = (outputs.start * sw + kx * dw).saturating_sub(pw);
            (kx, outputs, first)
        })
        .filter(|(_, outputs, _)| !outputs.is_empty())
        .collect();
    if positions == 0 {
        return;
    }
    for (index, target) in out.chunks_exact_mut(positions).enumerate() {
        let (image, filter) = (index / m, index % m);
        let channel = image * x.channels + filter / filters_per_channel.max(1);
        let source = &x.data[channel * plane..(channel + 1) * plane];
        let weights = &w[filter * kh * kw..(filter + 1) * kh * kw];
        target.fill(bias.map_or(0.0, |b| b[filter]));
        for (oy, row) in target.chunks_exact_mut(out_w).enumerate() {
            for ky in 0..kh {
                let Some(iy) = (oy * sh + ky * dh)
                    .checked_sub(ph)
                    .filter(|&iy| iy < x.height)
                else {
                    continue;
                };
                let line = &source[iy * x.width..(iy + 1) * x.width];
                for (kx, outputs, first) in &columns {
                    let (targets, taps) = (&mut row[outputs.clone()], &line[*first..]);
                    let weight = weights[ky * kw + kx];
                    match sw {
                        1 => add_strided::<1>(targets, taps, weight),
                        2 => add_strided::<2>(targets, taps, weight),
                        stride => {
                            for (sum, &v) in targets.iter_mut().zip(taps.iter().step_by(stride)) {
                                *sum += weight * v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `targets[i] += weight · taps[i·STRIDE]`; a stride known at compile time lets the loop vectorize.
#[inline(always)]
fn add_strided<const STRIDE: usize>(targets: &mut [f32], taps: &[f32], weight: f32) {
    let Some((last, rest)) = targets.split_last_mut() else {
        return;
    };
    for (sum, chunk) in rest.iter_mut().zip(taps.chunks_exact(STRIDE)) {
        *sum += weight * chunk[0];
    }
    *last += weight * taps[rest.len() * STRIDE];
}

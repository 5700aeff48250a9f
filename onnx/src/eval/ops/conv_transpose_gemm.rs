//! ConvTranspose over one or two spatial axes on the CPU as a matrix product and a scatter: for each
//! image and group, Wgᵀ [M/g·kH·kW, C/g] times the input's channel planes [C/g, H·W] is every input
//! position's contribution through every kernel tap, and each is added into the output at
//! (ih·sh + kh·dh - ph, iw·sw + kw·dw - pw). The product is done a tile of input positions at a time
//! ([`TILE_ELEMENTS`]), so memory stays bounded whatever the input's size. Float types other than f32
//! are computed in f32, as ONNX Runtime's CPU provider does.

use candle_core::{DType, Device, Tensor};

use super::cpu_f32::f32_slice;
use super::matrix_product::{Operand, Product};
use crate::ModelError;

/// The most contributions held at once, in elements (4 MiB of f32).
const TILE_ELEMENTS: usize = 1 << 20;

/// A transposed convolution's geometry over two axes (a 1-D one is of height 1).
pub struct Geometry {
    pub input: (usize, usize),
    pub kernel: (usize, usize),
    pub strides: (usize, usize),
    pub dilations: (usize, usize),
    /// Padding cut from the start of each axis; the end's follows from the output size.
    pub pads_begin: (usize, usize),
    pub output: (usize, usize),
    pub groups: usize,
}

impl Geometry {
    /// The geometry from per-axis lists of one or two axes.
    pub fn from_axes(
        input: &[usize],
        kernel: &[usize],
        strides: &[usize],
        dilations: &[usize],
        pads_begin: &[usize],
        output: &[usize],
        groups: usize,
    ) -> Option<Self> {
        let two = |v: &[usize], one: usize| match *v {
            [a, b] => Some((a, b)),
            [b] => Some((one, b)),
            _ => None,
        };
        Some(Self {
            input: two(input, 1)?,
            kernel: two(kernel, 1)?,
            strides: two(strides, 1)?,
            dilations: two(dilations, 1)?,
            pads_begin: two(pads_begin, 0)?,
            output: two(output, 1)?,
            groups,
        })
    }
}

/// Whether this path computes the operator: a CPU tensor of a float type with one or two spatial axes.
pub fn applies(x: &Tensor) -> bool {
    matches!(x.device(), Device::Cpu)
        && matches!(x.dtype(), DType::F32 | DType::F16 | DType::BF16)
        && matches!(x.rank(), 3 | 4)
}

/// `x` [N, C, (H,) W] through `w` [C, M/g, (kH,) kW] plus `bias` [M]: [N, M, (oH,) oW] in `x`'s type.
/// The shapes were checked against each other and the output's size bounded by the caller.
pub fn conv_transpose(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    g: &Geometry,
) -> Result<Tensor, ModelError> {
    let dtype = x.dtype();
    let as_f32 = |t: &Tensor| t.to_dtype(DType::F32)?.contiguous();
    let (x32, w32) = (as_f32(x)?, as_f32(w)?);
    let bias = bias.map(as_f32).transpose()?;
    let (images, channels) = (x.dim(0)?, x.dim(1)?);
    let filters = w.dim(1)? * g.groups;
    let (out_h, out_w) = g.output;
    let mut out = vec![0f32; images * filters * out_h * out_w];
    if !out.is_empty() {
        let (x_storage, x_layout) = x32.storage_and_layout();
        let (w_storage, w_layout) = w32.storage_and_layout();
        let xs = f32_slice(&x_storage, x_layout, x32.elem_count())?;
        let ws = f32_slice(&w_storage, w_layout, w32.elem_count())?;
        if let Some(b) = &bias {
            let values = b.flatten_all()?.to_vec1::<f32>()?;
            for (plane, &value) in out.chunks_mut(out_h * out_w).zip(values.iter().cycle()) {
                plane.fill(value);
            }
        }
        run(xs, ws, (images, channels, filters), g, &mut out)?;
    }
    let mut dims = vec![images, filters];
    dims.extend_from_slice(&x.dims()[2..]);
    let rank = dims.len();
    dims[rank - 1] = out_w;
    if rank == 4 {
        dims[2] = out_h;
    }
    let y = Tensor::from_vec(out, dims, &Device::Cpu)?;
    Ok(if dtype == DType::F32 {
        y
    } else {
        y.to_dtype(dtype)?
    })
}

fn run(
    x: &[f32],
    w: &[f32],
    (images, channels, filters): (usize, usize, usize),
    g: &Geometry,
    out: &mut [f32],
) -> Result<(), ModelError> {
    let (in_channels, out_channels) = (channels / g.groups, filters / g.groups);
    let taps = g.kernel.0 * g.kernel.1;
    let rows = out_channels * taps;
    let positions = g.input.0 * g.input.1;
    let out_plane = g.output.0 * g.output.1;
    let tile = (TILE_ELEMENTS / rows.max(1)).clamp(1, positions.max(1));
    let mut contributions = vec![0f32; rows * tile];
    let threads = candle_core::utils::get_num_threads();
    for image in 0..images {
        for group in 0..g.groups {
            let first_channel = image * channels + group * in_channels;
            let planes = &x[first_channel * positions..(first_channel + in_channels) * positions];
            // W's rows for this group's input channels, [C/g, M/g·kH·kW]; their transpose is the product's A.
            let weights = &w[group * in_channels * rows..(group + 1) * in_channels * rows];
            let first_out = (image * filters + group * out_channels) * out_plane;
            let outputs = &mut out[first_out..first_out + out_channels * out_plane];
            let mut start = 0;
            while start < positions {
                let end = (start + tile).min(positions);
                let width = end - start;
                let contributions = &mut contributions[..rows * width];
                Product {
                    m: rows,
                    n: width,
                    k: in_channels,
                }
                .compute(
                    contributions,
                    width,
                    Operand::transposed(weights, rows),
                    Operand {
                        data: &planes[start..],
                        row_stride: positions,
                        col_stride: 1,
                    },
                    false,
                    threads,
                )?;
                scatter(contributions, start..end, out_channels, g, outputs);
                start = end;
            }
        }
    }
    Ok(())
}

/// Adds each row of `contributions` (filter m, tap kh, kw; one column per input position of
/// `positions`) into filter m's output plane.
fn scatter(
    contributions: &[f32],
    positions: std::ops::Range<usize>,
    filters: usize,
    g: &Geometry,
    outputs: &mut [f32],
) {
    let width = positions.len();
    let (in_h, in_w) = g.input;
    let (out_h, out_w) = g.output;
    let (kernel_h, kernel_w) = g.kernel;
    let mut rows = contributions.chunks(width);
    for plane in outputs.chunks_mut(out_h * out_w).take(filters) {
        for kh in 0..kernel_h {
            for kw in 0..kernel_w {
                let Some(row) = rows.next() else { return };
                // Input columns iw whose output column iw·sw + kw·dw - pw lies in [0, out_w).
                let shift = kw * g.dilations.1;
                let first_iw = g.pads_begin.1.saturating_sub(shift).div_ceil(g.strides.1);
                let end_iw = (out_w + g.pads_begin.1)
                    .saturating_sub(shift)
                    .div_ceil(g.strides.1)
                    .min(in_w);
                for ih in positions.start / in_w..positions.end.div_ceil(in_w).min(in_h) {
                    let Some(oh) = (ih * g.strides.0 + kh * g.dilations.0)
                        .checked_sub(g.pads_begin.0)
                        .filter(|&oh| oh < out_h)
                    else {
                        continue;
                    };
                    // This tile's part of input row ih, as input columns.
                    let row_start = ih * in_w;
                    let lo = first_iw.max(positions.start.saturating_sub(row_start));
                    let hi = end_iw.min(positions.end - row_start);
                    if lo >= hi {
                        continue;
                    }
                    let source =
                        &row[row_start + lo - positions.start..row_start + hi - positions.start];
                    let first_ow = lo * g.strides.1 + shift - g.pads_begin.1;
                    let line = &mut plane[oh * out_w..(oh + 1) * out_w];
                    add_strided(source, &mut line[first_ow..], g.strides.1);
                }
            }
        }
    }
}

/// `target[i·stride]` += `source[i]`.
fn add_strided(source: &[f32], target: &mut [f32], stride: usize) {
    if stride == 1 {
        for (t, &s) in target.iter_mut().zip(source) {
            *t += s;
        }
    } else {
        for (t, &s) in target.iter_mut().step_by(stride).zip(source) {
            *t += s;
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};
    use proptest::prelude::*;

    use super::super::testing::{int, ints, run};

    proptest! {
        /// The f32 path against the operator's f64 scatter (the path f64 inputs take), for any
        /// geometry of one or two axes: strides, dilations, pads, output padding, groups, a bias.
        #[test]
        fn equals_the_scatter_in_f64(
            two_d in any::<bool>(),
            (images, groups, in_per_group, out_per_group) in (1usize..3, 1usize..3, 1usize..4, 1usize..4),
            (h, w) in (1usize..6, 1usize..7),
            (kh, kw) in (1usize..4, 1usize..4),
            (sh, sw) in (1usize..4, 1usize..4),
            (dh, dw) in (1usize..3, 1usize..3),
            pads in proptest::collection::vec(0usize..3, 4),
            output_padding in (0usize..2, 0usize..2),
            with_bias in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let value = |i: usize| ((((i as u64) ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 17) as f32 - 8.0;
            let channels = groups * in_per_group;
            let (x_dims, w_dims, axes) = if two_d {
                (vec![images, channels, h, w], vec![channels, out_per_group, kh, kw], 2)
            } else {
                (vec![images, channels, w], vec![channels, out_per_group, kw], 1)
            };
            let pick = |pair: (usize, usize)| if two_d { vec![pair.0 as i64, pair.1 as i64] } else { vec![pair.1 as i64] };
            let pads: Vec<i64> = if two_d {
                pads.iter().map(|&p| p as i64).collect()
            } else {
                vec![pads[0] as i64, pads[1] as i64]
            };
            // Output padding must stay below the stride or the dilation.
            let output_padding = (
                output_padding.0.min(sh.max(dh) - 1),
                output_padding.1.min(sw.max(dw) - 1),
            );
            let full = |i: usize, s: usize, k: usize, d: usize, op: usize| s * (i - 1) + op + (k - 1) * d + 1;
            let fits = full(h, sh, kh, dh, output_padding.0) > (if two_d { pads[0] + pads[2] } else { 0 }) as usize
                && full(w, sw, kw, dw, output_padding.1) > (if two_d { pads[1] + pads[3] } else { pads[0] + pads[1] }) as usize;
            prop_assume!(fits);
            let tensor = |dims: &[usize], offset: usize| {
                let n: usize = dims.iter().product();
                let values: Vec<f32> = (0..n).map(|i| value(i + offset)).collect();
                Tensor::from_vec(values, dims, &Device::Cpu).unwrap()
            };
            let x = tensor(&x_dims, 0);
            let wt = tensor(&w_dims, 1 << 20);
            let bias = with_bias.then(|| tensor(&[groups * out_per_group], 2 << 20));
            let attributes = || vec![
                ints("strides", &pick((sh, sw))),
                ints("dilations", &pick((dh, dw))),
                ints("pads", &pads),
                ints("output_padding", &pick(output_padding)),
                int("group", groups as i64),
            ];
            let as_f64 = |t: &Tensor| Some(t.to_dtype(DType::F64).unwrap());
            let fast = run("ConvTranspose", 13, attributes(), &[Some(x.clone()), Some(wt.clone()), bias.clone()]);
            let reference = run("ConvTranspose", 13, attributes(), &[as_f64(&x), as_f64(&wt), bias.as_ref().and_then(as_f64)]);
            prop_assert_eq!(fast[0].dims(), reference[0].dims());
            prop_assert_eq!(fast[0].rank(), axes + 2);
            let flat = |t: &Tensor| t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            // Small integers: every sum is exact in f32 too.
            prop_assert_eq!(flat(&fast[0]), flat(&reference[0]));
        }
    }
}

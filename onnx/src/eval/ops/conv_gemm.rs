//! Convolution on the CPU as im2col and a matrix product per image and group, written into the output in
//! place (NCHW needs no transpose: the weight [M, C/g·kH·kW] times the patch matrix [C/g·kH·kW, oH·oW]
//! is the output's channel rows). Padding is read as zeros while the patches are gathered, so the input
//! is never copied padded; the bias is the product's starting value. Patches are gathered a tile of
//! output positions at a time ([`TILE_ELEMENTS`]), one buffer reused for every tile, image and group.
//!
//! candle's CPU conv2d re-packs the weight on every call and gathers patches with strided writes; on
//! the bench CNN this path is several times faster (docs/benchmarks.md). Float types other than f32 are
//! computed in f32, as ONNX Runtime's CPU provider does for f16.

use candle_core::{DType, Device, Tensor};

use super::conv_depthwise;
use super::cpu_f32::{f32_slice, narrow_to, widen};
use super::im2col;
use super::matrix_product::{Operand, Product};

use crate::ModelError;

/// The largest patch buffer gathered at once, in elements (4 MiB of f32): big images are done in tiles
/// of output positions, so memory stays bounded whatever the input's size.
const TILE_ELEMENTS: usize = 1 << 20;

thread_local! {
    /// The patch buffer of [`run`], at most [`TILE_ELEMENTS`] long, kept between calls on a thread.
    static PATCHES: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A convolution's geometry over two spatial axes (a 1-D convolution is one of height 1).
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    pub groups: usize,
    pub kernel: (usize, usize),
    pub strides: (usize, usize),
    pub dilations: (usize, usize),
    /// Padding before each axis; what is after follows from the output size.
    pub pads_begin: (usize, usize),
    pub output: (usize, usize),
}

/// A 1-D or 2-D convolution's windows as two axes (a 1-D one is of height 1).
pub struct Windows2d {
    input: (usize, usize),
    kernel: (usize, usize),
    strides: (usize, usize),
    dilations: (usize, usize),
    pads: ((usize, usize), (usize, usize)),
}

impl Windows2d {
    pub fn new(
        input: &[usize],
        kernel: &[usize],
        strides: &[usize],
        dilations: &[usize],
        pads: &[(usize, usize)],
    ) -> Self {
        let two = |v: &[usize], one: usize| match *v {
            [a, b] => (a, b),
            [b] => (one, b),
            _ => (one, one),
        };
        let pads = match *pads {
            [a, b] => (a, b),
            [b] => ((0, 0), b),
            _ => ((0, 0), (0, 0)),
        };
        Self {
            input: two(input, 1),
            kernel: two(kernel, 1),
            strides: two(strides, 1),
            dilations: two(dilations, 1),
            pads,
        }
    }

    /// The convolution's geometry in `groups` groups: what the output's size follows from.
    pub fn geometry(&self, groups: usize) -> Geometry {
        let (input, kernel, strides, dilations, pads) = (
            self.input,
            self.kernel,
            self.strides,
            self.dilations,
            self.pads,
        );
        Geometry {
            groups,
            kernel,
            strides,
            dilations,
            pads_begin: (pads.0.0, pads.1.0),
            output: (
                Self::output(input.0, pads.0, kernel.0, strides.0, dilations.0),
                Self::output(input.1, pads.1, kernel.1, strides.1, dilations.1),
            ),
        }
    }

    /// The input's (height, width): a 1-D convolution's height is 1.
    pub fn input(&self) -> (usize, usize) {
        self.input
    }

    /// The output's length along an axis. The windows were checked to fit (`check_windows_fit`); the
    /// arithmetic saturates as that check's does, and the output's size is checked by the caller.
    fn output(
        input: usize,
        (begin, end): (usize, usize),
        kernel: usize,
        stride: usize,
        dilation: usize,
    ) -> usize {
        let padded = input.saturating_add(begin).saturating_add(end);
        let extent = (kernel - 1).saturating_mul(dilation).saturating_add(1);
        padded.saturating_sub(extent) / stride + 1
    }
}

/// Conv of `x` [N, C, (H,) W] through this module: the CPU's path for float tensors of one or two
/// spatial axes, with windows already checked to fit.
pub fn conv(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    groups: usize,
    windows: Windows2d,
) -> Result<Tensor, ModelError> {
    let geometry = windows.geometry(groups);
    let (input, kernel, output) = (windows.input, windows.kernel, geometry.output);
    let m = w.dim(0)?;
    super::host::element_count(&[x.dim(0)?, m, output.0, output.1], "Conv's output")?;
    if let Some(b) = bias
        && b.elem_count() != m
    {
        return Err(ModelError::Evaluation(format!(
            "Conv: a bias of {} values for {m} output channels",
            b.elem_count()
        )));
    }
    if x.rank() == 4 {
        return conv2d(x, w, bias, &geometry);
    }
    let (n, c, _) = x.dims3()?;
    let (_, per_group, _) = w.dims3()?;
    let y = conv2d(
        &x.reshape((n, c, 1, input.1))?,
        &w.reshape((m, per_group, 1, kernel.1))?,
        bias,
        &geometry,
    )?;
    Ok(y.reshape((n, m, output.1))?)
}

/// Whether this path computes the convolution: a CPU tensor of a float type.
pub fn applies(x: &Tensor) -> bool {
    matches!(x.device(), Device::Cpu) && matches!(x.dtype(), DType::F32 | DType::F16 | DType::BF16)
}

/// `x` [N, C, H, W] convolved with `w` [M, C/g, kH, kW] plus `bias` [M]: [N, M, oH, oW] in `x`'s type.
fn conv2d(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    geometry: &Geometry,
) -> Result<Tensor, ModelError> {
    let dtype = x.dtype();
    let as_f32 = |t: &Tensor| -> Result<Tensor, ModelError> { Ok(widen(t)?.contiguous()?) };
    let (x, w) = (as_f32(x)?, as_f32(w)?);
    let bias = bias.map(as_f32).transpose()?;
    let (n, c, h, width) = x.dims4()?;
    let m = w.dim(0)?;
    let (out_h, out_w) = geometry.output;
    let mut out = vec![0f32; n * m * out_h * out_w];
    {
        let (x_storage, x_layout) = x.storage_and_layout();
        let (w_storage, w_layout) = w.storage_and_layout();
        let bias_storage = bias.as_ref().map(Tensor::storage_and_layout);
        let input = Input {
            data: f32_slice(&x_storage, x_layout, x.elem_count())?,
            images: n,
            channels: c,
            height: h,
            width,
        };
        let weights = f32_slice(&w_storage, w_layout, w.elem_count())?;
        let bias = match (&bias_storage, &bias) {
            (Some((storage, layout)), Some(b)) => Some(f32_slice(storage, layout, b.elem_count())?),
            _ => None,
        };
        run(&input, weights, bias, m, geometry, &mut out)?;
    }
    let y = Tensor::from_vec(out, (n, m, out_h, out_w), &Device::Cpu)?;
    Ok(if dtype == DType::F32 {
        y
    } else {
        narrow_to(&y, dtype)?
    })
}

impl Geometry {
    /// A 1×1 kernel at stride 1 without padding: every output position reads its own input position.
    fn is_pointwise(&self, x: &Input<'_>) -> bool {
        self.kernel == (1, 1)
            && self.strides == (1, 1)
            && self.pads_begin == (0, 0)
            && self.output == (x.height, x.width)
    }
}

pub(super) struct Input<'a> {
    pub data: &'a [f32],
    pub images: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

fn run(
    x: &Input<'_>,
    w: &[f32],
    bias: Option<&[f32]>,
    m: usize,
    g: &Geometry,
    out: &mut [f32],
) -> Result<(), ModelError> {
    if conv_depthwise::applies(x, g) {
        conv_depthwise::run(x, w, bias, m, g, out);
        return Ok(());
    }
    let (out_h, out_w) = g.output;
    let positions = out_h * out_w;
    let channels_per_group = x.channels / g.groups;
    let filters_per_group = m / g.groups;
    let rows = channels_per_group * g.kernel.0 * g.kernel.1;
    let plane = x.height * x.width;
    let tile = (TILE_ELEMENTS / rows.max(1)).clamp(1, positions.max(1));
    // The patch buffer outlives the call (this thread's, taken and put back): zeroing 4 MiB for
    // every convolution of a small image costs as much as gathering into it.
    let (pointwise, shifted) = (g.is_pointwise(x), im2col::shifts_apply(x, g));
    let mut patches = PATCHES.take();
    if !pointwise && patches.len() < rows * tile {
        patches.resize(rows * tile, 0.0);
    }
    let threads = candle_core::utils::get_num_threads();
    for image in 0..x.images {
        for group in 0..g.groups {
            let first_channel = image * x.channels + group * channels_per_group;
            let channels =
                &x.data[first_channel * plane..(first_channel + channels_per_group) * plane];
            let filters =
                &w[group * filters_per_group * rows..(group + 1) * filters_per_group * rows];
            let first_out = (image * m + group * filters_per_group) * positions;
            let out_rows = &mut out[first_out..first_out + filters_per_group * positions];
            if let Some(bias) = bias {
                for (row, &b) in out_rows
                    .chunks_mut(positions)
                    .zip(&bias[group * filters_per_group..])
                {
                    row.fill(b);
                }
            }
            if pointwise {
                // The input's channel planes are already the patch matrix [C/g, H·W].
                let product = Product {
                    m: filters_per_group,
                    n: positions,
                    k: rows,
                };
                narrow_aware(
                    &product,
                    out_rows,
                    positions,
                    (
                        Operand::rows(filters, rows),
                        Operand::rows(channels, positions),
                    ),
                    bias.is_some(),
                    threads,
                )?;
                continue;
            }
            let mut start = 0;
            while start < positions {
                let end = (start + tile).min(positions);
                let width = end - start;
                let patches = &mut patches[..rows * width];
                if shifted {
                    im2col::gather_shifted(channels, x, g, start..end, patches);
                } else {
                    im2col::gather(channels, x, g, start..end, patches);
                }
                let product = Product {
                    m: filters_per_group,
                    n: width,
                    k: rows,
                };
                narrow_aware(
                    &product,
                    &mut out_rows[start..],
                    positions,
                    (Operand::rows(filters, rows), Operand::rows(patches, width)),
                    bias.is_some(),
                    threads,
                )?;
                start = end;
            }
        }
    }
    PATCHES.set(patches);
    Ok(())
}

/// Below this many output positions a product's C is computed column-major (see [`narrow_aware`]).
const NARROW: usize = 16;

thread_local! {
    /// [`narrow_aware`]'s column-major C, kept between calls on a thread.
    static NARROW_C: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
    /// [`narrow_aware`]'s B transposed, its columns as rows.
    static NARROW_B: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// C (+)= A·B with C's rows (filters) `c_stride` apart. gemm vectorizes along C's contiguous axis, the
/// output positions: a small feature map (4×4, 2×2, 1×1 in an OCR detector's deep layers) would fill a
/// fraction of each vector. Such a C is computed column-major, along the filters, and copied in.
fn narrow_aware(
    product: &Product,
    c: &mut [f32],
    c_stride: usize,
    (a, b): (Operand<'_, f32>, Operand<'_, f32>),
    accumulate: bool,
    threads: usize,
) -> Result<(), ModelError> {
    let Product { m, n, .. } = *product;
    if n >= NARROW || m < 2 * n || m == 0 || n == 0 {
        return product.compute(c, c_stride, a, b, accumulate, threads);
    }
    if c_stride < n || c.len() < (m - 1) * c_stride + n {
        return Err(ModelError::Evaluation(format!(
            "Conv: a {m}x{n} output does not fit its buffer"
        )));
    }
    let mut columns = NARROW_C.take();
    columns.clear();
    columns.resize(m * n, 0.0);
    if accumulate {
        for (i, row) in c.chunks(c_stride).take(m).enumerate() {
            for (j, &v) in row[..n].iter().enumerate() {
                columns[j * m + i] = v;
            }
        }
    }
    let by_dots = Product {
        m: n,
        n: m,
        k: product.k,
    }
    .by_dots();
    let computed = if by_dots && a.col_stride == 1 && b.col_stride == 1 {
        // Cᵀ = Bᵀ·Aᵀ by dot products: the patches' few columns made rows, each filter (a row of A,
        // a column of Aᵀ) read once.
        let k = product.k;
        let mut rows = NARROW_B.take();
        rows.clear();
        rows.extend((0..n * k).map(|at| b.data[(at % k) * b.row_stride + at / k]));
        let transposed = Product { m: n, n: m, k }.compute(
            &mut columns,
            m,
            Operand::rows(&rows, k),
            Operand {
                data: a.data,
                row_stride: 1,
                col_stride: a.row_stride,
            },
            accumulate,
            threads,
        );
        NARROW_B.set(rows);
        transposed
    } else {
        product.compute_strided(&mut columns, (1, m), a, b, accumulate, threads)
    };
    if computed.is_ok() {
        for (i, row) in c.chunks_mut(c_stride).take(m).enumerate() {
            for (j, v) in row[..n].iter_mut().enumerate() {
                *v = columns[j * m + i];
            }
        }
    }
    NARROW_C.set(columns);
    computed
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};
    use proptest::prelude::*;

    use super::{Windows2d, conv};

    /// Convolution by its definition, one output element at a time: the reference.
    #[allow(clippy::too_many_arguments)]
    fn direct(
        x: &[f32],
        (n, c, h, w): (usize, usize, usize, usize),
        weights: &[f32],
        (m, kh, kw): (usize, usize, usize),
        groups: usize,
        (sh, sw): (usize, usize),
        (dh, dw): (usize, usize),
        ((pt, pb), (pl, pr)): ((usize, usize), (usize, usize)),
    ) -> (Vec<f32>, usize, usize) {
        let oh = (h + pt + pb - ((kh - 1) * dh + 1)) / sh + 1;
        let ow = (w + pl + pr - ((kw - 1) * dw + 1)) / sw + 1;
        let (cg, mg) = (c / groups, m / groups);
        let mut out = vec![0f32; n * m * oh * ow];
        for b in 0..n {
            for o in 0..m {
                let g = o / mg;
                for y in 0..oh {
                    for xo in 0..ow {
                        let mut sum = 0f32;
                        for ci in 0..cg {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (y * sh + ky * dh) as isize - pt as isize;
                                    let ix = (xo * sw + kx * dw) as isize - pl as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                        continue;
                                    }
                                    let input = x[((b * c + g * cg + ci) * h + iy as usize) * w
                                        + ix as usize];
                                    let weight = weights[((o * cg + ci) * kh + ky) * kw + kx];
                                    sum += input * weight;
                                }
                            }
                        }
                        out[((b * m + o) * oh + y) * ow + xo] = sum;
                    }
                }
            }
        }
        (out, oh, ow)
    }

    /// Checks kiln's convolution of random values against [`direct`] for one geometry.
    #[allow(clippy::too_many_arguments)]
    fn agrees(
        (n, groups, per_group, filters): (usize, usize, usize, usize),
        (h, w): (usize, usize),
        (kh, kw): (usize, usize),
        (sh, sw): (usize, usize),
        (dh, dw): (usize, usize),
        (pt, pl, pb, pr): (usize, usize, usize, usize),
        seed: u64,
    ) -> Result<(), TestCaseError> {
        let (c, m) = (groups * per_group, groups * filters);
        let mut state = seed;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        let xs: Vec<f32> = (0..n * c * h * w).map(|_| next()).collect();
        let ws: Vec<f32> = (0..m * per_group * kh * kw).map(|_| next()).collect();
        let bias: Vec<f32> = (0..m).map(|_| next()).collect();
        let (expected, oh, ow) = direct(
            &xs,
            (n, c, h, w),
            &ws,
            (m, kh, kw),
            groups,
            (sh, sw),
            (dh, dw),
            ((pt, pb), (pl, pr)),
        );
        let x = Tensor::from_vec(xs, (n, c, h, w), &Device::Cpu).unwrap();
        let weights = Tensor::from_vec(ws, (m, per_group, kh, kw), &Device::Cpu).unwrap();
        let b = Tensor::from_vec(bias.clone(), m, &Device::Cpu).unwrap();
        let windows = Windows2d::new(
            &[h, w],
            &[kh, kw],
            &[sh, sw],
            &[dh, dw],
            &[(pt, pb), (pl, pr)],
        );
        let y = conv(&x, &weights, Some(&b), groups, windows).unwrap();
        prop_assert_eq!(y.dims(), &[n, m, oh, ow]);
        let got = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            let e = e + bias[i / (oh * ow) % m];
            prop_assert!((g - e).abs() <= 1e-4, "element {}: {} against {}", i, g, e);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Any geometry whose windows fit: strides, dilations and pads (larger than the kernel too) on
        /// either side, groups, 1x1 kernels, outputs of one column.
        #[test]
        fn agrees_with_convolution_by_definition(
            n in 1usize..3, groups in 1usize..4, per_group in 1usize..4, filters in 1usize..4,
            h in 1usize..9, w in 1usize..9, kh in 1usize..4, kw in 1usize..4,
            sh in 1usize..4, sw in 1usize..4, dh in 1usize..3, dw in 1usize..3,
            pads in (0usize..5, 0usize..5, 0usize..5, 0usize..5), seed in any::<u64>(),
        ) {
            let (pt, pl, pb, pr) = pads;
            prop_assume!(h + pt + pb > (kh - 1) * dh && w + pl + pr > (kw - 1) * dw);
            agrees((n, groups, per_group, filters), (h, w), (kh, kw), (sh, sw), (dh, dw), pads, seed)?;
        }

        /// One input channel per group (depthwise, `conv_depthwise`), with channel multipliers.
        #[test]
        fn depthwise_agrees_with_convolution_by_definition(
            n in 1usize..3, groups in 1usize..6, filters in 1usize..3,
            h in 1usize..10, w in 1usize..10, kh in 1usize..4, kw in 1usize..4,
            sh in 1usize..4, sw in 1usize..4, dh in 1usize..3, dw in 1usize..3,
            pads in (0usize..4, 0usize..4, 0usize..4, 0usize..4), seed in any::<u64>(),
        ) {
            let (pt, pl, pb, pr) = pads;
            prop_assume!(h + pt + pb > (kh - 1) * dh && w + pl + pr > (kw - 1) * dw);
            agrees((n, groups, 1, filters), (h, w), (kh, kw), (sh, sw), (dh, dw), pads, seed)?;
        }

        /// Depthwise convolutions of many channels and narrow outputs, computed across channels.
        #[test]
        fn depthwise_across_channels_agrees_with_convolution_by_definition(
            n in 1usize..3, channels in 16usize..40,
            h in 1usize..9, w in 1usize..9, kh in 1usize..4, kw in 1usize..4,
            sh in 1usize..3, sw in 1usize..3, dh in 1usize..3, dw in 1usize..3,
            pads in (0usize..3, 0usize..3, 0usize..3, 0usize..3), seed in any::<u64>(),
        ) {
            let (pt, pl, pb, pr) = pads;
            prop_assume!(h + pt + pb > (kh - 1) * dh && w + pl + pr > (kw - 1) * dw);
            agrees((n, channels, 1, 1), (h, w), (kh, kw), (sh, sw), (dh, dw), pads, seed)?;
        }

        /// 1x1 kernels at stride 1 without padding, which multiply the input's planes as they lie;
        /// many filters on a small map take the column-major product.
        #[test]
        fn pointwise_agrees_with_convolution_by_definition(
            n in 1usize..3, groups in 1usize..4, per_group in 1usize..6,
            filters in prop_oneof![1usize..6, 16usize..40],
            h in 1usize..9, w in 1usize..9, seed in any::<u64>(),
        ) {
            agrees((n, groups, per_group, filters), (h, w), (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), seed)?;
        }
    }
}

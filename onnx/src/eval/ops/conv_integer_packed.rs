//! ConvInteger through the CPU's 8-bit products ([`PackedInt8`], AVX-512 VNNI): the weight packed once
//! per session as B [kH·kW·C, M], in (ky, kx, channel) order, so that a position's patch is kH·kW
//! contiguous runs of the input's channels once the input is laid out channels-last. The input is
//! copied channels-last into a buffer already filled with its zero point, so a window that reads
//! padding reads a term of zero once the product takes the zero point out. Exact (i32 sums of u8·s8
//! products, zero points taken out in i64) and about four times as wide per instruction as f32.

use candle_core::{DType, Device, Tensor};

use super::conv_gemm::{Geometry, Windows2d};
use super::int8_gemm::{Layout, PackedInt8};
use crate::ModelError;

/// The most patch bytes gathered at once: big images are done in tiles of output positions.
const TILE_BYTES: usize = 1 << 22;

/// The weight [M, C, (kH,) kW] with its zero point (one, or one per output channel) packed as B, or
/// `None` where the CPU lacks the instructions, the weight is not 8-bit or has under
/// [`super::int8_gemm::MIN_COLUMNS`] output channels.
pub fn pack(w: &Tensor, zero: Option<&Tensor>) -> Result<Option<PackedInt8>, ModelError> {
    if !PackedInt8::available() || !matches!(w.rank(), 3 | 4) {
        return Ok(None);
    }
    let m = w.dim(0)?;
    let channels = w.dim(1)?;
    let window: usize = w.dims()[2..].iter().product();
    let k = channels * window;
    let values = w.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    // B[(tap, channel), filter] = w[filter, channel, tap].
    let mut b = vec![0f32; k * m];
    for (filter, weights) in values.chunks(k.max(1)).enumerate() {
        for (channel, taps) in weights.chunks(window.max(1)).enumerate() {
            for (tap, &v) in taps.iter().enumerate() {
                b[(tap * channels + channel) * m + filter] = v;
            }
        }
    }
    let zero = match zero {
        Some(z) => z.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
        None => vec![0.0],
    };
    Ok(PackedInt8::pack(&b, k, m, &zero))
}

/// The convolution of `x` [N, C, (H,) W] (any integer type whose values, and `x_zero`'s, fit u8 once
/// an int8 tensor is moved up by 128) by the packed weight of `m` filters, in one group: [N, M, ...]
/// as i64. `None` where the input does not fit.
pub fn conv(
    x: &Tensor,
    x_zero: Option<&Tensor>,
    packed: &PackedInt8,
    m: usize,
    windows: &Windows2d,
) -> Result<Option<Tensor>, ModelError> {
    let Some((bytes, zero)) = as_u8(x, x_zero)? else {
        return Ok(None);
    };
    let geometry = windows.geometry(1);
    let (images, channels) = (x.dim(0)?, x.dim(1)?);
    let (height, width) = windows.input();
    let (out_h, out_w) = geometry.output;
    let positions = out_h * out_w;
    super::host::element_count(&[images, m, positions], "ConvInteger's output")?;
    let mut out = vec![0i64; images * m * positions];
    let plane = channels * height * width;
    let k = channels * geometry.kernel.0 * geometry.kernel.1;
    let tile = (TILE_BYTES / k.max(1)).clamp(1, positions.max(1));
    let mut patches = Vec::new();
    let pointwise = geometry.kernel == (1, 1)
        && geometry.strides == (1, 1)
        && geometry.pads_begin == (0, 0)
        && geometry.output == (height, width);
    for (image, input) in bytes.chunks(plane.max(1)).enumerate().take(images) {
        let padded = ChannelsLast::new(input, channels, (height, width), &geometry, zero);
        let out = &mut out[image * m * positions..(image + 1) * m * positions];
        let mut start = 0;
        while start < positions {
            let end = (start + tile).min(positions);
            // A pointwise convolution's channels-last input is its patch matrix.
            let patches = if pointwise {
                &padded.data[start * channels..end * channels]
            } else {
                patches.clear();
                padded.gather(&geometry, start..end, &mut patches);
                &patches[..]
            };
            packed.multiply_into(
                patches,
                end - start,
                i64::from(zero),
                &mut out[start..],
                Layout::Transposed { stride: positions },
            );
            start = end;
        }
    }
    let mut dims = vec![images, m];
    if x.rank() == 4 {
        dims.extend([out_h, out_w]);
    } else {
        dims.push(out_w);
    }
    Ok(Some(Tensor::from_vec(out, dims, &Device::Cpu)?))
}

/// The input's values and zero point as u8: as they are, or moved up by 128 when some are negative
/// (int8), which leaves every difference from the zero point as it was. `None` when they do not fit.
fn as_u8(x: &Tensor, zero: Option<&Tensor>) -> Result<Option<(Vec<u8>, u8)>, ModelError> {
    let zero = match zero {
        Some(z) => z.to_dtype(DType::I64)?.flatten_all()?.to_vec1::<i64>()?[0],
        None => 0,
    };
    if x.dtype() == DType::U8 {
        let bytes = x.flatten_all()?.to_vec1::<u8>()?;
        return Ok(u8::try_from(zero).ok().map(|z| (bytes, z)));
    }
    let values = x.to_dtype(DType::I64)?.flatten_all()?.to_vec1::<i64>()?;
    let shift = if values.iter().any(|&v| v < 0) || zero < 0 {
        128
    } else {
        0
    };
    let fits = |v: i64| (0..=255).contains(&(v + shift));
    if !fits(zero) || !values.iter().all(|&v| fits(v)) {
        return Ok(None);
    }
    let bytes = values.into_iter().map(|v| (v + shift) as u8).collect();
    Ok(Some((bytes, (zero + shift) as u8)))
}

/// One image channels-last, [rows][columns][C], with every row and column a window can reach: padding
/// holds the zero point.
struct ChannelsLast {
    data: Vec<u8>,
    channels: usize,
    columns: usize,
}

impl ChannelsLast {
    fn new(
        input: &[u8],
        channels: usize,
        (height, width): (usize, usize),
        g: &Geometry,
        zero: u8,
    ) -> Self {
        let reach = |out: usize, stride: usize, kernel: usize, dilation: usize| {
            out.saturating_sub(1) * stride + (kernel - 1) * dilation + 1
        };
        let (out_h, out_w) = g.output;
        let (ph, pw) = g.pads_begin;
        let rows = reach(out_h, g.strides.0, g.kernel.0, g.dilations.0).max(height + ph);
        let columns = reach(out_w, g.strides.1, g.kernel.1, g.dilations.1).max(width + pw);
        let mut data = vec![zero; rows * columns * channels];
        for (channel, plane) in input.chunks(height * width).enumerate() {
            for (y, line) in plane.chunks(width).enumerate() {
                let first = ((y + ph) * columns + pw) * channels + channel;
                for (x, &v) in line.iter().enumerate() {
                    data[first + x * channels] = v;
                }
            }
        }
        Self {
            data,
            channels,
            columns,
        }
    }

    /// The patches of output positions `range`, one row of kH·kW·C bytes each, appended to `patches`.
    fn gather(&self, g: &Geometry, range: std::ops::Range<usize>, patches: &mut Vec<u8>) {
        let out_w = g.output.1;
        let c = self.channels;
        // Undilated, a kernel row's taps are adjacent columns: one run of kW·C bytes.
        let (runs, run) = match g.dilations.1 {
            1 => (1, g.kernel.1 * c),
            _ => (g.kernel.1, c),
        };
        for position in range {
            let (oy, ox) = (position / out_w, position % out_w);
            for ky in 0..g.kernel.0 {
                let row = oy * g.strides.0 + ky * g.dilations.0;
                for kx in 0..runs {
                    let column = ox * g.strides.1 + kx * g.dilations.1;
                    let at = (row * self.columns + column) * c;
                    patches.extend_from_slice(&self.data[at..at + run]);
                }
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use candle_core::{Device, Tensor};
    use proptest::prelude::*;

    use super::super::testing::{ints, run};

    /// ConvInteger by its definition, in integers: x [C, H, W] of one image, w [M, C, kH, kW].
    pub(in crate::eval::ops) fn definition(
        (x, (c, h, width)): (&[i64], (usize, usize, usize)),
        (w, (m, kh, kw)): (&[i64], (usize, usize, usize)),
        (x_zero, w_zero): (i64, &[i64]),
        (stride, dilation, pad): (usize, usize, usize),
    ) -> Vec<i64> {
        let out = |len: usize, k: usize| (len + 2 * pad - (k - 1) * dilation - 1) / stride + 1;
        let (oh, ow) = (out(h, kh), out(width, kw));
        let mut y = vec![0i64; m * oh * ow];
        for f in 0..m {
            let zw = w_zero[f % w_zero.len()];
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut sum = 0;
                    for ch in 0..c {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * stride + ky * dilation) as i64 - pad as i64;
                                let ix = (ox * stride + kx * dilation) as i64 - pad as i64;
                                if iy < 0 || ix < 0 || iy >= h as i64 || ix >= width as i64 {
                                    continue;
                                }
                                let xv = x[(ch * h + iy as usize) * width + ix as usize] - x_zero;
                                sum += xv * (w[((f * c + ch) * kh + ky) * kw + kx] - zw);
                            }
                        }
                    }
                    y[(f * oh + oy) * ow + ox] = sum;
                }
            }
        }
        y
    }

    proptest! {
        /// Wide enough to be packed (32 filters or more): against the definition, with u8 or int8
        /// inputs, per-channel weight zero points, padding, strides, dilations and 1-D windows.
        #[test]
        fn equals_the_integer_definition(
            (c, m, h, width) in (1usize..40, 32usize..70, 1usize..7, 3usize..9),
            (kh, kw) in (1usize..4, 1usize..4),
            (stride, dilation, pad) in (1usize..3, 1usize..3, 0usize..2),
            seed in any::<u64>(),
            (signed_input, per_channel) in (any::<bool>(), any::<bool>()),
        ) {
            let kh = kh.min(h);
            prop_assume!((kh - 1) * dilation < h + 2 * pad && (kw - 1) * dilation < width + 2 * pad);
            let value = |i: usize| (((i as u64).wrapping_mul(seed | 1) >> 17) % 256) as i64;
            let low = if signed_input { -128 } else { 0 };
            let x: Vec<i64> = (0..c * h * width).map(|i| value(i) + low).collect();
            let w: Vec<i64> = (0..m * c * kh * kw).map(|i| value(i + 333) - 128).collect();
            let x_zero = value(7) + low;
            let w_zero: Vec<i64> = (0..if per_channel { m } else { 1 }).map(|j| value(j + 9) % 5 - 2).collect();
            let tensor = |v: &[i64], shape: &[usize]| Some(Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap());
            let x_tensor = if signed_input {
                tensor(&x, &[1, c, h, width])
            } else {
                let bytes: Vec<u8> = x.iter().map(|&v| v as u8).collect();
                Some(Tensor::from_vec(bytes, (1, c, h, width), &Device::Cpu).unwrap())
            };
            let w_zero_shape: &[usize] = if per_channel { &[m] } else { &[] };
            let (p, s, d) = (pad as i64, stride as i64, dilation as i64);
            let out = run(
                "ConvInteger",
                10,
                vec![ints("pads", &[p, p, p, p]), ints("strides", &[s, s]), ints("dilations", &[d, d])],
                &[x_tensor, tensor(&w, &[m, c, kh, kw]), tensor(&[x_zero], &[]), tensor(&w_zero, w_zero_shape)],
            );
            let expected = definition(
                (&x, (c, h, width)),
                (&w, (m, kh, kw)),
                (x_zero, &w_zero),
                (stride, dilation, pad),
            );
            prop_assert_eq!(out[0].flatten_all().unwrap().to_vec1::<i64>().unwrap(), expected);
        }

        /// A 1-D convolution (rank 3) is one of height 1.
        #[test]
        fn one_dimensional_equals_the_definition(
            (c, m, width, kw) in (1usize..20, 32usize..40, 3usize..12, 1usize..4),
            seed in any::<u64>(),
        ) {
            let value = |i: usize| (((i as u64).wrapping_mul(seed | 1) >> 17) % 256) as i64;
            let x: Vec<u8> = (0..c * width).map(|i| value(i) as u8).collect();
            let w: Vec<i64> = (0..m * c * kw).map(|i| value(i + 5) - 128).collect();
            let x_zero = value(3) as u8;
            let out = run(
                "ConvInteger",
                10,
                vec![ints("pads", &[1, 1])],
                &[
                    Some(Tensor::from_vec(x.clone(), (1, c, width), &Device::Cpu).unwrap()),
                    Some(Tensor::from_vec(w.clone(), (m, c, kw), &Device::Cpu).unwrap()),
                    Some(Tensor::new(x_zero, &Device::Cpu).unwrap()),
                ],
            );
            let x: Vec<i64> = x.iter().map(|&v| i64::from(v)).collect();
            // The definition pads both axes, a 1-D window only its one: the width is padded by hand
            // with the zero point, which reads as a term of zero.
            let padded: Vec<i64> = (0..c)
                .flat_map(|ch| {
                    let row = &x[ch * width..(ch + 1) * width];
                    std::iter::once(i64::from(x_zero)).chain(row.iter().copied()).chain(std::iter::once(i64::from(x_zero)))
                })
                .collect();
            let expected = definition(
                (&padded, (c, 1, width + 2)),
                (&w, (m, 1, kw)),
                (i64::from(x_zero), &[0]),
                (1, 1, 0),
            );
            prop_assert_eq!(out[0].flatten_all().unwrap().to_vec1::<i64>().unwrap(), expected);
        }
    }
}

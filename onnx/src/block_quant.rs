//! The block-quantized weight format of ONNX Runtime's `MatMulNBits` (com.microsoft): a weight W
//! [N, K] (output channels by reduction axis) is cut along K into blocks of `block_size`; each block of
//! each channel has a float scale and a zero point, and each value is stored as an unsigned `bits`-bit
//! code, `w ≈ (code - zero_point) · scale`. B is uint8 [N, k_blocks, block_size · bits / 8], codes packed
//! low bits first along K; scales are [N · k_blocks]; zero points, when not the default 2^(bits-1), are
//! packed the same way, one row of ⌈k_blocks · bits / 8⌉ bytes per channel. K is padded with zeros to
//! whole blocks.
//!
//! Symmetric blocks use scale = max|w| / (2^(bits-1) - 1) around the default zero point; asymmetric ones
//! map [min(w, 0), max(w, 0)] onto the whole code range with their own zero point.

use crate::ModelError;

/// How a weight is quantized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSpec {
    pub bits: u32,
    pub block_size: usize,
    pub symmetric: bool,
}

/// A quantized weight in `MatMulNBits`' layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    /// [N, k_blocks, block_size · bits / 8]
    pub codes: Vec<u8>,
    /// [N · k_blocks]
    pub scales: Vec<f32>,
    /// Packed [N, ⌈k_blocks · bits / 8⌉]; None for symmetric blocks (the default zero point).
    pub zero_points: Option<Vec<u8>>,
    pub n: usize,
    pub k: usize,
}

impl BlockSpec {
    pub fn check(&self) -> Result<(), ModelError> {
        let fits = matches!(self.bits, 2 | 4 | 8)
            && self.block_size >= 16
            && self.block_size.is_power_of_two();
        if fits {
            Ok(())
        } else {
            Err(ModelError::Evaluation(format!(
                "MatMulNBits with bits {} and block_size {}: bits must be 2, 4 or 8 and block_size a \
                 power of two of at least 16",
                self.bits, self.block_size
            )))
        }
    }

    pub fn k_blocks(&self, k: usize) -> usize {
        k.div_ceil(self.block_size)
    }

    fn blob(&self) -> usize {
        self.block_size * self.bits as usize / 8
    }

    fn max_code(&self) -> u32 {
        (1 << self.bits) - 1
    }

    /// The zero point of symmetric blocks (and of blocks whose model omits them).
    pub fn default_zero_point(&self) -> u32 {
        1 << (self.bits - 1)
    }

    /// The bytes of one channel's packed zero points.
    fn zero_point_row(&self, k: usize) -> usize {
        (self.k_blocks(k) * self.bits as usize).div_ceil(8)
    }
}

/// Writes `value` (< 2^bits) as the `index`-th code of `bytes`.
fn put(bytes: &mut [u8], index: usize, bits: u32, value: u32) {
    let per_byte = 8 / bits as usize;
    let shift = (index % per_byte) as u32 * bits;
    bytes[index / per_byte] |= (value as u8) << shift;
}

/// The `index`-th code of `bytes`.
fn get(bytes: &[u8], index: usize, bits: u32) -> u32 {
    let per_byte = 8 / bits as usize;
    let shift = (index % per_byte) as u32 * bits;
    u32::from(bytes[index / per_byte] >> shift) & ((1 << bits) - 1)
}

impl Quantized {
    /// The unsigned code of output channel `column` at reduction index `kk`.
    pub fn code(&self, spec: BlockSpec, column: usize, kk: usize) -> u32 {
        let base = (column * spec.k_blocks(self.k) + kk / spec.block_size) * spec.blob();
        get(&self.codes[base..], kk % spec.block_size, spec.bits)
    }

    /// The zero point of channel `column`'s block `block` (the default one for symmetric blocks).
    pub fn zero_point(&self, spec: BlockSpec, column: usize, block: usize) -> u32 {
        match &self.zero_points {
            Some(points) => get(
                &points[column * spec.zero_point_row(self.k)..],
                block,
                spec.bits,
            ),
            None => spec.default_zero_point(),
        }
    }
}

/// Quantizes W given as [K, N] row-major (how a graph's MatMul reads its weight).
pub fn quantize_kn(weight: &[f32], k: usize, n: usize, spec: BlockSpec) -> Quantized {
    let blocks = spec.k_blocks(k);
    let mut codes = vec![0u8; n * blocks * spec.blob()];
    let mut scales = vec![0f32; n * blocks];
    let row = spec.zero_point_row(k);
    let mut zero_points = (!spec.symmetric).then(|| vec![0u8; n * row]);
    let top = spec.max_code() as f32;
    for column in 0..n {
        for block in 0..blocks {
            let range = block * spec.block_size..((block + 1) * spec.block_size).min(k);
            let values = range.clone().map(|kk| weight[kk * n + column]);
            let (zero, scale) = if spec.symmetric {
                let absmax = values.fold(0f32, |m, v| m.max(v.abs()));
                let half = (spec.default_zero_point() - 1) as f32;
                (spec.default_zero_point() as f32, absmax / half)
            } else {
                let (lo, hi) = values.fold((0f32, 0f32), |(lo, hi), v| (lo.min(v), hi.max(v)));
                let scale = (hi - lo) / top;
                let zero = if scale > 0.0 {
                    (-lo / scale).round().clamp(0.0, top)
                } else {
                    0.0
                };
                (zero, scale)
            };
            scales[column * blocks + block] = scale;
            if let Some(points) = zero_points.as_mut() {
                put(&mut points[column * row..], block, spec.bits, zero as u32);
            }
            let base = (column * blocks + block) * spec.blob();
            for (i, kk) in range.enumerate() {
                let w = weight[kk * n + column];
                let code = if scale > 0.0 {
                    (w / scale).round() + zero
                } else {
                    zero
                };
                let code = code.clamp(0.0, top) as u32;
                put(&mut codes[base..base + spec.blob()], i, spec.bits, code);
            }
            // Padding past K keeps the zero point's code, so it dequantizes to 0.
            for i in (k - block * spec.block_size).min(spec.block_size)..spec.block_size {
                put(
                    &mut codes[base..base + spec.blob()],
                    i,
                    spec.bits,
                    zero as u32,
                );
            }
        }
    }
    Quantized {
        codes,
        scales,
        zero_points,
        n,
        k,
    }
}

/// W as [N, K] row-major floats, from `MatMulNBits`' inputs.
pub fn dequantize_nk(
    codes: &[u8],
    scales: &[f32],
    zero_points: Option<&[u8]>,
    (n, k): (usize, usize),
    spec: BlockSpec,
) -> Result<Vec<f32>, ModelError> {
    spec.check()?;
    let blocks = spec.k_blocks(k);
    let row = spec.zero_point_row(k);
    let short = |what: &str, got: usize, want: usize| {
        ModelError::Evaluation(format!(
            "MatMulNBits {what} has {got} elements; N {n}, K {k}, block_size {} need {want}",
            spec.block_size
        ))
    };
    if codes.len() != n * blocks * spec.blob() {
        return Err(short("B", codes.len(), n * blocks * spec.blob()));
    }
    if scales.len() != n * blocks {
        return Err(short("scales", scales.len(), n * blocks));
    }
    if let Some(points) = zero_points
        && points.len() != n * row
    {
        return Err(short("zero_points", points.len(), n * row));
    }
    let mut out = vec![0f32; n * k];
    for column in 0..n {
        for block in 0..blocks {
            let scale = scales[column * blocks + block];
            let zero = match zero_points {
                Some(points) => get(&points[column * row..], block, spec.bits),
                None => spec.default_zero_point(),
            } as f32;
            let base = (column * blocks + block) * spec.blob();
            let start = block * spec.block_size;
            for i in 0..spec.block_size.min(k - start) {
                let code = get(&codes[base..base + spec.blob()], i, spec.bits) as f32;
                out[column * k + start + i] = (code - zero) * scale;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weight(k: usize, n: usize) -> Vec<f32> {
        (0..k * n)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * if i % 13 == 0 { 3.0 } else { 1.0 })
            .collect()
    }

    fn max_error(spec: BlockSpec, k: usize, n: usize) -> f32 {
        let w = weight(k, n);
        let q = quantize_kn(&w, k, n, spec);
        let back =
            dequantize_nk(&q.codes, &q.scales, q.zero_points.as_deref(), (n, k), spec).unwrap();
        let mut worst = 0f32;
        for kk in 0..k {
            for c in 0..n {
                let block = kk / spec.block_size;
                let scale = q.scales[c * spec.k_blocks(k) + block];
                let err = (back[c * k + kk] - w[kk * n + c]).abs();
                worst = worst.max(err / scale.max(f32::MIN_POSITIVE));
            }
        }
        worst
    }

    #[test]
    fn every_value_comes_back_within_half_a_step() {
        for bits in [4, 8] {
            for block_size in [32, 64, 128] {
                for symmetric in [true, false] {
                    let spec = BlockSpec {
                        bits,
                        block_size,
                        symmetric,
                    };
                    // K not a multiple of the block: the last block is padded.
                    let worst = max_error(spec, 200, 5);
                    assert!(worst <= 0.5 + 1e-3, "{spec:?}: {worst} steps off");
                }
            }
        }
    }

    #[test]
    fn codes_pack_low_bits_first() {
        let spec = BlockSpec {
            bits: 4,
            block_size: 16,
            symmetric: true,
        };
        let mut w = vec![0f32; 16];
        w[0] = 7.0; // absmax 7 → scale 1: code 7 + 8 = 15 in the low nibble
        w[1] = -7.0; // code 1 in the high nibble
        let q = quantize_kn(&w, 16, 1, spec);
        assert_eq!(q.scales, [1.0]);
        assert_eq!(q.codes[0], 0x1f);
        assert_eq!(q.codes[1], 0x88);
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let spec = BlockSpec {
            bits: 4,
            block_size: 32,
            symmetric: true,
        };
        assert!(dequantize_nk(&[0; 3], &[1.0], None, (1, 32), spec).is_err());
        let odd = BlockSpec {
            bits: 3,
            block_size: 32,
            symmetric: true,
        };
        assert!(dequantize_nk(&[0; 12], &[1.0], None, (1, 32), odd).is_err());
    }
}

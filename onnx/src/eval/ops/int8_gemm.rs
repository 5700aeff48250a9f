//! u8·s8 products summed exactly in 32-bit integers with AVX-512 VNNI, as ONNX Runtime's int8 GEMM
//! computes the products of its quantized operators: `vpdpbusd` adds four u8·s8 products to each of
//! sixteen i32 lanes per instruction, so an 8-bit weight is read as a quarter of an f32 one and
//! multiplied four times as wide.
//!
//! B is packed once ([`PackedInt8::pack`], kept per session with the model's weights) into panels of
//! 64 columns, four rows of each column interleaved as `vpdpbusd` reads them; A's rows are u8. Zero
//! points and the shift that brings a u8 weight into s8 are taken out of the raw sum afterwards with row
//! and column sums, in i64: Σ(a - za)(w - zw) = Σa·w' + c·Σa - za·Σw' - za·k·c, with w' = w - offset
//! and c = offset - zw.

/// Columns of one panel: four AVX-512 registers of i32.
const PANEL: usize = 64;
/// Rows of A one kernel call computes together.
const ROWS: usize = 4;
/// The narrowest B packed: a narrower one would leave most of a panel's columns empty, and the f32
/// product ([`super::integer_product`]) does better.
pub const MIN_COLUMNS: usize = 32;
/// The deepest product whose raw sums stay within i32: 255·128 per term.
const MAX_DEPTH: usize = 1 << 16;

/// B [k, n] packed for [`PackedInt8::multiply`].
pub struct PackedInt8 {
    k: usize,
    n: usize,
    /// k rounded up to a multiple of 4 (padding rows are zero).
    depth: usize,
    /// [panel][depth / 4][PANEL][4] bytes: w - offset.
    data: Vec<i8>,
    /// offset - zw for each column.
    shift: Vec<i64>,
    /// Σ_k (w - offset) for each column.
    column_sums: Vec<i64>,
}

impl PackedInt8 {
    /// Whether this CPU has the instructions ([`Self::multiply`] needs them).
    pub fn available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// B [k, n] row-major of integers, with its zero point (one, or one per column). `None` when this
    /// CPU lacks the instructions, B is not 8-bit (its values must all fit i8, or all fit u8) or is
    /// narrower than [`MIN_COLUMNS`].
    pub fn pack(values: &[f32], k: usize, n: usize, zero: &[f32]) -> Option<Self> {
        if !Self::available() || values.len() != k * n || k > MAX_DEPTH || k == 0 || n < MIN_COLUMNS
        {
            return None;
        }
        if !(zero.len() == 1 || zero.len() == n) {
            return None;
        }
        let integer = |v: f32| v.fract() == 0.0;
        let (low, high) = values
            .iter()
            .fold((0f32, 0f32), |(l, h), &v| (l.min(v), h.max(v)));
        let offset = if low >= -128.0 && high <= 127.0 {
            0i64
        } else if low >= 0.0 && high <= 255.0 {
            128
        } else {
            return None;
        };
        if !values.iter().all(|&v| integer(v)) || !zero.iter().all(|&z| integer(z)) {
            return None;
        }
        let depth = k.next_multiple_of(4);
        let panels = n.div_ceil(PANEL);
        let mut data = vec![0i8; panels * depth * PANEL];
        let mut column_sums = vec![0i64; n];
        for row in 0..k {
            for (col, &v) in values[row * n..(row + 1) * n].iter().enumerate() {
                let shifted = v as i64 - offset;
                column_sums[col] += shifted;
                let (panel, lane) = (col / PANEL, col % PANEL);
                let at = (panel * depth / 4 + row / 4) * PANEL * 4 + lane * 4 + row % 4;
                data[at] = shifted as i8;
            }
        }
        let shift = (0..n)
            .map(|j| offset - zero[if zero.len() == 1 { 0 } else { j }] as i64)
            .collect();
        Some(Self {
            k,
            n,
            depth,
            data,
            shift,
            column_sums,
        })
    }

    /// Σ_l (a[i, l] - a_zero)(B[l, j] - zw_j) for A [m, k] of u8, exactly: [m, n] row-major.
    pub fn multiply(&self, a: &[u8], m: usize, a_zero: i64) -> Vec<i64> {
        let mut out = vec![0i64; m * self.n];
        self.multiply_into(a, m, a_zero, &mut out, Layout::RowMajor);
        out
    }

    /// [`Self::multiply`] written into `out` as `layout` places it.
    pub fn multiply_into(&self, a: &[u8], m: usize, a_zero: i64, out: &mut [i64], layout: Layout) {
        let (k, n, depth) = (self.k, self.n, self.depth);
        assert!(a.len() == m * k, "A holds m rows of k values");
        match layout {
            Layout::RowMajor => assert!(out.len() >= m * n),
            Layout::Transposed { stride } => {
                assert!(m <= stride && (n == 0 || out.len() >= (n - 1) * stride + m))
            }
        }
        let panels = n.div_ceil(PANEL);
        let width = panels * PANEL;
        // A's rows padded to whole groups of four columns, with zeros.
        let padded = if depth == k {
            std::borrow::Cow::Borrowed(a)
        } else {
            let mut padded = vec![0u8; m * depth];
            for (row, values) in a.chunks(k.max(1)).enumerate() {
                padded[row * depth..row * depth + k].copy_from_slice(values);
            }
            std::borrow::Cow::Owned(padded)
        };
        let mut raw = RAW.take();
        // The kernel stores every value it sums into (none is read first): no need to zero it.
        raw.resize(m * width, 0);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `pack` returned Self only where `available()` found the instructions; the buffers
        // hold exactly what the kernel reads and writes (checked by its assertions).
        unsafe {
            vnni::product(&padded, m, depth, &self.data, panels, &mut raw[..m * width]);
        }
        // Σ(a - za)(w - zw) = raw + c·Σa - za·(Σw' + k·c): the last term is the column's alone.
        let constant: Vec<i64> = (0..n)
            .map(|j| -a_zero * (self.column_sums[j] + k as i64 * self.shift[j]))
            .collect();
        let shifted = self.shift.iter().any(|&c| c != 0);
        for (i, row) in a.chunks(k.max(1)).enumerate().take(m) {
            let row_sum: i64 = match shifted {
                true => row.iter().map(|&v| i64::from(v)).sum(),
                false => 0,
            };
            let raw_row = &raw[i * width..i * width + n];
            let value = |j: usize| i64::from(raw_row[j]) + self.shift[j] * row_sum + constant[j];
            match layout {
                Layout::RowMajor => {
                    for (j, out) in out[i * n..(i + 1) * n].iter_mut().enumerate() {
                        *out = value(j);
                    }
                }
                Layout::Transposed { stride } => {
                    for j in 0..n {
                        out[j * stride + i] = value(j);
                    }
                }
            }
        }
        RAW.set(raw);
    }
}

/// Where [`PackedInt8::multiply_into`] puts the product's [m, n] values.
#[derive(Debug, Clone, Copy)]
pub enum Layout {
    /// out[i·n + j].
    RowMajor,
    /// out[j·stride + i]: B's columns as rows (a convolution's filters), A's rows along them.
    Transposed { stride: usize },
}

thread_local! {
    /// The kernel's raw i32 sums, kept between calls on a thread.
    static RAW: std::cell::Cell<Vec<i32>> = const { std::cell::Cell::new(Vec::new()) };
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::{
        __m512i, _mm512_dpbusd_epi32, _mm512_loadu_si512, _mm512_set1_epi32, _mm512_setzero_si512,
        _mm512_storeu_si512,
    };

    use super::{PANEL, ROWS};

    /// raw[row][panel·64 + lane] = Σ a·b' over `depth` for the `rows` rows of `a` (each `depth`
    /// bytes) and every panel of `b`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub fn product(a: &[u8], rows: usize, depth: usize, b: &[i8], panels: usize, raw: &mut [i32]) {
        let width = panels * PANEL;
        assert!(a.len() == rows * depth && depth.is_multiple_of(4));
        assert!(b.len() == panels * depth * PANEL && raw.len() == rows * width);
        for panel in 0..panels {
            let b_panel = &b[panel * depth * PANEL..(panel + 1) * depth * PANEL];
            for first in (0..rows).step_by(ROWS) {
                let (a, raw) = (
                    &a[first * depth..],
                    &mut raw[first * width + panel * PANEL..],
                );
                match rows - first {
                    1 => block::<1>(a, depth, b_panel, raw, width),
                    2 => block::<2>(a, depth, b_panel, raw, width),
                    3 => block::<3>(a, depth, b_panel, raw, width),
                    _ => block::<ROWS>(a, depth, b_panel, raw, width),
                }
            }
        }
    }

    /// One panel's 64 columns for `R` rows of A, in 4·R registers.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn block<const R: usize>(
        a: &[u8],
        depth: usize,
        b_panel: &[i8],
        raw: &mut [i32],
        width: usize,
    ) {
        assert!(a.len() >= R * depth && b_panel.len() == depth * PANEL);
        assert!(raw.len() >= (R - 1) * width + PANEL);
        let mut acc = [[_mm512_setzero_si512(); 4]; R];
        for step in 0..depth / 4 {
            let b_step = &b_panel[step * PANEL * 4..(step + 1) * PANEL * 4];
            // SAFETY: each load reads 64 bytes inside `b_step` (256 bytes).
            let columns: [__m512i; 4] = std::array::from_fn(|q| unsafe {
                _mm512_loadu_si512(b_step.as_ptr().add(q * 64).cast())
            });
            for (r, acc) in acc.iter_mut().enumerate() {
                let at = r * depth + step * 4;
                // SAFETY: `at + 4 <= R·depth <= a.len()` (asserted above); one unaligned 4-byte read
                // where four checked byte reads would cost the loop more than its products.
                let four = unsafe { a.as_ptr().add(at).cast::<i32>().read_unaligned() };
                let broadcast = _mm512_set1_epi32(four);
                for q in 0..4 {
                    acc[q] = _mm512_dpbusd_epi32(acc[q], broadcast, columns[q]);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let row = &mut raw[r * width..][..PANEL];
            for (q, value) in acc.iter().enumerate() {
                // SAFETY: 16 i32 inside `row` (64 of them) at 16·q.
                unsafe { _mm512_storeu_si512(row.as_mut_ptr().add(q * 16).cast(), *value) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{MIN_COLUMNS, PackedInt8};

    proptest! {
        /// Against integer arithmetic, for s8 and u8 weights, per-column zero points, shapes that leave
        /// partial panels, rows and groups of four.
        #[test]
        fn equals_the_integer_product(
            (m, n, k) in (1usize..7, 20usize..140, 1usize..40),
            seed in any::<u64>(),
            unsigned in any::<bool>(),
            per_column in any::<bool>(),
            a_zero in 0i64..256,
        ) {
            let value = |i: usize| ((i as u64).wrapping_mul(seed | 1) >> 13) % 256;
            let b: Vec<f32> = (0..k * n)
                .map(|i| value(i) as f32 - if unsigned { 0.0 } else { 128.0 })
                .collect();
            let zero: Vec<f32> = (0..if per_column { n } else { 1 })
                .map(|j| (value(j + 99) % 9) as f32 + if unsigned { 120.0 } else { -4.0 })
                .collect();
            let a: Vec<u8> = (0..m * k).map(|i| value(i + 5000) as u8).collect();
            let Some(packed) = PackedInt8::pack(&b, k, n, &zero) else {
                // Only a CPU without VNNI declines 8-bit weights this wide.
                prop_assert!(!PackedInt8::available() || n < MIN_COLUMNS);
                return Ok(());
            };
            let out = packed.multiply(&a, m, a_zero);
            for i in 0..m {
                for j in 0..n {
                    let zw = zero[if per_column { j } else { 0 }] as i64;
                    let expected: i64 = (0..k)
                        .map(|l| (i64::from(a[i * k + l]) - a_zero) * (b[l * n + j] as i64 - zw))
                        .sum();
                    prop_assert_eq!(out[i * n + j], expected);
                }
            }
        }
    }

    #[test]
    fn weights_past_eight_bits_are_not_packed() {
        let n = MIN_COLUMNS;
        let row =
            |first: f32| -> Vec<f32> { std::iter::once(first).chain(vec![1.0; n - 1]).collect() };
        assert!(PackedInt8::pack(&row(300.0), 1, n, &[0.0]).is_none());
        let two_rows: Vec<f32> = [row(-1.0), row(200.0)].concat();
        assert!(PackedInt8::pack(&two_rows, 2, n, &[0.0]).is_none());
        assert!(PackedInt8::pack(&row(0.5), 1, n, &[0.0]).is_none());
    }
}

//! C (+)= A·B on the CPU through the gemm crate, each operand read in place through its strides: a
//! weight stored [out, in] is multiplied as its transpose without a copy (the recurrent operators'
//! W and R), and C may be rows inside a larger buffer (a convolution's output channels).

use candle_core::WithDType;
use multiversion::multiversion;

use crate::ModelError;

/// The float types the products here run in. gemm dispatches on the type at run time and has kernels
/// for these; the trait keeps every other type out at compile time.
pub trait Float: WithDType {}

impl Float for f32 {}
impl Float for f64 {}

/// A matrix inside a slice: element (i, j) at `i * row_stride + j * col_stride`.
#[derive(Clone, Copy)]
pub struct Operand<'a, T> {
    pub data: &'a [T],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a, T> Operand<'a, T> {
    /// A row-major matrix whose rows are `cols` long.
    pub fn rows(data: &'a [T], cols: usize) -> Self {
        Self {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of the row-major matrix `data` whose rows are `cols` long.
    pub fn transposed(data: &'a [T], cols: usize) -> Self {
        Self {
            data,
            row_stride: 1,
            col_stride: cols,
        }
    }

    /// Whether a `rows`×`cols` matrix read through the strides stays inside the slice.
    fn holds(&self, rows: usize, cols: usize) -> bool {
        if rows == 0 || cols == 0 {
            return true;
        }
        let last = (rows - 1)
            .checked_mul(self.row_stride)
            .zip((cols - 1).checked_mul(self.col_stride))
            .and_then(|(a, b)| a.checked_add(b));
        last.is_some_and(|last| last < self.data.len())
            && isize::try_from(self.row_stride.max(self.col_stride)).is_ok()
    }
}

/// The sizes of C[m×n] = A[m×k]·B[k×n].
pub struct Product {
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

impl Product {
    /// C (+ C when `accumulate`) = A·B, C's rows `c_stride` apart, on up to `threads` threads.
    pub fn compute<T: Float>(
        &self,
        c: &mut [T],
        c_stride: usize,
        a: Operand<'_, T>,
        b: Operand<'_, T>,
        accumulate: bool,
        threads: usize,
    ) -> Result<(), ModelError> {
        self.compute_strided(c, (c_stride, 1), a, b, accumulate, threads)
    }

    /// [`Self::compute`] with C's element (i, j) at `i * strides.0 + j * strides.1`. gemm vectorizes
    /// along C's contiguous axis: a C of few columns and many rows is better written column by column.
    pub fn compute_strided<T: Float>(
        &self,
        c: &mut [T],
        (row_stride, col_stride): (usize, usize),
        a: Operand<'_, T>,
        b: Operand<'_, T>,
        accumulate: bool,
        threads: usize,
    ) -> Result<(), ModelError> {
        let Self { m, n, k } = *self;
        if m == 0 || n == 0 {
            return Ok(());
        }
        // The bounds gemm's raw pointers are used within, checked rather than assumed; C's elements
        // must not overlap, as gemm writes them in any order.
        let c_view = Operand {
            data: &*c,
            row_stride,
            col_stride,
        };
        let distinct = (row_stride >= n && col_stride == 1)
            || (col_stride >= m && row_stride == 1)
            || (m == 1 && col_stride >= 1)
            || (n == 1 && row_stride >= 1);
        if !distinct || !c_view.holds(m, n) || !a.holds(m, k) || !b.holds(k, n) {
            return Err(ModelError::Evaluation(format!(
                "a {m}x{k} by {k}x{n} product does not fit its buffers"
            )));
        }
        // gemm packs B on every call, which for a few rows of A (a recurrent step at batch 1, one
        // token of a decoder) costs more than the product itself: those are computed row by row,
        // reading B once, unless B is large enough for several threads to be worth more.
        // A B with contiguous columns (a weight stored [out, in]) is read once by dot products for
        // a few rows (see `by_dots`), where gemm would gather it into panels first.
        if k > 0 && col_stride == 1 && (threads <= 1 || n * k <= 1 << 18) {
            if m <= FEW_ROWS && b.col_stride == 1 {
                few_rows_by_row_major(c, row_stride, a, b, (m, n, k), accumulate);
                return Ok(());
            }
            if self.by_dots() && b.row_stride == 1 && a.col_stride == 1 {
                few_rows_by_column_major(c, row_stride, a, b, (m, n, k), accumulate);
                return Ok(());
            }
        }
        let parallelism = if threads > 1 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        let stride = |s: usize| s as isize;
        // SAFETY: every element gemm reads or writes lies inside the slices checked above (C m×n, A
        // m×k and B k×n through their strides, each stride within isize), C's elements are distinct;
        // C is borrowed mutably, so nothing else aliases it; T is f32 or f64, types gemm has kernels for.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                stride(col_stride),
                stride(row_stride),
                accumulate,
                a.data.as_ptr(),
                stride(a.col_stride),
                stride(a.row_stride),
                b.data.as_ptr(),
                stride(b.col_stride),
                stride(b.row_stride),
                T::from_f64(1.0),
                T::from_f64(1.0),
                false,
                false,
                false,
                parallelism,
            );
        }
        Ok(())
    }
}

/// How many rows of A [`Product::compute_strided`] multiplies without gemm when B is row-major.
const FEW_ROWS: usize = 4;
/// The same when B's columns are contiguous and the products are deep ([`DOTS_DEPTH`]): one dot
/// product per entry of C, B read once.
const FEW_ROWS_BY_DOTS: usize = 16;
/// From this depth a dot product's closing sum across its lanes is small beside its products.
const DOTS_DEPTH: usize = 256;

impl Product {
    /// Whether A (contiguous rows) times a B of contiguous columns is computed by dot products.
    pub fn by_dots(&self) -> bool {
        self.m <= FEW_ROWS || (self.m <= FEW_ROWS_BY_DOTS && self.k >= DOTS_DEPTH)
    }
}

// The two loops below are compiled once per SIMD level and the CPU's is picked at run time (the build
// targets x86-64's baseline). Both take operands already checked to hold their matrices.

/// C (+)= A·B for B with contiguous rows: each row of C computed in strips of [`STRIP`] columns held
/// in registers while every row of B adds its part of the strip (B read once per row of A, C once).
#[multiversion(targets = "simd")]
fn few_rows_by_row_major<T: Float>(
    c: &mut [T],
    c_stride: usize,
    a: Operand<'_, T>,
    b: Operand<'_, T>,
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
) {
    for i in 0..m {
        let c_row = &mut c[i * c_stride..][..n];
        let mut start = 0;
        while start < n {
            let width = STRIP.min(n - start);
            let mut strip = [T::zero(); STRIP];
            if width == STRIP {
                for l in 0..k {
                    let x = a.data[i * a.row_stride + l * a.col_stride];
                    let b_part = &b.data[l * b.row_stride + start..][..STRIP];
                    for lane in 0..STRIP {
                        strip[lane] += x * b_part[lane];
                    }
                }
            } else {
                for l in 0..k {
                    let x = a.data[i * a.row_stride + l * a.col_stride];
                    let b_part = &b.data[l * b.row_stride + start..][..width];
                    for (s, &y) in strip.iter_mut().zip(b_part) {
                        *s += x * y;
                    }
                }
            }
            for (target, &sum) in c_row[start..start + width].iter_mut().zip(&strip) {
                *target = if accumulate { *target + sum } else { sum };
            }
            start += width;
        }
    }
}

/// Columns of C one [`few_rows_by_row_major`] strip computes: four AVX-512 registers of f32.
const STRIP: usize = 64;

/// C (+)= A·B for B with contiguous columns and A with contiguous rows: one dot product per entry of
/// C, in independent lanes so that it vectorizes.
#[multiversion(targets = "simd")]
fn few_rows_by_column_major<T: Float>(
    c: &mut [T],
    c_stride: usize,
    a: Operand<'_, T>,
    b: Operand<'_, T>,
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
) {
    const LANES: usize = 16;
    for j in 0..n {
        let column = &b.data[j * b.col_stride..][..k];
        for i in 0..m {
            let row = &a.data[i * a.row_stride..][..k];
            let mut lanes = [T::zero(); LANES];
            let (row_chunks, column_chunks) = (row.chunks_exact(LANES), column.chunks_exact(LANES));
            let (row_rest, column_rest) = (row_chunks.remainder(), column_chunks.remainder());
            for (x, y) in row_chunks.zip(column_chunks) {
                for lane in 0..LANES {
                    lanes[lane] += x[lane] * y[lane];
                }
            }
            let mut dot = lanes.iter().fold(T::zero(), |sum, &v| sum + v);
            for (&x, &y) in row_rest.iter().zip(column_rest) {
                dot += x * y;
            }
            let target = &mut c[i * c_stride + j];
            *target = if accumulate { *target + dot } else { dot };
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Operand, Product};

    proptest! {
        /// Against the product by definition, with either operand stored transposed and C inside wider
        /// rows, accumulating or not.
        #[test]
        fn equals_the_definition(
            (m, n, k) in (1usize..20, 1usize..9, 0usize..300),
            seed in any::<u64>(),
            transposed in any::<(bool, bool)>(),
            accumulate in any::<bool>(),
        ) {
            let value = |i: usize| (((i as u64).wrapping_mul(seed | 1) >> 7) % 17) as f64 - 8.0;
            let a: Vec<f64> = (0..m * k).map(value).collect();
            let b: Vec<f64> = (0..k * n).map(|i| value(i + 1000)).collect();
            let (a_op, b_op) = (
                if transposed.0 { Operand::transposed(&a, m) } else { Operand::rows(&a, k) },
                if transposed.1 { Operand::transposed(&b, k) } else { Operand::rows(&b, n) },
            );
            let at = |i: usize, j: usize| a_op.data[i * a_op.row_stride + j * a_op.col_stride];
            let bt = |i: usize, j: usize| b_op.data[i * b_op.row_stride + j * b_op.col_stride];
            let stride = n + 2;
            let mut c = vec![1.0; m * stride];
            Product { m, n, k }.compute(&mut c, stride, a_op, b_op, accumulate, 1).unwrap();
            for i in 0..m {
                for j in 0..n {
                    let dot: f64 = (0..k).map(|l| at(i, l) * bt(l, j)).sum();
                    let expected = dot + if accumulate { 1.0 } else { 0.0 };
                    prop_assert_eq!(c[i * stride + j], expected);
                }
                prop_assert_eq!(&c[i * stride + n..i * stride + stride], &[1.0, 1.0]);
            }
        }
    }

    #[test]
    fn operands_too_short_for_their_shape_are_errors() {
        let short = [1f32; 5];
        let mut c = [0f32; 4];
        let product = Product { m: 2, n: 2, k: 3 };
        assert!(
            product
                .compute(
                    &mut c,
                    2,
                    Operand::rows(&short, 3),
                    Operand::rows(&short, 2),
                    false,
                    1
                )
                .is_err()
        );
        let mut short_c = [0f32; 3];
        let six = [1f32; 6];
        assert!(
            product
                .compute(
                    &mut short_c,
                    2,
                    Operand::rows(&six, 3),
                    Operand::rows(&six, 2),
                    false,
                    1
                )
                .is_err()
        );
    }
}

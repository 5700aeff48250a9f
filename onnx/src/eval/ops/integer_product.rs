//! Exact products of small integers held as f32: the 8-bit products of MatMulInteger, ConvInteger and
//! DynamicQuantizeLSTM computed by the float GEMM. A product of two integers below 2^8 in magnitude is
//! below 2^16, and every integer below 2^24 is an f32, so a sum of up to 256 of them is exact in f32:
//! longer sums are cut into slices that deep, each slice's result exact, the slices added in f64.

use super::matrix_product::{Operand, Product};
use crate::ModelError;

/// How many products of integers at most `a_largest` and `b_largest` in magnitude sum exactly in f32.
pub fn exact_depth(a_largest: f32, b_largest: f32) -> usize {
    let magnitude = |v: f32| (v.abs().ceil() as u64).max(1);
    let bound = (1u64 << 24) / magnitude(a_largest).saturating_mul(magnitude(b_largest));
    usize::try_from(bound).unwrap_or(usize::MAX).max(1)
}

/// A·B of integer-valued f32 operands whose entries are within the magnitudes `exact_depth` was
/// computed for: the exact sums, in f64 (row-major, `product.n` per row).
pub fn exact_integer_product(
    a: Operand<'_, f32>,
    b: Operand<'_, f32>,
    product: Product,
    exact_depth: usize,
    threads: usize,
) -> Result<Vec<f64>, ModelError> {
    let Product { m, n, k } = product;
    let mut sums = vec![0f32; m * n];
    if k <= exact_depth {
        product.compute(&mut sums, n, a, b, false, threads)?;
        return Ok(sums.into_iter().map(f64::from).collect());
    }
    let mut total = vec![0f64; m * n];
    for start in (0..k).step_by(exact_depth.max(1)) {
        let depth = exact_depth.min(k - start);
        Product { m, n, k: depth }.compute(
            &mut sums,
            n,
            from(a, start * a.col_stride),
            from(b, start * b.row_stride),
            false,
            threads,
        )?;
        for (t, &s) in total.iter_mut().zip(&sums) {
            *t += f64::from(s);
        }
    }
    Ok(total)
}

/// The matrix `o` starting `offset` elements in.
fn from(o: Operand<'_, f32>, offset: usize) -> Operand<'_, f32> {
    Operand {
        data: o.data.get(offset..).unwrap_or(&[]),
        ..o
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::matrix_product::{Operand, Product};
    use super::{exact_depth, exact_integer_product};

    #[test]
    fn depths_keep_every_sum_below_2_to_the_24() {
        assert_eq!(exact_depth(255.0, 255.0), 258);
        assert_eq!(exact_depth(255.0, 1.0), 65793);
        assert_eq!(exact_depth(1e30, 1e30), 1);
        assert_eq!(exact_depth(0.0, 0.0), 1 << 24);
    }

    proptest! {
        /// Against integer arithmetic, with sums far past 2^24 (where one f32 sum would round) and a
        /// depth that leaves a short last slice.
        #[test]
        fn equals_the_integer_product(
            (m, n, k) in (1usize..4, 1usize..6, 1usize..700),
            seed in any::<u64>(),
        ) {
            let value = |i: usize| {
                let v = (((i as u64).wrapping_mul(seed | 1) >> 11) % 511) as i64 - 255;
                if i.is_multiple_of(3) { 255 } else { v }
            };
            let a: Vec<i64> = (0..m * k).map(value).collect();
            let b: Vec<i64> = (0..k * n).map(|i| value(i + 7919)).collect();
            let (af, bf): (Vec<f32>, Vec<f32>) = (
                a.iter().map(|&v| v as f32).collect(),
                b.iter().map(|&v| v as f32).collect(),
            );
            let sums = exact_integer_product(
                Operand::rows(&af, k),
                Operand::rows(&bf, n),
                Product { m, n, k },
                exact_depth(255.0, 255.0),
                1,
            ).unwrap();
            for i in 0..m {
                for j in 0..n {
                    let expected: i64 = (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum();
                    prop_assert_eq!(sums[i * n + j], expected as f64);
                }
            }
        }
    }
}

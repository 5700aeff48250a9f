//! Functions of one f32 written so that a loop over a slice vectorizes: polynomials and selects, no
//! branches and no library calls (libm's are scalar, and without FMA in the build target even
//! `mul_add` is one). Each is checked against f64's function over its whole useful range below.

/// An integer-valued f32 in 0..=255 as a byte (NaN as 0, as `as u8` reads it): through the f32's bits
/// past 2^23, where the integer is the low bits, since `as u8` saturates one element at a time.
pub fn byte(v: f32) -> u8 {
    let v = if v.is_nan() { 0.0 } else { v };
    ((v + 8_388_608.0).to_bits() & 0xFF) as u8
}

/// erf in f32 as a ratio of two polynomials in x² (the rational approximation Eigen's and XLA's float
/// erf use); beyond |x| = 3.9 erf is ±1 to f32's precision. Within 4e-7 of f64's erf over the whole
/// line.
pub fn erf(x: f32) -> f32 {
    let ratio = erf_ratio(x.clamp(-4.0, 4.0));
    if x.abs() > 3.9 {
        1f32.copysign(x)
    } else {
        ratio
    }
}

fn erf_ratio(x: f32) -> f32 {
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    for c in [
        2.770_681_4e-08,
        -2.101_024e-06,
        -5.692_506_5e-05,
        -7.349_906_3e-04,
        -2.954_600_2e-03,
        -1.609_603_3e-02,
    ] {
        p = p * x2 + c;
    }
    let mut q = -1.456_607_2e-05_f32;
    for c in [
        -2.133_740_6e-04,
        -1.682_827e-03,
        -7.373_329_3e-03,
        -1.426_474e-02,
    ] {
        q = q * x2 + c;
    }
    x * p / q
}

/// GELU with the exact (erf) form: x·(1 + erf(x/√2))/2. Below -2, 1 + erf(x/√2) is under 0.05 and
/// the sum cancels what erf's polynomial got right (7 % off at -4.7); there it is erfc(-x/√2), which
/// keeps its digits.
pub fn gelu(x: f32) -> f32 {
    if x < -2.0 {
        return 0.5 * x * libm::erfcf(-x * std::f32::consts::FRAC_1_SQRT_2);
    }
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// GELU's tanh approximation, x·(1 + tanh(u))/2 with u = √(2/π)·(x + 0.044715·x³), written as
/// x·σ(2u) (the same function): below x ≈ -3, 1 + tanh(u) cancels most of tanh's digits (ONNX Runtime's
/// -7.67e-6 at x = -4.43647, where the function is -7.353e-6).
pub fn gelu_tanh(x: f32) -> f32 {
    const TWO_SQRT_2_OVER_PI: f32 = 1.595_769;
    let z = TWO_SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x);
    // Past e^-88, σ is 0 in f32 (the clamped exp would leave 6e-39): -0 for a large negative x, and NaN
    // for -inf (-inf·0), as the sum form gives them.
    let logistic = if z < -88.0 { 0.0 } else { sigmoid(z) };
    x * logistic
}

/// e^x, as Cephes' expf computes it: x = n·ln 2 + r with |r| ≤ ln 2 / 2 (ln 2 in two parts, so n·ln 2
/// is exact), e^r by a degree-7 polynomial, 2^n through the exponent bits. x is clamped to where e^x
/// and 2^n are normal f32s, [-87, 88]: callers here (the logistic function and tanh) saturate long
/// before either end. NaN stays NaN.
fn exp_clamped(x: f32) -> f32 {
    /// 1.5 · 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = p * r + c;
    }
    let scale = f32::from_bits(((n as i32 + 127) << 23) as u32);
    (p * r * r + r + 1.0) * scale
}

/// The logistic function 1 / (1 + e^-x).
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp_clamped(-x))
}

/// tanh: Cephes' tanhf polynomial below |x| = 0.625, where 1 - 2/(e^2|x| + 1) would cancel, that
/// expression above it.
pub fn tanh(x: f32) -> f32 {
    let z = x * x;
    let mut p = -5.704_988_7e-3_f32;
    for c in [2.063_909e-2, -5.373_971_6e-2, 1.333_144_2e-1, -3.333_328e-1] {
        p = p * z + c;
    }
    let small = (p * z * x + x).copysign(x);
    let large = (1.0 - 2.0 / (exp_clamped(2.0 * x.abs()) + 1.0)).copysign(x);
    if x.abs() < 0.625 { small } else { large }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worst absolute and relative differences of `f` from `exact` over [from, to] at 1/1024 steps.
    fn worst(f: fn(f32) -> f32, exact: fn(f64) -> f64, from: f32, to: f32) -> (f64, f64) {
        let (mut absolute, mut relative) = (0f64, 0f64);
        let mut x = from;
        while x <= to {
            let expected = exact(f64::from(x));
            let difference = (f64::from(f(x)) - expected).abs();
            absolute = absolute.max(difference);
            if expected.abs() > 1e-30 {
                relative = relative.max(difference / expected.abs());
            }
            x += 1.0 / 1024.0;
        }
        (absolute, relative)
    }

    /// erf in f64 (candle's, from the Boost-derived rational approximations), as the reference.
    fn erf_f64(x: f64) -> f64 {
        candle_core::cpu::erf::erf_f64(x)
    }

    #[test]
    fn erf_is_within_4e_7_of_f64s_everywhere() {
        let (absolute, _) = worst(erf, erf_f64, -6.0, 6.0);
        assert!(absolute < 4e-7, "worst absolute error {absolute}");
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(f32::INFINITY), 1.0);
        assert_eq!(erf(f32::NEG_INFINITY), -1.0);
        assert!(erf(f32::NAN).is_nan());
    }

    #[test]
    fn gelu_keeps_its_relative_precision_in_the_negative_tail() {
        let exact = |x: f64| 0.5 * x * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2);
        let (_, relative) = worst(gelu, exact, -12.0, 6.0);
        // At -2, where the sum with erf is still used: its 4e-7 over 1 + erf(-√2) = 0.0455.
        assert!(relative < 2e-5, "worst relative error {relative}");
        // The differential check's case, x = -4.72274: exactly -5.49461e-6, ONNX Runtime 1.32.0 answers
        // -5.4892e-6 and the sum with erf gave -5.9114e-6, outside the suite's tolerance.
        let x = f32::from_bits(3_231_129_777);
        assert!((gelu(x) - -5.49461e-6).abs() < 1e-10, "{}", gelu(x));
    }

    #[test]
    fn gelu_tanh_keeps_its_relative_precision_in_the_negative_tail() {
        let exact = |x: f64| {
            let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044_715 * x * x * x);
            x / (1.0 + (-2.0 * u).exp())
        };
        // Deep in the tail σ(2u) is e^(2u), and u's f32 rounding is multiplied by |2u| (about 50 at -9).
        let (_, relative) = worst(gelu_tanh, exact, -9.0, 6.0);
        assert!(relative < 3e-5, "worst relative error {relative}");
        let (_, near) = worst(gelu_tanh, exact, -4.5, 6.0);
        assert!(near < 5e-6, "worst relative error above -4.5: {near}");
        assert!(gelu_tanh(f32::NAN).is_nan());
        assert_eq!(gelu_tanh(f32::INFINITY), f32::INFINITY);
        assert!(gelu_tanh(f32::NEG_INFINITY).is_nan());
        assert_eq!(gelu_tanh(-1e30).to_bits(), (-0f32).to_bits());
    }

    #[test]
    fn exp_is_within_a_few_ulp_where_it_is_not_clamped() {
        let (_, relative) = worst(exp_clamped, f64::exp, -87.0, 88.0);
        assert!(relative < 3e-7, "worst relative error {relative}");
        assert_eq!(exp_clamped(0.0), 1.0);
        assert!(exp_clamped(f32::NAN).is_nan());
        assert!(exp_clamped(f32::INFINITY).is_finite());
    }

    #[test]
    fn sigmoid_is_within_a_few_ulp_of_f64s() {
        let exact = |x: f64| 1.0 / (1.0 + (-x).exp());
        let (_, relative) = worst(sigmoid, exact, -87.0, 40.0);
        assert!(relative < 4e-7, "worst relative error {relative}");
        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert!(sigmoid(f32::NEG_INFINITY) < 1e-37);
        assert!(sigmoid(f32::NAN).is_nan());
    }

    #[test]
    fn tanh_is_within_a_few_ulp_of_f64s() {
        let (absolute, relative) = worst(tanh, f64::tanh, -20.0, 20.0);
        assert!(relative < 4e-7, "worst relative error {relative}");
        assert!(absolute < 2e-7, "worst absolute error {absolute}");
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert!(tanh(f32::NAN).is_nan());
        assert!(tanh(-0.0).is_sign_negative());
    }

    #[test]
    fn bytes_are_the_integers_as_u8_reads_them() {
        for v in 0..=255u8 {
            assert_eq!(super::byte(f32::from(v)), v);
        }
        assert_eq!(super::byte(f32::NAN), 0);
    }
}

//! The four 8-bit float formats of ONNX (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ), held by the evaluator as f32
//! values that lie on the format's grid. Rounding is to nearest, ties to even, as the ONNX spec says.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Float8 {
    E4M3Fn,
    E4M3FnUz,
    E5M2,
    E5M2FnUz,
}

impl Float8 {
    /// The format of an ONNX element type, if it is one.
    pub fn of(data_type: i32) -> Option<Self> {
        Some(match data_type {
            17 => Float8::E4M3Fn,
            18 => Float8::E4M3FnUz,
            19 => Float8::E5M2,
            20 => Float8::E5M2FnUz,
            _ => return None,
        })
    }

    fn layout(self) -> (u32, i32) {
        match self {
            Float8::E4M3Fn => (3, 7),
            Float8::E4M3FnUz => (3, 8),
            Float8::E5M2 => (2, 15),
            Float8::E5M2FnUz => (2, 16),
        }
    }

    /// The value of a bit pattern.
    pub fn decode(self, bits: u8) -> f32 {
        let (man_bits, bias) = self.layout();
        let exp_bits = 7 - man_bits;
        let sign = if bits & 0x80 != 0 { -1.0 } else { 1.0 };
        let exp = i32::from((bits >> man_bits) & ((1 << exp_bits) - 1) as u8);
        let man = i32::from(bits & ((1 << man_bits) - 1) as u8);
        let max_exp = (1 << exp_bits) - 1;
        match self {
            Float8::E4M3FnUz | Float8::E5M2FnUz if bits == 0x80 => return f32::NAN,
            Float8::E4M3Fn if exp == max_exp && man == (1 << man_bits) - 1 => return f32::NAN,
            Float8::E5M2 if exp == max_exp => {
                return if man == 0 {
                    sign * f32::INFINITY
                } else {
                    f32::NAN
                };
            }
            _ => {}
        }
        let scale = 2f32.powi(-(man_bits as i32));
        let magnitude = if exp == 0 {
            man as f32 * scale * 2f32.powi(1 - bias)
        } else {
            (1.0 + man as f32 * scale) * 2f32.powi(exp - bias)
        };
        sign * magnitude
    }

    /// The largest finite value.
    fn max(self) -> f32 {
        match self {
            Float8::E4M3Fn => 448.0,
            Float8::E4M3FnUz => 240.0,
            Float8::E5M2 | Float8::E5M2FnUz => 57344.0,
        }
    }

    /// `x` rounded onto the format's grid; out of range saturates to ±max, or without `saturate` becomes
    /// infinity (E5M2) or NaN (the others).
    pub fn round(self, x: f32, saturate: bool) -> f32 {
        if x.is_nan() {
            return f32::NAN;
        }
        let overflow = |sign: f32| {
            if saturate {
                sign * self.max()
            } else if self == Float8::E5M2 {
                sign * f32::INFINITY
            } else {
                f32::NAN
            }
        };
        let sign = if x < 0.0 { -1.0 } else { 1.0 };
        let a = x.abs();
        if a.is_infinite() {
            return overflow(sign);
        }
        // Every non-negative finite pattern, by value; ties go to the even pattern.
        let mut best: Option<(f32, u8)> = None;
        for bits in 0u8..0x80 {
            let v = self.decode(bits);
            if !v.is_finite() {
                continue;
            }
            let better = match best {
                None => true,
                Some((b, bb)) => {
                    let (d, db) = ((v - a).abs(), (b - a).abs());
                    d < db || (d == db && bits % 2 == 0 && bb % 2 == 1)
                }
            };
            if better {
                best = Some((v, bits));
            }
        }
        let (value, _) = best.expect("formats have finite values");
        if a > self.max() {
            // Past max: rounds to max only when nearer to it than to the next (unrepresentable) step.
            let (man_bits, _) = self.layout();
            let step = self.max() * 2f32.powi(-(man_bits as i32))
                / (1.0 + 1.0 - 2f32.powi(-(man_bits as i32)));
            if saturate || a < self.max() + step / 2.0 {
                return sign * self.max();
            }
            return overflow(sign);
        }
        let rounded = sign * value;
        if rounded == 0.0 && matches!(self, Float8::E4M3FnUz | Float8::E5M2FnUz) {
            0.0
        } else {
            rounded
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Float8;

    #[test]
    fn known_values_decode() {
        assert_eq!(Float8::E4M3Fn.decode(0x7e), 448.0);
        assert!(Float8::E4M3Fn.decode(0x7f).is_nan());
        assert_eq!(Float8::E5M2.decode(0x7b), 57344.0);
        assert_eq!(Float8::E5M2.decode(0x7c), f32::INFINITY);
        assert!(Float8::E4M3FnUz.decode(0x80).is_nan());
    }

    #[test]
    fn rounding_saturates_or_overflows() {
        assert_eq!(Float8::E4M3Fn.round(1000.0, true), 448.0);
        assert!(Float8::E4M3Fn.round(1000.0, false).is_nan());
        assert_eq!(Float8::E5M2.round(1e6, false), f32::INFINITY);
        assert_eq!(Float8::E4M3Fn.round(0.3, true), 0.3125);
    }
}

//! Element-wise kernels over contiguous f32 tensors on the CPU, written so that the compiler vectorizes
//! them: where candle's generic maps call a scalar function per element (its erf is libm's, a third of
//! the bench BERT's run), these run over the slice in one pass. f16 and bf16 tensors go through f32 a
//! chunk at a time (`half_through_f32`). Every other type, device or layout stays on candle's path; the
//! callers fall back when [`map`] answers `None`.

use candle_core::{DType, Device, Layout, Storage, Tensor};
use multiversion::multiversion;

use super::half_through_f32;
use crate::ModelError;

/// `t` as f32: an f16 or bf16 CPU tensor through `half`'s slice conversion (F16C where the CPU has it;
/// candle converts one element at a time, in software on x86-64's baseline), read in place when it is
/// contiguous; anything else by candle.
pub fn widen(t: &Tensor) -> Result<Tensor, ModelError> {
    use half::slice::HalfFloatSliceExt;
    if !is_half_on_cpu(t) {
        return Ok(t.to_dtype(DType::F32)?);
    }
    let t = t.contiguous()?;
    let mut wide = vec![0f32; t.elem_count()];
    {
        let (storage, layout) = t.storage_and_layout();
        match t.dtype() {
            DType::F16 => super::host::host_slice::<half::f16>(&storage, layout, wide.len())?
                .convert_to_f32_slice(&mut wide),
            _ => super::host::host_slice::<half::bf16>(&storage, layout, wide.len())?
                .convert_to_f32_slice(&mut wide),
        }
    }
    Ok(Tensor::from_vec(wide, t.shape(), t.device())?)
}

/// An f32 CPU tensor `t` as `dtype`, the way back from [`widen`] (rounding to nearest even).
pub fn narrow_to(t: &Tensor, dtype: DType) -> Result<Tensor, ModelError> {
    use half::slice::HalfFloatSliceExt;
    if !matches!(t.device(), Device::Cpu)
        || t.dtype() != DType::F32
        || !matches!(dtype, DType::F16 | DType::BF16)
    {
        return Ok(t.to_dtype(dtype)?);
    }
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let values = f32_slice(&storage, layout, t.elem_count())?;
    Ok(match dtype {
        DType::F16 => {
            let mut narrow = vec![half::f16::ZERO; values.len()];
            narrow.convert_from_f32_slice(values);
            Tensor::from_vec(narrow, t.shape(), t.device())?
        }
        _ => {
            let mut narrow = vec![half::bf16::ZERO; values.len()];
            narrow.convert_from_f32_slice(values);
            Tensor::from_vec(narrow, t.shape(), t.device())?
        }
    })
}

/// The elements of a contiguous f32 CPU tensor's storage from `layout`'s start, `len` of them.
pub fn f32_slice<'s>(
    storage: &'s Storage,
    layout: &Layout,
    len: usize,
) -> Result<&'s [f32], ModelError> {
    super::host::host_slice(storage, layout, len)
}

/// `f` applied to every element, when `x` is a contiguous f32, f16 or bf16 tensor on the CPU (the half
/// types computed in f32 and rounded once, as ONNX Runtime's CPU provider computes them).
pub fn map(x: &Tensor, f: impl Fn(f32) -> f32) -> Option<Result<Tensor, ModelError>> {
    if is_half_on_cpu(x) && x.is_contiguous() {
        return Some(half_through_f32::map(x, &f));
    }
    if !matches!(x.device(), Device::Cpu) || x.dtype() != DType::F32 || !x.is_contiguous() {
        return None;
    }
    let (storage, layout) = x.storage_and_layout();
    let out = f32_slice(&storage, layout, x.elem_count()).map(|values| {
        let mut out = Vec::with_capacity(values.len());
        apply(values, &mut out, &f);
        out
    });
    Some(out.and_then(|out| Ok(Tensor::from_vec(out, x.shape(), &Device::Cpu)?)))
}

/// `f(a, b)` with NumPy broadcasting, when both are contiguous f32 tensors on the CPU (or both f16, or
/// both bf16, computed in f32) and one repeats whole inside the other: the same shape, or one whose dims
/// (leading ones aside) end the other's (a bias over rows, a scalar). Other broadcasts, types and
/// layouts answer `None`.
pub fn binary(
    a: &Tensor,
    b: &Tensor,
    f: impl Fn(f32, f32) -> f32,
) -> Option<Result<Tensor, ModelError>> {
    let half = is_half_on_cpu(a) && a.dtype() == b.dtype();
    let plain = |t: &Tensor| {
        matches!(t.device(), Device::Cpu) && (t.dtype() == DType::F32 || half) && t.is_contiguous()
    };
    if !plain(a) || !plain(b) {
        return None;
    }
    let repeats_in = |small: &Tensor, big: &Tensor| {
        let dims = small.dims();
        let first = dims.iter().position(|&d| d != 1).unwrap_or(dims.len());
        small.rank() <= big.rank() && big.dims().ends_with(&dims[first..])
    };
    let b_repeats = repeats_in(b, a);
    if !b_repeats && !repeats_in(a, b) {
        return None;
    }
    if half {
        return Some(half_through_f32::repeated(a, b, b_repeats, &f));
    }
    Some(repeated(a, b, b_repeats, f))
}

/// Whether `t` is an f16 or bf16 tensor on the CPU: computed in f32 by this module's callers.
pub fn is_half_on_cpu(t: &Tensor) -> bool {
    matches!(t.device(), Device::Cpu) && matches!(t.dtype(), DType::F16 | DType::BF16)
}

/// `f(a, b)` over contiguous f32 CPU tensors of which one repeats whole inside the other (`b` inside
/// `a` when `b_repeats`).
fn repeated(
    a: &Tensor,
    b: &Tensor,
    b_repeats: bool,
    f: impl Fn(f32, f32) -> f32,
) -> Result<Tensor, ModelError> {
    let (a_storage, a_layout) = a.storage_and_layout();
    let (b_storage, b_layout) = b.storage_and_layout();
    let x = f32_slice(&a_storage, a_layout, a.elem_count())?;
    let y = f32_slice(&b_storage, b_layout, b.elem_count())?;
    let (big, shape) = if b_repeats {
        (x, a.shape())
    } else {
        (y, b.shape())
    };
    let small = if b_repeats { y } else { x };
    // Extended from exact-size iterators, not zeroed first: a zeroed block is written twice, and a
    // large one faults in fresh pages.
    let mut out = Vec::with_capacity(big.len());
    if b_repeats {
        apply_repeated(big, small, &mut out, &f);
    } else {
        apply_repeated(big, small, &mut out, &|y, x| f(x, y));
    }
    Ok(Tensor::from_vec(out, shape, &Device::Cpu)?)
}

/// `x`·a[c] + b[c] for each channel c of `x` [N, C, ...], when `x` is a contiguous f32 tensor on the CPU
/// and `a` and `b` hold one value per channel: an inference BatchNormalization in one pass.
pub fn per_channel_affine(x: &Tensor, a: &[f32], b: &[f32]) -> Option<Result<Tensor, ModelError>> {
    let channels = *x.dims().get(1)?;
    let plain = matches!(x.device(), Device::Cpu) && x.dtype() == DType::F32;
    if !plain || !x.is_contiguous() || a.len() != channels || b.len() != channels {
        return None;
    }
    let run = || -> Result<Tensor, ModelError> {
        let (storage, layout) = x.storage_and_layout();
        let values = f32_slice(&storage, layout, x.elem_count())?;
        let plane = x.dims()[2..].iter().product::<usize>();
        let mut out = Vec::with_capacity(values.len());
        if plane > 0 {
            for (index, plane_values) in values.chunks(plane).enumerate() {
                let c = index % channels;
                apply_affine(plane_values, a[c], b[c], &mut out);
            }
        }
        Ok(Tensor::from_vec(out, x.shape(), &Device::Cpu)?)
    };
    Some(run())
}

// The loops below are compiled once per SIMD level (SSE2 to AVX-512) and the one this CPU has is
// picked at run time: the build targets x86-64's baseline, whose four-lane SSE would leave most of an
// AVX-512 core's width unused.

#[multiversion(targets = "simd")]
fn apply<F: Fn(f32) -> f32>(values: &[f32], out: &mut Vec<f32>, f: &F) {
    out.extend(values.iter().map(|&v| f(v)));
}

/// `f` applied to every element of `values` in place.
#[multiversion(targets = "simd")]
pub fn apply_in_place<F: Fn(f32) -> f32>(values: &mut [f32], f: &F) {
    for v in values {
        *v = f(*v);
    }
}

/// `values`·a + b, appended to `out`.
#[multiversion(targets = "simd")]
fn apply_affine(values: &[f32], a: f32, b: f32, out: &mut Vec<f32>) {
    out.extend(values.iter().map(|&v| v * a + b));
}

/// `f(big, small)` with `small` repeated along `big` (a scalar, or whole rows of it).
#[multiversion(targets = "simd")]
fn apply_repeated<F: Fn(f32, f32) -> f32>(big: &[f32], small: &[f32], out: &mut Vec<f32>, f: &F) {
    if let [scalar] = *small {
        out.extend(big.iter().map(|&x| f(x, scalar)));
    } else if !small.is_empty() {
        for big in big.chunks(small.len()) {
            out.extend(big.iter().zip(small).map(|(&x, &y)| f(x, y)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_and_narrowing_half_floats_agree_with_candle() {
        let values: Vec<f32> = (0..70).map(|i| (i as f32 - 35.0) * 0.377 + 1e-3).collect();
        let x = Tensor::from_vec(values, (7, 10), &Device::Cpu).unwrap();
        for dtype in [DType::F16, DType::BF16] {
            let half = x.to_dtype(dtype).unwrap();
            let wide = widen(&half).unwrap();
            assert_eq!(wide.dims(), &[7, 10]);
            let by_candle = half.to_dtype(DType::F32).unwrap();
            assert_eq!(
                wide.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                by_candle.flatten_all().unwrap().to_vec1::<f32>().unwrap()
            );
            let back = narrow_to(&x, dtype).unwrap();
            assert_eq!(back.dtype(), dtype);
            let diff = (back.to_dtype(DType::F32).unwrap() - half.to_dtype(DType::F32).unwrap())
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert_eq!(diff, 0.0, "{dtype:?}");
        }
    }

    #[test]
    fn binary_repeats_the_smaller_operand_on_either_side() {
        let x = Tensor::new(&[[1f32, 2., 3.], [4., 5., 6.]], &Device::Cpu).unwrap();
        let bias = Tensor::new(&[[10f32, 20., 30.]], &Device::Cpu).unwrap();
        let sub = |a: f32, b: f32| a - b;
        let left = binary(&x, &bias, sub).unwrap().unwrap();
        assert_eq!(
            left.to_vec2::<f32>().unwrap(),
            [[-9., -18., -27.], [-6., -15., -24.]]
        );
        let right = binary(&bias, &x, sub).unwrap().unwrap();
        assert_eq!(
            right.to_vec2::<f32>().unwrap(),
            [[9., 18., 27.], [6., 15., 24.]]
        );
        let scalar = Tensor::new(2f32, &Device::Cpu).unwrap();
        let scaled = binary(&scalar, &x, |a, b| a * b).unwrap().unwrap();
        assert_eq!(scaled.dims(), &[2, 3]);
        // A column against rows is a broadcast of another kind: candle's.
        let column = Tensor::new(&[[1f32], [2.]], &Device::Cpu).unwrap();
        assert!(binary(&x, &column, sub).is_none());
        // A higher-rank operand of ones would change the result's rank: candle's too.
        let ones = Tensor::new(&[[[1f32, 1., 1.]]], &Device::Cpu).unwrap();
        assert!(binary(&x, &ones, sub).is_none());
    }

    #[test]
    fn half_operands_are_computed_in_f32_and_rounded_once_as_candle_rounds_them() {
        let values = |offset: f32| -> Vec<f32> {
            (0..4096)
                .map(|i| ((i as f32) * 0.7331 + offset).sin() * 300.0 * (i % 7) as f32)
                .collect()
        };
        let (x, y) = (values(0.0), values(1.3));
        for dtype in [DType::F16, DType::BF16] {
            let half = |v: &[f32], shape: &[usize]| {
                Tensor::from_vec(v.to_vec(), shape, &Device::Cpu)
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap()
            };
            // A bias of 37 (chunks of the larger operand start mid-run), of 64, and a whole operand.
            for (a, b) in [
                (half(&x[..30 * 37], &[30, 37]), half(&y[..37], &[37])),
                (half(&x, &[64, 64]), half(&y[..64], &[64])),
                (half(&x, &[64, 64]), half(&y, &[64, 64])),
            ] {
                let bits = |t: &Tensor| t.to_dtype(DType::F32).unwrap().flatten_all().unwrap();
                let sum = binary(&a, &b, |p, q| p + q).unwrap().unwrap();
                assert_eq!(sum.dtype(), dtype);
                let by_candle = a.broadcast_add(&b).unwrap();
                assert_eq!(
                    bits(&sum).to_vec1::<f32>().unwrap(),
                    bits(&by_candle).to_vec1::<f32>().unwrap()
                );
                let product = binary(&a, &b, |p, q| p * q).unwrap().unwrap();
                let by_candle = a.broadcast_mul(&b).unwrap();
                assert_eq!(
                    bits(&product).to_vec1::<f32>().unwrap(),
                    bits(&by_candle).to_vec1::<f32>().unwrap()
                );
                let doubled = map(&a, |v| v * 2.0).unwrap().unwrap();
                assert_eq!(doubled.dtype(), dtype);
                assert_eq!(
                    bits(&doubled).to_vec1::<f32>().unwrap(),
                    bits(&(&a + &a).unwrap()).to_vec1::<f32>().unwrap()
                );
            }
        }
    }

    #[test]
    fn map_answers_for_contiguous_f32_and_half_floats_on_the_cpu() {
        let x = Tensor::new(&[[1f32, -2.], [3., -4.]], &Device::Cpu).unwrap();
        let doubled = map(&x, |v| 2.0 * v).unwrap().unwrap();
        assert_eq!(doubled.to_vec2::<f32>().unwrap(), [[2., -4.], [6., -8.]]);
        assert!(map(&x.t().unwrap(), |v| v).is_none());
        assert!(map(&x.to_dtype(DType::F64).unwrap(), |v| v).is_none());
        assert!(map(&x.to_dtype(DType::F16).unwrap(), |v| v).is_some());
    }
}

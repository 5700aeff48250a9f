//! DFT and STFT. Signals are computed in f64 and written back in the input's element type; lengths
//! that are powers of two use a radix-2 FFT, other lengths Bluestein's chirp-z transform on one, so a
//! long odd-length signal from an untrusted model costs O(n log n), not O(n²).

use candle_core::{DType, Tensor};

use super::super::node::{Node, optional, required};
use super::signal::scalar_input;
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// The most values one DFT or STFT may produce; a larger request is refused before anything is allocated.
const MAX_OUTPUT_ELEMENTS: usize = 1 << 28;
/// The longest transform: Bluestein's work buffers are four times the length in complex f64.
const MAX_DFT_LENGTH: usize = 1 << 24;
/// Below this length a direct DFT is as fast as Bluestein's three FFTs.
const DIRECT_DFT_MAX: usize = 64;

fn evaluation(message: impl Into<String>) -> ModelError {
    ModelError::Evaluation(message.into())
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Complex {
    re: f64,
    im: f64,
}

impl Complex {
    fn new(re: f64, im: f64) -> Self {
        Self { re, im }
    }

    /// e^(i·angle).
    fn unit(angle: f64) -> Self {
        Self::new(angle.cos(), angle.sin())
    }

    fn mul(self, other: Self) -> Self {
        Self::new(
            self.re * other.re - self.im * other.im,
            self.re * other.im + self.im * other.re,
        )
    }

    fn add(self, other: Self) -> Self {
        Self::new(self.re + other.re, self.im + other.im)
    }

    fn sub(self, other: Self) -> Self {
        Self::new(self.re - other.re, self.im - other.im)
    }

    fn conj(self) -> Self {
        Self::new(self.re, -self.im)
    }

    fn scale(self, factor: f64) -> Self {
        Self::new(self.re * factor, self.im * factor)
    }
}

/// In-place radix-2 FFT of a power-of-two length, unnormalized; `sign` is -1 (forward) or +1.
fn radix2(values: &mut [Complex], sign: f64) {
    let n = values.len();
    if n <= 1 {
        return;
    }
    let bits = n.trailing_zeros();
    for i in 0..n {
        let j = i.reverse_bits() >> (usize::BITS - bits);
        if i < j {
            values.swap(i, j);
        }
    }
    let twiddles: Vec<Complex> = (0..n / 2)
        .map(|k| Complex::unit(sign * 2.0 * std::f64::consts::PI * k as f64 / n as f64))
        .collect();
    let mut len = 2;
    while len <= n {
        let stride = n / len;
        for start in (0..n).step_by(len) {
            for k in 0..len / 2 {
                let w = twiddles[k * stride];
                let a = values[start + k];
                let b = values[start + k + len / 2].mul(w);
                values[start + k] = a.add(b);
                values[start + k + len / 2] = a.sub(b);
            }
        }
        len *= 2;
    }
}

/// A transform of one length and direction, with its tables computed once for every line of a tensor.
enum Plan {
    Radix2 {
        sign: f64,
    },
    Direct {
        twiddles: Vec<Complex>,
    },
    Bluestein {
        chirp: Vec<Complex>,
        kernel: Vec<Complex>,
    },
}

impl Plan {
    fn new(n: usize, inverse: bool) -> Self {
        let sign = if inverse { 1.0 } else { -1.0 };
        if n.is_power_of_two() {
            return Plan::Radix2 { sign };
        }
        let angle = |k: u64, period: u64| {
            sign * std::f64::consts::PI * 2.0 * (k % period) as f64 / period as f64
        };
        if n <= DIRECT_DFT_MAX {
            let twiddles = (0..n as u64)
                .map(|k| Complex::unit(angle(k, n as u64)))
                .collect();
            return Plan::Direct { twiddles };
        }
        // x_j·e^(s·2πi·jk/n) = c_k · Σ_j (x_j·c_j)·conj(c_{k-j}) with c_k = e^(s·πi·k²/n): a convolution,
        // done by a power-of-two FFT. k² is reduced mod 2n first so that the angle keeps its precision.
        let period = 2 * n as u64;
        let chirp: Vec<Complex> = (0..n as u64)
            .map(|k| Complex::unit(angle(k * k % period, period)))
            .collect();
        let m = (2 * n - 1).next_power_of_two();
        let mut kernel = vec![Complex::default(); m];
        for (k, c) in chirp.iter().enumerate() {
            kernel[k] = c.conj();
            if k > 0 {
                kernel[m - k] = c.conj();
            }
        }
        radix2(&mut kernel, -1.0);
        Plan::Bluestein { chirp, kernel }
    }

    /// Transforms `line` (length n) in place, unnormalized.
    fn run(&self, line: &mut [Complex]) {
        match self {
            Plan::Radix2 { sign } => radix2(line, *sign),
            Plan::Direct { twiddles } => {
                let n = line.len();
                let input = line.to_vec();
                for (k, out) in line.iter_mut().enumerate() {
                    *out = input
                        .iter()
                        .enumerate()
                        .fold(Complex::default(), |sum, (j, x)| {
                            sum.add(x.mul(twiddles[j * k % n]))
                        });
                }
            }
            Plan::Bluestein { chirp, kernel } => {
                let m = kernel.len();
                let mut work = vec![Complex::default(); m];
                for ((w, x), c) in work.iter_mut().zip(line.iter()).zip(chirp) {
                    *w = x.mul(*c);
                }
                radix2(&mut work, -1.0);
                for (w, k) in work.iter_mut().zip(kernel) {
                    *w = w.mul(*k);
                }
                radix2(&mut work, 1.0);
                let norm = 1.0 / m as f64;
                for ((out, w), c) in line.iter_mut().zip(&work).zip(chirp) {
                    *out = w.scale(norm).mul(*c);
                }
            }
        }
    }
}

/// A tensor whose last dimension holds one (real) or two (real, imaginary) parts, as complex values.
struct Signal {
    values: Vec<Complex>,
}

impl Signal {
    /// The signal's dimensions, its last (the real and imaginary parts) left out: known before its values
    /// are read, so that what the transform will hold is counted first (`has_room`).
    fn dims(x: &Tensor) -> Result<Vec<usize>, ModelError> {
        match x.dims() {
            [signal @ .., 1 | 2] if !signal.is_empty() => Ok(signal.to_vec()),
            dims => Err(evaluation(format!(
                "the signal must have rank 2 or more and a last dimension of 1 (real) or 2 \
                 (complex); its shape is {dims:?}"
            ))),
        }
    }

    /// `x`'s values as complex numbers (its shape checked by [`Signal::dims`]).
    fn read(x: &Tensor) -> Result<Self, ModelError> {
        let parts = if Self::is_complex(x) { 2 } else { 1 };
        let flat = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let values = flat
            .chunks_exact(parts)
            .map(|c| Complex::new(c[0], if parts == 2 { c[1] } else { 0.0 }))
            .collect();
        Ok(Self { values })
    }

    fn is_complex(x: &Tensor) -> bool {
        x.dims().last() == Some(&2)
    }
}

/// `dims` with `[.., 2]` appended, as a tensor of `dtype`.
fn write(values: &[Complex], dims: &[usize], like: &Tensor) -> Result<Tensor, ModelError> {
    let flat: Vec<f64> = values.iter().flat_map(|c| [c.re, c.im]).collect();
    let mut shape = dims.to_vec();
    shape.push(2);
    Ok(Tensor::from_vec(flat, shape, like.device())?.to_dtype(like.dtype())?)
}

/// The product of some of a tensor's dims; a tensor with a zero dim may have others whose product
/// overflows.
fn checked_product(dims: &[usize]) -> Result<usize, ModelError> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| evaluation(format!("the dims {dims:?} overflow")))
}

fn checked_elements(dims: &[usize]) -> Result<usize, ModelError> {
    let count = dims
        .iter()
        .try_fold(2usize, |acc, &d| acc.checked_mul(d))
        .filter(|&c| c <= MAX_OUTPUT_ELEMENTS);
    count.ok_or_else(|| {
        evaluation(format!(
            "an output of shape {dims:?} x 2 is above kiln's limit of {MAX_OUTPUT_ELEMENTS} values"
        ))
    })
}

/// Refuses a transform of length `n` of the signal `x` into `values` output values where the run has no
/// room for what it holds at once: the signal read as complex f64 (through two f64 copies), the results
/// computed as complex f64, their copy as f64 values and the tensor they become (`write`), one line and
/// the plan's buffers. A long transform of a short signal (DFT's `dft_length`, a value the client sends)
/// is mostly the plan: Bluestein's chirp, kernel and work line, the last two the next power of two past
/// 2n, and a radix-2 FFT's twiddles (half its length) made on each run.
fn has_room(n: usize, values: usize, x: &Tensor) -> Result<(), ModelError> {
    const COMPLEX: u128 = 16;
    let (n, values) = (n as u128, values as u128);
    let signal = x.elem_count() as u128 * 32;
    let output = values * 8 * 2 + values * x.dtype().size_in_bytes() as u128;
    let plan = if n.is_power_of_two() {
        n / 2 * COMPLEX
    } else if n <= DIRECT_DFT_MAX as u128 {
        // The twiddles, and the line's copy each run.
        2 * n * COMPLEX
    } else {
        let m = (2 * n - 1).next_power_of_two();
        (n + 2 * m + m / 2) * COMPLEX
    };
    crate::eval::run_memory::node_has_room(signal + output + n * COMPLEX + plan)
}

/// The DFT's axis: an attribute (default 1) before opset 20, the optional third input (default -2) since.
/// Either counts the trailing real/imaginary dimension, which may not itself be the axis.
fn dft_axis(node: &Node<'_>, inputs: &[Option<Tensor>], rank: usize) -> Result<usize, ModelError> {
    let axis = if node.opset >= 20 {
        match optional(inputs, 2) {
            Some(t) => scalar_input(t, "axis")?,
            None => -2,
        }
    } else {
        node.int("axis", 1)
    };
    let resolved = if axis < 0 { axis + rank as i64 } else { axis };
    if resolved < 0 || resolved > rank as i64 - 2 {
        return Err(evaluation(format!(
            "DFT axis {axis} is out of range for an input of rank {rank} (the last dimension holds \
             the real and imaginary parts)"
        )));
    }
    Ok(resolved as usize)
}

/// DFT (opsets 17 and 20): along one axis, zero-padded or truncated to `dft_length`, optionally inverse
/// (normalized by 1/n) or one-sided (the first n/2+1 bins).
pub fn dft(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let dims = Signal::dims(x)?;
    let axis = dft_axis(node, inputs, x.rank())?;
    let inverse = node.int("inverse", 0) != 0;
    let onesided = node.int("onesided", 0) != 0;
    if inverse && onesided {
        return Err(evaluation(
            "DFT with both inverse and onesided set (a complex-to-real inverse) is not implemented",
        ));
    }
    if onesided && Signal::is_complex(x) {
        return Err(evaluation(
            "a one-sided DFT of a complex signal is not defined",
        ));
    }
    let available = dims[axis];
    let n = match optional(inputs, 1) {
        Some(t) => positive_length(scalar_input(t, "dft_length")?, "dft_length")?,
        None if available > 0 => available,
        None => return Err(evaluation("DFT of an empty axis")),
    };
    let kept = if onesided { n / 2 + 1 } else { n };
    let mut out_dims = dims.clone();
    out_dims[axis] = kept;
    let values = checked_elements(&out_dims)?;
    check_length(n)?;
    has_room(n, values, x)?;
    let outer = checked_product(&dims[..axis])?;
    let inner = checked_product(&dims[axis + 1..])?;
    let signal = Signal::read(x)?;
    let plan = Plan::new(n, inverse);
    let norm = if inverse { 1.0 / n as f64 } else { 1.0 };
    let mut out = vec![Complex::default(); outer * kept * inner];
    let mut line = vec![Complex::default(); n];
    for o in 0..outer {
        for i in 0..inner {
            for (t, slot) in line.iter_mut().enumerate() {
                *slot = if t < available {
                    signal.values[(o * available + t) * inner + i]
                } else {
                    Complex::default()
                };
            }
            plan.run(&mut line);
            for (k, value) in line.iter().take(kept).enumerate() {
                out[(o * kept + k) * inner + i] = value.scale(norm);
            }
        }
    }
    Ok(vec![write(&out, &out_dims, x)?])
}

fn check_length(n: usize) -> Result<(), ModelError> {
    if n > MAX_DFT_LENGTH {
        return Err(evaluation(format!(
            "a transform of length {n} is above kiln's limit of {MAX_DFT_LENGTH}"
        )));
    }
    Ok(())
}

fn positive_length(value: i64, what: &str) -> Result<usize, ModelError> {
    usize::try_from(value)
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| evaluation(format!("{what} must be positive, not {value}")))
}

/// STFT (opset 17): frames of `frame_length` every `frame_step` samples of a `[batch, length, 1|2]` signal,
/// each multiplied by the window and transformed; one-sided (n/2+1 bins) by default.
pub fn stft(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let dims = Signal::dims(x)?;
    let [batch, length] = dims[..] else {
        return Err(evaluation(format!(
            "the STFT signal must be [batch, length, 1 or 2], not {:?}",
            x.dims()
        )));
    };
    let step = positive_length(
        scalar_input(required(inputs, 1)?, "frame_step")?,
        "frame_step",
    )?;
    let window = match optional(inputs, 2) {
        Some(w) if w.rank() == 1 => Some(w.to_dtype(DType::F64)?.to_vec1::<f64>()?),
        Some(w) => {
            return Err(evaluation(format!(
                "the STFT window must be 1-D, not {:?}",
                w.dims()
            )));
        }
        None => None,
    };
    let frame = match (optional(inputs, 3), &window) {
        (Some(t), _) => positive_length(scalar_input(t, "frame_length")?, "frame_length")?,
        (None, Some(w)) => positive_length(w.len() as i64, "the window's length")?,
        (None, None) => positive_length(length as i64, "the signal's length")?,
    };
    if let Some(window) = window.as_ref().filter(|w| w.len() != frame) {
        return Err(evaluation(format!(
            "the window has {} values but frame_length is {frame}",
            window.len()
        )));
    }
    if frame > length {
        return Err(evaluation(format!(
            "frame_length {frame} is longer than the signal ({length})"
        )));
    }
    let frames = (length - frame) / step + 1;
    let onesided = node.int("onesided", 1) != 0;
    if onesided && Signal::is_complex(x) {
        return Err(evaluation(
            "a one-sided STFT of a complex signal is not defined",
        ));
    }
    let bins = if onesided { frame / 2 + 1 } else { frame };
    let out_dims = [batch, frames, bins];
    let values = checked_elements(&out_dims)?;
    check_length(frame)?;
    has_room(frame, values, x)?;
    // Made once `frame` is known to be within the signal: it is a value the client sends.
    let window = window.unwrap_or_else(|| vec![1.0; frame]);
    let signal = Signal::read(x)?;
    let plan = Plan::new(frame, false);
    let mut out = Vec::with_capacity(batch * frames * bins);
    let mut line = vec![Complex::default(); frame];
    for b in 0..batch {
        for f in 0..frames {
            let start = b * length + f * step;
            for ((slot, value), w) in line
                .iter_mut()
                .zip(&signal.values[start..start + frame])
                .zip(&window)
            {
                *slot = value.scale(*w);
            }
            plan.run(&mut line);
            out.extend_from_slice(&line[..bins]);
        }
    }
    Ok(vec![write(&out, &out_dims, x)?])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, i64s, int, run};
    use super::*;

    /// The textbook O(n²) DFT, the reference the fast paths are checked against.
    fn naive(values: &[Complex], inverse: bool) -> Vec<Complex> {
        let n = values.len();
        let sign = if inverse { 1.0 } else { -1.0 };
        (0..n)
            .map(|k| {
                values
                    .iter()
                    .enumerate()
                    .fold(Complex::default(), |s, (j, x)| {
                        let angle = sign * 2.0 * std::f64::consts::PI * (j * k) as f64 / n as f64;
                        s.add(x.mul(Complex::unit(angle)))
                    })
            })
            .collect()
    }

    #[test]
    fn every_plan_matches_the_textbook_dft() {
        for n in [1, 2, 3, 8, 12, 64, 65, 100, 128, 257] {
            for inverse in [false, true] {
                let input: Vec<Complex> = (0..n)
                    .map(|k| Complex::new((k as f64 * 0.37).sin(), (k as f64 * 0.11).cos()))
                    .collect();
                let mut fast = input.clone();
                Plan::new(n, inverse).run(&mut fast);
                for (a, b) in fast.iter().zip(naive(&input, inverse)) {
                    assert!(
                        (a.re - b.re).abs() < 1e-9 && (a.im - b.im).abs() < 1e-9,
                        "n={n}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_real_signal_transforms_along_the_attribute_axis() {
        // [1, 2, 3, 4] → [10, -2+2i, -2, -2-2i]
        let out = run("DFT", 17, vec![], &[f32s(&[1., 2., 3., 4.], &[1, 4, 1])]);
        assert_eq!(out[0].dims(), &[1, 4, 2]);
        let v = out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(v, vec![10., 0., -2., 2., -2., 0., -2., -2.]);
    }

    #[test]
    fn onesided_keeps_half_the_bins_and_dft_length_pads() {
        let out = run(
            "DFT",
            20,
            vec![int("onesided", 1)],
            &[f32s(&[1., 2., 3.], &[3, 1]), i64s(&[4]), i64s(&[0])],
        );
        assert_eq!(out[0].dims(), &[3, 2]);
        let v = out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(v, vec![6., 0., -2., -2., 2., 0.]);
    }

    #[test]
    fn the_inverse_undoes_the_forward_transform() {
        let x = f32s(&[1., 0.5, -2., 0., 3., 1., 0., -1., 2., 2.], &[1, 5, 2]);
        let forward = run("DFT", 17, vec![], std::slice::from_ref(&x));
        let back = run(
            "DFT",
            17,
            vec![int("inverse", 1)],
            &[Some(forward[0].clone())],
        );
        let (a, b) = (
            back[0].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            x.unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-5), "{a:?}");
    }

    #[test]
    fn bad_axes_and_lengths_are_errors_not_panics() {
        let node_err = |opset, attrs, inputs: &[Option<Tensor>]| {
            let proto = crate::proto::NodeProto {
                op_type: Some("DFT".into()),
                attribute: attrs,
                ..Default::default()
            };
            dft(&Node::new(&proto, opset), inputs)
                .unwrap_err()
                .to_string()
        };
        let x = f32s(&[1., 2.], &[2, 1]);
        assert!(
            node_err(17, vec![int("axis", 1)], std::slice::from_ref(&x)).contains("out of range")
        );
        assert!(node_err(20, vec![], &[x.clone(), i64s(&[0])]).contains("must be positive"));
        assert!(node_err(20, vec![], &[x.clone(), None, i64s(&[])]).contains("axis"));
        assert!(node_err(17, vec![], &[f32s(&[1., 2., 3.], &[1, 3])]).contains("last dimension"));
        assert!(node_err(20, vec![], &[x, i64s(&[1 << 40])]).contains("above kiln's limit"));
    }

    /// A long transform of a short signal, its length a value the client sends: refused under a run's
    /// memory limit before its plan and results are allocated, on each kind of plan (the evaluator's
    /// fuzzer found a 10-sample signal's DFT taking 16 MB at its peak under a 2 MB limit, answered).
    #[test]
    fn a_transform_longer_than_the_runs_room_is_refused_before_it_is_allocated() {
        use std::collections::HashMap;

        use candle_core::Device;

        use crate::eval::Session;
        use crate::eval::control_flow::tests::{body, model, node, value};
        use crate::proto::tensor_proto::DataType;

        let graph = body(
            vec![node("DFT", &["x", "n"], &["y"], vec![int("axis", 0)])],
            vec![],
            vec![value("x", DataType::Float), value("n", DataType::Int64)],
            vec![value("y", DataType::Float)],
        );
        let session = Session::new(&model(graph, 17), None, &Device::Cpu)
            .unwrap()
            .with_memory_limit(Some(2 << 20));
        let feeds = |n: i64| {
            HashMap::from([
                ("x".to_owned(), f32s(&[0.5; 20], &[10, 2]).unwrap()),
                ("n".to_owned(), Tensor::new(n, &Device::Cpu).unwrap()),
            ])
        };
        // Bluestein's (the plan 2^18 complex values for 100,000) and the radix-2 FFT's (the results).
        for n in [100_000, 1 << 17] {
            let refused = session.run(&feeds(n)).unwrap_err();
            assert!(
                matches!(refused, ModelError::MemoryLimit { limit, .. } if limit == 2 << 20),
                "{n}: {refused}"
            );
        }
        let answered = session.run(&feeds(1000)).unwrap();
        assert_eq!(answered[0].1.dims(), [1000, 2]);
    }

    #[test]
    fn stft_frames_the_signal_and_applies_the_window() {
        // Frames [0,1,2,3] and [2,3,4,5] with a window zeroing the last sample.
        let signal = f32s(&[0., 1., 2., 3., 4., 5.], &[1, 6, 1]);
        let window = f32s(&[1., 1., 1., 0.], &[4]);
        let out = run("STFT", 17, vec![], &[signal, i64s(&[2]), window]);
        assert_eq!(out[0].dims(), &[1, 2, 3, 2]);
        let v = out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // DFT of [0,1,2,0]: [3, -2-i, 1]; of [2,3,4,0]: [9, -2-3i, 3].
        let expected = [3., 0., -2., -1., 1., 0., 9., 0., -2., -3., 3., 0.];
        assert!(
            v.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-5),
            "{v:?}"
        );
    }
}

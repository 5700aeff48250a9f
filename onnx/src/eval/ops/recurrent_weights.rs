//! A recurrent operator's W or R and its product with a batch of rows (the inputs, or the states): the
//! float matrices of ONNX's LSTM, GRU and RNN, or the 8-bit ones of ONNX Runtime's DynamicQuantizeLSTM,
//! whose products quantize their left operand to u8 first, as ONNX Runtime computes them.

use std::ops::Range;

use candle_core::{DType, Tensor};

use super::super::node::required;
use super::f32_math::byte;
use super::int8_gemm::PackedInt8;
use super::integer_product::{exact_depth, exact_integer_product};
use super::matrix_product::{Operand, Product};
use super::recurrent_cell::Real;
use crate::ModelError;

/// One direction's W ([gates·hidden, input]) or R ([gates·hidden, hidden]).
pub enum Weights<'a, T> {
    /// Row-major [gates·hidden, cols]: ONNX's layout, multiplied as its transpose in place.
    Float(&'a [T]),
    /// DynamicQuantizeLSTM's layout, [cols, gates·hidden] row-major: each value less its zero point
    /// (an integer, exact in f32), and the scale of each gate row (one for all of them when the node
    /// gives one).
    Quantized {
        values: &'a [f32],
        scales: &'a [f32],
        /// How many columns of a product sum exactly in f32 ([`exact_depth`]).
        exact_depth: usize,
        /// The same matrix packed for the CPU's 8-bit products, where it has them.
        packed: Option<&'a PackedInt8>,
    },
}

impl<T: Real> Weights<'_, T> {
    /// `out` (+)= A·Wᵀ restricted to gate rows `gates` of W: A is [rows, cols] row-major, `out`'s rows
    /// `out_stride` apart hold one column per gate row.
    #[allow(clippy::too_many_arguments)]
    pub fn multiply(
        &self,
        a: &[T],
        rows: usize,
        cols: usize,
        gates: Range<usize>,
        out: &mut [T],
        out_stride: usize,
        accumulate: bool,
        threads: usize,
    ) -> Result<(), ModelError> {
        match self {
            Self::Float(w) => Product {
                m: rows,
                n: gates.len(),
                k: cols,
            }
            .compute(
                out,
                out_stride,
                Operand::rows(a, cols),
                Operand::transposed(&w[gates.start * cols..gates.end * cols], cols),
                accumulate,
                threads,
            ),
            Self::Quantized {
                values,
                scales,
                exact_depth,
                packed,
            } => {
                let all_gates = values.len().checked_div(cols).unwrap_or(0);
                let n = gates.len();
                let (quantized, zero_point, a_scale) = quantize(&a[..rows * cols]);
                let sums: Vec<f32> = match packed {
                    Some(packed) if gates == (0..all_gates) => packed
                        .multiply(&quantized, rows, zero_point as i64)
                        .into_iter()
                        .map(|s| s as f32)
                        .collect(),
                    _ => {
                        let less_zero: Vec<f32> = quantized
                            .iter()
                            .map(|&q| f32::from(q) - zero_point)
                            .collect();
                        exact_integer_product(
                            Operand::rows(&less_zero, cols),
                            Operand {
                                data: values.get(gates.start..).unwrap_or(&[]),
                                row_stride: all_gates,
                                col_stride: 1,
                            },
                            Product {
                                m: rows,
                                n,
                                k: cols,
                            },
                            *exact_depth,
                            threads,
                        )?
                        .into_iter()
                        .map(|s| s as f32)
                        .collect()
                    }
                };
                let scale = |gate: usize| scales[if scales.len() == 1 { 0 } else { gate }];
                for (row, sums) in sums.chunks(n.max(1)).enumerate() {
                    let target = &mut out[row * out_stride..][..n];
                    for ((t, &sum), gate) in target.iter_mut().zip(sums).zip(gates.clone()) {
                        // ONNX Runtime's output step: the exact integer sum as f32 times a·w scales.
                        let value = T::from_f64(f64::from(sum * (a_scale * scale(gate))));
                        *t = if accumulate { *t + value } else { value };
                    }
                }
                Ok(())
            }
        }
    }
}

/// DynamicQuantizeLSTM's W and R of every direction, read from inputs 1 and 2 ([directions, cols,
/// gates·hidden], 8-bit), their scales (inputs 8 and 10) and zero points (9 and 11): one per direction
/// or one per direction and gate row.
pub struct Quantized {
    w: Vec<f32>,
    r: Vec<f32>,
    /// Each direction's W and R packed for the CPU's 8-bit products, where it has them.
    packed: Vec<(PackedInt8, PackedInt8)>,
    /// [`exact_depth`] for the largest of W's and R's values.
    exact_depth: usize,
    w_scales: Vec<f32>,
    r_scales: Vec<f32>,
    /// Scales per direction: 1, or gates·hidden.
    per_direction: usize,
    directions: usize,
    gates: usize,
}

impl Quantized {
    pub fn read(
        inputs: &[Option<Tensor>],
        directions: usize,
        gates: usize,
    ) -> Result<Self, ModelError> {
        let scales = |index: usize, what: &str| -> Result<(Vec<f32>, Vec<f32>), ModelError> {
            let scale = required(inputs, index)?;
            let zero_point = required(inputs, index + 1)?;
            let fits = match scale.dims() {
                [d] => *d == directions,
                [d, g] => *d == directions && *g == gates,
                _ => false,
            };
            if !fits {
                return Err(ModelError::Evaluation(format!(
                    "{what}'s scale has shape {:?}; [{directions}] or [{directions}, {gates}] expected",
                    scale.dims()
                )));
            }
            if zero_point.dims() != scale.dims() {
                return Err(ModelError::Evaluation(format!(
                    "{what}'s zero point has shape {:?}, its scale {:?}",
                    zero_point.dims(),
                    scale.dims()
                )));
            }
            let flat = |t: &Tensor, dtype: DType| t.to_dtype(dtype)?.flatten_all();
            Ok((
                flat(scale, DType::F32)?.to_vec1::<f32>()?,
                flat(zero_point, DType::F32)?.to_vec1::<f32>()?,
            ))
        };
        let (w_scales, w_zero) = scales(8, "W")?;
        let (r_scales, r_zero) = scales(10, "R")?;
        let per_direction = w_scales.len() / directions.max(1);
        if r_scales.len() != w_scales.len() {
            return Err(ModelError::Evaluation(
                "W's and R's scales must both be per direction or both per gate row".into(),
            ));
        }
        // One pass from the stored integers (kiln holds int8 as i64, uint8 as u8), row by row of
        // gates, so no element pays for a division to find its zero point.
        // Each direction's matrix is packed from the stored integers first, where the CPU has 8-bit
        // products.
        let less_zero = |index: usize,
                         zero: &[f32],
                         packed: &mut Vec<Option<PackedInt8>>|
         -> Result<Vec<f32>, ModelError> {
            let t = required(inputs, index)?.flatten_all()?;
            let mut values: Vec<f32> = match t.dtype() {
                DType::I64 => t.to_vec1::<i64>()?.into_iter().map(|v| v as f32).collect(),
                DType::U8 => t.to_vec1::<u8>()?.into_iter().map(f32::from).collect(),
                _ => t.to_dtype(DType::F32)?.to_vec1::<f32>()?,
            };
            let per_matrix = values.len() / directions.max(1);
            for (dir, matrix) in values.chunks_mut(per_matrix.max(1)).enumerate() {
                let zero = &zero[dir * per_direction..(dir + 1) * per_direction];
                let cols = matrix.len() / gates.max(1);
                packed.push(PackedInt8::pack(matrix, cols, gates, zero));
                if zero.iter().all(|&z| z == 0.0) {
                    continue;
                }
                for row in matrix.chunks_mut(gates.max(1)) {
                    for (gate, v) in row.iter_mut().enumerate() {
                        *v -= zero[if per_direction == 1 { 0 } else { gate }];
                    }
                }
            }
            Ok(values)
        };
        let (mut w_packed, mut r_packed) = (Vec::new(), Vec::new());
        let w = less_zero(1, &w_zero, &mut w_packed)?;
        let r = less_zero(2, &r_zero, &mut r_packed)?;
        let packed = w_packed
            .into_iter()
            .zip(r_packed)
            .map(|(w, r)| w.zip(r))
            .collect::<Option<Vec<_>>>()
            .filter(|p| p.len() == directions)
            .unwrap_or_default();
        let largest = w.iter().chain(&r).fold(0f32, |m, v| m.max(v.abs()));
        Ok(Self {
            w,
            r,
            packed,
            exact_depth: exact_depth(255.0, largest),
            w_scales,
            r_scales,
            per_direction,
            directions,
            gates,
        })
    }

    /// Whether weights read once fit a run's directions and gate rows (a node's attributes and weight
    /// shapes fix both, so they do).
    pub fn check(&self, directions: usize, gates: usize) -> Result<(), ModelError> {
        if (self.directions, self.gates) == (directions, gates) {
            return Ok(());
        }
        Err(ModelError::Evaluation(format!(
            "DynamicQuantizeLSTM's weights were read for {} directions of {} gate rows, not {directions} of {gates}",
            self.directions, self.gates
        )))
    }

    /// Direction `dir`'s W and R.
    pub fn direction<T>(&self, dir: usize) -> (Weights<'_, T>, Weights<'_, T>) {
        let per = self.per_direction;
        let (w_len, r_len) = (
            self.w.len() / self.directions.max(1),
            self.r.len() / self.directions.max(1),
        );
        (
            Weights::Quantized {
                values: &self.w[dir * w_len..(dir + 1) * w_len],
                scales: &self.w_scales[dir * per..(dir + 1) * per],
                exact_depth: self.exact_depth,
                packed: self.packed.get(dir).map(|(w, _)| w),
            },
            Weights::Quantized {
                values: &self.r[dir * r_len..(dir + 1) * r_len],
                scales: &self.r_scales[dir * per..(dir + 1) * per],
                exact_depth: self.exact_depth,
                packed: self.packed.get(dir).map(|(_, r)| r),
            },
        )
    }
}

/// `values` quantized to u8 as ONNX Runtime's dynamic quantization does before a u8·s8 product: the
/// range widened to include 0, scale (max - min)/255 (1 when the range is empty), zero point -min/scale
/// rounded half to even, each value x/scale + zero point rounded half to even and clamped to 0..=255.
/// Returns the quantized values, the zero point and the scale.
fn quantize<T: Real>(values: &[T]) -> (Vec<u8>, f32, f32) {
    let floats: Vec<f32> = values.iter().map(|&v| v.to_f64() as f32).collect();
    let (min, max) = floats
        .iter()
        .fold((0f32, 0f32), |(l, h), &v| (l.min(v), h.max(v)));
    let scale = if max == min { 1.0 } else { (max - min) / 255.0 };
    let zero_point = (-min / scale).clamp(0.0, 255.0).round_ties_even();
    let mut quantized = Vec::with_capacity(floats.len());
    quantize_into(&floats, scale, zero_point, &mut quantized);
    (quantized, zero_point, scale)
}

/// Compiled once per SIMD level (rounding half to even is one instruction from SSE4.1 on, a call to
/// `rintf` on x86-64's baseline).
#[multiversion::multiversion(targets = "simd")]
fn quantize_into(values: &[f32], scale: f32, zero_point: f32, out: &mut Vec<u8>) {
    out.extend(values.iter().map(|&v| {
        let q = (v / scale)
            .clamp(-zero_point, 255.0 - zero_point)
            .round_ties_even();
        byte(q + zero_point)
    }));
}

#[cfg(test)]
mod tests {
    use super::quantize;

    #[test]
    fn quantization_spans_the_range_with_zero_exact() {
        let (q, zero, scale) = quantize(&[-1.0f32, 0.0, 0.5, 3.0]);
        assert!((scale - 4.0 / 255.0).abs() < 1e-9);
        // Zero point round(1 / scale) = round(63.75) = 64: 0 maps to it exactly.
        assert_eq!((q, zero), (vec![0, 64, 96, 255], 64.0));
        let (q, zero, scale) = quantize(&[0.0f32, 0.0]);
        assert_eq!((q, zero, scale), (vec![0, 0], 0.0, 1.0));
        // All positive: the range starts at 0, the zero point is 0.
        let (q, zero, _) = quantize(&[1.0f32, 4.0]);
        assert_eq!((q, zero), (vec![64, 255], 0.0));
    }

    /// A first step is exact in both engines' terms (its input integers 0..=255 quantize with scale 1,
    /// the zero initial state with scale 1): DynamicQuantizeLSTM then equals the float LSTM on the
    /// dequantized weights, with one scale per direction or one per gate row.
    #[test]
    fn a_first_step_equals_the_float_lstm_on_dequantized_weights() {
        use candle_core::{DType, Device, Tensor};

        use super::super::super::node::Node;
        use super::super::recurrent::{dynamic_quantize_lstm, lstm};
        use super::super::testing::{f32s, flat};

        let (input, hidden, gates) = (3usize, 2usize, 8usize);
        let x = f32s(&[0.0, 255.0, 17.0], &[1, 1, input]);
        let q = |len: usize, salt: usize| -> Vec<i8> {
            (0..len)
                .map(|i| ((i * 37 + salt * 11) % 255) as i8)
                .collect()
        };
        let (w_q, r_q) = (q(input * gates, 1), q(hidden * gates, 2));
        let proto = crate::proto::NodeProto::default();
        let node = Node::new(&proto, 17);
        for per_gate in [false, true] {
            let scale = |salt: usize| -> Vec<f32> {
                let n = if per_gate { gates } else { 1 };
                (0..n)
                    .map(|j| 0.001 * (1 + (j + salt) % 5) as f32)
                    .collect()
            };
            let (w_scale, r_scale) = (scale(0), scale(3));
            let zero = |n: usize| -> Vec<i8> { (0..n).map(|j| (j % 3) as i8 - 1).collect() };
            let (w_zero, r_zero) = (zero(w_scale.len()), zero(r_scale.len()));
            // The float LSTM's W and R, [1, gates, cols]: DynamicQuantizeLSTM's [1, cols, gates] transposed.
            let dequantized = |q: &[i8], cols: usize, scale: &[f32], zero: &[i8]| -> Vec<f32> {
                let pick = |g: usize| if scale.len() == 1 { 0 } else { g };
                let mut out = vec![0f32; gates * cols];
                for c in 0..cols {
                    for g in 0..gates {
                        let v = f32::from(q[c * gates + g]) - f32::from(zero[pick(g)]);
                        out[g * cols + c] = v * scale[pick(g)];
                    }
                }
                out
            };
            let int8 = |values: &[i8], shape: &[usize]| {
                let t = Tensor::from_vec(
                    values.iter().map(|&v| i64::from(v)).collect::<Vec<_>>(),
                    shape,
                    &Device::Cpu,
                )
                .unwrap();
                Some(t.to_dtype(DType::I64).unwrap())
            };
            let scale_shape = |s: &[f32]| {
                if s.len() == 1 {
                    vec![1]
                } else {
                    vec![1, gates]
                }
            };
            let inputs = [
                x.clone(),
                int8(&w_q, &[1, input, gates]),
                int8(&r_q, &[1, hidden, gates]),
                None,
                None,
                None,
                None,
                None,
                f32s(&w_scale, &scale_shape(&w_scale)),
                int8(&w_zero, &scale_shape(&w_scale)),
                f32s(&r_scale, &scale_shape(&r_scale)),
                int8(&r_zero, &scale_shape(&r_scale)),
            ];
            let quantized = dynamic_quantize_lstm(&node, &inputs).unwrap();
            let float = lstm(
                &node,
                &[
                    x.clone(),
                    f32s(
                        &dequantized(&w_q, input, &w_scale, &w_zero),
                        &[1, gates, input],
                    ),
                    f32s(
                        &dequantized(&r_q, hidden, &r_scale, &r_zero),
                        &[1, gates, hidden],
                    ),
                ],
            )
            .unwrap();
            for (a, b) in quantized.iter().zip(&float) {
                for (a, b) in flat(a).iter().zip(flat(b)) {
                    assert!((a - b).abs() < 1e-6, "{a} vs {b} (per gate: {per_gate})");
                }
            }
        }
    }
}

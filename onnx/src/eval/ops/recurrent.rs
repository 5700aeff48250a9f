//! The recurrent operators LSTM, GRU and RNN: forward, reverse or bidirectional over a sequence, with
//! per-batch `sequence_lens`, initial states, LSTM peepholes, GRU's `linear_before_reset`, `clip`, and the
//! batch-first `layout` of opset 14. Computed on the CPU in f32 (f64 for double models) by
//! [`recurrent_cell`](super::recurrent_cell); the outputs Y, Y_h (and Y_c for LSTM) come back in the
//! input's type and on its device.

use candle_core::{DType, Device, Tensor};

use super::super::node::{Node, int_values, optional, required};
use super::host::{element_count, host_slice};
use super::recurrent_activation;
use super::recurrent_cell::Real;
use super::recurrent_cell::{Cell, Direction, Sequence, State, Weights};
use super::recurrent_weights::Quantized;
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

pub fn lstm(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let input_forget = node.int("input_forget", 0) != 0;
    run(node, inputs, Kind::float(Cell::Lstm { input_forget }))
}

/// ONNX Runtime's DynamicQuantizeLSTM (domain com.microsoft): an LSTM whose W and R are 8-bit,
/// [directions, cols, 4·hidden], with scales and zero points (inputs 8-11); each product quantizes its
/// float operand to u8 first, as ONNX Runtime computes it, so the results are ONNX Runtime's.
pub fn dynamic_quantize_lstm(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let input_forget = node.int("input_forget", 0) != 0;
    let kind = Kind {
        cell: Cell::Lstm { input_forget },
        quantized: true,
    };
    if required(inputs, 0)?.dtype() != DType::F32 {
        return Err(invalid(
            "DynamicQuantizeLSTM's X must be float32".to_owned(),
        ));
    }
    run(node, inputs, kind)
}

/// A node's cell, and whether its weights are DynamicQuantizeLSTM's.
#[derive(Clone, Copy)]
struct Kind {
    cell: Cell,
    quantized: bool,
}

impl Kind {
    fn float(cell: Cell) -> Self {
        Self {
            cell,
            quantized: false,
        }
    }
}

pub fn gru(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let linear_before_reset = node.int("linear_before_reset", 0) != 0;
    run(
        node,
        inputs,
        Kind::float(Cell::Gru {
            linear_before_reset,
        }),
    )
}

pub fn rnn(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    run(node, inputs, Kind::float(Cell::Rnn))
}

fn invalid(message: String) -> ModelError {
    ModelError::Evaluation(message)
}

/// Sizes of one node, checked against each other.
struct Dims {
    seq: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    directions: usize,
    /// Batch-first tensors (`layout` = 1).
    batch_first: bool,
}

impl Dims {
    /// The row of X[t, b] (or X[b, t] batch-first) among X's rows of `input` values.
    fn row(&self, t: usize, b: usize) -> usize {
        if self.batch_first {
            b * self.seq + t
        } else {
            t * self.batch + b
        }
    }

    /// Offset of state[d, b, 0] (or state[b, d, 0] batch-first): initial_h, initial_c, Y_h, Y_c.
    fn state_offset(&self, d: usize, b: usize) -> usize {
        let row = if self.batch_first {
            b * self.directions + d
        } else {
            d * self.batch + b
        };
        row * self.hidden
    }

    /// Offset of Y[t, d, b, 0] (or Y[b, t, d, 0] batch-first).
    fn y_offset(&self, t: usize, d: usize, b: usize) -> usize {
        let row = if self.batch_first {
            (b * self.seq + t) * self.directions + d
        } else {
            (t * self.directions + d) * self.batch + b
        };
        row * self.hidden
    }

    fn y_dims(&self) -> Vec<usize> {
        if self.batch_first {
            vec![self.batch, self.seq, self.directions, self.hidden]
        } else {
            vec![self.seq, self.directions, self.batch, self.hidden]
        }
    }

    fn state_dims(&self) -> Vec<usize> {
        if self.batch_first {
            vec![self.batch, self.directions, self.hidden]
        } else {
            vec![self.directions, self.batch, self.hidden]
        }
    }
}

fn expect_dims(t: &Tensor, expected: &[usize], what: &str) -> Result<(), ModelError> {
    if t.dims() != expected {
        return Err(invalid(format!(
            "{what} has shape {:?}, expected {expected:?}",
            t.dims()
        )));
    }
    Ok(())
}

fn directions(node: &Node<'_>) -> Result<(usize, bool), ModelError> {
    match node.string("direction").as_deref().unwrap_or("forward") {
        "forward" => Ok((1, false)),
        "reverse" => Ok((1, true)),
        "bidirectional" => Ok((2, false)),
        other => Err(invalid(format!("unknown direction {other:?}"))),
    }
}

/// Reads and checks the sizes from X, W and R, the attributes, and the optional inputs' shapes.
fn dims(node: &Node<'_>, inputs: &[Option<Tensor>], kind: Kind) -> Result<Dims, ModelError> {
    let cell = kind.cell;
    let x = required(inputs, 0)?;
    let w = required(inputs, 1)?;
    let r = required(inputs, 2)?;
    let batch_first = match node.int("layout", 0) {
        0 => false,
        1 if node.opset >= 14 => true,
        other => return Err(invalid(format!("layout {other} is not supported"))),
    };
    let (directions, _) = directions(node)?;
    let &[a, b, input] = x.dims() else {
        return Err(invalid(format!("X must have rank 3, not {:?}", x.dims())));
    };
    let (seq, batch) = if batch_first { (b, a) } else { (a, b) };
    let hidden = match (r.dims(), kind.quantized) {
        (&[_, _, hidden], false) | (&[_, hidden, _], true) => hidden,
        (dims, _) => return Err(invalid(format!("R must have rank 3, not {dims:?}"))),
    };
    if node.has("hidden_size") && node.int("hidden_size", 0) != hidden as i64 {
        return Err(invalid(format!(
            "hidden_size {} does not match R's shape {:?}",
            node.int("hidden_size", 0),
            r.dims()
        )));
    }
    let gates = cell.gates() * hidden;
    if kind.quantized {
        expect_dims(w, &[directions, input, gates], "W")?;
        expect_dims(r, &[directions, hidden, gates], "R")?;
    } else {
        expect_dims(w, &[directions, gates, input], "W")?;
        expect_dims(r, &[directions, gates, hidden], "R")?;
    }
    let d = Dims {
        seq,
        batch,
        input,
        hidden,
        directions,
        batch_first,
    };
    if let Some(bias) = optional(inputs, 3) {
        expect_dims(bias, &[directions, 2 * gates], "B")?;
    }
    if let Some(lens) = optional(inputs, 4) {
        expect_dims(lens, &[batch], "sequence_lens")?;
    }
    for (index, name) in [(5, "initial_h"), (6, "initial_c")] {
        if let Some(state) = optional(inputs, index) {
            expect_dims(state, &d.state_dims(), name)?;
        }
    }
    if let Some(p) = optional(inputs, 7) {
        expect_dims(p, &[directions, 3 * hidden], "P")?;
    }
    element_count(&d.y_dims(), "Y")?;
    // With an empty sequence Y is empty, but the states still hold one vector per batch entry.
    element_count(&d.state_dims(), "Y_h")?;
    element_count(&[directions, gates, input + hidden], "the weights")?;
    // Every gate's input part at every step is computed before the loop.
    element_count(&[seq, batch, gates], "the gates of every step")?;
    Ok(d)
}

/// The `clip` threshold, when set: a positive number, since it bounds gate inputs to [-clip, clip].
fn clip_threshold(node: &Node<'_>) -> Result<Option<f64>, ModelError> {
    if !node.has("clip") {
        return Ok(None);
    }
    let clip = f64::from(node.float("clip", 0.0));
    if clip.is_nan() || clip < 0.0 {
        return Err(invalid(format!("clip {clip} must not be negative")));
    }
    Ok(Some(clip))
}

/// Per-batch sequence lengths, each within 0..=seq.
fn sequence_lengths(inputs: &[Option<Tensor>], d: &Dims) -> Result<Vec<usize>, ModelError> {
    let Some(lens) = optional(inputs, 4) else {
        return Ok(vec![d.seq; d.batch]);
    };
    int_values(lens)?
        .into_iter()
        .map(|len| {
            usize::try_from(len)
                .ok()
                .filter(|&l| l <= d.seq)
                .ok_or_else(|| invalid(format!("sequence length {len} is outside 0..={}", d.seq)))
        })
        .collect()
}

/// A tensor as a contiguous CPU tensor of `T`'s type, and back.
fn as_host<T: Real>(t: &Tensor) -> Result<Tensor, ModelError> {
    Ok(t.to_device(&Device::Cpu)?
        .to_dtype(T::DTYPE)?
        .contiguous()?)
}

/// An optional input's values in `T`, or zeros of `len`.
fn values_or_zeros<T: Real>(
    inputs: &[Option<Tensor>],
    index: usize,
    len: usize,
) -> Result<Vec<T>, ModelError> {
    match optional(inputs, index) {
        Some(t) => Ok(as_host::<T>(t)?.flatten_all()?.to_vec1::<T>()?),
        None => Ok(vec![T::from_f64(0.0); len]),
    }
}

fn run(node: &Node<'_>, inputs: &[Option<Tensor>], kind: Kind) -> Out {
    let x = required(inputs, 0)?;
    let outputs = if x.dtype() == DType::F64 {
        run_in::<f64>(node, inputs, kind)?
    } else {
        run_in::<f32>(node, inputs, kind)?
    };
    outputs
        .into_iter()
        .map(|t| Ok(t.to_dtype(x.dtype())?.to_device(x.device())?))
        .collect()
}

/// The outputs Y, Y_h (and Y_c for LSTM) computed in `T`, on the CPU.
fn run_in<T: Real>(node: &Node<'_>, inputs: &[Option<Tensor>], kind: Kind) -> Out {
    let cell = kind.cell;
    let d = dims(node, inputs, kind)?;
    let (_, reverse) = directions(node)?;
    let gates = cell.gates() * d.hidden;
    let bias = values_or_zeros::<T>(inputs, 3, d.directions * 2 * gates)?;
    let peepholes = values_or_zeros::<T>(inputs, 7, d.directions * 3 * d.hidden)?;
    let state_len = d.directions * d.batch * d.hidden;
    let mut y_h = values_or_zeros::<T>(inputs, 5, state_len)?;
    let mut y_c = values_or_zeros::<T>(inputs, 6, state_len)?;
    let lengths = sequence_lengths(inputs, &d)?;
    let acts = recurrent_activation::parse(
        node.strings("activations"),
        &node.floats("activation_alpha").unwrap_or_default(),
        &node.floats("activation_beta").unwrap_or_default(),
        cell.default_activations(),
        d.directions,
    )?;
    let clip = clip_threshold(node)?;
    let per = cell.default_activations().len();
    let x = as_host::<T>(required(inputs, 0)?)?;
    let (x_storage, x_layout) = x.storage_and_layout();
    let x_values = host_slice::<T>(&x_storage, x_layout, x.elem_count())?;
    // A float node's W and R are read in place as `T`; a quantized node's are read by `Quantized`.
    let (quantized, float_weights) = if kind.quantized {
        // Read once per session: the weights are the model's constants.
        let sources = [1, 2, 8, 9, 10, 11]
            .into_iter()
            .map(|i| required(inputs, i))
            .collect::<Result<Vec<_>, _>>()?;
        let quantized = node.derive(&sources, || Quantized::read(inputs, d.directions, gates))?;
        quantized.check(d.directions, gates)?;
        (Some(quantized), None)
    } else {
        let (w, r) = (
            as_host::<T>(required(inputs, 1)?)?,
            as_host::<T>(required(inputs, 2)?)?,
        );
        (None, Some((w, r)))
    };
    let guards = float_weights.as_ref().map(|(w, r)| {
        (
            w.storage_and_layout(),
            r.storage_and_layout(),
            w.elem_count(),
            r.elem_count(),
        )
    });
    let (w_values, r_values): (&[T], &[T]) = match &guards {
        Some(((w_storage, w_layout), (r_storage, r_layout), w_len, r_len)) => (
            host_slice::<T>(w_storage, w_layout, *w_len)?,
            host_slice::<T>(r_storage, r_layout, *r_len)?,
        ),
        None => (&[], &[]),
    };
    let row = |t: usize, b: usize| d.row(t, b);
    let sequence = Sequence {
        x: x_values,
        input: d.input,
        rows: d.seq * d.batch,
        batch: d.batch,
        lengths: &lengths,
        row: &row,
    };
    let threads = candle_core::utils::get_num_threads();
    // Steps past a batch entry's length stay zero in Y, as onnxruntime leaves them.
    let mut y = vec![T::from_f64(0.0); element_count(&d.y_dims(), "Y")?];
    for dir in 0..d.directions {
        let (w, r) = match &quantized {
            Some(q) => q.direction(dir),
            None => (
                Weights::Float(&w_values[dir * gates * d.input..(dir + 1) * gates * d.input]),
                Weights::Float(&r_values[dir * gates * d.hidden..(dir + 1) * gates * d.hidden]),
            ),
        };
        let direction = Direction {
            cell,
            w,
            r,
            wb: &bias[dir * 2 * gates..dir * 2 * gates + gates],
            rb: &bias[dir * 2 * gates + gates..(dir + 1) * 2 * gates],
            p: &peepholes[dir * 3 * d.hidden..(dir + 1) * 3 * d.hidden],
            acts: &acts[dir * per..(dir + 1) * per],
            clip,
            hidden: d.hidden,
            backwards: reverse || dir == 1,
        };
        let mut state = State {
            h: gather_state(&y_h, &d, dir),
            c: gather_state(&y_c, &d, dir),
        };
        direction.run(&sequence, &mut state, threads, |t, b, h| {
            let yo = d.y_offset(t, dir, b);
            y[yo..yo + d.hidden].copy_from_slice(h);
        })?;
        for b in 0..d.batch {
            let s = d.state_offset(dir, b);
            let own = b * d.hidden..(b + 1) * d.hidden;
            y_h[s..s + d.hidden].copy_from_slice(&state.h[own.clone()]);
            y_c[s..s + d.hidden].copy_from_slice(&state.c[own]);
        }
    }
    let mut out = vec![
        Tensor::from_vec(y, d.y_dims(), &Device::Cpu)?,
        Tensor::from_vec(y_h, d.state_dims(), &Device::Cpu)?,
    ];
    if matches!(cell, Cell::Lstm { .. }) {
        out.push(Tensor::from_vec(y_c, d.state_dims(), &Device::Cpu)?);
    }
    Ok(out)
}

/// Direction `dir`'s states of every batch entry, [batch, hidden], from Y_h's or Y_c's layout.
fn gather_state<T: Real>(states: &[T], d: &Dims, dir: usize) -> Vec<T> {
    (0..d.batch)
        .flat_map(|b| {
            let s = d.state_offset(dir, b);
            states[s..s + d.hidden].iter().copied()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, flat, run as run_op, string};
    use super::*;
    use crate::proto::AttributeProto;

    #[test]
    fn rnn_with_identity_weights_accumulates() {
        // hidden 1, input 1, W = R = 1, f = Relu: h_t = x_t + h_{t-1}.
        let acts = AttributeProto {
            name: Some("activations".to_owned()),
            strings: vec![b"Relu".to_vec().into()],
            r#type: Some(8),
            ..Default::default()
        };
        let x = f32s(&[1.0, 2.0, 3.0], &[3, 1, 1]);
        let one = f32s(&[1.0], &[1, 1, 1]);
        let out = run_op("RNN", 14, vec![acts], &[x, one.clone(), one]);
        assert_eq!(flat(&out[0]), vec![1.0, 3.0, 6.0]);
        assert_eq!(flat(&out[1]), vec![6.0]);
    }

    #[test]
    fn reverse_direction_respects_sequence_lengths() {
        let acts = AttributeProto {
            name: Some("activations".to_owned()),
            strings: vec![b"Relu".to_vec().into()],
            r#type: Some(8),
            ..Default::default()
        };
        // batch 2; second entry has length 1, so its later steps stay zero.
        let x = f32s(&[1.0, 10.0, 2.0, 20.0, 3.0, 30.0], &[3, 2, 1]);
        let one = f32s(&[1.0], &[1, 1, 1]);
        let lens = Some(Tensor::new(&[3i32, 1], &candle_core::Device::Cpu).unwrap());
        let inputs = [x, one.clone(), one, None, lens];
        let out = run_op(
            "RNN",
            14,
            vec![acts, string("direction", "reverse")],
            &inputs,
        );
        assert_eq!(flat(&out[0]), vec![6.0, 10.0, 5.0, 0.0, 3.0, 0.0]);
        assert_eq!(flat(&out[1]), vec![6.0, 10.0]);
    }

    #[test]
    fn lstm_gru_shapes_and_bidirectional_layout() {
        let x = f32s(&[0.5; 2 * 3 * 2], &[2, 3, 2]); // batch-first: batch 2, seq 3, input 2
        let w = f32s(&[0.1; 2 * 4 * 4 * 2], &[2, 16, 2]);
        let r = f32s(&[0.1; 2 * 4 * 4 * 4], &[2, 16, 4]);
        let attrs = || {
            vec![
                string("direction", "bidirectional"),
                super::super::testing::int("layout", 1),
            ]
        };
        let out = run_op("LSTM", 14, attrs(), &[x.clone(), w, r]);
        assert_eq!(out[0].dims(), &[2, 3, 2, 4]);
        assert_eq!(out[1].dims(), &[2, 2, 4]);
        assert_eq!(out[2].dims(), &[2, 2, 4]);
        let w = f32s(&[0.1; 2 * 3 * 4 * 2], &[2, 12, 2]);
        let r = f32s(&[0.1; 2 * 3 * 4 * 4], &[2, 12, 4]);
        let out = run_op("GRU", 14, attrs(), &[x, w, r]);
        assert_eq!(out.len(), 2);
        // Both directions see the same constant input, so their final states agree.
        let h = flat(&out[1]);
        assert!((h[0] - h[4]).abs() < 1e-6);
    }

    #[test]
    fn mismatched_shapes_are_errors_not_panics() {
        let proto = crate::proto::NodeProto::default();
        let node = Node::new(&proto, 14);
        let x = f32s(&[0.0; 6], &[3, 1, 2]);
        let w = f32s(&[0.0; 4], &[1, 4, 1]); // input 1, but X has 2
        let r = f32s(&[0.0; 4], &[1, 4, 1]);
        assert!(lstm(&node, &[x.clone(), w, r.clone()]).is_err());
        let lens = Some(Tensor::new(&[7i64], &candle_core::Device::Cpu).unwrap());
        let w = f32s(&[0.0; 2], &[1, 1, 2]);
        let r = f32s(&[0.0; 1], &[1, 1, 1]);
        assert!(rnn(&node, &[x, w, r, None, lens]).is_err());
    }

    #[test]
    fn hostile_clip_and_empty_sequences_are_errors() {
        let proto = crate::proto::NodeProto {
            attribute: vec![AttributeProto {
                name: Some("clip".to_owned()),
                f: Some(-1.0),
                r#type: Some(1),
                ..Default::default()
            }],
            ..Default::default()
        };
        let one = f32s(&[1.0], &[1, 1, 1]);
        assert!(
            rnn(
                &Node::new(&proto, 14),
                &[one.clone(), one.clone(), one.clone()]
            )
            .is_err()
        );
        // No steps, but 2^40 batch entries: Y is empty, the states would not be.
        let dev = candle_core::Device::Cpu;
        let x = Some(Tensor::zeros((0, 1usize << 40, 1), candle_core::DType::F32, &dev).unwrap());
        let proto = crate::proto::NodeProto::default();
        assert!(rnn(&Node::new(&proto, 14), &[x, one.clone(), one]).is_err());
    }
}

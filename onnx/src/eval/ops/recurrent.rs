//! The recurrent operators LSTM, GRU and RNN: forward, reverse or bidirectional over a sequence, with
//! per-batch `sequence_lens`, initial states, LSTM peepholes, GRU's `linear_before_reset`, `clip`, and the
//! batch-first `layout` of opset 14. Computed in f64 on the host, one step at a time, as the ONNX
//! equations read; the outputs Y, Y_h (and Y_c for LSTM) come back in the input's type.

use candle_core::Tensor;

use super::super::node::{Node, int_values, optional, required};
use super::host::{build, element_count, values};
use super::recurrent_activation::{self, Activation};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cell {
    /// Gates i, o, f, c; peepholes i, o, f.
    Lstm {
        input_forget: bool,
    },
    /// Gates z, r, h.
    Gru {
        linear_before_reset: bool,
    },
    Rnn,
}

impl Cell {
    fn gates(self) -> usize {
        match self {
            Self::Lstm { .. } => 4,
            Self::Gru { .. } => 3,
            Self::Rnn => 1,
        }
    }

    fn default_activations(self) -> &'static [&'static str] {
        match self {
            Self::Lstm { .. } => &["Sigmoid", "Tanh", "Tanh"],
            Self::Gru { .. } => &["Sigmoid", "Tanh"],
            Self::Rnn => &["Tanh"],
        }
    }
}

pub fn lstm(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let input_forget = node.int("input_forget", 0) != 0;
    run(node, inputs, Cell::Lstm { input_forget })
}

pub fn gru(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let linear_before_reset = node.int("linear_before_reset", 0) != 0;
    run(
        node,
        inputs,
        Cell::Gru {
            linear_before_reset,
        },
    )
}

pub fn rnn(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    run(node, inputs, Cell::Rnn)
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
    /// Offset of X[t, b, 0] (or X[b, t, 0] batch-first).
    fn x_offset(&self, t: usize, b: usize) -> usize {
        let row = if self.batch_first {
            b * self.seq + t
        } else {
            t * self.batch + b
        };
        row * self.input
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
fn dims(node: &Node<'_>, inputs: &[Option<Tensor>], cell: Cell) -> Result<Dims, ModelError> {
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
    let &[_, _, hidden] = r.dims() else {
        return Err(invalid(format!("R must have rank 3, not {:?}", r.dims())));
    };
    if node.has("hidden_size") && node.int("hidden_size", 0) != hidden as i64 {
        return Err(invalid(format!(
            "hidden_size {} does not match R's shape {:?}",
            node.int("hidden_size", 0),
            r.dims()
        )));
    }
    let gates = cell.gates() * hidden;
    expect_dims(w, &[directions, gates, input], "W")?;
    expect_dims(r, &[directions, gates, hidden], "R")?;
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
    Ok(d)
}

/// One direction's weights, biases and peepholes, as flat row-major slices.
struct Weights<'a> {
    w: &'a [f64],
    r: &'a [f64],
    wb: &'a [f64],
    rb: &'a [f64],
    p: &'a [f64],
}

/// Rows `gate * hidden ..` of `m` (each `v.len()` wide) times `v`.
fn gate_product(m: &[f64], gate: usize, hidden: usize, v: &[f64]) -> Vec<f64> {
    let cols = v.len();
    (0..hidden)
        .map(|j| {
            let start = (gate * hidden + j) * cols;
            m[start..start + cols]
                .iter()
                .zip(v)
                .map(|(a, b)| a * b)
                .sum()
        })
        .collect()
}

/// Everything a step needs besides the state.
struct Step<'a> {
    cell: Cell,
    weights: Weights<'a>,
    /// This direction's activations: f, g, h for LSTM; f, g for GRU; f for RNN.
    acts: &'a [Activation],
    clip: Option<f64>,
    hidden: usize,
}

impl Step<'_> {
    fn clip(&self, x: f64) -> f64 {
        match self.clip {
            Some(c) => x.clamp(-c, c),
            None => x,
        }
    }

    /// The input and recurrent contributions plus both biases of `gate`, before any activation.
    fn linear(&self, gate: usize, x: &[f64], h: &[f64]) -> Vec<f64> {
        let n = self.hidden;
        let wx = gate_product(self.weights.w, gate, n, x);
        let rh = gate_product(self.weights.r, gate, n, h);
        (0..n)
            .map(|j| wx[j] + rh[j] + self.weights.wb[gate * n + j] + self.weights.rb[gate * n + j])
            .collect()
    }

    /// Advances the state (h, and c for LSTM) by one input `x`.
    fn advance(&self, x: &[f64], h: &mut [f64], c: &mut [f64]) {
        match self.cell {
            Cell::Lstm { input_forget } => self.lstm(x, h, c, input_forget),
            Cell::Gru {
                linear_before_reset,
            } => self.gru(x, h, linear_before_reset),
            Cell::Rnn => {
                let pre = self.linear(0, x, h);
                for (hj, p) in h.iter_mut().zip(pre) {
                    *hj = self.acts[0].apply(self.clip(p));
                }
            }
        }
    }

    fn lstm(&self, x: &[f64], h: &mut [f64], c: &mut [f64], input_forget: bool) {
        let n = self.hidden;
        let (f, g, hf) = (self.acts[0], self.acts[1], self.acts[2]);
        let p = self.weights.p;
        let (pi, po, pf) = (&p[..n], &p[n..2 * n], &p[2 * n..]);
        let [i_pre, o_pre, f_pre, c_pre] = [0, 1, 2, 3].map(|gate| self.linear(gate, x, h));
        for j in 0..n {
            let i = f.apply(self.clip(i_pre[j] + pi[j] * c[j]));
            let forget = if input_forget {
                1.0 - i
            } else {
                f.apply(self.clip(f_pre[j] + pf[j] * c[j]))
            };
            let candidate = g.apply(self.clip(c_pre[j]));
            c[j] = forget * c[j] + i * candidate;
            let o = f.apply(self.clip(o_pre[j] + po[j] * c[j]));
            h[j] = o * hf.apply(c[j]);
        }
    }

    fn gru(&self, x: &[f64], h: &mut [f64], linear_before_reset: bool) {
        let n = self.hidden;
        let (f, g) = (self.acts[0], self.acts[1]);
        let z: Vec<f64> = self
            .linear(0, x, h)
            .into_iter()
            .map(|v| f.apply(self.clip(v)))
            .collect();
        let r: Vec<f64> = self
            .linear(1, x, h)
            .into_iter()
            .map(|v| f.apply(self.clip(v)))
            .collect();
        let wx = gate_product(self.weights.w, 2, n, x);
        let (wb, rb) = (&self.weights.wb[2 * n..], &self.weights.rb[2 * n..]);
        // The reset gate scales either the previous state (the paper's GRU) or the recurrent product (cuDNN's).
        let recurrent: Vec<f64> = if linear_before_reset {
            let rh = gate_product(self.weights.r, 2, n, h);
            (0..n).map(|j| r[j] * (rh[j] + rb[j])).collect()
        } else {
            let reset: Vec<f64> = h.iter().zip(&r).map(|(a, b)| a * b).collect();
            let rh = gate_product(self.weights.r, 2, n, &reset);
            (0..n).map(|j| rh[j] + rb[j]).collect()
        };
        for j in 0..n {
            let candidate = g.apply(self.clip(wx[j] + wb[j] + recurrent[j]));
            h[j] = (1.0 - z[j]) * candidate + z[j] * h[j];
        }
    }
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

/// An optional input's values, or zeros of `len`.
fn values_or_zeros(
    inputs: &[Option<Tensor>],
    index: usize,
    len: usize,
) -> Result<Vec<f64>, ModelError> {
    optional(inputs, index).map_or_else(|| Ok(vec![0.0; len]), values)
}

fn run(node: &Node<'_>, inputs: &[Option<Tensor>], cell: Cell) -> Out {
    let d = dims(node, inputs, cell)?;
    let (_, reverse) = directions(node)?;
    let x_tensor = required(inputs, 0)?;
    let x = values(x_tensor)?;
    let w = values(required(inputs, 1)?)?;
    let r = values(required(inputs, 2)?)?;
    let gates = cell.gates() * d.hidden;
    let bias = values_or_zeros(inputs, 3, d.directions * 2 * gates)?;
    let peepholes = values_or_zeros(inputs, 7, d.directions * 3 * d.hidden)?;
    let state_len = d.directions * d.batch * d.hidden;
    let mut y_h = values_or_zeros(inputs, 5, state_len)?;
    let mut y_c = values_or_zeros(inputs, 6, state_len)?;
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
    // Steps past a batch entry's length stay zero in Y, as onnxruntime leaves them.
    let mut y = vec![0.0; element_count(&d.y_dims(), "Y")?];
    for dir in 0..d.directions {
        let step = Step {
            cell,
            weights: Weights {
                w: &w[dir * gates * d.input..(dir + 1) * gates * d.input],
                r: &r[dir * gates * d.hidden..(dir + 1) * gates * d.hidden],
                wb: &bias[dir * 2 * gates..dir * 2 * gates + gates],
                rb: &bias[dir * 2 * gates + gates..(dir + 1) * 2 * gates],
                p: &peepholes[dir * 3 * d.hidden..(dir + 1) * 3 * d.hidden],
            },
            acts: &acts[dir * per..(dir + 1) * per],
            clip,
            hidden: d.hidden,
        };
        let backwards = reverse || dir == 1;
        for (b, &len) in lengths.iter().enumerate() {
            let s = d.state_offset(dir, b);
            let (h, c) = (&mut y_h[s..s + d.hidden], &mut y_c[s..s + d.hidden]);
            for k in 0..len {
                let t = if backwards { len - 1 - k } else { k };
                let xo = d.x_offset(t, b);
                step.advance(&x[xo..xo + d.input], h, c);
                let yo = d.y_offset(t, dir, b);
                y[yo..yo + d.hidden].copy_from_slice(h);
            }
        }
    }
    let dtype = x_tensor.dtype();
    let mut out = vec![
        build(y, &d.y_dims(), dtype, x_tensor)?,
        build(y_h, &d.state_dims(), dtype, x_tensor)?,
    ];
    if matches!(cell, Cell::Lstm { .. }) {
        out.push(build(y_c, &d.state_dims(), dtype, x_tensor)?);
    }
    Ok(out)
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

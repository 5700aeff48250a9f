//! One direction of a recurrent operator over its whole sequence, in the input's float type: f32 (f16
//! and bf16 are computed in f32, as ONNX Runtime's CPU provider does) or f64.
//!
//! The input's part of every gate at every step does not depend on the state, so it is one matrix
//! product before the loop, X·Wᵀ plus the biases, for all steps and batch entries at once. Each step is
//! then one product of all batch entries' states with Rᵀ and the gates' element-wise update. Float W
//! and R are read in place through transposed strides, never copied ([`Weights`]).

use super::matrix_product::Float;
use super::recurrent_activation::{Activated, Activation};
pub use super::recurrent_weights::Weights;

/// What a recurrent cell computes from its gates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell {
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
    pub fn gates(self) -> usize {
        match self {
            Self::Lstm { .. } => 4,
            Self::Gru { .. } => 3,
            Self::Rnn => 1,
        }
    }

    pub fn default_activations(self) -> &'static [&'static str] {
        match self {
            Self::Lstm { .. } => &["Sigmoid", "Tanh", "Tanh"],
            Self::Gru { .. } => &["Sigmoid", "Tanh"],
            Self::Rnn => &["Tanh"],
        }
    }

    /// The gate rows of R multiplied with the state before the update: all of them, except for a GRU
    /// that resets the state before its product (the paper's GRU), whose h gate waits for the reset.
    fn recurrent_rows(self, hidden: usize) -> usize {
        match self {
            Self::Gru {
                linear_before_reset: false,
            } => 2 * hidden,
            _ => self.gates() * hidden,
        }
    }
}

/// One direction's parameters: its weights, and the rest as flat slices.
pub struct Direction<'a, T> {
    pub cell: Cell,
    /// [gates·hidden, input]
    pub w: Weights<'a, T>,
    /// [gates·hidden, hidden]
    pub r: Weights<'a, T>,
    /// The input's and the recurrence's biases, [gates·hidden] each.
    pub wb: &'a [T],
    pub rb: &'a [T],
    /// Peepholes i, o, f, [3·hidden].
    pub p: &'a [T],
    /// f, g, h for LSTM; f, g for GRU; f for RNN.
    pub acts: &'a [Activation],
    pub clip: Option<f64>,
    pub hidden: usize,
    pub backwards: bool,
}

/// The sequence a direction runs over.
pub struct Sequence<'a, T> {
    /// [rows, input], one row per (step, batch entry) in the tensor's layout.
    pub x: &'a [T],
    pub input: usize,
    /// Steps × batch entries.
    pub rows: usize,
    pub batch: usize,
    /// Steps each batch entry has.
    pub lengths: &'a [usize],
    /// The row of X (and of Y within this direction) of step t of batch entry b.
    pub row: &'a dyn Fn(usize, usize) -> usize,
}

/// The state of every batch entry, [batch, hidden] each; C only for LSTM.
pub struct State<T> {
    pub h: Vec<T>,
    pub c: Vec<T>,
}

/// The float types a direction runs in: f32 and f64.
pub trait Real: Float + Activated {}

impl<T: Float + Activated> Real for T {}

impl<T: Real> Direction<'_, T> {
    /// Bounds every value to [-clip, clip] when `clip` is set; NaN stays NaN.
    fn clip(&self, values: &mut [T]) {
        if let Some(c) = self.clip {
            let (high, low) = (T::from_f64(c), T::from_f64(-c));
            for v in values {
                if *v > high {
                    *v = high;
                } else if *v < low {
                    *v = low;
                }
            }
        }
    }

    /// `activation` of the gate values `values`, after the clip.
    fn activate(&self, activation: usize, values: &mut [T]) {
        self.clip(values);
        T::activate(self.acts[activation], values);
    }

    /// Runs the sequence from `state`, calling `emit(t, b, h)` with each new state of entry b at step t.
    pub fn run(
        &self,
        seq: &Sequence<'_, T>,
        state: &mut State<T>,
        threads: usize,
        mut emit: impl FnMut(usize, usize, &[T]),
    ) -> Result<(), crate::ModelError> {
        let n = self.hidden;
        let gates = self.cell.gates() * n;
        let zero = T::from_f64(0.0);
        let projected = self.project(seq, threads)?;
        let rec = self.cell.recurrent_rows(n);
        let mut recurrent = vec![zero; seq.batch * rec];
        // A GRU's reset gate per entry, then r ⊙ h, and that times R_hᵀ.
        let mut reset = vec![zero; seq.batch * n];
        let mut reset_product = vec![zero; seq.batch * n];
        let mut scratch = vec![zero; gates];
        let steps = seq.lengths.iter().copied().max().unwrap_or(0);
        for k in 0..steps {
            // The states of entries past their length are multiplied too (one product for the
            // batch) and left as they are.
            self.r.multiply(
                &state.h,
                seq.batch,
                n,
                0..rec,
                &mut recurrent,
                rec,
                false,
                threads,
            )?;
            let active = |b: &usize| seq.lengths[*b] > k;
            let step_of = |b: usize| {
                let len = seq.lengths[b];
                if self.backwards { len - 1 - k } else { k }
            };
            let inputs = |b: usize| &projected[(seq.row)(step_of(b), b) * gates..][..gates];
            if let Cell::Gru {
                linear_before_reset: false,
            } = self.cell
            {
                // (r ⊙ h)·R_hᵀ needs every entry's reset gate first.
                for b in (0..seq.batch).filter(active) {
                    let r = &mut reset[b * n..][..n];
                    add(r, &inputs(b)[n..2 * n], &recurrent[b * rec + n..][..n]);
                    self.activate(0, r);
                    for (r, &h) in r.iter_mut().zip(&state.h[b * n..][..n]) {
                        *r *= h;
                    }
                }
                self.r.multiply(
                    &reset,
                    seq.batch,
                    n,
                    2 * n..3 * n,
                    &mut reset_product,
                    n,
                    false,
                    threads,
                )?;
            }
            for b in (0..seq.batch).filter(active) {
                let (x, rec_row) = (inputs(b), &recurrent[b * rec..][..rec]);
                let h = &mut state.h[b * n..][..n];
                match self.cell {
                    Cell::Lstm { input_forget } => {
                        add(&mut scratch, x, rec_row);
                        self.lstm(&mut scratch, h, &mut state.c[b * n..][..n], input_forget);
                    }
                    Cell::Gru {
                        linear_before_reset,
                    } => {
                        let reset_row = &reset_product[b * n..][..n];
                        self.gru(x, rec_row, reset_row, &mut scratch, h, linear_before_reset);
                    }
                    Cell::Rnn => {
                        add(h, x, rec_row);
                        self.activate(0, h);
                    }
                }
                emit(step_of(b), b, h);
            }
        }
        Ok(())
    }

    /// X·Wᵀ plus the biases, [rows, gates·hidden]: every gate's input part at every step. The
    /// recurrence's bias is folded in too, except a GRU's h gate's when the reset gate scales it.
    fn project(&self, seq: &Sequence<'_, T>, threads: usize) -> Result<Vec<T>, crate::ModelError> {
        let n = self.hidden;
        let gates = self.cell.gates() * n;
        let rows = seq.rows;
        let mut bias: Vec<T> = self.wb.iter().zip(self.rb).map(|(&a, &b)| a + b).collect();
        if let Cell::Gru {
            linear_before_reset: true,
        } = self.cell
        {
            bias[2 * n..].copy_from_slice(&self.wb[2 * n..]);
        }
        let mut projected = Vec::with_capacity(rows * gates);
        for _ in 0..rows {
            projected.extend_from_slice(&bias);
        }
        self.w.multiply(
            seq.x,
            rows,
            seq.input,
            0..gates,
            &mut projected,
            gates,
            true,
            threads,
        )?;
        Ok(projected)
    }

    /// `pre`: the gates i, o, f, c before peepholes and activations (overwritten).
    fn lstm(&self, pre: &mut [T], h: &mut [T], c: &mut [T], input_forget: bool) {
        let n = self.hidden;
        let (i, rest) = pre.split_at_mut(n);
        let (o, rest) = rest.split_at_mut(n);
        let (f, candidate) = rest.split_at_mut(n);
        let (pi, po, pf) = (&self.p[..n], &self.p[n..2 * n], &self.p[2 * n..3 * n]);
        add_product(i, pi, c);
        self.activate(0, i);
        if input_forget {
            for (f, &i) in f.iter_mut().zip(i.iter()) {
                *f = T::from_f64(1.0) - i;
            }
        } else {
            add_product(f, pf, c);
            self.activate(0, f);
        }
        self.activate(1, candidate);
        for j in 0..n {
            c[j] = f[j] * c[j] + i[j] * candidate[j];
        }
        add_product(o, po, c);
        self.activate(0, o);
        // The candidate's values are spent: its room takes h(c).
        candidate.copy_from_slice(c);
        T::activate(self.acts[2], candidate);
        for j in 0..n {
            h[j] = o[j] * candidate[j];
        }
    }

    /// `x` and `rec`: the gates' input and recurrent parts, z, r (and h when the reset gate scales the
    /// recurrent product); `reset_product`: (r ⊙ h)·R_hᵀ when it scales the state instead.
    fn gru(
        &self,
        x: &[T],
        rec: &[T],
        reset_product: &[T],
        scratch: &mut [T],
        h: &mut [T],
        linear_before_reset: bool,
    ) {
        let n = self.hidden;
        let (z, rest) = scratch.split_at_mut(n);
        let (r, candidate) = rest.split_at_mut(n);
        add(z, &x[..n], &rec[..n]);
        self.activate(0, z);
        let x_h = &x[2 * n..3 * n];
        if linear_before_reset {
            add(r, &x[n..2 * n], &rec[n..2 * n]);
            self.activate(0, r);
            let rb = &self.rb[2 * n..3 * n];
            for j in 0..n {
                candidate[j] = x_h[j] + r[j] * (rec[2 * n + j] + rb[j]);
            }
        } else {
            add(candidate, x_h, reset_product);
        }
        self.activate(1, candidate);
        let one = T::from_f64(1.0);
        for j in 0..n {
            h[j] = (one - z[j]) * candidate[j] + z[j] * h[j];
        }
    }
}

/// `out` = `a` + `b`, element by element.
fn add<T: Real>(out: &mut [T], a: &[T], b: &[T]) {
    for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
        *o = a + b;
    }
}

/// `out` += `a` ⊙ `b`.
fn add_product<T: Real>(out: &mut [T], a: &[T], b: &[T]) {
    for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
        *o += a * b;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// One step of `cell` for one batch entry by the ONNX equations, in f64, one gate row at a time.
    fn step_by_definition(
        d: &Direction<'_, f64>,
        (w, rm): (&[f64], &[f64]),
        x: &[f64],
        h: &mut [f64],
        c: &mut [f64],
    ) {
        let n = d.hidden;
        let input = x.len();
        let clip = |v: f64| d.clip.map_or(v, |c| v.clamp(-c, c));
        let row = |m: &[f64], cols: usize, r: usize, v: &[f64]| -> f64 {
            m[r * cols..(r + 1) * cols]
                .iter()
                .zip(v)
                .map(|(a, b)| a * b)
                .sum()
        };
        let linear = |gate: usize, j: usize, h: &[f64]| {
            let r = gate * n + j;
            row(w, input, r, x) + row(rm, n, r, h) + d.wb[r] + d.rb[r]
        };
        let (f, g) = (d.acts[0], d.acts.get(1).copied().unwrap_or(d.acts[0]));
        let prev = h.to_vec();
        match d.cell {
            Cell::Rnn => {
                for (j, h) in h.iter_mut().enumerate() {
                    *h = f.apply(clip(linear(0, j, &prev)));
                }
            }
            Cell::Lstm { input_forget } => {
                let p = d.p;
                for j in 0..n {
                    let i = f.apply(clip(linear(0, j, &prev) + p[j] * c[j]));
                    let forget = if input_forget {
                        1.0 - i
                    } else {
                        f.apply(clip(linear(2, j, &prev) + p[2 * n + j] * c[j]))
                    };
                    c[j] = forget * c[j] + i * g.apply(clip(linear(3, j, &prev)));
                    let o = f.apply(clip(linear(1, j, &prev) + p[n + j] * c[j]));
                    h[j] = o * d.acts[2].apply(c[j]);
                }
            }
            Cell::Gru {
                linear_before_reset,
            } => {
                let z: Vec<f64> = (0..n).map(|j| f.apply(clip(linear(0, j, &prev)))).collect();
                let r: Vec<f64> = (0..n).map(|j| f.apply(clip(linear(1, j, &prev)))).collect();
                let reset: Vec<f64> = prev.iter().zip(&r).map(|(a, b)| a * b).collect();
                for j in 0..n {
                    let gate = 2 * n + j;
                    let recurrent = if linear_before_reset {
                        r[j] * (row(rm, n, gate, &prev) + d.rb[gate])
                    } else {
                        row(rm, n, gate, &reset) + d.rb[gate]
                    };
                    let candidate = g.apply(clip(row(w, input, gate, x) + d.wb[gate] + recurrent));
                    h[j] = (1.0 - z[j]) * candidate + z[j] * prev[j];
                }
            }
        }
    }

    /// Equal but for the order of f64 additions.
    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    fn cells() -> impl Strategy<Value = Cell> {
        prop_oneof![
            Just(Cell::Rnn),
            any::<bool>().prop_map(|input_forget| Cell::Lstm { input_forget }),
            any::<bool>().prop_map(|linear_before_reset| Cell::Gru {
                linear_before_reset
            }),
        ]
    }

    proptest! {
        /// The batched run (input products before the loop, one recurrent product per step for the
        /// whole batch) against the equations stepped one entry at a time: any cell, sizes, clip,
        /// direction, batch-first rows and per-entry lengths.
        #[test]
        fn equals_the_equations_stepped_one_entry_at_a_time(
            cell in cells(),
            (hidden, input, batch, seq) in (1usize..6, 0usize..5, 1usize..4, 0usize..5),
            lengths in proptest::collection::vec(0usize..5, 3),
            seed in any::<u64>(),
            clip in proptest::option::of(0.2f64..3.0),
            backwards in any::<bool>(),
            batch_first in any::<bool>(),
        ) {
            let lengths: Vec<usize> = lengths[..batch].iter().map(|&l| l.min(seq)).collect();
            let value = |i: usize| (((i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 2001) as f64 / 1000.0 - 1.0;
            let values = |len: usize, offset: usize| (0..len).map(|i| value(i + offset)).collect::<Vec<f64>>();
            let gates = cell.gates() * hidden;
            let (w, r) = (values(gates * input, 1 << 20), values(gates * hidden, 2 << 20));
            let (wb, rb, p) = (values(gates, 3 << 20), values(gates, 4 << 20), values(3 * hidden, 5 << 20));
            let x = values(seq * batch * input, 6 << 20);
            let h0 = values(batch * hidden, 7 << 20);
            let c0 = values(batch * hidden, 8 << 20);
            let acts = [Activation::Sigmoid, Activation::Tanh, Activation::Tanh];
            let direction = Direction {
                cell, w: Weights::Float(&w), r: Weights::Float(&r), wb: &wb, rb: &rb, p: &p, acts: &acts, clip, hidden, backwards,
            };
            let row = |t: usize, b: usize| if batch_first { b * seq + t } else { t * batch + b };
            let sequence = Sequence { x: &x, input, rows: seq * batch, batch, lengths: &lengths, row: &row };
            let mut state = State { h: h0.clone(), c: c0.clone() };
            let mut emitted = vec![None; seq * batch];
            direction.run(&sequence, &mut state, 1, |t, b, h| emitted[row(t, b)] = Some(h.to_vec())).unwrap();
            for b in 0..batch {
                let (mut h, mut c) = (h0[b * hidden..][..hidden].to_vec(), c0[b * hidden..][..hidden].to_vec());
                let len = lengths[b];
                for k in 0..len {
                    let t = if backwards { len - 1 - k } else { k };
                    step_by_definition(&direction, (&w, &r), &x[row(t, b) * input..][..input], &mut h, &mut c);
                    let got = emitted[row(t, b)].take().expect("every step of an entry is emitted");
                    prop_assert!(close(&got, &h), "{got:?} vs {h:?}");
                }
                prop_assert!(close(&state.h[b * hidden..][..hidden], &h));
                if matches!(cell, Cell::Lstm { .. }) {
                    prop_assert!(close(&state.c[b * hidden..][..hidden], &c));
                }
            }
            prop_assert!(emitted.iter().all(Option::is_none), "only steps within a length are emitted");
        }
    }
}

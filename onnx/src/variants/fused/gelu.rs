//! GELU spelled out, found so that it becomes one node: through erf, `x · (1 + erf(x / √2)) / 2`, or in
//! its tanh approximation, `x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))) / 2` (GPT-2's `gelu_new`,
//! PyTorch's `approximate="tanh"`), as kiln's converter and PyTorch's exporter write them (the half applied
//! first or last, `x / √2` as a division or a product, x³ as `Pow(x, 3)` or `x · x · x`).

use std::collections::BTreeSet;
use std::f64::consts::{FRAC_1_SQRT_2, PI, SQRT_2};

use super::view::{View, close_to};

/// Which GELU a block computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Erf,
    Tanh,
}

pub struct Found {
    pub nodes: BTreeSet<usize>,
    /// The last of them, where the fused node goes.
    pub at: usize,
    pub input: String,
    pub output: String,
    pub form: Form,
}

/// The GELU whose `Erf` is node `erf`, if it has one of the forms above.
pub fn find(view: &View, erf: usize) -> Option<Found> {
    let scaled = view.node(erf).input.first()?;
    let (scaling, x) = divided_by_sqrt_2(view, scaled)?;
    outer(view, erf, x, BTreeSet::from([scaling]), Form::Erf)
}

/// The tanh-approximated GELU whose `Tanh` is node `tanh`, if it has one of the forms above.
pub fn find_tanh(view: &View, tanh: usize) -> Option<Found> {
    let scaled = view.node(tanh).input.first()?;
    if !view.usage.only_read_by_one(scaled) {
        return None;
    }
    let scaling = view.producer(scaled, "Mul")?;
    let sum = times_constant(view, scaling, (2.0 / PI).sqrt())?;
    if !view.usage.only_read_by_one(sum) {
        return None;
    }
    let add = view.producer(sum, "Add")?;
    let [a, b] = view.node(add).input.as_slice() else {
        return None;
    };
    let (x, mut nodes) = [(a, b), (b, a)]
        .into_iter()
        .find_map(|(x, cubed)| Some((x.as_str(), cubic_term(view, cubed, x)?)))?;
    nodes.extend([scaling, add]);
    outer(view, tanh, x, nodes, Form::Tanh)
}

/// `0.044715 · x³`, read only by the sum: its nodes.
fn cubic_term(view: &View, name: &str, x: &str) -> Option<BTreeSet<usize>> {
    if !view.usage.only_read_by_one(name) {
        return None;
    }
    let scaling = view.producer(name, "Mul")?;
    let cube = times_constant(view, scaling, 0.044_715)?;
    if !view.usage.only_read_by_one(cube) {
        return None;
    }
    if let Some(pow) = view.producer(cube, "Pow") {
        let [base, exponent] = view.node(pow).input.as_slice() else {
            return None;
        };
        return (base == x && is_constant(view, exponent, 3.0))
            .then(|| BTreeSet::from([scaling, pow]));
    }
    // x · (x · x), in either order.
    let outer_mul = view.producer(cube, "Mul")?;
    let square = view.other_input(outer_mul, x)?;
    if !view.usage.only_read_by_one(square) {
        return None;
    }
    let inner_mul = view.producer(square, "Mul")?;
    let squares_x = matches!(view.node(inner_mul).input.as_slice(), [a, b] if a == x && b == x);
    squares_x.then(|| BTreeSet::from([scaling, outer_mul, inner_mul]))
}

/// The operand of `Mul` node `mul` that is not the scalar constant `c` (either side).
fn times_constant<'a>(view: &View<'a>, mul: usize, c: f64) -> Option<&'a str> {
    let [a, b] = view.node(mul).input.as_slice() else {
        return None;
    };
    match (view.scalar(a), view.scalar(b)) {
        (None, Some(k)) if close_to(k, c) => Some(a),
        (Some(k), None) if close_to(k, c) => Some(b),
        _ => None,
    }
}

/// `x · (1 + inner) / 2` around node `inner` (the Erf or the Tanh), whose own nodes are `nodes`.
fn outer(
    view: &View,
    inner: usize,
    x: &str,
    mut nodes: BTreeSet<usize>,
    form: Form,
) -> Option<Found> {
    let plus = view.sole_reader_of(inner, "Add")?;
    let inner_out = view.node(inner).output.first()?;
    if !is_constant(view, view.other_input(plus, inner_out)?, 1.0) {
        return None;
    }
    let plus_out = view.node(plus).output.first()?;
    let first = view.sole_reader(plus_out, "Mul")?;
    let other = view.other_input(first, plus_out)?;
    let first_out = view.node(first).output.first()?;
    let (around, at) = if other == x {
        // (x · (1 + erf)) · ½
        let last = view.sole_reader(first_out, "Mul")?;
        is_constant(view, view.other_input(last, first_out)?, 0.5).then_some(())?;
        (BTreeSet::from([first, last]), last)
    } else if is_constant(view, other, 0.5) {
        // x · ((1 + erf) · ½)
        let last = view.sole_reader(first_out, "Mul")?;
        (view.other_input(last, first_out)? == x).then_some(())?;
        (BTreeSet::from([first, last]), last)
    } else {
        // (x · ½) · (1 + erf)
        let half = view.producer(other, "Mul")?;
        let halved = view.usage.only_read_by_one(other)
            && view
                .other_input(half, x)
                .is_some_and(|c| is_constant(view, c, 0.5));
        halved.then_some(())?;
        (BTreeSet::from([half, first]), first)
    };
    nodes.extend(around);
    nodes.extend([inner, plus]);
    Some(Found {
        nodes,
        at,
        input: x.to_owned(),
        output: view.node(at).output.first()?.clone(),
        form,
    })
}

/// `x · (1/√2)` or `x / √2`, read only by the Erf: its node and x.
fn divided_by_sqrt_2<'a>(view: &View<'a>, scaled: &str) -> Option<(usize, &'a str)> {
    if !view.usage.only_read_by_one(scaled) {
        return None;
    }
    if let Some(mul) = view.producer(scaled, "Mul") {
        return Some((mul, times_constant(view, mul, FRAC_1_SQRT_2)?));
    }
    let div = view.producer(scaled, "Div")?;
    let [x, d] = view.node(div).input.as_slice() else {
        return None;
    };
    (view.scalar(x).is_none() && close_to(view.scalar(d)?, SQRT_2)).then_some((div, x))
}

fn is_constant(view: &View, name: &str, expected: f64) -> bool {
    view.scalar(name).is_some_and(|c| close_to(c, expected))
}

//! GELU spelled out through erf, `x · (1 + erf(x / √2)) / 2`, as kiln's converter and PyTorch's exporter
//! write it (the half applied first or last, `x / √2` as a division or a product), found so that it
//! becomes one `Gelu`.

use std::collections::BTreeSet;
use std::f64::consts::{FRAC_1_SQRT_2, SQRT_2};

use super::view::{View, close_to};

pub struct Found {
    pub nodes: BTreeSet<usize>,
    /// The last of them, where the fused node goes.
    pub at: usize,
    pub input: String,
    pub output: String,
}

/// The GELU whose `Erf` is node `erf`, if it has one of the forms above.
pub fn find(view: &View, erf: usize) -> Option<Found> {
    let scaled = view.node(erf).input.first()?;
    let (scaling, x) = divided_by_sqrt_2(view, scaled)?;
    let plus = view.sole_reader_of(erf, "Add")?;
    let erf_out = view.node(erf).output.first()?;
    if !is_constant(view, view.other_input(plus, erf_out)?, 1.0) {
        return None;
    }
    let plus_out = view.node(plus).output.first()?;
    let first = view.sole_reader(plus_out, "Mul")?;
    let other = view.other_input(first, plus_out)?;
    let first_out = view.node(first).output.first()?;
    let (mut nodes, at) = if other == x {
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
    nodes.extend([scaling, erf, plus]);
    Some(Found {
        nodes,
        at,
        input: x.to_owned(),
        output: view.node(at).output.first()?.clone(),
    })
}

/// `x · (1/√2)` or `x / √2`, read only by the Erf: its node and x.
fn divided_by_sqrt_2<'a>(view: &View<'a>, scaled: &str) -> Option<(usize, &'a str)> {
    if !view.usage.only_read_by_one(scaled) {
        return None;
    }
    if let Some(mul) = view.producer(scaled, "Mul") {
        let [a, b] = view.node(mul).input.as_slice() else {
            return None;
        };
        return match (view.scalar(a), view.scalar(b)) {
            (None, Some(c)) if close_to(c, FRAC_1_SQRT_2) => Some((mul, a)),
            (Some(c), None) if close_to(c, FRAC_1_SQRT_2) => Some((mul, b)),
            _ => None,
        };
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

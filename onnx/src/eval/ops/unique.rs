//! Unique: the distinct values (or, with `axis`, the distinct slices along it) of X, sorted or in order of
//! first occurrence, with where each first occurs, where each element of X went, and how often each occurs.

use std::cmp::Ordering;

use candle_core::Tensor;

use super::super::node::{Node, axis, required};
use super::host::{build, values};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// Orders slices element by element, as NumPy's `unique` does; NaNs compare equal to each other.
fn compare(a: &[f64], b: &[f64]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            x.partial_cmp(y)
                .unwrap_or_else(|| x.is_nan().cmp(&y.is_nan()))
        })
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// The four outputs for `slices` (each the same length): the kept slices' indices (first occurrences),
/// the index of each slice's kept twin, and each kept slice's count.
fn distinct(slices: &[&[f64]], sorted: bool) -> (Vec<usize>, Vec<i64>, Vec<i64>) {
    let mut order: Vec<usize> = (0..slices.len()).collect();
    // A stable sort keeps equal slices in order of occurrence, so each run starts at its first.
    order.sort_by(|&a, &b| compare(slices[a], slices[b]));
    let mut firsts: Vec<usize> = Vec::new();
    let mut group = vec![0usize; slices.len()];
    for (k, &i) in order.iter().enumerate() {
        if k == 0 || compare(slices[order[k - 1]], slices[i]).is_ne() {
            firsts.push(i);
        }
        group[i] = firsts.len() - 1;
    }
    // Rank of each group in the output: sorted order, or by first occurrence.
    let mut rank: Vec<usize> = (0..firsts.len()).collect();
    if !sorted {
        let mut by_first: Vec<usize> = (0..firsts.len()).collect();
        by_first.sort_by_key(|&g| firsts[g]);
        for (position, g) in by_first.into_iter().enumerate() {
            rank[g] = position;
        }
    }
    let mut kept = vec![0usize; firsts.len()];
    let mut counts = vec![0i64; firsts.len()];
    for (g, &first) in firsts.iter().enumerate() {
        kept[rank[g]] = first;
    }
    let inverse: Vec<i64> = group
        .iter()
        .map(|&g| {
            counts[rank[g]] += 1;
            rank[g] as i64
        })
        .collect();
    (kept, inverse, counts)
}

pub fn unique(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let sorted = node.int("sorted", 1) != 0;
    // Without an axis the elements are the slices; with one, the axis moves to the front so that each
    // slice is contiguous, in the order of the remaining axes.
    let (moved, dim) = if node.has("axis") {
        let dim = axis(node.int("axis", 0), x.rank())?;
        let mut order: Vec<usize> = vec![dim];
        order.extend((0..x.rank()).filter(|&d| d != dim));
        (x.permute(order)?.contiguous()?, Some(dim))
    } else {
        (x.flatten_all()?, None)
    };
    let rows = moved.dims().first().copied().unwrap_or(1);
    let data = values(&moved)?;
    let width = data.len().checked_div(rows).unwrap_or(0);
    let slices: Vec<&[f64]> = (0..rows)
        .map(|r| &data[r * width..(r + 1) * width])
        .collect();
    let (kept, inverse, counts) = distinct(&slices, sorted);
    let y_values: Vec<f64> = kept
        .iter()
        .flat_map(|&i| slices[i].iter().copied())
        .collect();
    let mut moved_dims = moved.dims().to_vec();
    if let Some(first) = moved_dims.first_mut() {
        *first = kept.len();
    }
    let mut y = build(y_values, &moved_dims, x.dtype(), x)?;
    if let Some(dim) = dim {
        // Undo the move: axis 0 goes back to `dim`.
        let mut back: Vec<usize> = (1..x.rank()).collect();
        back.insert(dim, 0);
        y = y.permute(back)?.contiguous()?;
    }
    let device = x.device();
    let indices: Vec<i64> = kept.iter().map(|&i| i as i64).collect();
    let (n, m) = (indices.len(), inverse.len());
    Ok(vec![
        y,
        Tensor::from_vec(indices, n, device)?,
        Tensor::from_vec(inverse, m, device)?,
        Tensor::from_vec(counts, n, device)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, int, run};
    use super::*;

    fn ints(t: &Tensor) -> Vec<i64> {
        t.to_vec1::<i64>().unwrap()
    }

    #[test]
    fn flat_sorted_and_unsorted() {
        let x = f32s(&[2.0, 1.0, 1.0, 3.0, 4.0, 3.0], &[6]);
        let out = run("Unique", 11, vec![], std::slice::from_ref(&x));
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(ints(&out[1]), vec![1, 0, 3, 4]);
        assert_eq!(ints(&out[2]), vec![1, 0, 0, 2, 3, 2]);
        assert_eq!(ints(&out[3]), vec![2, 1, 2, 1]);
        let out = run("Unique", 11, vec![int("sorted", 0)], &[x]);
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![2.0, 1.0, 3.0, 4.0]);
        assert_eq!(ints(&out[2]), vec![0, 1, 1, 2, 3, 2]);
    }

    #[test]
    fn rows_along_an_axis() {
        let x = f32s(&[1.0, 0.0, 1.0, 0.0, 1.0, 0.0], &[2, 3]);
        // Columns: (1,0), (0,1), (1,0).
        let out = run("Unique", 11, vec![int("axis", -1)], &[x]);
        assert_eq!(
            out[0].to_vec2::<f32>().unwrap(),
            vec![vec![0.0, 1.0], vec![1.0, 0.0]]
        );
        assert_eq!(ints(&out[2]), vec![1, 0, 1]);
        assert_eq!(ints(&out[3]), vec![1, 2]);
    }
}

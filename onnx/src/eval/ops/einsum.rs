//! Einsum: a general Einstein summation. The equation names each input's axes with letters (`...` for
//! broadcast leading axes); a letter repeated within a term takes a diagonal; letters missing from the
//! output are summed. Without `->` the output is the ellipsis axes, then the letters used exactly once, in
//! alphabetical order. Computed in f64 by walking every combination of labels once.

use std::collections::BTreeMap;

use candle_core::Tensor;

use super::super::node::{Node, required};
use super::host::{build, element_count, iteration_count, strides, values};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// The most multiply-adds one Einsum may take (2^32), so a hostile equation cannot run for hours.
const MAX_WORK: usize = 1 << 32;

/// An axis label: a letter, or the i-th (right-aligned) axis an ellipsis stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Label {
    /// Ordered before letters so that an implicit output lists the ellipsis axes first.
    Ellipsis(usize),
    Letter(u8),
}

fn invalid(message: String) -> ModelError {
    ModelError::Evaluation(format!("Einsum: {message}"))
}

/// One term's letters, with the position of its ellipsis if it has one.
struct Term {
    before: Vec<u8>,
    ellipsis: bool,
    after: Vec<u8>,
}

fn parse_term(term: &str) -> Result<Term, ModelError> {
    let (before, after, ellipsis) = match term.split_once("...") {
        Some((b, a)) => (b, a, true),
        None => (term, "", false),
    };
    let letters = |s: &str| -> Result<Vec<u8>, ModelError> {
        s.bytes()
            .map(|c| {
                if c.is_ascii_alphabetic() {
                    Ok(c)
                } else {
                    Err(invalid(format!(
                        "unexpected {:?} in term {term:?}",
                        c as char
                    )))
                }
            })
            .collect()
    };
    Ok(Term {
        before: letters(before)?,
        ellipsis,
        after: letters(after)?,
    })
}

impl Term {
    fn named(&self) -> usize {
        self.before.len() + self.after.len()
    }

    /// The labels of a term whose ellipsis covers `covered` axes out of `width` ellipsis axes in all.
    fn labels(&self, covered: usize, width: usize) -> Vec<Label> {
        let mut labels: Vec<Label> = self.before.iter().map(|&c| Label::Letter(c)).collect();
        labels.extend((width - covered..width).map(Label::Ellipsis));
        labels.extend(self.after.iter().map(|&c| Label::Letter(c)));
        labels
    }
}

/// Each input's axis labels, and the output's.
fn label_axes(
    equation: &str,
    ranks: &[usize],
) -> Result<(Vec<Vec<Label>>, Vec<Label>), ModelError> {
    let equation: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match equation.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (equation.as_str(), None),
    };
    let terms = lhs
        .split(',')
        .map(parse_term)
        .collect::<Result<Vec<_>, _>>()?;
    if terms.len() != ranks.len() {
        return Err(invalid(format!(
            "the equation has {} terms for {} inputs",
            terms.len(),
            ranks.len()
        )));
    }
    let mut covered = Vec::with_capacity(terms.len());
    for (term, &rank) in terms.iter().zip(ranks) {
        let ok = if term.ellipsis {
            rank >= term.named()
        } else {
            rank == term.named()
        };
        if !ok {
            return Err(invalid(format!(
                "a term with {} letters does not fit rank {rank}",
                term.named()
            )));
        }
        covered.push(rank - term.named());
    }
    let width = covered.iter().copied().max().unwrap_or(0);
    let inputs: Vec<Vec<Label>> = terms
        .iter()
        .zip(&covered)
        .map(|(t, &c)| t.labels(c, width))
        .collect();
    let output = match rhs {
        Some(rhs) => {
            // An output without an ellipsis sums the ellipsis axes away.
            let term = parse_term(rhs)?;
            term.labels(if term.ellipsis { width } else { 0 }, width)
        }
        None => implicit_output(&inputs, width),
    };
    Ok((inputs, output))
}

/// The ellipsis axes, then the letters used exactly once, alphabetically.
fn implicit_output(inputs: &[Vec<Label>], width: usize) -> Vec<Label> {
    let mut counts: BTreeMap<u8, usize> = BTreeMap::new();
    for label in inputs.iter().flatten() {
        if let Label::Letter(c) = label {
            *counts.entry(*c).or_default() += 1;
        }
    }
    let mut output: Vec<Label> = (0..width).map(Label::Ellipsis).collect();
    output.extend(
        counts
            .into_iter()
            .filter(|&(_, n)| n == 1)
            .map(|(c, _)| Label::Letter(c)),
    );
    output
}

/// The size of every label; ellipsis axes broadcast a size of 1 against any other.
fn label_sizes(
    inputs: &[Vec<Label>],
    dims: &[&[usize]],
) -> Result<BTreeMap<Label, usize>, ModelError> {
    let mut sizes: BTreeMap<Label, usize> = BTreeMap::new();
    for (labels, dims) in inputs.iter().zip(dims) {
        for (&label, &size) in labels.iter().zip(dims.iter()) {
            let known = sizes.entry(label).or_insert(size);
            if *known == size {
                continue;
            }
            match label {
                Label::Ellipsis(_) if *known == 1 => *known = size,
                Label::Ellipsis(_) if size == 1 => {}
                _ => {
                    return Err(invalid(format!(
                        "axis {label:?} has sizes {known} and {size}"
                    )));
                }
            }
        }
    }
    Ok(sizes)
}

/// For every combination of `sizes` (row-major), the offset into each input, given each input's stride
/// per label: `count × inputs` offsets, flat.
fn offsets(sizes: &[usize], strides: &[Vec<usize>]) -> Result<Vec<usize>, ModelError> {
    let count = iteration_count(sizes, "an Einsum index space")?;
    let n = strides.len();
    element_count(&[count, n], "Einsum offsets")?;
    let mut out = Vec::with_capacity(count * n);
    let mut index = vec![0usize; sizes.len()];
    let mut current = vec![0usize; n];
    for _ in 0..count {
        out.extend_from_slice(&current);
        // Odometer step: bump the last axis, carrying into earlier ones.
        for axis in (0..sizes.len()).rev() {
            index[axis] += 1;
            for (offset, s) in current.iter_mut().zip(strides) {
                *offset += s[axis];
            }
            if index[axis] < sizes[axis] {
                break;
            }
            for (offset, s) in current.iter_mut().zip(strides) {
                *offset -= s[axis] * sizes[axis];
            }
            index[axis] = 0;
        }
    }
    Ok(out)
}

/// Each input's stride per label in `wanted`; a repeated label adds its strides (a diagonal), and a
/// broadcast axis (size 1 against a larger size) has none.
fn label_strides(
    input_labels: &[Vec<Label>],
    dims: &[&[usize]],
    sizes: &BTreeMap<Label, usize>,
    wanted: &[Label],
) -> Vec<Vec<usize>> {
    input_labels
        .iter()
        .zip(dims)
        .map(|(labels, dims)| {
            let row_major = strides(dims);
            wanted
                .iter()
                .map(|w| {
                    labels
                        .iter()
                        .zip(dims.iter().zip(&row_major))
                        .filter(|&(l, (&d, _))| l == w && d == sizes[w])
                        .map(|(_, (_, &s))| s)
                        .sum()
                })
                .collect()
        })
        .collect()
}

/// For each output offset tuple, the sum over every summed offset tuple of the inputs' product.
fn contract(data: &[Vec<f64>], out_offsets: &[usize], sum_offsets: &[usize]) -> Vec<f64> {
    let n = data.len();
    out_offsets
        .chunks(n)
        .map(|base| {
            sum_offsets
                .chunks(n)
                .map(|rel| {
                    data.iter()
                        .enumerate()
                        .map(|(i, d)| d[base[i] + rel[i]])
                        .product::<f64>()
                })
                .sum()
        })
        .collect()
}

pub fn einsum(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let equation = node
        .string("equation")
        .ok_or_else(|| invalid("the equation attribute is required".to_owned()))?;
    let tensors = (0..inputs.len().max(1))
        .map(|i| required(inputs, i))
        .collect::<Result<Vec<_>, _>>()?;
    let ranks: Vec<usize> = tensors.iter().map(|t| t.rank()).collect();
    let (input_labels, output) = label_axes(&equation, &ranks)?;
    let dims: Vec<&[usize]> = tensors.iter().map(|t| t.dims()).collect();
    let sizes = label_sizes(&input_labels, &dims)?;
    for (i, label) in output.iter().enumerate() {
        if !sizes.contains_key(label) || output[..i].contains(label) {
            return Err(invalid(format!(
                "output axis {label:?} is repeated or not an input's"
            )));
        }
    }
    let summed: Vec<Label> = sizes
        .keys()
        .filter(|l| !output.contains(l))
        .copied()
        .collect();
    let out_dims: Vec<usize> = output.iter().map(|l| sizes[l]).collect();
    let sum_dims: Vec<usize> = summed.iter().map(|l| sizes[l]).collect();
    let out_count = element_count(&out_dims, "the Einsum output")?;
    let sum_count = element_count(&sum_dims, "the Einsum summation")?;
    if out_count.saturating_mul(sum_count) > MAX_WORK {
        return Err(invalid(format!(
            "{out_count} outputs of {sum_count} terms each is more work than allowed"
        )));
    }
    let out_strides = label_strides(&input_labels, &dims, &sizes, &output);
    let sum_strides = label_strides(&input_labels, &dims, &sizes, &summed);
    let out_offsets = offsets(&out_dims, &out_strides)?;
    let sum_offsets = offsets(&sum_dims, &sum_strides)?;
    let data = tensors
        .iter()
        .map(|t| values(t))
        .collect::<Result<Vec<_>, _>>()?;
    let result = contract(&data, &out_offsets, &sum_offsets);
    let first = tensors[0];
    Ok(vec![build(result, &out_dims, first.dtype(), first)?])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, flat, run};
    use super::*;
    use crate::proto::AttributeProto;

    fn equation(e: &str) -> Vec<AttributeProto> {
        vec![AttributeProto {
            name: Some("equation".to_owned()),
            s: Some(e.as_bytes().to_vec().into()),
            r#type: Some(3),
            ..Default::default()
        }]
    }

    #[test]
    fn matmul_transpose_trace_and_implicit_output() {
        let a = f32s(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
        let b = f32s(&[5.0, 6.0, 7.0, 8.0], &[2, 2]);
        let out = run(
            "Einsum",
            12,
            equation("ij, jk -> ik"),
            &[a.clone(), b.clone()],
        );
        assert_eq!(flat(&out[0]), vec![19.0, 22.0, 43.0, 50.0]);
        let out = run("Einsum", 12, equation("ij->ji"), std::slice::from_ref(&a));
        assert_eq!(flat(&out[0]), vec![1.0, 3.0, 2.0, 4.0]);
        let out = run("Einsum", 12, equation("ii"), std::slice::from_ref(&a));
        assert_eq!(out[0].dims(), &[] as &[usize]);
        assert_eq!(out[0].to_scalar::<f32>().unwrap(), 5.0);
        // Implicit: "ba" outputs "ab", a transpose.
        let out = run("Einsum", 12, equation("ba"), &[a]);
        assert_eq!(flat(&out[0]), vec![1.0, 3.0, 2.0, 4.0]);
    }

    #[test]
    fn ellipsis_broadcasts_and_diagonals() {
        let x = f32s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], &[2, 2, 2]);
        let out = run(
            "Einsum",
            12,
            equation("...ii->...i"),
            std::slice::from_ref(&x),
        );
        assert_eq!(flat(&out[0]), vec![1.0, 4.0, 5.0, 8.0]);
        let v = f32s(&[1.0, 10.0], &[2]);
        let out = run("Einsum", 12, equation("...j,j"), &[x, v]);
        assert_eq!(out[0].dims(), &[2, 2]);
        assert_eq!(flat(&out[0]), vec![21.0, 43.0, 65.0, 87.0]);
    }

    #[test]
    fn bad_equations_are_errors() {
        let proto = crate::proto::NodeProto {
            attribute: equation("ij,jk->ik"),
            ..Default::default()
        };
        let node = Node::new(&proto, 12);
        let a = f32s(&[0.0; 6], &[2, 3]);
        assert!(einsum(&node, &[a.clone(), a.clone()]).is_err()); // j is 3 and 2
        assert!(einsum(&node, std::slice::from_ref(&a)).is_err()); // one input for two terms
        let proto = crate::proto::NodeProto {
            attribute: equation("ij->iz"),
            ..Default::default()
        };
        assert!(einsum(&Node::new(&proto, 12), &[a]).is_err());
    }
}

//! Pooling over any number of spatial dims with dilations (MaxPool, AveragePool, LpPool), in f64, and
//! MaxPool's Indices output. The 2-D undilated cases run on candle's kernels in `spatial`; this covers
//! the rest.

use candle_core::{DType, Tensor};

use super::super::node::{Node, required};
use super::host::{element_count, iteration_count};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

#[derive(Clone, Copy)]
pub enum Pool {
    Max,
    Average,
    Lp(f64),
}

struct Geometry {
    input: Vec<usize>,
    output: Vec<usize>,
    kernel: Vec<usize>,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    begin: Vec<usize>,
    /// Padding the node declared on each side (counted by count_include_pad), not ceil_mode's extra.
    declared: Vec<(usize, usize)>,
}

const MAX_ATTRIBUTE: i64 = Node::MAX_WINDOW_ATTRIBUTE;

fn invalid(message: String) -> ModelError {
    ModelError::Evaluation(format!("pooling: {message}"))
}

fn geometry(node: &Node<'_>, x: &Tensor) -> Result<Geometry, ModelError> {
    if x.rank() < 3 {
        return Err(invalid(format!(
            "the input must be [N, C, ...], not {:?}",
            x.dims()
        )));
    }
    let input: Vec<usize> = x.dims()[2..].to_vec();
    // Undilated windows fall where the 2-D kernels' do (`pool_windows`: ceil_mode's window past the end,
    // an axis shorter than the kernel), so that what only this path computes (MaxPool's Indices, more
    // than two spatial axes) is sized as they are.
    if node
        .ints("dilations")
        .is_none_or(|d| d.iter().all(|&v| v == 1))
    {
        let (kernel, strides, declared, _, output) = super::pool_windows::windows(node, x)?;
        return Ok(Geometry {
            dilations: vec![1; input.len()],
            begin: declared.iter().map(|&(b, _)| b).collect(),
            input,
            output,
            kernel,
            strides,
            declared,
        });
    }
    let n = input.len();
    if !node.has("kernel_shape") {
        return Err(invalid("kernel_shape is required".to_owned()));
    }
    let kernel = node.per_axis("kernel_shape", n, 1, 1..=MAX_ATTRIBUTE)?;
    // Strides and dilations below 1 were read as 1 before these checks, and still are here, in dilated
    // pooling (undilated pooling refuses them above, as ONNX Runtime does).
    let at_least_one = |name: &str| -> Result<Vec<usize>, ModelError> {
        let values = node
            .ints(name)
            .map(|v| v.iter().map(|&x| x.max(1)).collect::<Vec<_>>());
        match values {
            Some(v) if v.len() != n || v.iter().any(|&x| x > MAX_ATTRIBUTE) => Err(invalid(
                format!("{name} must have {n} values of at most {MAX_ATTRIBUTE}, not {v:?}"),
            )),
            Some(v) => Ok(v.iter().map(|&x| x as usize).collect()),
            None => Ok(vec![1; n]),
        }
    };
    let (strides, dilations) = (at_least_one("strides")?, at_least_one("dilations")?);
    let pads = node
        .ints("pads")
        .map(|p| p.iter().map(|&v| v.max(0)).collect::<Vec<_>>());
    let pads: Vec<usize> = match pads {
        None => vec![0; 2 * n],
        Some(p) if p.len() == 2 * n && p.iter().all(|&v| v <= MAX_ATTRIBUTE) => {
            p.iter().map(|&v| v as usize).collect()
        }
        Some(p) => return Err(invalid(format!("pads {p:?} do not fit {n} spatial axes"))),
    };
    let span: Vec<usize> = (0..n).map(|i| (kernel[i] - 1) * dilations[i] + 1).collect();
    let ceil = node.int("ceil_mode", 0) != 0;
    let auto = node
        .string("auto_pad")
        .unwrap_or_else(|| "NOTSET".to_owned());
    let mut declared = Vec::with_capacity(n);
    let mut output = Vec::with_capacity(n);
    for i in 0..n {
        let too_large = || {
            invalid(format!(
                "a window of {} does not fit axis {i} of {:?}",
                span[i],
                x.dims()
            ))
        };
        let (b, e, out) = match auto.as_str() {
            "SAME_UPPER" | "SAME_LOWER" => {
                let out = input[i].div_ceil(strides[i]);
                let total = (out.saturating_sub(1) * strides[i] + span[i]).saturating_sub(input[i]);
                let small = total / 2;
                let (b, e) = if auto == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                (b, e, out)
            }
            "VALID" => {
                let room = input[i].checked_sub(span[i]).ok_or_else(too_large)?;
                (0, 0, room / strides[i] + 1)
            }
            _ => {
                let (b, e) = (pads[i], pads[i + n]);
                let room = (input[i] + b + e)
                    .checked_sub(span[i])
                    .ok_or_else(too_large)?;
                let mut out = if ceil {
                    room.div_ceil(strides[i]) + 1
                } else {
                    room / strides[i] + 1
                };
                if ceil && (out - 1) * strides[i] >= input[i] + b {
                    out -= 1;
                }
                (b, e, out)
            }
        };
        declared.push((b, e));
        output.push(out);
    }
    let begin = declared.iter().map(|&(b, _)| b).collect();
    Ok(Geometry {
        input,
        output,
        kernel,
        strides,
        dilations,
        begin,
        declared,
    })
}

pub fn pool(node: &Node<'_>, inputs: &[Option<Tensor>], kind: Pool) -> Out {
    let x = required(inputs, 0)?;
    let g = geometry(node, x)?;
    let n = g.input.len();
    let (batch, channels) = (x.dim(0)?, x.dim(1)?);
    let values = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let in_size: usize = g.input.iter().product();
    let out_size = element_count(&g.output, "pooling output")?;
    let include_pad = node.int("count_include_pad", 0) != 0;
    // MaxPool's second output: where each maximum was, as a position in the whole input flattened, its
    // spatial axes in row-major order (storage_order 0) or column-major (1), as ONNX Runtime has it.
    let indices = matches!(kind, Pool::Max) && wants_indices(node);
    let column_major = node.int("storage_order", 0) != 0;
    let window: usize = g.kernel.iter().product();
    // Every output value reads its whole window: bound the total work, not only the result's size (and
    // before anything is allocated for the result).
    iteration_count(&[batch, channels, out_size, window], "pooling work")?;
    let values_out = element_count(&[batch, channels, out_size], "pooling output")?;
    let mut at = Vec::with_capacity(if indices { values_out } else { 0 });
    let mut out = Vec::with_capacity(values_out);
    for plane in 0..batch * channels {
        let data = &values[plane * in_size..(plane + 1) * in_size];
        for o in 0..out_size {
            let mut coord = vec![0; n];
            let mut rest = o;
            for d in (0..n).rev() {
                coord[d] = rest % g.output[d];
                rest /= g.output[d];
            }
            let (mut acc, mut count, mut padded_count) = (
                match kind {
                    Pool::Max => f64::NEG_INFINITY,
                    _ => 0.0,
                },
                0usize,
                0usize,
            );
            let mut best = None;
            for k in 0..window {
                let mut kr = k;
                let mut offset = 0;
                let mut transposed = 0;
                let mut inside = true;
                let mut in_declared = true;
                for d in (0..n).rev() {
                    let kd = kr % g.kernel[d];
                    kr /= g.kernel[d];
                    let pos =
                        (coord[d] * g.strides[d] + kd * g.dilations[d]) as i64 - g.begin[d] as i64;
                    if pos < 0 || pos >= g.input[d] as i64 {
                        inside = false;
                        if pos < -(g.declared[d].0 as i64)
                            || pos >= (g.input[d] + g.declared[d].1) as i64
                        {
                            in_declared = false;
                        }
                    } else {
                        let stride: usize = g.input[d + 1..].iter().product();
                        offset += pos as usize * stride;
                        let stride: usize = g.input[..d].iter().product();
                        transposed += pos as usize * stride;
                    }
                }
                if in_declared {
                    padded_count += 1;
                }
                if !inside {
                    continue;
                }
                let v = data[offset];
                count += 1;
                if indices {
                    // As ONNX Runtime's MaxPool with Indices: the window's first value, then any
                    // greater one, so a NaN first is kept and a NaN later passed over.
                    if best.is_none() || v > acc {
                        (acc, best) = (v, Some(if column_major { transposed } else { offset }));
                    }
                    continue;
                }
                acc = match kind {
                    Pool::Max => acc.max(v),
                    Pool::Average => acc + v,
                    Pool::Lp(p) => acc + v.abs().powf(p),
                };
            }
            if indices {
                // Every window holds an input value (`pool_windows` refuses padding as wide as the
                // kernel): -1 is never written.
                at.push(best.map_or(-1, |b| (plane * in_size + b) as i64));
            }
            out.push(match kind {
                Pool::Max => acc,
                Pool::Average => acc / if include_pad { padded_count } else { count }.max(1) as f64,
                Pool::Lp(p) => acc.powf(1.0 / p),
            });
        }
    }
    let mut shape = vec![batch, channels];
    shape.extend_from_slice(&g.output);
    let y = Tensor::from_vec(out, shape.clone(), x.device())?.to_dtype(x.dtype())?;
    Ok(if indices {
        vec![y, Tensor::from_vec(at, shape, x.device())?]
    } else {
        vec![y]
    })
}

/// Whether a MaxPool node asks for its Indices output (a second output with a name; an empty name leaves
/// it out).
pub fn wants_indices(node: &Node<'_>) -> bool {
    node.output_name(1).is_some_and(|name| !name.is_empty())
}

pub fn lp_pool(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    pool(node, inputs, Pool::Lp(node.int("p", 2) as f64))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, int, ints, run, run_outputs};

    #[test]
    fn dilated_max_pool_skips_between_taps() {
        let x = f32s(&[1., 9., 2., 8., 3.], &[1, 1, 5]);
        let out = run(
            "MaxPool",
            13,
            vec![ints("kernel_shape", &[2]), ints("dilations", &[2])],
            &[x],
        );
        assert_eq!(
            out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![2., 9., 3.]
        );
    }

    #[test]
    fn max_pool_indices_are_flat_positions_in_either_storage_order() {
        // Two planes of 2×3; windows of 1×2 at stride 2 along the width: columns 0-1, then 2 hanging past
        // the end with ceil_mode. The second plane's positions start at 6.
        let x = f32s(
            &[1., 5., 2., 7., 3., 9., 0., -1., -2., 4., 8., 8.],
            &[1, 2, 2, 3],
        );
        // As ONNX Runtime 1.32.0 gives them.
        for (order, expected) in [
            (0, [1, 2, 3, 5, 6, 8, 10, 11]),
            (1, [2, 4, 1, 5, 6, 10, 9, 11]),
        ] {
            let attributes = vec![
                ints("kernel_shape", &[1, 2]),
                ints("strides", &[1, 2]),
                int("ceil_mode", 1),
                int("storage_order", order),
            ];
            let out = run_outputs("MaxPool", 12, attributes, std::slice::from_ref(&x), 2);
            assert_eq!(out[0].dims(), [1, 2, 2, 2]);
            let values = out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(values, [5., 2., 7., 9., 0., -2., 8., 8.]);
            let at = out[1].flatten_all().unwrap().to_vec1::<i64>().unwrap();
            assert_eq!(at, expected, "storage_order {order}");
        }
        // NaN and -∞ as ONNX Runtime 1.32.0 answers them: the window's first value, then any greater.
        let x = f32s(
            &[
                f32::NAN,
                1.,
                2.,
                f32::NAN,
                f32::NEG_INFINITY,
                f32::NEG_INFINITY,
            ],
            &[1, 1, 6],
        );
        let attributes = vec![ints("kernel_shape", &[2]), ints("strides", &[2])];
        let out = run_outputs("MaxPool", 12, attributes, &[x], 2);
        let values = out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(values[0].is_nan() && values[1] == 2. && values[2] == f32::NEG_INFINITY);
        let at = out[1].flatten_all().unwrap().to_vec1::<i64>().unwrap();
        assert_eq!(at, [0, 2, 4]);
    }

    #[test]
    fn lp_pool_is_the_p_norm_of_the_window() {
        let x = f32s(&[3., 4.], &[1, 1, 2]);
        let out = run("LpPool", 18, vec![ints("kernel_shape", &[2])], &[x]);
        assert!((out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap()[0] - 5.0).abs() < 1e-6);
    }
}

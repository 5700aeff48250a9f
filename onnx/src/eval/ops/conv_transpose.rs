//! ConvTranspose over any number of spatial dims, with groups, dilations, output padding and
//! `output_shape`. One or two spatial axes of a float type on the CPU take
//! [`conv_transpose_gemm`](super::conv_transpose_gemm); the rest is computed in f64 by scattering each
//! input value through the kernel.

use candle_core::{DType, Tensor};

use super::super::node::{Node, optional, required};
use super::conv_transpose_gemm;
use super::host::{element_count, iteration_count};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

const MAX_ATTRIBUTE: i64 = Node::MAX_WINDOW_ATTRIBUTE;

fn invalid(message: String) -> ModelError {
    ModelError::Evaluation(format!("ConvTranspose: {message}"))
}

struct Geometry {
    input: Vec<usize>,
    kernel: Vec<usize>,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    pads: Vec<(usize, usize)>,
    output: Vec<usize>,
    groups: usize,
}

fn geometry(node: &Node<'_>, x: &Tensor, w: &Tensor) -> Result<Geometry, ModelError> {
    if x.rank() < 3 || w.rank() != x.rank() || w.dim(0)? != x.dim(1)? {
        return Err(invalid(format!(
            "input {:?} and weights {:?} do not match",
            x.dims(),
            w.dims()
        )));
    }
    let input: Vec<usize> = x.dims()[2..].to_vec();
    let kernel: Vec<usize> = w.dims()[2..].to_vec();
    if input.contains(&0) || kernel.contains(&0) {
        return Err(invalid("an empty spatial axis".to_owned()));
    }
    let n = input.len();
    // Strides and dilations below 1 were read as 1 before these checks; models rely on it.
    let (strides, dilations) = (
        node.per_axis("strides", n, 1, 1..=MAX_ATTRIBUTE)?,
        node.per_axis("dilations", n, 1, 1..=MAX_ATTRIBUTE)?,
    );
    let output_padding = node.per_axis("output_padding", n, 0, 0..=MAX_ATTRIBUTE)?;
    let groups = usize::try_from(node.int("group", 1).max(1)).unwrap_or(usize::MAX);
    if groups > x.dim(1)?.max(1) || !x.dim(1)?.is_multiple_of(groups) {
        return Err(invalid(format!(
            "{groups} groups do not divide {} channels",
            x.dim(1)?
        )));
    }
    let full: Vec<usize> = (0..n)
        .map(|i| {
            strides[i] * (input[i] - 1) + output_padding[i] + (kernel[i] - 1) * dilations[i] + 1
        })
        .collect();
    let auto = node
        .string("auto_pad")
        .unwrap_or_else(|| "NOTSET".to_owned());
    let requested = match node.ints("output_shape") {
        Some(v) if v.len() < n || v.iter().any(|&d| !(0..=MAX_ATTRIBUTE).contains(&d)) => {
            return Err(invalid(format!("output_shape {v:?} does not fit {n} axes")));
        }
        Some(v) => Some(v[v.len() - n..].iter().map(|&d| d as usize).collect()),
        None => None,
    };
    let (pads, output): (Vec<(usize, usize)>, Vec<usize>) =
        if requested.is_some() || auto.starts_with("SAME") {
            let target = target_shape(&requested, &input, &strides);
            let pads: Vec<(usize, usize)> = (0..n)
                .map(|i| {
                    let total = full[i].saturating_sub(target[i]);
                    // As the spec has it: SAME_UPPER puts the larger half at the end, everything else at
                    // the start.
                    if auto == "SAME_UPPER" {
                        (total / 2, total - total / 2)
                    } else {
                        (total - total / 2, total / 2)
                    }
                })
                .collect();
            // An `output_shape` is the output's: past the kernel's reach by less than a stride (what
            // one more input position would reach), zeros (and the bias) at its end, as ONNX's reference
            // and ONNX Runtime have it; by a stride or more it fits no input of this size, and both refuse
            // it. SAME padding's input × stride past that reach is not the output's: ONNX Runtime stops at
            // the reach.
            if let Some(axis) = (0..n).find(|&i| target[i] >= full[i] + strides[i]) {
                return Err(invalid(format!(
                    "output_shape {target:?} is a stride or more past what the kernel reaches on \
                     spatial axis {axis} ({} of {full:?}): no input of this size gives it",
                    full[axis]
                )));
            }
            let output = match requested {
                Some(_) => target,
                None => (0..n).map(|i| full[i] - pads[i].0 - pads[i].1).collect(),
            };
            (pads, output)
        } else {
            let p = node.per_axis("pads", 2 * n, 0, 0..=MAX_ATTRIBUTE)?;
            let pads: Vec<(usize, usize)> = (0..n).map(|i| (p[i], p[i + n])).collect();
            let output = (0..n)
                .map(|i| full[i].checked_sub(pads[i].0 + pads[i].1))
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| {
                    invalid(format!(
                        "pads {pads:?} remove more than the output {full:?}"
                    ))
                })?;
            (pads, output)
        };
    Ok(Geometry {
        input,
        kernel,
        strides,
        dilations,
        pads,
        output,
        groups,
    })
}

pub fn conv_transpose(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let w = required(inputs, 1)?;
    let Geometry {
        input,
        kernel,
        strides,
        dilations,
        pads,
        output,
        groups,
    } = geometry(node, x, w)?;
    let n = input.len();
    let (batch, in_channels) = (x.dim(0)?, x.dim(1)?);
    let per_group_out = w.dim(1)?;
    let out_channels = per_group_out * groups;
    // Counted before any product of the sizes is taken: an `output_shape` may ask for axes whose product
    // does not fit in usize.
    let out_size = iteration_count(&output, "ConvTranspose's output")?;
    element_count(&[batch, out_channels, out_size], "ConvTranspose's output")?;
    let bias = optional(inputs, 2);
    if let Some(bias) = bias
        && bias.elem_count() != out_channels
    {
        return Err(invalid(format!(
            "a bias of {:?} for {out_channels} channels",
            bias.dims()
        )));
    }
    if conv_transpose_gemm::applies(x) {
        let pads_begin: Vec<usize> = pads.iter().map(|p| p.0).collect();
        if let Some(g) = conv_transpose_gemm::Geometry::from_axes(
            &input,
            &kernel,
            &strides,
            &dilations,
            &pads_begin,
            &output,
            groups,
        ) {
            return Ok(vec![conv_transpose_gemm::conv_transpose(x, w, bias, &g)?]);
        }
    }
    let per_group_in = in_channels / groups;
    let xv = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let wv = w.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let in_size: usize = input.iter().product();
    let k_size: usize = kernel.iter().product();
    iteration_count(
        &[batch * in_channels * in_size, k_size, per_group_out],
        "ConvTranspose's work",
    )?;
    let mut y = vec![0.0; batch * out_channels * out_size];
    for b in 0..batch {
        for c in 0..in_channels {
            let g = c / per_group_in;
            for p in 0..in_size {
                let v = xv[(b * in_channels + c) * in_size + p];
                if v == 0.0 {
                    continue;
                }
                let mut coord = vec![0; n];
                let mut rest = p;
                for d in (0..n).rev() {
                    coord[d] = rest % input[d];
                    rest /= input[d];
                }
                for k in 0..k_size {
                    let mut kr = k;
                    let mut offset = 0usize;
                    let mut inside = true;
                    for d in (0..n).rev() {
                        let kd = kr % kernel[d];
                        kr /= kernel[d];
                        let pos =
                            (coord[d] * strides[d] + kd * dilations[d]) as i64 - pads[d].0 as i64;
                        if pos < 0 || pos >= output[d] as i64 {
                            inside = false;
                            break;
                        }
                        let stride: usize = output[d + 1..].iter().product();
                        offset += pos as usize * stride;
                    }
                    if !inside {
                        continue;
                    }
                    for m in 0..per_group_out {
                        let weight = wv[(c * per_group_out + m) * k_size + k];
                        y[(b * out_channels + g * per_group_out + m) * out_size + offset] +=
                            v * weight;
                    }
                }
            }
        }
    }
    let mut shape = vec![batch, out_channels];
    shape.extend_from_slice(&output);
    let mut out = Tensor::from_vec(y, shape, x.device())?.to_dtype(x.dtype())?;
    if let Some(bias) = bias {
        let mut bshape = vec![1; out.rank()];
        bshape[1] = bias.elem_count();
        out = out.broadcast_add(&bias.reshape(bshape)?)?;
    }
    Ok(vec![out])
}

/// The output shape: `output_shape` when given, else input × stride (SAME padding).
fn target_shape(requested: &Option<Vec<usize>>, input: &[usize], strides: &[usize]) -> Vec<usize> {
    match requested {
        Some(shape) => shape.clone(),
        None => input.iter().zip(strides).map(|(i, s)| i * s).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{error, f32s, ints, run, string};

    #[test]
    fn stride_two_spreads_each_input_over_the_kernel() {
        let x = f32s(&[1., 2.], &[1, 1, 2]);
        let w = f32s(&[1., 1., 1.], &[1, 1, 3]);
        let out = run("ConvTranspose", 13, vec![ints("strides", &[2])], &[x, w]);
        assert_eq!(
            out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![1., 1., 3., 2., 2.]
        );
    }

    #[test]
    fn an_output_shape_past_the_kernels_reach_is_zero_at_its_end() {
        let x = f32s(&[1., 2.], &[1, 1, 2]);
        let w = f32s(&[1., 1., 1.], &[1, 1, 3]);
        for (spatial, expected) in [
            (6, vec![1., 1., 3., 2., 2., 0.]),
            (5, vec![1., 1., 3., 2., 2.]),
            (4, vec![1., 3., 2., 2.]),
        ] {
            let attributes = vec![ints("strides", &[2]), ints("output_shape", &[spatial])];
            let out = run("ConvTranspose", 13, attributes, &[x.clone(), w.clone()]);
            assert_eq!(out[0].dims(), [1, 1, spatial as usize]);
            let values = out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(values, expected, "output_shape {spatial}");
        }
        // A stride past the reach (5 + 2) fits no input of two positions: refused, as ONNX Runtime does,
        // and so is a shape whose product does not fit in usize (three axes, for the scatter path).
        let far = vec![ints("strides", &[2]), ints("output_shape", &[7])];
        let message = error("ConvTranspose", 13, far, &[x.clone(), w.clone()]);
        assert!(message.contains("a stride or more past"), "{message}");
        let cube = f32s(&[1.; 8], &[1, 1, 2, 2, 2]);
        let one = f32s(&[1.], &[1, 1, 1, 1, 1]);
        let huge = vec![ints("strides", &[1 << 24; 3])];
        let message = error("ConvTranspose", 13, huge, &[cube, one]);
        assert!(message.contains("ConvTranspose's output"), "{message}");
        // SAME padding asks for input × stride (4) but stops at the kernel's reach (3), as ONNX Runtime.
        let one = f32s(&[1.], &[1, 1, 1]);
        let attributes = vec![ints("strides", &[2]), string("auto_pad", "SAME_UPPER")];
        let out = run("ConvTranspose", 13, attributes, &[x, one]);
        let values = out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(values, [1., 0., 2.]);
    }
}

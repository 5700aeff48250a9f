//! Convolution and pooling over NCHW (and NCL) tensors, with ONNX's explicit or automatic padding.

use candle_core::{DType, Tensor};

use super::super::node::{Node, float_input, optional, required};
use super::cpu_f32::is_half_on_cpu;
use super::pool_windows::{no_windows, windows};
use super::{average_pool_cpu, conv_gemm, max_pool_cpu};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

pub(super) fn unsupported(what: String) -> ModelError {
    ModelError::Evaluation(what)
}

/// Begin and end padding per spatial dim, from `pads` or `auto_pad`. Attribute values come from the model,
/// so the arithmetic saturates: an absurd stride or kernel fails the operator's checks, not an overflow.
pub(super) fn padding(
    node: &Node<'_>,
    input: &[usize],
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
) -> Result<Vec<(usize, usize)>, ModelError> {
    let n = input.len();
    Ok(match node.string("auto_pad").as_deref() {
        Some(mode @ ("SAME_UPPER" | "SAME_LOWER")) => (0..n)
            .map(|i| {
                let out = input[i].div_ceil(strides[i]);
                let needed = (out.saturating_sub(1).saturating_mul(strides[i]))
                    .saturating_add(kernel[i].saturating_sub(1).saturating_mul(dilations[i]))
                    .saturating_add(1)
                    .saturating_sub(input[i]);
                let small = needed / 2;
                if mode == "SAME_UPPER" {
                    (small, needed - small)
                } else {
                    (needed - small, small)
                }
            })
            .collect(),
        Some("VALID") => vec![(0, 0); n],
        _ => {
            let pads = node.ints("pads").unwrap_or_else(|| vec![0; 2 * n]);
            if pads.len() != 2 * n {
                return Err(unsupported(format!(
                    "{}: pads has {} values for {n} spatial axes (needs {})",
                    node.op_type(),
                    pads.len(),
                    2 * n
                )));
            }
            (0..n)
                .map(|i| (pads[i].max(0) as usize, pads[i + n].max(0) as usize))
                .collect()
        }
    })
}

/// Every window must fit in its padded axis; candle's kernels assume so (and panic otherwise).
fn check_windows_fit(
    node: &Node<'_>,
    input: &[usize],
    kernel: &[usize],
    dilations: &[usize],
    pads: &[(usize, usize)],
) -> Result<(), ModelError> {
    if kernel.len() != input.len() {
        return Err(unsupported(format!(
            "{}: a kernel of {} axes over {} spatial axes",
            node.op_type(),
            kernel.len(),
            input.len()
        )));
    }
    for (axis, (&length, &k)) in input.iter().zip(kernel).enumerate() {
        let padded = length
            .saturating_add(pads[axis].0)
            .saturating_add(pads[axis].1);
        let extent = k
            .saturating_sub(1)
            .saturating_mul(dilations[axis])
            .saturating_add(1);
        if k == 0 || extent > padded {
            return Err(unsupported(format!(
                "{}: spatial axis {axis} is {padded} long (padding included), shorter than the \
                 kernel's extent {extent} (kernel {k}, dilation {})",
                node.op_type(),
                dilations[axis]
            )));
        }
    }
    Ok(())
}

fn pad_value(x: &Tensor, pads: &[(usize, usize)], value: f64) -> Result<Tensor, ModelError> {
    let mut x = x.clone();
    for (i, &(begin, end)) in pads.iter().enumerate() {
        let dim = 2 + i;
        if begin == 0 && end == 0 {
            continue;
        }
        if value == 0.0 {
            x = x.pad_with_zeros(dim, begin, end)?;
        } else {
            let mut shape = x.dims().to_vec();
            let mut parts = Vec::new();
            if begin > 0 {
                shape[dim] = begin;
                parts.push(Tensor::full(value, shape.clone(), x.device())?.to_dtype(x.dtype())?);
            }
            parts.push(x.clone());
            if end > 0 {
                shape[dim] = end;
                parts.push(Tensor::full(value, shape.clone(), x.device())?.to_dtype(x.dtype())?);
            }
            x = Tensor::cat(&parts, dim)?;
        }
    }
    Ok(x)
}

/// Keeps every `step`-th element along `dim` (strides that differ per dim).
fn every(x: &Tensor, dim: usize, step: usize) -> Result<Tensor, ModelError> {
    if step == 1 {
        return Ok(x.clone());
    }
    let index: Vec<u32> = (0..x.dim(dim)? as u32).step_by(step).collect();
    let len = index.len();
    Ok(x.index_select(&Tensor::from_vec(index, len, x.device())?, dim)?)
}

pub fn conv(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let w = required(inputs, 1)?;
    let groups = node.int("group", 1).max(1) as usize;
    check_conv_operands(x, w, groups)?;
    let spatial = x.rank() - 2;
    let (kernel, strides, dilations, pads) = conv_windows(node, x, w)?;
    if conv_gemm::applies(x) && (spatial == 1 || spatial == 2) {
        let windows =
            conv_gemm::Windows2d::new(&x.dims()[2..], &kernel, &strides, &dilations, &pads);
        // A half-precision weight is computed in f32: converted once per session, not per run.
        let w_f32 = match w.dtype() {
            DType::F32 => None,
            _ => Some(node.derive(&[w], || Ok(super::cpu_f32::widen(w)?.contiguous()?))?),
        };
        return Ok(vec![conv_gemm::conv(
            x,
            w_f32.as_deref().unwrap_or(w),
            optional(inputs, 2),
            groups,
            windows,
        )?]);
    }
    let x = pad_value(x, &pads, 0.0)?;
    let mut y = match spatial {
        1 => x.conv1d(w, 0, strides[0], dilations[0], groups)?,
        2 => {
            if dilations[0] != dilations[1] {
                return Err(unsupported(
                    "Conv with different dilations per dim".to_owned(),
                ));
            }
            if strides[0] == strides[1] {
                x.conv2d(w, 0, strides[0], dilations[0], groups)?
            } else {
                let full = x.conv2d(w, 0, 1, dilations[0], groups)?;
                every(&every(&full, 2, strides[0])?, 3, strides[1])?
            }
        }
        n => return Err(unsupported(format!("Conv over {n} spatial dims"))),
    };
    if let Some(b) = optional(inputs, 2) {
        let mut shape = vec![1; y.rank()];
        shape[1] = b.elem_count();
        y = y.broadcast_add(&b.reshape(shape)?)?;
    }
    Ok(vec![y])
}

/// A convolution's kernel, strides, dilations and (begin, end) padding per spatial axis, from the node's
/// attributes and the weight's shape, checked to fit the input.
pub(super) type ConvWindows = (Vec<usize>, Vec<usize>, Vec<usize>, Vec<(usize, usize)>);

/// [`ConvWindows`] of Conv (and ConvInteger) with input `x` and weight `w`, both of rank 3 or more.
pub(super) fn conv_windows(
    node: &Node<'_>,
    x: &Tensor,
    w: &Tensor,
) -> Result<ConvWindows, ModelError> {
    let spatial = x.rank().saturating_sub(2);
    let kernel: Vec<usize> = w.dims().get(2..).unwrap_or_default().to_vec();
    let strides = node.per_axis("strides", spatial, 1, 1..=Node::MAX_WINDOW_ATTRIBUTE)?;
    let dilations = node.per_axis("dilations", spatial, 1, 1..=Node::MAX_WINDOW_ATTRIBUTE)?;
    let pads = padding(node, &x.dims()[2..], &kernel, &strides, &dilations)?;
    check_windows_fit(node, &x.dims()[2..], &kernel, &dilations, &pads)?;
    Ok((kernel, strides, dilations, pads))
}

/// Conv's input and weight agree: NC... and MC/g..., with channels that split into the groups.
fn check_conv_operands(x: &Tensor, w: &Tensor, groups: usize) -> Result<(), ModelError> {
    let (xd, wd) = (x.dims(), w.dims());
    if xd.len() < 3 || wd.len() != xd.len() {
        return Err(unsupported(format!(
            "Conv: input of shape {xd:?} and weight of shape {wd:?} (both need rank 3 or more, the same)"
        )));
    }
    if wd[1].checked_mul(groups) != Some(xd[1]) || wd[0] % groups != 0 {
        return Err(unsupported(format!(
            "Conv: weight of shape {wd:?} in {groups} groups does not match input channels {}",
            xd[1]
        )));
    }
    Ok(())
}

fn as_2d(x: &Tensor) -> Result<Tensor, ModelError> {
    Ok(if x.rank() == 3 {
        x.unsqueeze(2)?
    } else {
        x.clone()
    })
}

fn pair(v: &[usize], fill: usize) -> (usize, usize) {
    if v.len() == 1 {
        (fill, v[0])
    } else {
        (v[0], v[1])
    }
}

/// candle's pooling kernels cover 1-D and 2-D windows without dilation; the rest goes to `pool_nd`.
fn needs_general_pooling(node: &Node<'_>, x: &Tensor) -> bool {
    x.rank() > 4
        || node
            .ints("dilations")
            .is_some_and(|d| d.iter().any(|&v| v != 1))
}

pub fn max_pool(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    if needs_general_pooling(node, x) || super::pool_nd::wants_indices(node) {
        return super::pool_nd::pool(node, inputs, super::pool_nd::Pool::Max);
    }
    let (kernel, strides, pads, extra, sizes) = windows(node, x)?;
    if sizes.contains(&0) {
        return Ok(vec![no_windows(x, &sizes)?]);
    }
    let pads: Vec<(usize, usize)> = pads
        .iter()
        .zip(&extra)
        .map(|(&(b, e), &x)| (b, e + x))
        .collect();
    let axes = max_pool_cpu::Axis::each(&x.dims()[2..], &kernel, &strides, &pads);
    if let Some(y) = max_pool_cpu::max_pool(x, &axes) {
        return Ok(vec![y?]);
    }
    if is_half_on_cpu(x) {
        // The largest of f16 values is the same value in f32; the f32 path is the fast one.
        let wide = super::cpu_f32::widen(x)?.contiguous()?;
        if let Some(y) = max_pool_cpu::max_pool(&wide, &axes) {
            return Ok(vec![super::cpu_f32::narrow_to(&y?, x.dtype())?]);
        }
    }
    let padded = as_2d(&pad_value(x, &pads, f64::NEG_INFINITY)?)?;
    let y = padded.max_pool2d_with_stride(pair(&kernel, 1), pair(&strides, 1))?;
    Ok(vec![if x.rank() == 3 { y.squeeze(2)? } else { y }])
}

pub fn average_pool(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    // ONNX defines it for floating-point types only, as ONNX Runtime implements it; candle's average of
    // an integer window divides by zero (its 1/count factor is 0 in the integer type): a panic in any
    // build, found by `limits_sweep`.
    let x = float_input(node, inputs, 0)?;
    if needs_general_pooling(node, x) {
        return super::pool_nd::pool(node, inputs, super::pool_nd::Pool::Average);
    }
    let (kernel, strides, pads, extra, sizes) = windows(node, x)?;
    if sizes.contains(&0) {
        return Ok(vec![no_windows(x, &sizes)?]);
    }
    let all: Vec<(usize, usize)> = pads
        .iter()
        .zip(&extra)
        .map(|(&(b, e), &x)| (b, e + x))
        .collect();
    let include_pad = node.int("count_include_pad", 0) != 0;
    let axes = max_pool_cpu::Axis::each(&x.dims()[2..], &kernel, &strides, &all);
    let explicit_end: Vec<usize> = pads.iter().map(|p| p.1).collect();
    if let Some(y) = average_pool_cpu::average_pool(x, &axes, &explicit_end, include_pad) {
        return Ok(vec![y?]);
    }
    let k = pair(&kernel, 1);
    let s = pair(&strides, 1);
    let summed = as_2d(&pad_value(x, &all, 0.0)?)?.avg_pool2d_with_stride(k, s)?;
    // Divide by the count of cells each window covers: the input (and, with count_include_pad, the
    // explicit padding), never ceil_mode's extra cells.
    let ones = x.ones_like()?;
    let counted = if include_pad {
        let inside = pad_value(&ones, &pads, 1.0)?;
        let extra_pads: Vec<(usize, usize)> = extra.iter().map(|&e| (0, e)).collect();
        pad_value(&inside, &extra_pads, 0.0)?
    } else {
        pad_value(&ones, &all, 0.0)?
    };
    let coverage = as_2d(&counted)?.avg_pool2d_with_stride(k, s)?;
    let y = summed.div(&coverage)?;
    Ok(vec![if x.rank() == 3 { y.squeeze(2)? } else { y }])
}

pub fn global_average_pool(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    // As AveragePool: candle's mean of u8 sums in u8 (found by the evaluator fuzzer).
    let x = float_input(node, inputs, 0)?;
    let dims: Vec<usize> = (2..x.rank()).collect();
    if is_half_on_cpu(x) {
        // Summed in f32 and rounded once, as ONNX Runtime's CPU provider computes half-precision
        // pooling (candle's f16 mean is also several times slower).
        let mean = super::cpu_f32::widen(x)?.mean_keepdim(dims.as_slice())?;
        return Ok(vec![super::cpu_f32::narrow_to(&mean, x.dtype())?]);
    }
    Ok(vec![x.mean_keepdim(dims.as_slice())?])
}

pub fn global_max_pool(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let mut y = x.clone();
    for d in 2..x.rank() {
        y = y.max_keepdim(d)?;
    }
    Ok(vec![y])
}

/// LRN across channels, as AlexNet-era models use it.
pub fn lrn(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = float_input(node, inputs, 0)?;
    let size = usize::try_from(node.int("size", 1)).unwrap_or(0);
    // The window pads the channel axis by size - 1: bound that like any size a model sets.
    let mut dims = x.dims().to_vec();
    match (size, dims.get_mut(1)) {
        (1.., Some(c)) => *c = c.saturating_add(size - 1),
        _ => return Err(unsupported(format!("LRN: size {size} on {:?}", x.dims()))),
    }
    super::host::element_count(&dims, "LRN's padded input")?;
    let (alpha, beta, bias) = (
        f64::from(node.float("alpha", 1e-4)),
        f64::from(node.float("beta", 0.75)),
        f64::from(node.float("bias", 1.0)),
    );
    if x.elem_count() == 0 {
        return Ok(vec![x.clone()]); // candle's sum of a narrowed empty tensor reads past it
    }
    let sq = x.sqr()?;
    let (before, after) = ((size - 1) / 2, size - 1 - (size - 1) / 2);
    let padded = sq.pad_with_zeros(1, before, after)?;
    let channels = x.dim(1)?;
    let mut windows = Vec::with_capacity(channels);
    for c in 0..channels {
        windows.push(padded.narrow(1, c, size)?.sum_keepdim(1)?);
    }
    let sums = Tensor::cat(&windows, 1)?;
    let denom = ((sums * (alpha / size as f64))? + bias)?.powf(beta)?;
    Ok(vec![x.div(&denom)?])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, int, ints, run};

    #[test]
    fn conv_with_asymmetric_padding_and_bias() {
        // 1x1x3x3 input, 1x1x2x2 kernel of ones, pads begin 0 end 1 on both dims.
        let x = f32s(&[1., 2., 3., 4., 5., 6., 7., 8., 9.], &[1, 1, 3, 3]);
        let w = f32s(&[1., 1., 1., 1.], &[1, 1, 2, 2]);
        let b = f32s(&[10.], &[1]);
        let out = run("Conv", 13, vec![ints("pads", &[0, 0, 1, 1])], &[x, w, b]);
        assert_eq!(out[0].dims(), &[1, 1, 3, 3]);
        assert_eq!(
            out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap()[8],
            19.
        );
    }

    #[test]
    fn windows_that_do_not_fit_and_attributes_of_the_wrong_length_are_errors_not_panics() {
        use crate::eval::node::Node;
        use crate::proto::{AttributeProto, NodeProto};
        let fails = |op: &str, attributes: Vec<AttributeProto>, inputs: &[_]| {
            let proto = NodeProto {
                op_type: Some(op.to_owned()),
                attribute: attributes,
                ..Default::default()
            };
            let f = super::super::lookup("", op).unwrap();
            f(&Node::new(&proto, 13), inputs).unwrap_err().to_string()
        };
        let x = f32s(&[1., 2., 3.], &[1, 1, 3]);
        let w = f32s(&[1.; 5], &[1, 1, 5]);
        // A sequence shorter than the kernel (a speech model given a too-short input).
        let short = fails("Conv", vec![], &[x.clone(), w.clone()]);
        assert!(
            short.contains("shorter than the kernel's extent 5"),
            "{short}"
        );
        let w3 = f32s(&[1.; 3], &[1, 1, 3]);
        let strides = fails(
            "Conv",
            vec![ints("strides", &[1, 1])],
            &[x.clone(), w3.clone()],
        );
        assert!(strides.contains("strides has 2 values"), "{strides}");
        let pads = fails("Conv", vec![ints("pads", &[1])], &[x.clone(), w3]);
        assert!(pads.contains("pads has 1 values"), "{pads}");
        let channels = fails("Conv", vec![], &[x.clone(), f32s(&[1.; 6], &[1, 2, 3])]);
        assert!(
            channels.contains("does not match input channels"),
            "{channels}"
        );
        let pool = fails("MaxPool", vec![ints("kernel_shape", &[5])], &[x]);
        assert!(pool.contains("no window fits"), "{pool}");
    }

    /// ONNX's formula for an axis of 1 under a kernel of 2, as ONNX Runtime 1.20.1 sizes it: no window at
    /// a stride of 2, one hanging past the end with ceil_mode, averaging the one row it covers even with
    /// count_include_pad, as ONNX Runtime 1.32.0 averages it (1.20.1 counted the cells past the end).
    #[test]
    fn pools_over_an_axis_shorter_than_the_kernel_are_sized_by_onnx_formula() {
        let x = || f32s(&[1., 2., 3., 4.], &[1, 1, 1, 4]);
        let window = |ceil: i64| {
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("strides", &[2, 2]),
                int("ceil_mode", ceil),
            ]
        };
        for op in ["MaxPool", "AveragePool"] {
            assert_eq!(
                run(op, 13, window(0), &[x()])[0].dims(),
                [1, 1, 0, 2],
                "{op}"
            );
        }
        let flat = |t: &candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(&run("MaxPool", 13, window(1), &[x()])[0]), [2., 4.]);
        let mut counting = window(1);
        counting.push(int("count_include_pad", 1));
        assert_eq!(
            flat(&run("AveragePool", 13, counting, &[x()])[0]),
            [1.5, 3.5]
        );
        let err = super::super::testing::error(
            "MaxPool",
            13,
            vec![ints("kernel_shape", &[3, 1])],
            &[x()],
        );
        assert!(err.contains("no window fits"), "{err}");
        // Padding as long as the kernel is refused, as ONNX Runtime refuses it (with ceil_mode its count
        // underflowed).
        let padded = vec![
            ints("kernel_shape", &[2]),
            ints("pads", &[0, 3]),
            int("ceil_mode", 1),
        ];
        let err = super::super::testing::error("MaxPool", 13, padded, &[f32s(&[1.], &[1, 1, 1])]);
        assert!(err.contains("not smaller than the kernel"), "{err}");
        // An empty axis has no window, ceil_mode or not.
        let empty = vec![
            ints("kernel_shape", &[1]),
            ints("strides", &[2]),
            int("ceil_mode", 1),
        ];
        let out = run("MaxPool", 13, empty, &[f32s(&[], &[1, 1, 0])]);
        assert_eq!(out[0].dims(), [1, 1, 0]);
    }

    #[test]
    fn average_pool_refuses_integers() {
        let x = candle_core::Tensor::full(200u8, (1, 1, 2, 2), &candle_core::Device::Cpu).ok();
        let kernel = vec![super::super::testing::ints("kernel_shape", &[2, 2])];
        let err = super::super::testing::error("AveragePool", 19, kernel, &[x]);
        assert!(err.contains("floating point"), "{err}");
    }

    #[test]
    fn global_average_pool_refuses_integers() {
        let x = candle_core::Tensor::full(200u8, (1, 1, 2, 2), &candle_core::Device::Cpu).ok();
        let err = super::super::testing::error("GlobalAveragePool", 13, vec![], &[x]);
        assert!(err.contains("floating point"), "{err}");
    }

    #[test]
    fn global_average_pool_keeps_the_spatial_dims_as_ones() {
        let out = run(
            "GlobalAveragePool",
            13,
            vec![],
            &[f32s(&[1., 2., 3., 6.], &[1, 1, 2, 2])],
        );
        assert_eq!(out[0].dims(), &[1, 1, 1, 1]);
        assert_eq!(
            out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![3.]
        );
    }

    #[test]
    fn max_pool_pads_with_minus_infinity() {
        let x = f32s(&[-1., -2., -3., -4.], &[1, 1, 2, 2]);
        let out = run(
            "MaxPool",
            13,
            vec![ints("kernel_shape", &[2, 2]), ints("pads", &[1, 1, 0, 0])],
            &[x],
        );
        assert_eq!(
            out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![-1., -1., -1., -1.]
        );
    }

    #[test]
    fn average_pool_excludes_padding_by_default() {
        let x = f32s(&[2., 4., 6., 8.], &[1, 1, 2, 2]);
        let out = run(
            "AveragePool",
            13,
            vec![ints("kernel_shape", &[2, 2]), ints("pads", &[1, 1, 0, 0])],
            &[x],
        );
        assert_eq!(
            out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![2., 3., 4., 5.]
        );
    }

    #[test]
    fn batch_norm_training_uses_batch_statistics_and_updates_running_ones() {
        let x = f32s(&[1., 3.], &[2, 1]);
        let out = run(
            "BatchNormalization",
            15,
            vec![
                super::super::testing::int("training_mode", 1),
                super::super::testing::float("epsilon", 0.0),
                super::super::testing::float("momentum", 0.5),
            ],
            &[
                x,
                f32s(&[1.], &[1]),
                f32s(&[0.], &[1]),
                f32s(&[0.], &[1]),
                f32s(&[1.], &[1]),
            ],
        );
        let flat = super::super::testing::flat;
        assert_eq!(flat(&out[0]), vec![-1., 1.]);
        assert_eq!(flat(&out[1]), vec![1.]);
        assert_eq!(flat(&out[2]), vec![1.]);
    }
}

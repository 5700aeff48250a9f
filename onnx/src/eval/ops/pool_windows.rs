//! Where a pooling's windows fall: its kernel, strides and padding per spatial axis, ceil_mode's extra
//! cells, and how many windows each axis has, an axis shorter than the kernel included.

use candle_core::Tensor;

use super::super::node::Node;
use super::spatial::{padding, unsupported};
use crate::ModelError;

/// kernel, strides, (begin, end) padding, ceil_mode's extra end padding, and the result's spatial sizes.
pub(super) type Windows = (
    Vec<usize>,
    Vec<usize>,
    Vec<(usize, usize)>,
    Vec<usize>,
    Vec<usize>,
);

/// Pooling windows: kernel, strides, begin/end padding, with ceil_mode's extra end padding, and how many
/// windows each axis has.
pub(super) fn windows(node: &Node<'_>, x: &Tensor) -> Result<Windows, ModelError> {
    if x.rank() < 3 {
        let (op, dims) = (node.op_type(), x.dims());
        return Err(unsupported(format!(
            "{op}: the input must be [N, C, ...], not {dims:?}"
        )));
    }
    let spatial = x.rank() - 2;
    let kernel: Vec<usize> = node
        .ints("kernel_shape")
        .ok_or_else(|| unsupported("pooling needs kernel_shape".to_owned()))?
        .iter()
        .map(|&k| k.clamp(0, Node::MAX_WINDOW_ATTRIBUTE) as usize)
        .collect();
    let strides = node.per_axis("strides", spatial, 1, 1..=Node::MAX_WINDOW_ATTRIBUTE)?;
    let dilations = node.per_axis("dilations", spatial, 1, 1..=Node::MAX_WINDOW_ATTRIBUTE)?;
    if dilations.iter().any(|&d| d != 1) {
        return Err(unsupported("pooling with dilations".to_owned()));
    }
    if kernel.len() != spatial || kernel.contains(&0) {
        return Err(unsupported(format!(
            "{}: kernel_shape {kernel:?} for {spatial} spatial axes",
            node.op_type(),
        )));
    }
    let pads = padding(node, &x.dims()[2..], &kernel, &strides, &dilations)?;
    // As ONNX Runtime checks: a window wholly in the padding would pool nothing, and ceil_mode's count
    // (below) assumes none is.
    if let Some(axis) = (0..spatial).find(|&i| pads[i].0 >= kernel[i] || pads[i].1 >= kernel[i]) {
        return Err(unsupported(format!(
            "{}: padding {:?} on spatial axis {axis} is not smaller than the kernel ({})",
            node.op_type(),
            pads[axis],
            kernel[axis]
        )));
    }
    let mut extra = vec![0; spatial];
    let mut sizes = vec![0; spatial];
    for i in 0..spatial {
        let padded = x.dims()[2 + i]
            .saturating_add(pads[i].0)
            .saturating_add(pads[i].1);
        (sizes[i], extra[i]) = if kernel[i] > padded {
            let before_the_end = x.dims()[2 + i] + pads[i].0;
            window_past_the_end(node, i, (before_the_end, padded), kernel[i], strides[i])?
        } else {
            let floor_out = (padded - kernel[i]) / strides[i] + 1;
            let mut ceil_out = (padded - kernel[i]).div_ceil(strides[i]) + 1;
            // The last window must start inside the input or its begin padding.
            if (ceil_out - 1) * strides[i] >= x.dims()[2 + i] + pads[i].0 {
                ceil_out -= 1;
            }
            if node.int("ceil_mode", 0) != 0 {
                (ceil_out, (ceil_out - floor_out) * strides[i])
            } else {
                (floor_out, 0)
            }
        };
    }
    Ok((kernel, strides, pads, extra, sizes))
}

/// An axis (`padded` long, its padding included) shorter than the kernel, sized by ONNX's formula:
/// `floor((padded - kernel) / stride) + 1` windows, or with ceil_mode `ceil(...) + 1`. So no window
/// (an empty result) when the axis falls short by up to a stride, or with ceil_mode one window hanging
/// past the end when short by less than one (its cells past the end are ceil_mode's extra cells, never
/// counted in an average) and none when by less than two; an error beyond. Returns the windows and the
/// extra cells. ONNX Runtime 1.20 sizes such axes so; 1.32 truncates the quotient toward zero instead of
/// flooring it, making one window where the formula makes none (docs/benchmarks.md).
fn window_past_the_end(
    node: &Node<'_>,
    axis: usize,
    (before_the_end, padded): (usize, usize),
    kernel: usize,
    stride: usize,
) -> Result<(usize, usize), ModelError> {
    let short = kernel - padded;
    let ceil = node.int("ceil_mode", 0) != 0;
    // ceil_mode's last window must start inside the input or its begin padding: the one window starts
    // at the begin padding's first cell, so an axis with neither (an empty one) has none.
    if ceil && short < stride && before_the_end > 0 {
        Ok((1, short))
    } else if short <= stride || (ceil && short < 2 * stride) {
        Ok((0, 0))
    } else {
        Err(unsupported(format!(
            "{}: spatial axis {axis} is {padded} long (padding included), {short} shorter than the \
             kernel ({kernel}): no window fits with a stride of {stride}",
            node.op_type()
        )))
    }
}

/// The result of a pooling with no window along some axis: empty, `[N, C, sizes...]`.
pub(super) fn no_windows(x: &Tensor, sizes: &[usize]) -> Result<Tensor, ModelError> {
    let dims: Vec<usize> = x.dims()[..2].iter().chain(sizes).copied().collect();
    Ok(Tensor::zeros(dims, x.dtype(), x.device())?)
}

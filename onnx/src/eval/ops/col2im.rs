//! Col2Im: the inverse of an im2col unfold. Input [N, C·∏block, L] holds, for each of the L sliding
//! block positions, the block's values; they are summed back into an image [N, C, image_shape…], with
//! `strides`, `dilations` and `pads` as in Conv.

use candle_core::Tensor;

use super::super::node::{Node, int_values, required};
use super::host::{build, element_count, strides, values};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

fn invalid(message: String) -> ModelError {
    ModelError::Evaluation(format!("Col2Im: {message}"))
}

fn sizes(t: &Tensor, what: &str) -> Result<Vec<usize>, ModelError> {
    int_values(t)?
        .into_iter()
        .map(|v| {
            usize::try_from(v)
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| invalid(format!("{what} holds {v}")))
        })
        .collect()
}

pub fn col2im(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let image = sizes(required(inputs, 1)?, "image_shape")?;
    let block = sizes(required(inputs, 2)?, "block_shape")?;
    let r = image.len();
    if block.len() != r || r == 0 {
        return Err(invalid(format!(
            "image_shape {image:?} and block_shape {block:?} differ in rank"
        )));
    }
    let dilations = node.per_axis("dilations", r, 1, 1..=i64::from(i32::MAX))?;
    let steps = node.per_axis("strides", r, 1, 1..=i64::from(i32::MAX))?;
    let pads = node.per_axis("pads", 2 * r, 0, 0..=i64::from(i32::MAX))?;
    // Block positions per axis, as Conv would slide them over the padded image.
    let mut positions = Vec::with_capacity(r);
    for axis in 0..r {
        let padded = image[axis]
            .checked_add(pads[axis] + pads[axis + r])
            .ok_or_else(|| invalid(format!("axis {axis} is too large once padded")))?;
        let span = dilations[axis]
            .checked_mul(block[axis] - 1)
            .and_then(|s| s.checked_add(1))
            .filter(|&s| s <= padded)
            .ok_or_else(|| invalid(format!("the block does not fit axis {axis}")))?;
        positions.push((padded - span) / steps[axis] + 1);
    }
    let block_len = element_count(&block, "the block")?;
    let blocks = element_count(&positions, "the block positions")?;
    let &[batch, rows, cols] = x.dims() else {
        return Err(invalid(format!("input {:?} must have rank 3", x.dims())));
    };
    if rows % block_len != 0 || cols != blocks {
        return Err(invalid(format!(
            "input {:?} does not hold {blocks} blocks of {block_len} values per channel",
            x.dims()
        )));
    }
    let channels = rows / block_len;
    let mut out_dims = vec![batch, channels];
    out_dims.extend_from_slice(&image);
    let mut out = vec![0.0; element_count(&out_dims, "the Col2Im output")?];
    let data = values(x)?;
    let image_len: usize = image.iter().product();
    let (image_strides, block_strides, position_strides) =
        (strides(&image), strides(&block), strides(&positions));
    for k in 0..block_len {
        for l in 0..blocks {
            // Where offset k of block l lands in the image, if inside it.
            let mut target = 0;
            let mut inside = true;
            for axis in 0..r {
                let offset = (k / block_strides[axis]) % block[axis];
                let position = (l / position_strides[axis]) % positions[axis];
                let at =
                    (position * steps[axis] + offset * dilations[axis]) as i64 - pads[axis] as i64;
                if at < 0 || at >= image[axis] as i64 {
                    inside = false;
                    break;
                }
                target += at as usize * image_strides[axis];
            }
            if !inside {
                continue;
            }
            for nc in 0..batch * channels {
                let (n, c) = (nc / channels, nc % channels);
                out[nc * image_len + target] += data[(n * rows + c * block_len + k) * cols + l];
            }
        }
    }
    Ok(vec![build(out, &out_dims, x.dtype(), x)?])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, i64s, run};
    use super::*;

    #[test]
    fn overlapping_blocks_are_summed() {
        // A 1x3 image from two 1x2 blocks at stride 1: the middle pixel gets both.
        let x = f32s(&[1.0, 10.0, 2.0, 20.0], &[1, 2, 2]);
        let out = run("Col2Im", 18, vec![], &[x, i64s(&[1, 3]), i64s(&[1, 2])]);
        assert_eq!(out[0].dims(), &[1, 1, 1, 3]);
        assert_eq!(
            out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![1.0, 12.0, 20.0]
        );
    }

    #[test]
    fn wrong_block_counts_are_errors() {
        let proto = crate::proto::NodeProto::default();
        let node = Node::new(&proto, 18);
        let x = f32s(&[0.0; 6], &[1, 2, 3]);
        assert!(col2im(&node, &[x.clone(), i64s(&[1, 3]), i64s(&[1, 2])]).is_err());
        assert!(col2im(&node, &[x.clone(), i64s(&[1, 3]), i64s(&[1, 9])]).is_err());
        assert!(col2im(&node, &[x.clone(), i64s(&[1, -3]), i64s(&[1, 2])]).is_err());
        let proto = crate::proto::NodeProto {
            attribute: vec![super::super::testing::ints(
                "pads",
                &[0, i64::MAX, 0, i64::MAX],
            )],
            ..Default::default()
        };
        let node = Node::new(&proto, 18);
        assert!(col2im(&node, &[x, i64s(&[1, 3]), i64s(&[1, 2])]).is_err());
    }
}

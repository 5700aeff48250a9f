//! AffineGrid: the sampling grid GridSample reads, from a batch of affine matrices theta ([N, 2, 3] for
//! images, [N, 3, 4] for volumes) applied to the normalized coordinates of an output of `size`
//! ([N, C, H, W] or [N, C, D, H, W]). The grid lists x (width) first.

use candle_core::Tensor;

use super::super::node::{Node, int_values, required};
use super::host::{build, element_count, values};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

fn invalid(message: String) -> ModelError {
    ModelError::Evaluation(format!("AffineGrid: {message}"))
}

/// The normalized coordinate of position `i` of `len`: pixel centres in [-1, 1], or pixel corners
/// spanning it exactly with `align_corners`. An axis of one position is at 0 either way, as PyTorch's
/// `affine_grid` (where such models come from) places it; with `align_corners` ONNX leaves it undefined
/// (a division by zero): ONNX's reference lands on -1, ONNX Runtime 1.32.0 on 1.
fn normalized(i: usize, len: usize, align_corners: bool) -> f64 {
    if align_corners {
        if len <= 1 {
            0.0
        } else {
            -1.0 + 2.0 * i as f64 / (len - 1) as f64
        }
    } else {
        -1.0 + (2 * i + 1) as f64 / len as f64
    }
}

pub fn affine_grid(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let theta_t = required(inputs, 0)?;
    let size = int_values(required(inputs, 1)?)?;
    let align_corners = node.int("align_corners", 0) != 0;
    let spatial = size.len().saturating_sub(2);
    if !(spatial == 2 || spatial == 3) {
        return Err(invalid(format!(
            "size {size:?} must be [N, C, H, W] or [N, C, D, H, W]"
        )));
    }
    let size: Vec<usize> = size
        .iter()
        .map(|&s| usize::try_from(s).map_err(|_| invalid(format!("negative size {s}"))))
        .collect::<Result<_, _>>()?;
    let batch = size[0];
    if theta_t.dims() != [batch, spatial, spatial + 1] {
        return Err(invalid(format!(
            "theta {:?} must be [{batch}, {spatial}, {}]",
            theta_t.dims(),
            spatial + 1
        )));
    }
    // Output [N, (D,) H, W, spatial]; the spatial sizes listed outermost first.
    let extent = &size[2..];
    let mut out_dims = vec![batch];
    out_dims.extend_from_slice(extent);
    out_dims.push(spatial);
    let count = element_count(&out_dims, "the AffineGrid output")?;
    let theta = values(theta_t)?;
    let points: usize = extent.iter().product();
    let mut out = Vec::with_capacity(count);
    let mut base = vec![0.0; spatial + 1];
    for n in 0..batch {
        let matrix = &theta[n * spatial * (spatial + 1)..(n + 1) * spatial * (spatial + 1)];
        for p in 0..points {
            // Homogeneous point (x, y[, z], 1): x walks the last axis, fastest.
            let mut rest = p;
            for axis in (0..spatial).rev() {
                let len = extent[axis];
                base[spatial - 1 - axis] = normalized(rest % len, len, align_corners);
                rest /= len;
            }
            base[spatial] = 1.0;
            for row in matrix.chunks(spatial + 1) {
                out.push(row.iter().zip(&base).map(|(a, b)| a * b).sum());
            }
        }
    }
    Ok(vec![build(out, &out_dims, theta_t.dtype(), theta_t)?])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, i64s, int, run};
    use super::*;

    #[test]
    fn identity_theta_gives_the_normalized_grid() {
        let theta = f32s(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0], &[1, 2, 3]);
        let size = i64s(&[1, 1, 2, 3]);
        let out = run(
            "AffineGrid",
            20,
            vec![int("align_corners", 1)],
            &[theta, size],
        );
        assert_eq!(out[0].dims(), &[1, 2, 3, 2]);
        let v = out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(&v[..6], &[-1.0, -1.0, 0.0, -1.0, 1.0, -1.0]);
        assert!((normalized(0, 2, false) + 0.5).abs() < 1e-12);
    }

    #[test]
    fn an_axis_of_one_position_is_at_the_centre() {
        // The translation alone, as PyTorch and (without align_corners) ONNX Runtime 1.32.0 answer.
        let theta = f32s(&[2.0, 3.0, 0.1, 5.0, 7.0, 0.4], &[1, 2, 3]);
        for align_corners in [0, 1] {
            let out = run(
                "AffineGrid",
                20,
                vec![int("align_corners", align_corners)],
                &[theta.clone(), i64s(&[1, 1, 1, 1])],
            );
            let v = out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(v, [0.1, 0.4], "align_corners {align_corners}");
        }
    }

    #[test]
    fn mismatched_theta_is_an_error() {
        let proto = crate::proto::NodeProto::default();
        let node = Node::new(&proto, 20);
        let theta = f32s(&[0.0; 6], &[1, 2, 3]);
        assert!(affine_grid(&node, &[theta.clone(), i64s(&[1, 1, 2, 2, 2])]).is_err());
        assert!(affine_grid(&node, &[theta, i64s(&[1, 1, -2, 2])]).is_err());
    }
}

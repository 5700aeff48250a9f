//! GridSample: samples X [N, C, D1..Dr] at the normalized coordinates of grid [N, O1..Or, r] (the last
//! axis lists x, y, z…: the last spatial axis first). Nearest, (bi/tri)linear or cubic interpolation (the
//! opset-16 names `bilinear` and `bicubic` and the opset-20 names `linear` and `cubic` are both accepted),
//! zeros, border or reflection padding, and `align_corners`. Follows ONNX's reference implementation: a
//! separable interpolation whose taps each read a padded pixel.

use candle_core::Tensor;

use super::super::node::{Node, required};
use super::host::{build, element_count, strides, values};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// The most tap reads one GridSample may take (2^32).
const MAX_WORK: usize = 1 << 32;

fn invalid(message: String) -> ModelError {
    ModelError::Evaluation(format!("GridSample: {message}"))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Nearest,
    Linear,
    Cubic,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Padding {
    Zeros,
    Border,
    Reflection,
}

/// The spatial sizes of X and how to read outside them.
struct Image<'a> {
    data: &'a [f64],
    dims: &'a [usize],
    strides: Vec<usize>,
    padding: Padding,
    /// Per axis, the interval reflection folds into: pixel edges, or pixel centres with `align_corners`.
    bounds: Vec<(f64, f64)>,
}

/// Folds `x` back into `[low, high]` by reflecting at the nearer edge, as many times as needed.
fn reflect(x: f64, low: f64, high: f64) -> f64 {
    let range = high - low;
    if range <= 0.0 {
        return low;
    }
    let (distance, from_low) = if x < low {
        (low - x, true)
    } else if x > high {
        (x - high, false)
    } else {
        return x;
    };
    let folds = (distance / range).trunc();
    let rest = distance - folds * range;
    // An even number of folds leaves the point reflected off the edge it crossed.
    if (folds as u64).is_multiple_of(2) == from_low {
        low + rest
    } else {
        high - rest
    }
}

impl Image<'_> {
    /// The value at integer index `at` (one per spatial axis), or what the padding mode reads there.
    fn pixel(&self, at: &[i64]) -> f64 {
        let mut offset = 0;
        for (axis, &i) in at.iter().enumerate() {
            let size = self.dims[axis] as i64;
            let i = match self.padding {
                Padding::Zeros if !(0..size).contains(&i) => return 0.0,
                Padding::Zeros => i,
                Padding::Border => i.clamp(0, size - 1),
                Padding::Reflection => {
                    let (low, high) = self.bounds[axis];
                    (reflect(i as f64, low, high) as i64).clamp(0, size - 1)
                }
            };
            offset += i as usize * self.strides[axis];
        }
        self.data[offset]
    }

    /// Moves an out-of-range coordinate inside, for border and reflection padding.
    fn confine(&self, x: &mut [f64]) {
        for (axis, v) in x.iter_mut().enumerate() {
            let (low, high) = self.bounds[axis];
            if *v >= low && *v <= high {
                continue;
            }
            match self.padding {
                Padding::Border => *v = v.clamp(0.0, self.dims[axis] as f64 - 1.0),
                Padding::Reflection => *v = reflect(*v, low, high),
                Padding::Zeros => {}
            }
        }
    }

    /// The interpolated value at coordinates `x` (one per spatial axis, already confined).
    fn sample(&self, mode: Mode, x: &[f64]) -> f64 {
        if mode == Mode::Nearest {
            let at: Vec<i64> = x.iter().map(|&v| v as i64).collect();
            return self.pixel(&at);
        }
        let taps = if mode == Mode::Linear { 2 } else { 4 };
        let first: Vec<i64> = x
            .iter()
            // Saturating: a hostile grid may hold coordinates far past i64's range.
            .map(|&v| (v.floor() as i64).saturating_sub(i64::from(mode == Mode::Cubic)))
            .collect();
        let weights: Vec<[f64; 4]> = x
            .iter()
            .map(|&v| {
                let t = v - v.floor();
                match mode {
                    Mode::Linear => [1.0 - t, t, 0.0, 0.0],
                    _ => cubic_weights(t),
                }
            })
            .collect();
        let rank = x.len();
        let mut tap = vec![0usize; rank];
        let mut at = vec![0i64; rank];
        let mut sum = 0.0;
        loop {
            let mut weight = 1.0;
            for axis in 0..rank {
                at[axis] = first[axis].saturating_add(tap[axis] as i64);
                weight *= weights[axis][tap[axis]];
            }
            sum += weight * self.pixel(&at);
            // Next tap combination, last axis fastest.
            let Some(axis) = (0..rank).rev().find(|&a| tap[a] + 1 < taps) else {
                return sum;
            };
            tap[axis] += 1;
            tap[axis + 1..].iter_mut().for_each(|t| *t = 0);
        }
    }
}

/// Keys' cubic convolution weights (a = -0.75, as ONNX's reference and PyTorch use) for the taps at
/// -1, 0, 1, 2 around a point `t` past the first.
fn cubic_weights(t: f64) -> [f64; 4] {
    let a = -0.75;
    let near = |d: f64| ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0;
    let far = |d: f64| ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

fn mode(node: &Node<'_>) -> Result<Mode, ModelError> {
    let default = if node.opset >= 20 {
        "linear"
    } else {
        "bilinear"
    };
    match node.string("mode").as_deref().unwrap_or(default) {
        "nearest" => Ok(Mode::Nearest),
        "linear" | "bilinear" => Ok(Mode::Linear),
        "cubic" | "bicubic" => Ok(Mode::Cubic),
        other => Err(invalid(format!("unknown mode {other:?}"))),
    }
}

fn padding(node: &Node<'_>) -> Result<Padding, ModelError> {
    match node.string("padding_mode").as_deref().unwrap_or("zeros") {
        "zeros" => Ok(Padding::Zeros),
        "border" => Ok(Padding::Border),
        "reflection" => Ok(Padding::Reflection),
        other => Err(invalid(format!("unknown padding_mode {other:?}"))),
    }
}

/// Checks X and grid against each other; returns the output's dims.
fn output_dims(x: &Tensor, grid: &Tensor, mode: Mode) -> Result<Vec<usize>, ModelError> {
    let spatial = x.rank().saturating_sub(2);
    if spatial == 0 || grid.rank() != spatial + 2 {
        return Err(invalid(format!(
            "X {:?} and grid {:?} do not match (X is [N, C, D1..Dr], grid [N, O1..Or, r])",
            x.dims(),
            grid.dims()
        )));
    }
    let (xd, gd) = (x.dims(), grid.dims());
    if gd[0] != xd[0] || gd[spatial + 1] != spatial {
        return Err(invalid(format!(
            "grid {gd:?} does not fit X {xd:?}: it needs batch {} and last axis {spatial}",
            xd[0]
        )));
    }
    if xd[2..].contains(&0) {
        return Err(invalid(format!("X {xd:?} has an empty spatial axis")));
    }
    let mut dims = vec![xd[0], xd[1]];
    dims.extend_from_slice(&gd[1..=spatial]);
    let count = element_count(&dims, "the GridSample output")?;
    let taps: usize = match mode {
        Mode::Nearest => 1,
        Mode::Linear => 2,
        Mode::Cubic => 4,
    };
    let work = u32::try_from(spatial)
        .ok()
        .and_then(|r| taps.checked_pow(r))
        .and_then(|t| t.checked_mul(count));
    if work.is_none_or(|w| w > MAX_WORK) {
        return Err(invalid(format!(
            "{count} outputs over {spatial} axes is more work than allowed"
        )));
    }
    Ok(dims)
}

pub fn grid_sample(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let grid = required(inputs, 1)?;
    let mode = mode(node)?;
    let padding = padding(node)?;
    let align_corners = node.int("align_corners", 0) != 0;
    let out_dims = output_dims(x, grid, mode)?;
    let spatial = x.rank() - 2;
    let dims = &x.dims()[2..];
    let bounds: Vec<(f64, f64)> = dims
        .iter()
        .map(|&d| {
            if align_corners {
                (0.0, d as f64 - 1.0)
            } else {
                (-0.5, d as f64 - 0.5)
            }
        })
        .collect();
    let data = values(x)?;
    let coords = values(grid)?;
    let (batch, channels) = (out_dims[0], out_dims[1]);
    let points: usize = out_dims[2..].iter().product();
    let image_len: usize = dims.iter().product();
    let mut out = Vec::with_capacity(batch * channels * points);
    for n in 0..batch {
        for c in 0..channels {
            let start = (n * channels + c) * image_len;
            let image = Image {
                data: &data[start..start + image_len],
                dims,
                strides: strides(dims),
                padding,
                bounds: bounds.clone(),
            };
            for p in 0..points {
                let g = &coords[(n * points + p) * spatial..(n * points + p + 1) * spatial];
                // The grid lists the last axis first; unnormalize each into pixel units.
                let mut at: Vec<f64> = (0..spatial)
                    .map(|axis| {
                        let (v, size) = (g[spatial - 1 - axis], dims[axis] as f64);
                        if align_corners {
                            (v + 1.0) / 2.0 * (size - 1.0)
                        } else {
                            ((v + 1.0) * size - 1.0) / 2.0
                        }
                    })
                    .collect();
                if mode == Mode::Nearest {
                    // Round half to even, as PyTorch and ONNX's reference do.
                    at.iter_mut().for_each(|v| *v = v.round_ties_even());
                }
                image.confine(&mut at);
                out.push(image.sample(mode, &at));
            }
        }
    }
    Ok(vec![build(out, &out_dims, x.dtype(), x)?])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, flat, run, string};
    use super::*;

    #[test]
    fn corners_and_centre_with_align_corners() {
        let x = f32s(&[0.0, 1.0, 2.0, 3.0], &[1, 1, 2, 2]);
        // (x, y) = (-1,-1) top-left, (1,-1) top-right, (0,0) centre, (1,1) bottom-right.
        let grid = f32s(&[-1.0, -1.0, 1.0, -1.0, 0.0, 0.0, 1.0, 1.0], &[1, 1, 4, 2]);
        let attrs = vec![super::super::testing::int("align_corners", 1)];
        let out = run("GridSample", 16, attrs, &[x, grid]);
        assert_eq!(out[0].dims(), &[1, 1, 1, 4]);
        assert_eq!(flat(&out[0]), vec![0.0, 1.0, 1.5, 3.0]);
    }

    #[test]
    fn zeros_border_and_reflection_outside() {
        let x = f32s(&[1.0, 2.0], &[1, 1, 1, 2]);
        let grid = f32s(&[-3.0, 0.0], &[1, 1, 1, 2]); // far left of the image
        let pad = |mode: &str| {
            let attrs = vec![string("padding_mode", mode), string("mode", "nearest")];
            flat(&run("GridSample", 16, attrs, &[x.clone(), grid.clone()])[0])[0]
        };
        assert_eq!(pad("zeros"), 0.0);
        assert_eq!(pad("border"), 1.0);
        assert_eq!(pad("reflection"), 2.0);
        assert_eq!(reflect(-1.0, -0.5, 1.5), 0.0);
        assert_eq!(reflect(2.0, -0.5, 1.5), 1.0);
    }

    #[test]
    fn coordinates_past_i64_read_padding_without_overflow() {
        let x = f32s(&[1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
        let grid = f32s(&[1e30, -1e30, f32::NAN, f32::INFINITY], &[1, 1, 2, 2]);
        for padding in ["zeros", "border", "reflection"] {
            for mode in ["nearest", "bilinear", "bicubic"] {
                let attrs = vec![string("padding_mode", padding), string("mode", mode)];
                let out = run("GridSample", 16, attrs, &[x.clone(), grid.clone()]);
                assert_eq!(out[0].dims(), &[1, 1, 1, 2]);
            }
        }
    }

    #[test]
    fn cubic_weights_sum_to_one() {
        for t in [0.0, 0.25, 0.5, 0.9] {
            assert!((cubic_weights(t).iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn mismatched_grids_are_errors() {
        let proto = crate::proto::NodeProto::default();
        let node = Node::new(&proto, 20);
        let x = f32s(&[0.0; 4], &[1, 1, 2, 2]);
        let grid = f32s(&[0.0; 3], &[1, 1, 1, 3]);
        assert!(grid_sample(&node, &[x.clone(), grid]).is_err());
        let grid = f32s(&[0.0; 4], &[2, 1, 1, 2]);
        assert!(grid_sample(&node, &[x, grid]).is_err());
    }
}

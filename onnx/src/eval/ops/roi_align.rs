//! RoiAlign: pools each region of interest of X [N, C, H, W] into an output_height × output_width grid,
//! averaging (or taking the largest of) bilinear samples inside each bin, as Mask R-CNN does. Follows
//! onnxruntime's kernel, from which ONNX's reference is taken.

use candle_core::Tensor;

use super::super::node::{Node, int_values, required};
use super::host::{build, element_count, values};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// The most bilinear samples one RoiAlign may take (2^28, seconds of work); a huge region with an
/// adaptive sampling ratio would otherwise ask for unbounded work (2^32 kept a thread for minutes on one
/// region of 65,000 pixels a side). A detector's thousand regions of 256 channels at 7 × 7 with four
/// samples a bin take 2^26.
const MAX_WORK: f64 = 268_435_456.0;

fn invalid(message: String) -> ModelError {
    ModelError::Evaluation(format!("RoiAlign: {message}"))
}

/// One channel plane of X.
struct Plane<'a> {
    data: &'a [f64],
    height: usize,
    width: usize,
}

impl Plane<'_> {
    /// The four bilinear taps at (y, x) as weight · value, or none when the point is more than a pixel
    /// outside the plane.
    fn taps(&self, y: f64, x: f64) -> [f64; 4] {
        let (h, w) = (self.height as f64, self.width as f64);
        if y < -1.0 || y > h || x < -1.0 || x > w {
            return [0.0; 4];
        }
        let (y, x) = (y.max(0.0), x.max(0.0));
        let (y_low, y_high, y) = edge(y, self.height);
        let (x_low, x_high, x) = edge(x, self.width);
        let (ly, lx) = (y - y_low as f64, x - x_low as f64);
        let (hy, hx) = (1.0 - ly, 1.0 - lx);
        let at = |r: usize, c: usize| self.data[r * self.width + c];
        [
            hy * hx * at(y_low, x_low),
            hy * lx * at(y_low, x_high),
            ly * hx * at(y_high, x_low),
            ly * lx * at(y_high, x_high),
        ]
    }
}

/// The low and high neighbours of a coordinate, pinned to the last pixel at the far edge.
fn edge(v: f64, len: usize) -> (usize, usize, f64) {
    let low = v as usize;
    if low + 1 >= len {
        (len - 1, len - 1, (len - 1) as f64)
    } else {
        (low, low + 1, v)
    }
}

struct Settings {
    out_h: usize,
    out_w: usize,
    sampling_ratio: usize,
    spatial_scale: f64,
    half_pixel: bool,
    max: bool,
}

impl Settings {
    fn new(node: &Node<'_>) -> Result<Self, ModelError> {
        let positive = |name: &str| {
            usize::try_from(node.int(name, 1))
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| invalid(format!("{name} must be positive")))
        };
        let sampling_ratio = usize::try_from(node.int("sampling_ratio", 0))
            .map_err(|_| invalid("sampling_ratio must not be negative".to_owned()))?;
        // Opset 16 added the attribute and made half_pixel the default; before, it was output_half_pixel.
        let default_mode = if node.opset >= 16 {
            "half_pixel"
        } else {
            "output_half_pixel"
        };
        let half_pixel = match node
            .string("coordinate_transformation_mode")
            .as_deref()
            .unwrap_or(default_mode)
        {
            "half_pixel" => true,
            "output_half_pixel" => false,
            other => {
                return Err(invalid(format!(
                    "unknown coordinate_transformation_mode {other:?}"
                )));
            }
        };
        let max = match node.string("mode").as_deref().unwrap_or("avg") {
            "avg" => false,
            "max" => true,
            other => return Err(invalid(format!("unknown mode {other:?}"))),
        };
        Ok(Self {
            out_h: positive("output_height")?,
            out_w: positive("output_width")?,
            sampling_ratio,
            spatial_scale: f64::from(node.float("spatial_scale", 1.0)),
            half_pixel,
            max,
        })
    }

    /// The pooled grid of one region [x1, y1, x2, y2] over one plane, row by row.
    fn pool(&self, plane: &Plane<'_>, roi: &[f64], out: &mut Vec<f64>) {
        let offset = if self.half_pixel { 0.5 } else { 0.0 };
        let start_w = roi[0] * self.spatial_scale - offset;
        let start_h = roi[1] * self.spatial_scale - offset;
        let mut roi_w = roi[2] * self.spatial_scale - offset - start_w;
        let mut roi_h = roi[3] * self.spatial_scale - offset - start_h;
        if !self.half_pixel {
            // The legacy mode forces malformed regions to one pixel.
            roi_w = roi_w.max(1.0);
            roi_h = roi_h.max(1.0);
        }
        let bin_h = roi_h / self.out_h as f64;
        let bin_w = roi_w / self.out_w as f64;
        let (grid_h, grid_w) = self.grid(bin_h, bin_w);
        let count = (grid_h * grid_w).max(1) as f64;
        for ph in 0..self.out_h {
            for pw in 0..self.out_w {
                let mut acc: Option<f64> = None;
                for iy in 0..grid_h {
                    let y = start_h + ph as f64 * bin_h + (iy as f64 + 0.5) * bin_h / grid_h as f64;
                    for ix in 0..grid_w {
                        let x =
                            start_w + pw as f64 * bin_w + (ix as f64 + 0.5) * bin_w / grid_w as f64;
                        let taps = plane.taps(y, x);
                        acc = Some(if self.max {
                            let v = taps.into_iter().fold(f64::NEG_INFINITY, f64::max);
                            acc.map_or(v, |a| a.max(v))
                        } else {
                            acc.unwrap_or(0.0) + taps.iter().sum::<f64>()
                        });
                    }
                }
                let v = acc.unwrap_or(0.0);
                out.push(if self.max { v } else { v / count });
            }
        }
    }

    /// Samples per bin along each axis: `sampling_ratio`, or adaptively one per pixel of the bin.
    fn grid(&self, bin_h: f64, bin_w: f64) -> (usize, usize) {
        if self.sampling_ratio > 0 {
            return (self.sampling_ratio, self.sampling_ratio);
        }
        // Callers bound the bin sizes first, so the casts cannot saturate meaningfully.
        (
            bin_h.ceil().max(0.0) as usize,
            bin_w.ceil().max(0.0) as usize,
        )
    }
}

pub fn roi_align(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let rois_t = required(inputs, 1)?;
    let batch_indices = int_values(required(inputs, 2)?)?;
    let settings = Settings::new(node)?;
    let &[batch, channels, height, width] = x.dims() else {
        return Err(invalid(format!("X {:?} must be [N, C, H, W]", x.dims())));
    };
    let count = rois_t.dims().first().copied().unwrap_or(0);
    if rois_t.dims() != [count, 4] || batch_indices.len() != count {
        return Err(invalid(format!(
            "rois {:?} must be [R, 4] with R batch indices, not {}",
            rois_t.dims(),
            batch_indices.len()
        )));
    }
    if height == 0 || width == 0 {
        return Err(invalid(format!("X {:?} has an empty plane", x.dims())));
    }
    let out_dims = [count, channels, settings.out_h, settings.out_w];
    let out_len = element_count(&out_dims, "the RoiAlign output")?;
    let rois = values(rois_t)?;
    for roi in rois.chunks(4) {
        let (w, h) = ((roi[2] - roi[0]).abs(), (roi[3] - roi[1]).abs());
        let scale = settings.spatial_scale.abs();
        let per_bin = if settings.sampling_ratio > 0 {
            (settings.sampling_ratio as f64).powi(2)
        } else {
            ((h * scale + 1.0) / settings.out_h as f64 + 1.0)
                * ((w * scale + 1.0) / settings.out_w as f64 + 1.0)
        };
        // NaN coordinates fail this test too.
        let work = per_bin * out_len as f64;
        if work.is_nan() || work > MAX_WORK {
            return Err(invalid(format!(
                "region {roi:?} needs more samples than allowed"
            )));
        }
    }
    let data = values(x)?;
    let plane_len = height * width;
    let mut out = Vec::with_capacity(out_len);
    for (r, roi) in rois.chunks(4).enumerate() {
        let b = usize::try_from(batch_indices[r])
            .ok()
            .filter(|&b| b < batch)
            .ok_or_else(|| invalid(format!("batch index {} is out of range", batch_indices[r])))?;
        for c in 0..channels {
            let start = (b * channels + c) * plane_len;
            let plane = Plane {
                data: &data[start..start + plane_len],
                height,
                width,
            };
            settings.pool(&plane, roi, &mut out);
        }
    }
    Ok(vec![build(out, &out_dims, x.dtype(), x)?])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, i64s, int, run};
    use super::*;

    #[test]
    fn averages_a_constant_plane() {
        let x = f32s(&[2.0; 16], &[1, 1, 4, 4]);
        let rois = f32s(&[0.0, 0.0, 3.0, 3.0], &[1, 4]);
        let attrs = vec![int("output_height", 2), int("output_width", 2)];
        let out = run("RoiAlign", 16, attrs, &[x, rois, i64s(&[0])]);
        assert_eq!(out[0].dims(), &[1, 1, 2, 2]);
        assert_eq!(
            out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![2.0; 4]
        );
    }

    #[test]
    fn bad_batch_indices_and_huge_regions_are_errors() {
        let proto = crate::proto::NodeProto::default();
        let node = Node::new(&proto, 16);
        let x = f32s(&[0.0; 4], &[1, 1, 2, 2]);
        let rois = f32s(&[0.0, 0.0, 1.0, 1.0], &[1, 4]);
        assert!(roi_align(&node, &[x.clone(), rois, i64s(&[1])]).is_err());
        let huge = f32s(&[0.0, 0.0, 1e30, 1e30], &[1, 4]);
        assert!(roi_align(&node, &[x.clone(), huge, i64s(&[0])]).is_err());
        let proto = crate::proto::NodeProto {
            attribute: vec![int("sampling_ratio", 1 << 40)],
            ..Default::default()
        };
        let rois = f32s(&[0.0, 0.0, 1.0, 1.0], &[1, 4]);
        assert!(roi_align(&Node::new(&proto, 16), &[x, rois, i64s(&[0])]).is_err());
    }
}

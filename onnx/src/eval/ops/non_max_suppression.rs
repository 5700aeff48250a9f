//! NonMaxSuppression: per batch and class, greedily keeps the highest-scoring boxes whose overlap (IoU)
//! with every box already kept is at most `iou_threshold`, skipping scores at or below
//! `score_threshold`, up to `max_output_boxes_per_class`. Returns [batch, class, box] triples.

use candle_core::{DType, Tensor};

use super::super::node::{Node, optional, required};
use super::host::{element_count, values};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

fn invalid(message: String) -> ModelError {
    ModelError::Evaluation(format!("NonMaxSuppression: {message}"))
}

/// A box as its corners, lowest first.
#[derive(Debug, Clone, Copy)]
struct Corners {
    y1: f64,
    x1: f64,
    y2: f64,
    x2: f64,
}

impl Corners {
    /// From [y1, x1, y2, x2] (any two opposite corners) or, with `center_point_box`, [xc, yc, w, h].
    fn new(b: &[f64], center: bool) -> Self {
        if center {
            let (xc, yc, w, h) = (b[0], b[1], b[2], b[3]);
            Self {
                y1: yc - h / 2.0,
                x1: xc - w / 2.0,
                y2: yc + h / 2.0,
                x2: xc + w / 2.0,
            }
        } else {
            Self {
                y1: b[0].min(b[2]),
                x1: b[1].min(b[3]),
                y2: b[0].max(b[2]),
                x2: b[1].max(b[3]),
            }
        }
    }

    fn area(&self) -> f64 {
        (self.y2 - self.y1) * (self.x2 - self.x1)
    }

    /// Intersection over union; 0 when either box is empty.
    fn iou(&self, other: &Self) -> f64 {
        let (a, b) = (self.area(), other.area());
        if a <= 0.0 || b <= 0.0 {
            return 0.0;
        }
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let inter = h * w;
        let union = a + b - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

/// A scalar (or one-element) optional input.
fn scalar(inputs: &[Option<Tensor>], index: usize) -> Result<Option<f64>, ModelError> {
    let Some(t) = optional(inputs, index) else {
        return Ok(None);
    };
    match values(t)?.as_slice() {
        [] => Ok(None),
        [v] => Ok(Some(*v)),
        more => Err(invalid(format!(
            "input {index} must hold one value, not {}",
            more.len()
        ))),
    }
}

/// The boxes kept for one class: indices into `boxes`, in the order chosen.
fn select(
    boxes: &[Corners],
    scores: &[f64],
    limit: usize,
    iou_threshold: f64,
    score_threshold: Option<f64>,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len())
        .filter(|&i| score_threshold.is_none_or(|t| scores[i] > t))
        .collect();
    // Highest score first; equal scores keep the lower index first, as onnxruntime does.
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut kept: Vec<usize> = Vec::new();
    for i in order {
        if kept.len() >= limit {
            break;
        }
        if kept
            .iter()
            .all(|&k| boxes[k].iou(&boxes[i]) <= iou_threshold)
        {
            kept.push(i);
        }
    }
    kept
}

pub fn non_max_suppression(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let boxes_t = required(inputs, 0)?;
    let scores_t = required(inputs, 1)?;
    let (&[batches, spatial, 4], &[score_batches, classes, score_spatial]) =
        (boxes_t.dims(), scores_t.dims())
    else {
        return Err(invalid(format!(
            "boxes {:?} must be [batches, boxes, 4] and scores {:?} [batches, classes, boxes]",
            boxes_t.dims(),
            scores_t.dims()
        )));
    };
    if (score_batches, score_spatial) != (batches, spatial) {
        return Err(invalid(format!(
            "boxes {:?} and scores {:?} disagree",
            boxes_t.dims(),
            scores_t.dims()
        )));
    }
    element_count(scores_t.dims(), "the scores")?;
    let limit = scalar(inputs, 2)?.unwrap_or(0.0);
    // Anything past the number of boxes is no limit at all.
    let limit = if limit <= 0.0 {
        0
    } else {
        (limit.min(spatial as f64)) as usize
    };
    let iou_threshold = scalar(inputs, 3)?.unwrap_or(0.0);
    let score_threshold = scalar(inputs, 4)?;
    let center = match node.int("center_point_box", 0) {
        0 => false,
        1 => true,
        other => return Err(invalid(format!("center_point_box {other} is not 0 or 1"))),
    };
    let box_values = values(boxes_t)?;
    let score_values = values(scores_t)?;
    let mut selected: Vec<i64> = Vec::new();
    for b in 0..batches {
        let boxes: Vec<Corners> = box_values[b * spatial * 4..(b + 1) * spatial * 4]
            .chunks(4)
            .map(|c| Corners::new(c, center))
            .collect();
        for c in 0..classes {
            let start = (b * classes + c) * spatial;
            let scores = &score_values[start..start + spatial];
            for i in select(&boxes, scores, limit, iou_threshold, score_threshold) {
                selected.extend([b as i64, c as i64, i as i64]);
            }
        }
    }
    let count = selected.len() / 3;
    let out = Tensor::from_vec(selected, (count, 3), boxes_t.device())?;
    Ok(vec![out.to_dtype(DType::I64)?])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, i64s, int, run};
    use super::*;

    fn triples(t: &Tensor) -> Vec<i64> {
        t.flatten_all().unwrap().to_vec1::<i64>().unwrap()
    }

    #[test]
    fn overlapping_boxes_are_suppressed() {
        // Two nearly identical boxes and one apart; the lower-scoring twin goes.
        let boxes = f32s(
            &[0.0, 0.0, 1.0, 1.0, 0.0, 0.1, 1.0, 1.1, 0.0, 10.0, 1.0, 11.0],
            &[1, 3, 4],
        );
        let scores = f32s(&[0.9, 0.95, 0.3], &[1, 1, 3]);
        let iou = f32s(&[0.5], &[1]);
        let inputs = [boxes, scores, i64s(&[10]), iou];
        let out = run("NonMaxSuppression", 11, vec![], &inputs);
        assert_eq!(triples(&out[0]), vec![0, 0, 1, 0, 0, 2]);
    }

    #[test]
    fn score_threshold_limit_and_centre_format() {
        let boxes = f32s(&[0.5, 0.5, 1.0, 1.0, 5.5, 5.5, 1.0, 1.0], &[1, 2, 4]);
        let scores = f32s(&[0.2, 0.8, 0.6, 0.1], &[1, 2, 2]);
        let inputs = [
            boxes,
            scores,
            i64s(&[1]),
            f32s(&[0.5], &[1]),
            f32s(&[0.15], &[1]),
        ];
        let out = run(
            "NonMaxSuppression",
            11,
            vec![int("center_point_box", 1)],
            &inputs,
        );
        assert_eq!(triples(&out[0]), vec![0, 0, 1, 0, 1, 0]);
        assert_eq!(out[0].dims(), &[2, 3]);
    }

    #[test]
    fn no_limit_means_no_boxes_and_bad_shapes_are_errors() {
        let boxes = f32s(&[0.0, 0.0, 1.0, 1.0], &[1, 1, 4]);
        let scores = f32s(&[0.9], &[1, 1, 1]);
        let out = run("NonMaxSuppression", 11, vec![], &[boxes.clone(), scores]);
        assert_eq!(out[0].dims(), &[0, 3]);
        let proto = crate::proto::NodeProto::default();
        let node = Node::new(&proto, 11);
        let wrong = f32s(&[0.9, 0.1], &[1, 1, 2]);
        assert!(non_max_suppression(&node, &[boxes, wrong]).is_err());
    }
}

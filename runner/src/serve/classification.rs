//! The protocol's classification extension (Triton's): an output asked for with `classification: N`
//! comes back as the N highest scores of each row, highest first, as a `BYTES` tensor of `score:index`
//! strings, `score:index:label` where the output's classes have names ([`super::labels`]) and the row
//! holds as many values as there are names. With a batch dimension the result is `[rows, N]` and each
//! row's classes are the rest of its values, flattened; without one, `[N]` over all.

use std::cmp::Ordering;

use super::ServeError;
use super::tensor::{Datatype, Tensor, push_bytes_element};

/// Reads the requested class count: a positive integer.
pub fn class_count(output: &str, value: Option<i128>) -> Result<usize, ServeError> {
    value
        .filter(|&n| n > 0)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            ServeError::BadRequest(format!(
                "output {output:?}: classification must be a positive number of classes"
            ))
        })
}

/// The top `count` classes of `output`, per row when `batched`, named by `labels` when they fit.
pub fn top_classes(
    output: &Tensor,
    count: usize,
    batched: bool,
    labels: Option<&[String]>,
) -> Result<Tensor, ServeError> {
    let scores = output.to_f64().ok_or_else(|| {
        ServeError::BadRequest(format!(
            "output {:?} is {}: only numeric outputs can be classified",
            output.name,
            output.datatype.as_str()
        ))
    })?;
    let rows = match output.shape.first() {
        Some(&rows) if batched => usize::try_from(rows).unwrap_or(0),
        _ => 1,
    };
    let classes = scores.len().checked_div(rows).unwrap_or(0);
    let kept = count.min(classes);
    let labels = labels.filter(|l| l.len() == classes);
    let mut data = Vec::new();
    for row in 0..rows {
        let row_scores = &scores[row * classes..(row + 1) * classes];
        let mut order: Vec<usize> = (0..classes).collect();
        // Highest first; NaN last; equal scores by index.
        order.sort_by(
            |&a, &b| match (row_scores[a].is_nan(), row_scores[b].is_nan()) {
                (false, false) => row_scores[b]
                    .partial_cmp(&row_scores[a])
                    .unwrap_or(Ordering::Equal)
                    .then(a.cmp(&b)),
                (x, y) => x.cmp(&y).then(a.cmp(&b)),
            },
        );
        for &index in &order[..kept] {
            let score = match output.datatype {
                Datatype::Fp16 | Datatype::Bf16 | Datatype::Fp32 => shown(row_scores[index] as f32),
                _ => shown(row_scores[index]),
            };
            // A score (at most 24 bytes) and an index are a few dozen bytes: the length always fits.
            let entry = match labels {
                Some(labels) => format!("{score}:{index}:{}", labels[index]),
                None => format!("{score}:{index}"),
            };
            let _ = push_bytes_element(&mut data, entry.as_bytes());
        }
    }
    let shape = if batched && !output.shape.is_empty() {
        vec![rows as i64, kept as i64]
    } else {
        vec![kept as i64]
    };
    Ok(Tensor {
        name: output.name.clone(),
        datatype: Datatype::Bytes,
        shape,
        data: data.into(),
    })
}

/// A score as Triton's clients read it back: its shortest decimal form, or its exponent form where that
/// is long (1e308 written out is 309 digits: an 8-byte score would become hundreds of bytes of answer,
/// past what `--max-response-mib` counted). At most 24 bytes either way.
fn shown<T: std::fmt::Display + std::fmt::LowerExp>(score: T) -> String {
    let plain = score.to_string();
    if plain.len() <= 24 {
        plain
    } else {
        format!("{score:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fp32(shape: Vec<i64>, values: &[f32]) -> Tensor {
        Tensor {
            name: "logits".into(),
            datatype: Datatype::Fp32,
            shape,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    #[test]
    fn each_row_gives_its_highest_scores_first() {
        let logits = fp32(
            vec![2, 4],
            &[0.1, 0.7, f32::NAN, 0.7, -1.0, -3.0, -0.5, -2.0],
        );
        let top = top_classes(&logits, 3, true, None).unwrap();
        assert_eq!(top.shape, vec![2, 3]);
        assert_eq!(
            json!(top.json_data()),
            json!(["0.7:1", "0.7:3", "0.1:0", "-0.5:2", "-1:0", "-2:3"])
        );
        let all = top_classes(&logits, 100, false, None).unwrap();
        assert_eq!(all.shape, vec![8]);
        assert_eq!(json!(all.json_data())[7], json!("NaN:2"));
    }

    #[test]
    fn scores_far_from_one_are_written_in_exponent_form_and_read_back_exactly() {
        let values = [1e308, 5e-324, 0.5, -f64::MAX, 1e-7];
        let scores = Tensor {
            name: "logits".into(),
            datatype: Datatype::Fp64,
            shape: vec![5],
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        };
        let top = top_classes(&scores, 5, false, None).unwrap();
        assert_eq!(
            json!(top.json_data()),
            json!([
                "1e308:0",
                "0.5:2",
                "0.0000001:4",
                "5e-324:1",
                "-1.7976931348623157e308:3"
            ])
        );
        let narrow = top_classes(&fp32(vec![2], &[f32::MAX, 1e-45]), 2, false, None).unwrap();
        assert_eq!(
            json!(narrow.json_data()),
            json!(["3.4028235e38:0", "1e-45:1"])
        );
        for (value, shown) in values.iter().zip(["1e308", "5e-324", "0.5"]) {
            assert_eq!(shown.parse::<f64>().unwrap(), *value);
        }
    }

    #[test]
    fn classes_are_named_when_the_labels_fit_the_row() {
        let logits = fp32(vec![2, 3], &[0.1, 0.7, 0.2, 0.9, -1.0, 0.0]);
        let names = ["cat", "dog", "emu"].map(String::from);
        let top = top_classes(&logits, 2, true, Some(&names)).unwrap();
        assert_eq!(
            json!(top.json_data()),
            json!(["0.7:1:dog", "0.2:2:emu", "0.9:0:cat", "0:2:emu"])
        );
        // Two names for three classes would name them wrongly: none are given.
        let top = top_classes(&logits, 1, true, Some(&names[..2])).unwrap();
        assert_eq!(json!(top.json_data()), json!(["0.7:1", "0.9:0"]));
    }

    #[test]
    fn strings_and_non_positive_counts_are_refused() {
        let text = Tensor::from_json(
            "label".into(),
            Datatype::Bytes,
            vec![1],
            &json!(["a"]).to_string(),
        )
        .unwrap();
        assert!(
            top_classes(&text, 1, false, None)
                .unwrap_err()
                .to_string()
                .contains("only numeric outputs")
        );
        assert!(class_count("y", Some(0)).is_err());
        assert!(class_count("y", None).is_err());
        assert_eq!(class_count("y", Some(5)).unwrap(), 5);
    }
}

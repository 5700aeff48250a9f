//! Class names from the Hugging Face `config.json` that comes with an exported classifier (Optimum writes
//! `model.onnx` beside it; a folder pushed to kiln keeps it among the version's files). Its `id2label`,
//! `{"0": "NEGATIVE", "1": "POSITIVE"}`, names the columns of the model's scores, as the `transformers`
//! pipelines print them. The names go to the one output whose rows hold exactly that many values by its
//! declared shape (the one named `logits`, Optimum's name, when several do), and to none when no output
//! fits: a base model's config carries default names (`LABEL_0`, `LABEL_1`) but no output of that width.

use super::labels::fixed_row_width;
use super::signature::Signature;
use super::tensor::Datatype;

/// The file's name, in the model's folder or among a version's files.
pub use kiln_core::variant_layout::CONFIG_FILE;

/// A larger `config.json` is not read for names (ImageNet's thousand take about 30 KB).
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// The output the names of `text`'s `id2label` belong to, and the names in class order; `None` when the
/// config holds no usable `id2label` (not JSON, not numbered 0 to N-1 without gaps, a name not a string)
/// or no output fits.
pub fn id2label_of(text: &str, signature: &Signature) -> Option<(String, Vec<String>)> {
    let labels = id2label(text)?;
    let fits: Vec<&str> = signature
        .outputs
        .iter()
        .filter(|o| o.datatype != Datatype::Bytes)
        .filter(|o| fixed_row_width(o, signature.batchable) == Some(labels.len() as i64))
        .map(|o| o.name.as_str())
        .collect();
    let output = match fits.as_slice() {
        [one] => *one,
        many => *many.iter().find(|name| **name == "logits")?,
    };
    Some((output.to_owned(), labels))
}

fn id2label(text: &str) -> Option<Vec<String>> {
    let config: serde_json::Value = serde_json::from_str(text).ok()?;
    let names = config.get("id2label")?.as_object()?;
    let mut labels: Vec<Option<String>> = vec![None; names.len()];
    for (id, name) in names {
        // "1" and "01" are the same class to `int()`; one class named twice is no numbering.
        let slot = labels.get_mut(id.trim().parse::<usize>().ok()?)?;
        let name = name.as_str().filter(|n| !n.is_empty())?;
        if slot.replace(name.to_owned()).is_some() {
            return None;
        }
    }
    let labels: Vec<String> = labels.into_iter().collect::<Option<_>>()?;
    (!labels.is_empty()).then_some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_core::api::{Dim, TensorSignature};

    fn signature(outputs: &[(&str, &str, &[i64])]) -> Signature {
        let dims = |shape: &[i64]| {
            std::iter::once(Dim::Symbolic("batch".into()))
                .chain(shape.iter().map(|&d| {
                    if d < 0 {
                        Dim::Symbolic("sequence".into())
                    } else {
                        Dim::Fixed(d)
                    }
                }))
                .collect()
        };
        let tensor = |name: &str, dtype: &str, shape: &[i64]| TensorSignature {
            name: name.into(),
            dtype: dtype.into(),
            shape: Some(dims(shape)),
        };
        let input = tensor("input_ids", "int64", &[-1]);
        let outputs: Vec<_> = outputs
            .iter()
            .map(|(name, dtype, shape)| tensor(name, dtype, shape))
            .collect();
        Signature::new(&[input], &outputs).unwrap()
    }

    const SENTIMENT: &str = r#"{"architectures": ["BertForSequenceClassification"], "id2label": {"1": "POSITIVE", "0": "NEGATIVE"}}"#;

    #[test]
    fn a_classifiers_config_names_the_columns_of_its_scores() {
        let sig = signature(&[("logits", "float32", &[2])]);
        let (output, labels) = id2label_of(SENTIMENT, &sig).unwrap();
        assert_eq!(output, "logits");
        assert_eq!(labels, ["NEGATIVE", "POSITIVE"]);
    }

    #[test]
    fn names_go_only_to_an_output_of_their_width() {
        // A base model: its config's default names fit no output.
        let base = signature(&[("last_hidden_state", "float32", &[-1, 768])]);
        assert_eq!(id2label_of(SENTIMENT, &base), None);
        // Token classification: a name per token's column, not per row.
        let tokens = signature(&[("logits", "float32", &[-1, 2])]);
        assert_eq!(id2label_of(SENTIMENT, &tokens), None);
        // Two outputs of the width: `logits` takes them, or nobody.
        let two = signature(&[
            ("probabilities", "float32", &[2]),
            ("logits", "float32", &[2]),
        ]);
        assert_eq!(id2label_of(SENTIMENT, &two).unwrap().0, "logits");
        let unnamed = signature(&[("a", "float32", &[2]), ("b", "float32", &[2])]);
        assert_eq!(id2label_of(SENTIMENT, &unnamed), None);
        let strings = signature(&[("label", "string", &[2]), ("scores", "float32", &[2])]);
        assert_eq!(id2label_of(SENTIMENT, &strings).unwrap().0, "scores");
    }

    #[test]
    fn configs_that_do_not_number_their_classes_name_nothing() {
        let sig = signature(&[("logits", "float32", &[2])]);
        for text in [
            "not json",
            "[]",
            r#"{"num_labels": 2}"#,
            r#"{"id2label": {}}"#,
            r#"{"id2label": ["NEGATIVE", "POSITIVE"]}"#,
            r#"{"id2label": {"0": "NEGATIVE", "2": "POSITIVE"}}"#,
            r#"{"id2label": {"0": "NEGATIVE", "00": "POSITIVE"}}"#,
            r#"{"id2label": {"0": "NEGATIVE", "one": "POSITIVE"}}"#,
            r#"{"id2label": {"0": "NEGATIVE", "1": 7}}"#,
            r#"{"id2label": {"0": "NEGATIVE", "1": ""}}"#,
            r#"{"id2label": {"0": "NEGATIVE", "-1": "POSITIVE"}}"#,
        ] {
            assert_eq!(id2label_of(text, &sig), None, "{text}");
        }
    }

    proptest::proptest! {
        /// Any numbering of any names, shuffled as a JSON object may hold them: names come back in class
        /// order exactly when the ids are 0..N-1 once each, and reading never panics.
        #[test]
        fn names_come_back_in_class_order_only_for_a_whole_numbering(
            ids in proptest::collection::vec(0usize..8, 1..8),
            names in proptest::collection::vec(".{0,6}", 8),
        ) {
            let id2label: serde_json::Map<String, serde_json::Value> = ids
                .iter()
                .map(|&id| (id.to_string(), serde_json::Value::from(names[id].clone())))
                .collect();
            let text = serde_json::json!({ "id2label": id2label }).to_string();
            let width = id2label.len() as i64;
            let sig = signature(&[("logits", "float32", &[width])]);
            let whole = (0..id2label.len()).all(|id| id2label.contains_key(&id.to_string()))
                && (0..id2label.len()).all(|id| !names[id].is_empty());
            match id2label_of(&text, &sig) {
                Some((output, labels)) => {
                    proptest::prop_assert!(whole);
                    proptest::prop_assert_eq!(output, "logits");
                    proptest::prop_assert_eq!(&labels[..], &names[..labels.len()]);
                }
                None => proptest::prop_assert!(!whole),
            }
        }

        #[test]
        fn any_text_reads_or_names_nothing(text in ".{0,64}") {
            let sig = signature(&[("logits", "float32", &[2])]);
            let _ = id2label_of(&text, &sig);
        }
    }
}

//! Class labels for the classification extension, so that a ranked class reads `score:index:label` as
//! Triton's does when its model configuration names a label file. They come from three places: the model
//! itself, when an output holds the scores of one of ONNX-ML's classifiers (scikit-learn's models converted
//! by skl2onnx: `LinearClassifier`, `SVMClassifier`, `TreeEnsembleClassifier` carry their classes in
//! `classlabels_*`), the Hugging Face `config.json` that came with the model ([`super::config_labels`]),
//! and `--labels OUTPUT=FILE` (one label a line, the line's number the class's index), which wins over
//! both. A label is given only when the row holds exactly as many values as there are labels: a count
//! that does not match would name classes wrongly, so such rows keep `score:index`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kiln_onnx::proto::{ModelProto, NodeProto};

use super::config_labels::id2label_of;
use super::signature::{Signature, TensorSpec};

/// ONNX-ML's classifiers; their second output is a score per class, in the order of `classlabels_*`.
const CLASSIFIERS: [&str; 3] = [
    "LinearClassifier",
    "SVMClassifier",
    "TreeEnsembleClassifier",
];

/// Operators between a classifier's scores and an output that keep every score at its class's position.
const POSITION_KEEPING: [&str; 5] = ["Identity", "Cast", "Softmax", "Normalizer", "Sigmoid"];

/// How many such operators are followed back from an output before giving up.
const MAX_STEPS: usize = 16;

/// Labels by output name.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ClassLabels {
    by_output: HashMap<String, Vec<String>>,
}

/// `--labels OUTPUT=FILE`, read when the process starts.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelFile {
    pub output: String,
    pub labels: Vec<String>,
}

impl LabelFile {
    /// Parses `OUTPUT=FILE` and reads the file: one label a line, none empty.
    pub fn read(argument: &str) -> Result<Self, String> {
        let Some((output, file)) = argument.split_once('=') else {
            return Err(format!(
                "--labels {argument}: give the output and the file, as --labels OUTPUT=FILE"
            ));
        };
        let file = PathBuf::from(file);
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("--labels: cannot read {}: {e}", file.display()))?;
        let labels: Vec<String> = text.lines().map(|l| l.trim_end().to_owned()).collect();
        if labels.is_empty() {
            return Err(format!("--labels: {} holds no labels", file.display()));
        }
        if let Some(line) = labels.iter().position(String::is_empty) {
            return Err(format!(
                "--labels: line {} of {} is empty; give one label a line, class 0 first",
                line + 1,
                file.display()
            ));
        }
        Ok(Self {
            output: output.to_owned(),
            labels,
        })
    }
}

impl ClassLabels {
    /// The labels a Hugging Face `config` names (see [`super::config_labels`]), the model's own over them,
    /// then `files` over both, checked against `signature`: a file for an output the model has not, or
    /// whose label count its fixed shape contradicts, is refused.
    pub fn new(
        model: Option<&ModelProto>,
        config: Option<&str>,
        files: &[LabelFile],
        signature: &Signature,
    ) -> Result<Self, String> {
        let mut labels = Self::default();
        if let Some((output, names)) = config.and_then(|c| id2label_of(c, signature)) {
            labels.by_output.insert(output, names);
        }
        if let Some(model) = model {
            labels.by_output.extend(Self::of_model(model).by_output);
        }
        for file in files {
            let Some(spec) = signature.outputs.iter().find(|o| o.name == file.output) else {
                let names: Vec<&str> = signature.outputs.iter().map(|o| o.name.as_str()).collect();
                return Err(format!(
                    "--labels names output {:?}, which the model has not (its outputs: {})",
                    file.output,
                    names.join(", ")
                ));
            };
            let fixed = fixed_row_width(spec, signature.batchable);
            if let Some(classes) = fixed.filter(|&n| n != file.labels.len() as i64) {
                return Err(format!(
                    "--labels gives {} labels for output {:?}, which holds {classes} classes",
                    file.labels.len(),
                    file.output
                ));
            }
            labels
                .by_output
                .insert(file.output.clone(), file.labels.clone());
        }
        Ok(labels)
    }

    /// The labels of the outputs that hold an ONNX-ML classifier's scores.
    pub fn of_model(model: &ModelProto) -> Self {
        let Some(graph) = model.graph.as_ref() else {
            return Self::default();
        };
        let producers: HashMap<&str, &NodeProto> = graph
            .node
            .iter()
            .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
            .collect();
        let by_output = graph
            .output
            .iter()
            .filter_map(|output| {
                let name = output.name.as_deref()?;
                let labels = classifier_labels(&producers, name)?;
                Some((name.to_owned(), labels))
            })
            .collect();
        Self { by_output }
    }

    pub fn of(&self, output: &str) -> Option<&[String]> {
        self.by_output.get(output).map(Vec::as_slice)
    }
}

/// How many values a row of `spec` holds, when its shape fixes that: every dimension but the batch's.
pub(super) fn fixed_row_width(spec: &TensorSpec, batchable: bool) -> Option<i64> {
    let shape = spec.shape.as_ref()?;
    let rest = if batchable { shape.get(1..)? } else { shape };
    rest.iter().all(|&d| d >= 0).then(|| rest.iter().product())
}

/// Follows `value` back through position-keeping operators to a classifier's scores and reads its labels.
fn classifier_labels(producers: &HashMap<&str, &NodeProto>, value: &str) -> Option<Vec<String>> {
    let mut value = value;
    for _ in 0..MAX_STEPS {
        let node = producers.get(value)?;
        let op = node.op_type.as_deref().unwrap_or_default();
        if CLASSIFIERS.contains(&op) && node.domain.as_deref() == Some("ai.onnx.ml") {
            // The first output is the predicted label; only the second holds a score per class.
            return (node.output.get(1).map(String::as_str) == Some(value))
                .then(|| attribute_labels(node))
                .flatten();
        }
        if !POSITION_KEEPING.contains(&op) {
            return None;
        }
        value = node.input.first()?.as_str();
    }
    None
}

fn attribute_labels(node: &NodeProto) -> Option<Vec<String>> {
    node.attribute.iter().find_map(|a| {
        let labels: Vec<String> = match a.name.as_deref()? {
            "classlabels_strings" => a
                .strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
            "classlabels_ints" | "classlabels_int64s" => {
                a.ints.iter().map(i64::to_string).collect()
            }
            _ => return None,
        };
        (!labels.is_empty()).then_some(labels)
    })
}

/// The model at `path`, read for its labels; `None` when it cannot be (the engine says why).
pub fn read_model(path: &Path) -> Option<ModelProto> {
    let bytes = std::fs::read(path).ok()?;
    kiln_onnx::model_check::decode(bytes.into()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_core::api::{Dim, TensorSignature};
    use kiln_onnx::proto::{AttributeProto, GraphProto, ValueInfoProto};

    fn node(op: &str, domain: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        NodeProto {
            op_type: Some(op.to_owned()),
            domain: Some(domain.to_owned()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn strings(name: &str, values: &[&str]) -> AttributeProto {
        AttributeProto {
            name: Some(name.to_owned()),
            strings: values
                .iter()
                .map(|v| v.as_bytes().to_vec().into())
                .collect(),
            ..Default::default()
        }
    }

    fn model(nodes: Vec<NodeProto>, outputs: &[&str]) -> ModelProto {
        ModelProto {
            graph: Some(GraphProto {
                node: nodes,
                output: outputs
                    .iter()
                    .map(|o| ValueInfoProto {
                        name: Some(o.to_string()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// skl2onnx's shape of a classifier: label and scores, the scores normalized on their way out.
    fn classifier(labels: AttributeProto) -> ModelProto {
        let mut linear = node("LinearClassifier", "ai.onnx.ml", &["X"], &["label", "raw"]);
        linear.attribute.push(labels);
        let normalize = node("Normalizer", "ai.onnx.ml", &["raw"], &["normalized"]);
        let cast = node("Cast", "", &["normalized"], &["probabilities"]);
        let plus = node("Add", "", &["raw", "raw"], &["doubled"]);
        model(
            vec![linear, normalize, cast, plus],
            &["label", "probabilities", "doubled"],
        )
    }

    fn signature(outputs: &[(&str, &[Dim])]) -> Signature {
        let batch = || vec![Dim::Symbolic("N".into()), Dim::Fixed(3)];
        let output = |(name, shape): &(&str, &[Dim])| TensorSignature {
            name: name.to_string(),
            dtype: "float32".into(),
            shape: Some(shape.to_vec()),
        };
        let input = TensorSignature {
            name: "X".into(),
            dtype: "float32".into(),
            shape: Some(batch()),
        };
        Signature::new(&[input], &outputs.iter().map(output).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn a_classifiers_scores_are_named_by_its_classes_through_position_keeping_operators() {
        let labels = ClassLabels::of_model(&classifier(strings(
            "classlabels_strings",
            &["cat", "dog", "emu"],
        )));
        assert_eq!(
            labels.of("probabilities"),
            Some(&["cat", "dog", "emu"].map(String::from)[..])
        );
        // The predicted label is not a score per class; an Add mixes positions.
        assert_eq!(labels.of("label"), None);
        assert_eq!(labels.of("doubled"), None);
        let numbered = AttributeProto {
            name: Some("classlabels_ints".into()),
            ints: vec![3, 5, 9],
            ..Default::default()
        };
        let labels = ClassLabels::of_model(&classifier(numbered));
        assert_eq!(
            labels.of("probabilities"),
            Some(&["3", "5", "9"].map(String::from)[..])
        );
    }

    #[test]
    fn an_operator_of_another_domain_is_not_taken_for_a_classifier() {
        let mut custom = node(
            "LinearClassifier",
            "com.example",
            &["X"],
            &["label", "scores"],
        );
        custom
            .attribute
            .push(strings("classlabels_strings", &["a", "b"]));
        let labels = ClassLabels::of_model(&model(vec![custom], &["scores"]));
        assert_eq!(labels.of("scores"), None);
    }

    #[test]
    fn a_cycle_of_position_keeping_operators_ends() {
        let a = node("Identity", "", &["b"], &["a"]);
        let b = node("Identity", "", &["a"], &["b"]);
        assert_eq!(
            ClassLabels::of_model(&model(vec![a, b], &["a"])),
            ClassLabels::default()
        );
    }

    fn label_file(dir: &Path, text: &str) -> String {
        let path = dir.join("labels.txt");
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    #[test]
    fn a_label_file_names_an_output_and_wins_over_the_model() {
        let dir = tempfile::tempdir().unwrap();
        let file = LabelFile::read(&format!(
            "probabilities={}",
            label_file(dir.path(), "x\ny\nz\n")
        ))
        .unwrap();
        let model = classifier(strings("classlabels_strings", &["cat", "dog", "emu"]));
        let fixed = [Dim::Symbolic("N".into()), Dim::Fixed(3)];
        let sig = signature(&[("probabilities", &fixed), ("label", &fixed)]);
        let labels = ClassLabels::new(Some(&model), None, &[file], &sig).unwrap();
        assert_eq!(
            labels.of("probabilities"),
            Some(&["x", "y", "z"].map(String::from)[..])
        );
    }

    #[test]
    fn a_models_own_labels_win_over_its_configs() {
        let model = classifier(strings("classlabels_strings", &["cat", "dog", "emu"]));
        let fixed = [Dim::Symbolic("N".into()), Dim::Fixed(3)];
        let sig = signature(&[("probabilities", &fixed)]);
        let config = r#"{"id2label": {"0": "a", "1": "b", "2": "c"}}"#;
        let both = ClassLabels::new(Some(&model), Some(config), &[], &sig).unwrap();
        assert_eq!(
            both.of("probabilities"),
            Some(&["cat", "dog", "emu"].map(String::from)[..])
        );
        let config_only = ClassLabels::new(None, Some(config), &[], &sig).unwrap();
        assert_eq!(
            config_only.of("probabilities"),
            Some(&["a", "b", "c"].map(String::from)[..])
        );
    }

    #[test]
    fn label_files_that_cannot_be_right_are_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = label_file(dir.path(), "x\ny\n");
        assert!(
            LabelFile::read(&path)
                .unwrap_err()
                .contains("--labels OUTPUT=FILE")
        );
        let empty_line = label_file(dir.path(), "x\n\nz\n");
        assert!(
            LabelFile::read(&format!("p={empty_line}"))
                .unwrap_err()
                .contains("line 2")
        );
        assert!(
            LabelFile::read("p=/nonexistent/labels.txt")
                .unwrap_err()
                .contains("cannot read")
        );
        let path = label_file(dir.path(), "x\ny\n");
        let two = LabelFile::read(&format!("probabilities={path}")).unwrap();
        let fixed = [Dim::Symbolic("N".into()), Dim::Fixed(3)];
        let sig = signature(&[("probabilities", &fixed)]);
        let wrong_count =
            ClassLabels::new(None, None, std::slice::from_ref(&two), &sig).unwrap_err();
        assert!(
            wrong_count.contains("2 labels") && wrong_count.contains("3 classes"),
            "{wrong_count}"
        );
        let other = LabelFile {
            output: "logits".into(),
            ..two.clone()
        };
        let unknown = ClassLabels::new(None, None, &[other], &sig).unwrap_err();
        assert!(unknown.contains("its outputs: probabilities"), "{unknown}");
        // A symbolic class dimension cannot be checked at load; the answer then labels only rows that fit.
        let open = [Dim::Symbolic("N".into()), Dim::Symbolic("classes".into())];
        assert!(
            ClassLabels::new(None, None, &[two], &signature(&[("probabilities", &open)])).is_ok()
        );
    }
}

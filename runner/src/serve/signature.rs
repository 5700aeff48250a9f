//! What a served variant takes and gives, from its signed manifest: requests are checked against it (a
//! clear 400 naming the input) before they reach the engine, and it tells whether requests can be batched.

use kiln_core::api::{Dim, TensorSignature};
use kiln_onnx::model_check::{DimInfo, NON_TENSOR, ValueSignature};

use super::ServeError;
use super::tensor::{Datatype, Tensor};

/// One input or output: the protocol's datatype and the shape (-1 for a dimension of any size).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub datatype: Datatype,
    /// `None` when the model does not declare a rank.
    pub shape: Option<Vec<i64>>,
    /// The name of the first dimension when it is symbolic (`batch`).
    first_dim: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    /// Requests may be stacked along the first dimension: every input and output has one, symbolic and of
    /// the same name.
    pub batchable: bool,
    /// Outputs the protocol cannot carry, left out of what is served: ONNX sequences and maps. Every
    /// classifier skl2onnx converts (by default) ends in one, a ZipMap of one map per row beside its label
    /// tensor; the labels are served, and a request that asks for the maps is told why not.
    pub left_out: Vec<String>,
}

fn spec(signature: &TensorSignature) -> Result<TensorSpec, String> {
    let datatype = Datatype::of_onnx(&signature.dtype).ok_or_else(|| {
        if signature.dtype == NON_TENSOR {
            format!(
                "{:?} is a sequence or a map, not a tensor, which the Open Inference Protocol cannot carry",
                signature.name
            )
        } else {
            format!(
                "{:?} is of element type {}, which the Open Inference Protocol server of kiln-runner does not serve",
                signature.name, signature.dtype
            )
        }
    })?;
    let shape = signature.shape.as_ref().map(|dims| {
        dims.iter()
            .map(|d| match d {
                Dim::Fixed(n) => *n,
                Dim::Symbolic(_) | Dim::Unknown => -1,
            })
            .collect()
    });
    let first_dim = match signature.shape.as_deref() {
        Some([Dim::Symbolic(name), ..]) => Some(name.clone()),
        _ => None,
    };
    Ok(TensorSpec {
        name: signature.name.clone(),
        datatype,
        shape,
        first_dim,
    })
}

impl TensorSpec {
    #[cfg(test)]
    pub fn new(name: &str, datatype: Datatype, shape: Option<Vec<i64>>) -> Self {
        Self {
            name: name.to_owned(),
            datatype,
            shape,
            first_dim: None,
        }
    }
}

impl Signature {
    /// Not batchable by its dimensions' names, but every input and output has a first dimension of any
    /// size: whether it batches is for the model to show (`batch_probe`).
    pub fn may_batch(&self) -> bool {
        !self.batchable
            && !self.inputs.is_empty()
            && self
                .inputs
                .iter()
                .chain(&self.outputs)
                .all(|t| t.shape.as_ref().is_some_and(|s| s.first() == Some(&-1)))
    }

    pub fn new(inputs: &[TensorSignature], outputs: &[TensorSignature]) -> Result<Self, String> {
        let inputs: Vec<TensorSpec> = inputs.iter().map(spec).collect::<Result<_, _>>()?;
        let (left_out, tensors): (Vec<&TensorSignature>, Vec<&TensorSignature>) =
            outputs.iter().partition(|o| o.dtype == NON_TENSOR);
        if tensors.is_empty() && !left_out.is_empty() {
            return Err(format!(
                "every output of the model ({}) is a sequence or a map, not a tensor, which the Open \
                 Inference Protocol cannot carry: it would have nothing to answer with",
                quoted(left_out.iter().map(|o| o.name.as_str()))
            ));
        }
        let outputs: Vec<TensorSpec> = tensors.into_iter().map(spec).collect::<Result<_, _>>()?;
        let first = inputs.first().and_then(|i| i.first_dim.clone());
        let batchable =
            first.is_some() && inputs.iter().chain(&outputs).all(|t| t.first_dim == first);
        Ok(Self {
            inputs,
            outputs,
            batchable,
            left_out: left_out.into_iter().map(|o| o.name.clone()).collect(),
        })
    }

    /// From the signature kiln's model check reads off an ONNX file.
    pub fn from_onnx(
        inputs: &[ValueSignature],
        outputs: &[ValueSignature],
    ) -> Result<Self, String> {
        let api = |values: &[ValueSignature]| -> Vec<TensorSignature> {
            values
                .iter()
                .map(|v| TensorSignature {
                    name: v.name.clone(),
                    dtype: v.dtype.clone(),
                    shape: v.shape.as_ref().map(|dims| {
                        dims.iter()
                            .map(|d| match d {
                                DimInfo::Fixed(n) => Dim::Fixed(*n),
                                DimInfo::Symbolic(s) => Dim::Symbolic(s.clone()),
                                DimInfo::Unknown => Dim::Unknown,
                            })
                            .collect()
                    }),
                })
                .collect()
        };
        Self::new(&api(inputs), &api(outputs))
    }

    /// Puts a request's inputs in the model's order, each checked: known, every one given once, the
    /// declared datatype and a shape the model accepts.
    pub fn check(&self, mut given: Vec<Tensor>) -> Result<Vec<Tensor>, ServeError> {
        for tensor in &given {
            if !self.inputs.iter().any(|i| i.name == tensor.name) {
                return Err(ServeError::BadRequest(format!(
                    "unexpected input {:?}: the model takes {}",
                    tensor.name,
                    self.input_names()
                )));
            }
        }
        let mut ordered = Vec::with_capacity(self.inputs.len());
        for spec in &self.inputs {
            let mut matching = given.iter().filter(|t| t.name == spec.name);
            if matching.clone().count() > 1 {
                return Err(ServeError::BadRequest(format!(
                    "input {:?} is given more than once",
                    spec.name
                )));
            }
            if matching.next().is_none() {
                return Err(ServeError::BadRequest(format!(
                    "input {:?} is missing: the model takes {}",
                    spec.name,
                    self.input_names()
                )));
            }
            let at = given.iter().position(|t| t.name == spec.name).unwrap_or(0);
            let tensor = given.swap_remove(at);
            check_one(spec, &tensor)?;
            ordered.push(tensor);
        }
        if self.batchable {
            let rows = ordered.first().and_then(|t| t.shape.first()).copied();
            if let Some(t) = ordered.iter().find(|t| t.shape.first().copied() != rows) {
                return Err(ServeError::BadRequest(format!(
                    "input {:?} has {} rows in its first (batch) dimension where {:?} has {}",
                    t.name,
                    t.shape.first().copied().unwrap_or(0),
                    ordered[0].name,
                    rows.unwrap_or(0)
                )));
            }
        }
        Ok(ordered)
    }

    fn input_names(&self) -> String {
        quoted(self.inputs.iter().map(|i| i.name.as_str()))
    }

    /// Whether `output` is one the model computes.
    pub fn has_output(&self, output: &str) -> bool {
        self.outputs.iter().any(|o| o.name == output)
    }

    /// The answer to a request asking for `output`, which is not among the served outputs.
    pub fn not_served(&self, output: &str) -> ServeError {
        let served = quoted(self.outputs.iter().map(|o| o.name.as_str()));
        ServeError::BadRequest(if self.left_out.iter().any(|o| o == output) {
            format!(
                "output {output:?} is a sequence or a map, not a tensor, which the Open Inference \
                 Protocol cannot carry: this server answers with {served} (a classifier converted by \
                 skl2onnx with options {{'zipmap': False}} gives its probabilities as a tensor)"
            )
        } else {
            format!("unknown output {output:?}: the model computes {served}")
        })
    }
}

fn quoted<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|name| format!("{name:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_one(spec: &TensorSpec, tensor: &Tensor) -> Result<(), ServeError> {
    if tensor.datatype != spec.datatype {
        return Err(ServeError::BadRequest(format!(
            "input {:?} is {}; the model takes {}",
            spec.name,
            tensor.datatype.as_str(),
            spec.datatype.as_str()
        )));
    }
    let Some(shape) = &spec.shape else {
        return Ok(());
    };
    let fits = shape.len() == tensor.shape.len()
        && shape
            .iter()
            .zip(&tensor.shape)
            .all(|(&want, &got)| want < 0 || want == got);
    if !fits {
        return Err(ServeError::BadRequest(format!(
            "input {:?} has shape {:?}; the model takes {:?} (-1: any size)",
            spec.name, tensor.shape, shape
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn sig(name: &str, dtype: &str, dims: Vec<Dim>) -> TensorSignature {
        TensorSignature {
            name: name.into(),
            dtype: dtype.into(),
            shape: Some(dims),
        }
    }

    fn tensor(name: &str, datatype: Datatype, shape: Vec<i64>) -> Tensor {
        let count = shape.iter().product::<i64>() as usize;
        Tensor::from_raw(
            name.into(),
            datatype,
            shape,
            // Zeros: for BYTES, elements of length 0.
            Bytes::from(vec![0u8; count * datatype.size().unwrap_or(4)]),
        )
        .unwrap()
    }

    fn bert() -> Signature {
        let batch = || Dim::Symbolic("batch".into());
        let seq = || Dim::Symbolic("sequence".into());
        Signature::new(
            &[
                sig("input_ids", "int64", vec![batch(), seq()]),
                sig("attention_mask", "int64", vec![batch(), seq()]),
            ],
            &[sig("logits", "float32", vec![batch(), Dim::Fixed(2)])],
        )
        .unwrap()
    }

    #[test]
    fn inputs_are_ordered_as_the_model_declares_them() {
        let checked = bert()
            .check(vec![
                tensor("attention_mask", Datatype::Int64, vec![1, 4]),
                tensor("input_ids", Datatype::Int64, vec![1, 4]),
            ])
            .unwrap();
        let names: Vec<&str> = checked.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["input_ids", "attention_mask"]);
        assert!(bert().batchable);
    }

    #[test]
    fn each_mistake_is_named() {
        let s = bert();
        let ids = || tensor("input_ids", Datatype::Int64, vec![1, 4]);
        let err = |given| s.check(given).unwrap_err().to_string();
        assert_eq!(
            err(vec![ids()]),
            "input \"attention_mask\" is missing: the model takes \"input_ids\", \"attention_mask\""
        );
        assert_eq!(
            err(vec![
                ids(),
                tensor("attention_mask", Datatype::Fp32, vec![1, 4])
            ]),
            "input \"attention_mask\" is FP32; the model takes INT64"
        );
        assert_eq!(
            err(vec![
                ids(),
                tensor("attention_mask", Datatype::Int64, vec![4])
            ]),
            "input \"attention_mask\" has shape [4]; the model takes [-1, -1] (-1: any size)"
        );
        assert_eq!(
            err(vec![ids(), ids()]),
            "input \"input_ids\" is given more than once"
        );
        assert_eq!(
            err(vec![ids(), tensor("pixels", Datatype::Fp32, vec![1])]),
            "unexpected input \"pixels\": the model takes \"input_ids\", \"attention_mask\""
        );
        assert_eq!(
            err(vec![
                ids(),
                tensor("attention_mask", Datatype::Int64, vec![2, 4])
            ]),
            "input \"attention_mask\" has 2 rows in its first (batch) dimension where \"input_ids\" has 1"
        );
    }

    #[test]
    fn a_fixed_batch_or_an_output_without_it_is_not_batched() {
        let fixed = Signature::new(
            &[sig("x", "float32", vec![Dim::Fixed(1), Dim::Fixed(3)])],
            &[sig("y", "float32", vec![Dim::Fixed(1)])],
        )
        .unwrap();
        assert!(!fixed.batchable && !fixed.may_batch());
        let scalar_out = Signature::new(
            &[sig("x", "float32", vec![Dim::Symbolic("n".into())])],
            &[sig("y", "float32", vec![])],
        )
        .unwrap();
        assert!(!scalar_out.batchable && !scalar_out.may_batch());
        let strings = Signature::new(&[sig("text", "string", vec![])], &[]).unwrap();
        assert_eq!(strings.inputs[0].datatype, Datatype::Bytes);
        let complex = Signature::new(&[sig("z", "complex64", vec![])], &[]).unwrap_err();
        assert!(complex.contains("element type complex64"), "{complex}");
    }

    #[test]
    fn first_dims_named_apart_may_batch_when_the_model_shows_it() {
        let named_apart = Signature::new(
            &[sig(
                "bytes",
                "float32",
                vec![Dim::Symbolic("unk__122".into()), Dim::Fixed(1536)],
            )],
            &[sig(
                "label",
                "float32",
                vec![Dim::Symbolic("unk__123".into()), Dim::Fixed(113)],
            )],
        )
        .unwrap();
        assert!(!named_apart.batchable && named_apart.may_batch());
        let unnamed = Signature::new(
            &[sig("x", "float32", vec![Dim::Unknown, Dim::Fixed(4)])],
            &[sig("y", "float32", vec![Dim::Symbolic("m".into())])],
        )
        .unwrap();
        assert!(unnamed.may_batch());
        assert!(!bert().may_batch(), "already batchable by its names");
    }

    #[test]
    fn outputs_that_are_not_tensors_are_left_out_and_named_when_asked_for() {
        let n = || Dim::Symbolic("N".into());
        // skl2onnx's classifier: a label per row, and a ZipMap of one map per row.
        let classifier = Signature::new(
            &[sig("X", "float32", vec![n(), Dim::Fixed(4)])],
            &[
                sig("label", "int64", vec![n()]),
                TensorSignature {
                    name: "probabilities".into(),
                    dtype: NON_TENSOR.into(),
                    shape: None,
                },
            ],
        )
        .unwrap();
        assert_eq!(classifier.outputs.len(), 1);
        assert_eq!(classifier.left_out, ["probabilities"]);
        assert!(classifier.batchable, "the maps do not stop batching");
        let asked = classifier.not_served("probabilities").to_string();
        assert!(
            asked.contains("\"probabilities\" is a sequence or a map"),
            "{asked}"
        );
        assert!(asked.contains("answers with \"label\""), "{asked}");
        let unknown = classifier.not_served("nope").to_string();
        assert!(unknown.contains("unknown output \"nope\""), "{unknown}");

        let maps = || TensorSignature {
            name: "maps".into(),
            dtype: NON_TENSOR.into(),
            shape: None,
        };
        let nothing = Signature::new(&[sig("X", "float32", vec![n()])], &[maps()]).unwrap_err();
        assert!(nothing.contains("nothing to answer with"), "{nothing}");
        let input = Signature::new(&[maps()], &[sig("y", "float32", vec![])]).unwrap_err();
        assert!(input.contains("\"maps\" is a sequence or a map"), "{input}");
    }
}

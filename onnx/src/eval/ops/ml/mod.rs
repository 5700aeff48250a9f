//! The classical machine-learning operators of the `ai.onnx.ml` domain (what sklearn-onnx and similar
//! converters write), one file per family. Forms kiln does not implement are evaluation errors that name
//! them.

mod features;
mod tree_ensemble;

use super::OpFn;

/// The ONNX ML domain.
pub const DOMAIN: &str = "ai.onnx.ml";

/// Every `ai.onnx.ml` operator kiln implements, by name (read through [`super::lookup`]).
pub const OPS: &[(&str, OpFn)] = &[
    ("Binarizer", features::binarizer),
    ("ArrayFeatureExtractor", features::array_feature_extractor),
    ("TreeEnsemble", tree_ensemble::tree_ensemble),
];

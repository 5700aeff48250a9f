//! The classical machine-learning operators of the `ai.onnx.ml` domain (what sklearn-onnx and similar
//! converters write), one file per family. Forms kiln does not implement are evaluation errors that name
//! them.

mod features;
mod tree_ensemble;

use super::OpFn;

/// The ONNX ML domain.
pub const DOMAIN: &str = "ai.onnx.ml";

/// The `ai.onnx.ml` operator named `op_type`, when kiln implements it.
pub fn lookup(op_type: &str) -> Option<OpFn> {
    Some(match op_type {
        "Binarizer" => features::binarizer,
        "ArrayFeatureExtractor" => features::array_feature_extractor,
        "TreeEnsemble" => tree_ensemble::tree_ensemble,
        _ => return None,
    })
}

/// Every `ai.onnx.ml` operator [`lookup`] knows.
pub const SUPPORTED_OPS: &[&str] = &["Binarizer", "ArrayFeatureExtractor", "TreeEnsemble"];

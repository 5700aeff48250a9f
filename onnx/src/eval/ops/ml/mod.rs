//! The classical machine-learning operators of the `ai.onnx.ml` domain (what sklearn-onnx and similar
//! converters write), one file per family, computed as ONNX Runtime computes them. Forms kiln does not
//! implement (string tensors above all) are evaluation errors that name them.

mod encoders;
mod features;
mod linear;
mod scores;
mod svm;
mod tree_ensemble;
mod tree_ensemble_classic;

use super::OpFn;

/// The ONNX ML domain.
pub const DOMAIN: &str = "ai.onnx.ml";

/// Every `ai.onnx.ml` operator kiln implements, by name (read through [`super::lookup`]).
pub const OPS: &[(&str, OpFn)] = &[
    ("Binarizer", features::binarizer),
    ("ArrayFeatureExtractor", features::array_feature_extractor),
    ("Normalizer", features::normalizer),
    ("Scaler", features::scaler),
    ("Imputer", features::imputer),
    ("FeatureVectorizer", features::feature_vectorizer),
    ("OneHotEncoder", encoders::one_hot_encoder),
    ("LabelEncoder", encoders::label_encoder),
    ("LinearClassifier", linear::linear_classifier),
    ("LinearRegressor", linear::linear_regressor),
    ("SVMClassifier", svm::svm_classifier),
    ("SVMRegressor", svm::svm_regressor),
    (
        "TreeEnsembleClassifier",
        tree_ensemble_classic::tree_ensemble_classifier,
    ),
    (
        "TreeEnsembleRegressor",
        tree_ensemble_classic::tree_ensemble_regressor,
    ),
    ("TreeEnsemble", tree_ensemble::tree_ensemble),
];

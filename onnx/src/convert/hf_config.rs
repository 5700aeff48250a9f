//! Reading the fields a converter needs from a Hugging Face `config.json`, with errors that name them.

use serde_json::Value;

use crate::ModelError;

fn missing(key: &str) -> ModelError {
    ModelError::Conversion(format!("config.json has no usable {key:?}"))
}

pub fn usize_of(config: &Value, keys: &[&str]) -> Result<usize, ModelError> {
    keys.iter()
        .find_map(|k| config.get(*k).and_then(Value::as_u64))
        .map(|v| v as usize)
        .ok_or_else(|| missing(keys[0]))
}

pub fn f64_of(config: &Value, keys: &[&str], default: Option<f64>) -> Result<f64, ModelError> {
    keys.iter()
        .find_map(|k| config.get(*k).and_then(Value::as_f64))
        .or(default)
        .ok_or_else(|| missing(keys[0]))
}

pub fn str_of<'a>(config: &'a Value, key: &str) -> Option<&'a str> {
    config.get(key).and_then(Value::as_str)
}

/// Refuses sizes that do not make a model (zero, or heads that do not divide the width).
pub fn check_heads(hidden: usize, heads: usize) -> Result<usize, ModelError> {
    if hidden == 0 || heads == 0 || !hidden.is_multiple_of(heads) {
        return Err(ModelError::Conversion(format!(
            "config.json: hidden size {hidden} is not a multiple of {heads} attention heads"
        )));
    }
    Ok(hidden / heads)
}

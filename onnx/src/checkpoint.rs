//! Reading a Hugging Face checkpoint's tensors: one safetensors file, shards named by
//! `model.safetensors.index.json`, or a PyTorch zip state dict (read only after [`crate::pytorch::scan`]
//! passed it; candle's reader builds tensors from the pickle without executing anything).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};

use crate::ModelError;

/// `model.safetensors.index.json`: which shard holds each tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardIndex {
    pub weight_map: BTreeMap<String, String>,
}

impl ShardIndex {
    pub fn parse(bytes: &[u8]) -> Result<Self, ModelError> {
        let bad = |reason: String| ModelError::InvalidModel(format!("shard index: {reason}"));
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        let map = value
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| bad("no weight_map object".to_owned()))?;
        let mut weight_map = BTreeMap::new();
        for (tensor, shard) in map {
            let shard = shard
                .as_str()
                .ok_or_else(|| bad(format!("tensor {tensor:?} names no shard file")))?;
            let escapes = shard.is_empty()
                || shard.starts_with('/')
                || shard.contains('\\')
                || shard.split('/').any(|p| p == ".." || p == ".");
            if escapes {
                return Err(bad(format!("shard {shard:?} leaves the model's folder")));
            }
            weight_map.insert(tensor.clone(), shard.to_owned());
        }
        Ok(Self { weight_map })
    }

    pub fn shards(&self) -> BTreeSet<&str> {
        self.weight_map.values().map(String::as_str).collect()
    }
}

/// Where a checkpoint's weights are, as local files.
#[derive(Debug, Clone)]
pub enum WeightFiles {
    Safetensors(Vec<PathBuf>),
    Pytorch(PathBuf),
}

/// All tensors of a checkpoint in fp32 on the CPU, by name.
pub struct Checkpoint {
    tensors: HashMap<String, Tensor>,
}

impl Checkpoint {
    pub fn load(files: &WeightFiles) -> Result<Self, ModelError> {
        let mut tensors = HashMap::new();
        match files {
            WeightFiles::Safetensors(paths) => {
                for path in paths {
                    for (name, tensor) in candle_core::safetensors::load(path, &Device::Cpu)? {
                        if tensors.insert(name.clone(), tensor).is_some() {
                            return Err(ModelError::InvalidModel(format!(
                                "tensor {name:?} appears in more than one shard"
                            )));
                        }
                    }
                }
            }
            WeightFiles::Pytorch(path) => {
                for (name, tensor) in candle_core::pickle::read_all(path)? {
                    tensors.insert(name, tensor);
                }
            }
        }
        let tensors = tensors
            .into_iter()
            .map(|(name, t)| Ok((name, t.to_dtype(DType::F32)?)))
            .collect::<Result<_, ModelError>>()?;
        Ok(Self { tensors })
    }

    pub fn from_tensors(tensors: HashMap<String, Tensor>) -> Self {
        Self { tensors }
    }

    /// A tensor by name, with a message naming it when the checkpoint lacks it.
    pub fn get(&self, name: &str) -> Result<&Tensor, ModelError> {
        self.tensors
            .get(name)
            .ok_or_else(|| ModelError::Conversion(format!("the checkpoint has no tensor {name:?}")))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn parameter_count(&self) -> usize {
        self.tensors.values().map(|t| t.elem_count()).sum()
    }

    pub fn tensors(&self) -> &HashMap<String, Tensor> {
        &self.tensors
    }
}

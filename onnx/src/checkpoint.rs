//! Reading a Hugging Face checkpoint's tensors: one safetensors file, shards named by
//! `model.safetensors.index.json`, or a PyTorch zip state dict (read only after [`crate::pytorch::scan`]
//! passed it; candle's reader builds tensors from the pickle without executing anything).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};

use crate::ModelError;
use crate::dcp_shards::{self, Piece, ShardedTensor};

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

/// A checkpoint's tensors, read one at a time when asked for: a conversion holds one tensor (and its
/// transpose) at once, never the model. Safetensors shards are read with positional reads of each
/// tensor's byte range rather than mapped: mapped pages count towards the step's address-space limit
/// and its resident memory however briefly they are touched, while a read buffer is freed with the
/// tensor.
pub struct Checkpoint {
    store: Store,
}

enum Store {
    /// Tensors built in memory (sample models, tests).
    Memory(HashMap<String, Tensor>),
    Safetensors {
        shards: Vec<std::fs::File>,
        tensors: HashMap<String, StoredTensor>,
        /// Tensors saved in pieces, one per rank (docs/formats.md, "Sharded training checkpoints").
        sharded: HashMap<String, ShardedTensor<StoredTensor>>,
    },
    /// A PyTorch zip state dict: each tensor is read from its own zip entry when asked for.
    Pytorch(candle_core::pickle::PthTensors),
}

struct StoredTensor {
    shard: usize,
    dtype: DType,
    shape: Vec<usize>,
    /// Absolute byte range in the shard.
    offset: u64,
    length: usize,
}

/// The candle dtype of a safetensors dtype name; None for what kiln does not read as weights.
fn safetensors_dtype(name: &str) -> Option<DType> {
    Some(match name {
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "F64" => DType::F64,
        "I64" => DType::I64,
        "I32" => DType::I32,
        "I16" => DType::I16,
        "U8" | "BOOL" => DType::U8,
        "U32" => DType::U32,
        _ => return None,
    })
}

fn open_safetensors(paths: &[PathBuf]) -> Result<Store, ModelError> {
    let mut shards = Vec::with_capacity(paths.len());
    let mut tensors = HashMap::new();
    let mut pieces: BTreeMap<String, Vec<Piece<StoredTensor>>> = BTreeMap::new();
    for (index, path) in paths.iter().enumerate() {
        let mut file = std::fs::File::open(path)?;
        let size = file.metadata()?.len();
        let header = crate::safetensors::read_header(&mut file, size)?;
        let offsets = dcp_shards::piece_offsets(&header.metadata)?;
        for info in header.tensors {
            let dtype = safetensors_dtype(&info.dtype).ok_or_else(|| {
                ModelError::Conversion(format!(
                    "tensor {:?} is {}, which kiln does not convert",
                    info.name, info.dtype
                ))
            })?;
            let offset = header.data_start + info.begin;
            if offset
                .checked_add(info.end - info.begin)
                .is_none_or(|end| end > size)
            {
                return Err(ModelError::Truncated(format!(
                    "tensor {:?} lies past the end of its shard",
                    info.name
                )));
            }
            let stored = StoredTensor {
                shard: index,
                dtype,
                shape: info.shape.iter().map(|&d| d as usize).collect(),
                offset,
                length: usize::try_from(info.end - info.begin).map_err(|_| {
                    ModelError::Conversion(format!("tensor {:?} is too large", info.name))
                })?,
            };
            // A piece of a tensor an FSDP job saved rank by rank: merged below.
            if let Some(at) = offsets.as_ref().and_then(|o| o.get(&info.name)) {
                let piece = Piece {
                    shape: stored.shape.clone(),
                    offsets: at.iter().map(|&o| o as usize).collect(),
                    location: stored,
                };
                pieces.entry(info.name).or_default().push(piece);
                continue;
            }
            if tensors.insert(info.name.clone(), stored).is_some() {
                return Err(ModelError::InvalidModel(format!(
                    "tensor {:?} appears in more than one shard",
                    info.name
                )));
            }
        }
        shards.push(file);
    }
    let mut sharded = HashMap::new();
    for (name, pieces) in pieces {
        if tensors.contains_key(&name) {
            return Err(ModelError::InvalidModel(format!(
                "tensor {name:?} is both whole in one shard and in pieces in others"
            )));
        }
        let dtype = pieces[0].location.dtype;
        if pieces.iter().any(|p| p.location.dtype != dtype) {
            return Err(ModelError::InvalidModel(format!(
                "the pieces of tensor {name:?} have different dtypes"
            )));
        }
        let whole = ShardedTensor::assemble(&name, dtype, pieces)?;
        sharded.insert(name, whole);
    }
    Ok(Store::Safetensors {
        shards,
        tensors,
        sharded,
    })
}

/// A tensor's bytes from its shard.
fn read_stored(shards: &[std::fs::File], t: &StoredTensor) -> Result<Vec<u8>, ModelError> {
    use std::os::unix::fs::FileExt;
    let mut bytes = vec![0u8; t.length];
    shards[t.shard].read_exact_at(&mut bytes, t.offset)?;
    Ok(bytes)
}

/// A tensor saved in pieces, merged.
fn read_sharded(
    shards: &[std::fs::File],
    whole: &ShardedTensor<StoredTensor>,
) -> Result<Tensor, ModelError> {
    let size = whole.dtype.size_in_bytes();
    let count: usize = whole.shape.iter().product();
    let mut bytes = vec![0u8; count * size];
    for piece in &whole.pieces {
        let piece_bytes = read_stored(shards, &piece.location)?;
        dcp_shards::place(
            &mut bytes,
            &whole.shape,
            &piece_bytes,
            &piece.shape,
            &piece.offsets,
            size,
        );
    }
    Ok(Tensor::from_raw_buffer(
        &bytes,
        whole.dtype,
        &whole.shape,
        &Device::Cpu,
    )?)
}

impl Checkpoint {
    /// Opens the checkpoint: reads the shards' headers (or the state dict's pickle), no tensor data.
    pub fn open(files: &WeightFiles) -> Result<Self, ModelError> {
        let store = match files {
            WeightFiles::Safetensors(paths) => open_safetensors(paths)?,
            WeightFiles::Pytorch(path) => {
                Store::Pytorch(candle_core::pickle::PthTensors::new(path, None)?)
            }
        };
        Ok(Self { store })
    }

    pub fn from_tensors(tensors: HashMap<String, Tensor>) -> Self {
        Self {
            store: Store::Memory(tensors),
        }
    }

    fn missing(name: &str) -> ModelError {
        ModelError::Conversion(format!("the checkpoint has no tensor {name:?}"))
    }

    /// A tensor by name as the checkpoint stores it: 16-bit floats stay 16-bit.
    pub fn stored(&self, name: &str) -> Result<Tensor, ModelError> {
        match &self.store {
            Store::Memory(tensors) => tensors
                .get(name)
                .cloned()
                .ok_or_else(|| Self::missing(name)),
            Store::Safetensors {
                shards,
                tensors,
                sharded,
            } => {
                if let Some(whole) = sharded.get(name) {
                    return read_sharded(shards, whole);
                }
                let t = tensors.get(name).ok_or_else(|| Self::missing(name))?;
                let bytes = read_stored(shards, t)?;
                Ok(Tensor::from_raw_buffer(
                    &bytes,
                    t.dtype,
                    &t.shape,
                    &Device::Cpu,
                )?)
            }
            Store::Pytorch(pth) => pth.get(name)?.ok_or_else(|| Self::missing(name)),
        }
    }

    /// A weight for the graph: floats in the checkpoint's own precision (fp32, fp16 or bf16), anything
    /// else as fp32.
    pub fn weight(&self, name: &str) -> Result<Tensor, ModelError> {
        let tensor = self.stored(name)?;
        Ok(match tensor.dtype() {
            DType::F32 | DType::F16 | DType::BF16 => tensor,
            _ => tensor.to_dtype(DType::F32)?,
        })
    }

    /// A tensor by name in fp32 (for the reference forward passes).
    pub fn get(&self, name: &str) -> Result<Tensor, ModelError> {
        Ok(self.stored(name)?.to_dtype(DType::F32)?)
    }

    pub fn contains(&self, name: &str) -> bool {
        match &self.store {
            Store::Memory(tensors) => tensors.contains_key(name),
            Store::Safetensors {
                tensors, sharded, ..
            } => tensors.contains_key(name) || sharded.contains_key(name),
            Store::Pytorch(pth) => pth.tensor_infos().contains_key(name),
        }
    }

    /// Every tensor's name, dtype and shape, without reading any data.
    pub fn describe(&self) -> Vec<(String, DType, Vec<usize>)> {
        let mut all: Vec<_> = match &self.store {
            Store::Memory(tensors) => tensors
                .iter()
                .map(|(n, t)| (n.clone(), t.dtype(), t.dims().to_vec()))
                .collect(),
            Store::Safetensors {
                tensors, sharded, ..
            } => tensors
                .iter()
                .map(|(n, t)| (n.clone(), t.dtype, t.shape.clone()))
                .chain(
                    sharded
                        .iter()
                        .map(|(n, t)| (n.clone(), t.dtype, t.shape.clone())),
                )
                .collect(),
            Store::Pytorch(pth) => pth
                .tensor_infos()
                .iter()
                .map(|(n, t)| (n.clone(), t.dtype, t.layout.dims().to_vec()))
                .collect(),
        };
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    pub fn parameter_count(&self) -> usize {
        self.describe()
            .iter()
            .map(|(_, _, shape)| shape.iter().product::<usize>())
            .sum()
    }

    /// The bytes the weights take as stored.
    pub fn stored_bytes(&self) -> u64 {
        self.describe()
            .iter()
            .map(|(_, dtype, shape)| {
                (shape.iter().product::<usize>() * dtype.size_in_bytes()) as u64
            })
            .sum()
    }

    /// candle's VarBuilder over the checkpoint in fp32, reading each tensor when a model asks for it.
    pub fn var_builder(&self) -> candle_nn::VarBuilder<'_> {
        candle_nn::VarBuilder::from_backend(Box::new(self), DType::F32, Device::Cpu)
    }

    /// The widest float precision the checkpoint's weights are stored in.
    pub fn precision(&self) -> DType {
        let floats: Vec<DType> = self
            .describe()
            .into_iter()
            .map(|(_, dtype, _)| dtype)
            .filter(|d| d.is_float())
            .collect();
        if floats.is_empty()
            || floats
                .iter()
                .any(|d| !matches!(d, DType::F16 | DType::BF16))
        {
            DType::F32
        } else if floats.contains(&DType::BF16) {
            DType::BF16
        } else {
            DType::F16
        }
    }
}

/// candle's VarBuilder reads the reference models' weights through this, one tensor at a time.
impl candle_nn::var_builder::SimpleBackend for &Checkpoint {
    fn get(
        &self,
        shape: candle_core::Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.get_unchecked(name, dtype, device)?;
        if tensor.shape() != &shape {
            candle_core::bail!(
                "tensor {name:?} has shape {:?}, the reference expects {shape:?}",
                tensor.shape()
            );
        }
        Ok(tensor)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self
            .stored(name)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        tensor.to_dtype(dtype)?.to_device(device)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.contains(name)
    }
}

//! Unstructured magnitude pruning: in each MatMul/Gemm/Conv weight, the `sparsity` share of values with
//! the smallest magnitude become zero.

use candle_core::{DType, Device, Tensor};

use super::weight_channels;
use crate::ModelError;
use crate::eval::tensor_io;
use crate::proto::ModelProto;

pub fn prune(optimized: &ModelProto, sparsity: f64) -> Result<ModelProto, ModelError> {
    let mut model = optimized.clone();
    let weights = weight_channels(&model);
    let graph = model.graph.as_mut().expect("weight_channels found a graph");
    for tensor in &mut graph.initializer {
        let Some(name) = tensor.name.clone().filter(|n| weights.contains_key(n)) else {
            continue;
        };
        let w = tensor_io::from_proto(tensor, None, &Device::Cpu)?.to_dtype(DType::F32)?;
        let mut values = w.flatten_all()?.to_vec1::<f32>()?;
        let zeros = (values.len() as f64 * sparsity).round() as usize;
        let mut order: Vec<usize> = (0..values.len()).collect();
        // Ties broken by position, so pruning is deterministic.
        order.sort_by(|&a, &b| values[a].abs().total_cmp(&values[b].abs()).then(a.cmp(&b)));
        for &i in order.iter().take(zeros) {
            values[i] = 0.0;
        }
        *tensor = tensor_io::to_proto(&name, &Tensor::from_vec(values, w.shape(), &Device::Cpu)?)?;
    }
    Ok(model)
}

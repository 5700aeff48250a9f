//! Folds an inference BatchNormalization into the Conv before it: W' = W·s, B' = (B - mean)·s + beta,
//! with s = gamma / sqrt(var + eps) per output channel.

use candle_core::{DType, Device, Tensor};

use super::Pass;
use super::usage::Usage;
use crate::ModelError;
use crate::eval::tensor_io;
use crate::proto::{ModelProto, TensorProto, tensor_proto::DataType};

pub struct FoldBatchNormIntoConv;

fn float_initializer<'a>(initializers: &'a [TensorProto], name: &str) -> Option<&'a TensorProto> {
    initializers
        .iter()
        .find(|t| t.name.as_deref() == Some(name) && t.data_type == Some(DataType::Float as i32))
}

impl Pass for FoldBatchNormIntoConv {
    fn name(&self) -> &'static str {
        "fold-batchnorm-into-conv"
    }

    fn run(&self, model: &mut ModelProto) -> Result<bool, ModelError> {
        let Some(graph) = model.graph.as_mut() else {
            return Ok(false);
        };
        let mut changed = false;
        loop {
            let usage = Usage::of(graph);
            let found = graph.node.iter().enumerate().find_map(|(ci, conv)| {
                if conv.op_type.as_deref() != Some("Conv")
                    || !super::in_default_domain(conv)
                    || conv.output.len() != 1
                {
                    return None;
                }
                let y = &conv.output[0];
                if !usage.only_read_by_one(y) {
                    return None;
                }
                let bi = usage.readers[y][0];
                let bn = &graph.node[bi];
                let training = bn
                    .attribute
                    .iter()
                    .any(|a| a.name.as_deref() == Some("training_mode") && a.i == Some(1));
                if bn.op_type.as_deref() != Some("BatchNormalization")
                    || !super::in_default_domain(bn)
                    || training
                    || bn.output.iter().filter(|o| !o.is_empty()).count() != 1
                    || bn.input.first() != Some(y)
                {
                    return None;
                }
                let params: Option<Vec<&TensorProto>> = bn.input[1..5.min(bn.input.len())]
                    .iter()
                    .map(|n| float_initializer(&graph.initializer, n))
                    .collect();
                let params = params.filter(|p| p.len() == 4)?;
                let w = float_initializer(&graph.initializer, conv.input.get(1)?)?;
                let b = match conv.input.get(2).filter(|n| !n.is_empty()) {
                    Some(name) => Some(float_initializer(&graph.initializer, name)?),
                    None => None,
                };
                let eps = bn
                    .attribute
                    .iter()
                    .find(|a| a.name.as_deref() == Some("epsilon"))
                    .and_then(|a| a.f)
                    .unwrap_or(1e-5);
                Some((
                    ci,
                    bi,
                    w.clone(),
                    b.cloned(),
                    params.into_iter().cloned().collect::<Vec<_>>(),
                    eps,
                ))
            });
            let Some((ci, bi, w, b, params, eps)) = found else {
                break;
            };
            let dev = Device::Cpu;
            let load = |t: &TensorProto| tensor_io::from_proto(t, None, &dev);
            let (gamma, beta, mean, var) = (
                load(&params[0])?,
                load(&params[1])?,
                load(&params[2])?,
                load(&params[3])?,
            );
            let weight = load(&w)?;
            let channels = weight.dim(0)?;
            let scale = gamma.div(&(var + f64::from(eps))?.sqrt()?)?;
            let mut shape = vec![1; weight.rank()];
            shape[0] = channels;
            let new_w = weight.broadcast_mul(&scale.reshape(shape)?)?;
            let bias = match &b {
                Some(t) => load(t)?,
                None => Tensor::zeros(channels, DType::F32, &dev)?,
            };
            let new_b = bias.sub(&mean)?.mul(&scale)?.add(&beta)?;
            // Named after the BatchNorm's output (unique in a valid graph), checked against every existing
            // initializer name.
            let base = graph.node[bi].output[0].clone();
            let taken = |name: &str| {
                graph
                    .initializer
                    .iter()
                    .any(|t| t.name.as_deref() == Some(name))
            };
            let mut suffix = String::new();
            while taken(&format!("{base}.folded_weight{suffix}"))
                || taken(&format!("{base}.folded_bias{suffix}"))
            {
                suffix.push('_');
            }
            let (w_name, b_name) = (
                format!("{base}.folded_weight{suffix}"),
                format!("{base}.folded_bias{suffix}"),
            );
            graph
                .initializer
                .push(tensor_io::to_proto(&w_name, &new_w)?);
            graph
                .initializer
                .push(tensor_io::to_proto(&b_name, &new_b)?);
            let bn_output = graph.node[bi].output[0].clone();
            let conv = &mut graph.node[ci];
            conv.input.truncate(1);
            conv.input.push(w_name);
            conv.input.push(b_name);
            conv.output[0] = bn_output;
            graph.node.remove(bi);
            changed = true;
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimize::tests::{cnn, outputs_match};

    #[test]
    fn batchnorm_disappears_into_the_conv() {
        let before = cnn();
        let mut after = before.clone();
        assert!(FoldBatchNormIntoConv.run(&mut after).unwrap());
        assert!(
            after
                .graph
                .as_ref()
                .unwrap()
                .node
                .iter()
                .all(|n| n.op_type.as_deref() != Some("BatchNormalization"))
        );
        outputs_match(&before, &after);
    }
}

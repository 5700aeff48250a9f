//! Training losses ONNX defines (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss): computed in f64.

use candle_core::{DType, Tensor};

use super::super::node::{Node, optional, required};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// -input[n, target, d...] · weight[target], reduced as the node asks.
fn nll(
    node: &Node<'_>,
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
) -> Result<Tensor, ModelError> {
    let dims = input.dims().to_vec();
    let fits = dims.len() >= 2
        && target.dims().first() == Some(&dims[0])
        && target.dims().get(1..) == dims.get(2..)
        && weight.is_none_or(|w| w.dims() == [dims[1]]);
    if !fits {
        return Err(ModelError::Evaluation(format!(
            "{}: input {dims:?}, target {:?} and weight {:?} do not match",
            node.op_type(),
            target.dims(),
            weight.map(Tensor::dims)
        )));
    }
    let (n, c) = (dims[0], dims[1]);
    let inner: usize = dims[2..].iter().product();
    let values = input
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?;
    let targets = target
        .to_dtype(DType::I64)?
        .flatten_all()?
        .to_vec1::<i64>()?;
    let weights = weight
        .map(|w| w.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>())
        .transpose()?;
    let ignore = node
        .has("ignore_index")
        .then(|| node.int("ignore_index", -100));
    let mut losses = Vec::with_capacity(n * inner);
    let mut weight_sum = 0.0;
    for b in 0..n {
        for d in 0..inner {
            let t = targets[b * inner + d];
            if Some(t) == ignore {
                losses.push(0.0);
                continue;
            }
            let class = if t < 0 { t + c as i64 } else { t } as usize;
            if class >= c {
                return Err(ModelError::Evaluation(format!(
                    "target {t} is not a class of {c}"
                )));
            }
            let w = weights.as_ref().map_or(1.0, |w| w[class]);
            weight_sum += w;
            losses.push(-values[(b * c + class) * inner + d] * w);
        }
    }
    let mut shape = vec![n];
    shape.extend_from_slice(&dims[2..]);
    let out = match node.string("reduction").as_deref().unwrap_or("mean") {
        "none" => Tensor::from_vec(losses, shape, input.device())?,
        "sum" => Tensor::new(losses.iter().sum::<f64>(), input.device())?,
        _ => Tensor::new(losses.iter().sum::<f64>() / weight_sum, input.device())?,
    };
    Ok(out.to_dtype(input.dtype())?)
}

pub fn negative_log_likelihood_loss(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![nll(
        node,
        required(inputs, 0)?,
        required(inputs, 1)?,
        optional(inputs, 2),
    )?])
}

/// Cross entropy of softmax(scores) over dim 1; the second output is the log-probabilities.
pub fn softmax_cross_entropy_loss(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let scores = required(inputs, 0)?;
    let log_prob =
        candle_nn::ops::log_softmax(&scores.to_dtype(DType::F64)?, 1)?.to_dtype(scores.dtype())?;
    let loss = nll(node, &log_prob, required(inputs, 1)?, optional(inputs, 2))?;
    let mut out = vec![loss];
    if node.output_count() > 1 {
        out.push(log_prob);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, i64s, run};

    #[test]
    fn nll_mean_divides_by_the_target_weights() {
        let input = f32s(&[-1., -2., -3., -4.], &[2, 2]);
        let weight = f32s(&[1., 3.], &[2]);
        let out = run(
            "NegativeLogLikelihoodLoss",
            13,
            vec![],
            &[input, i64s(&[0, 1]), weight],
        );
        // (1·1 + 4·3) / (1 + 3)
        assert!((out[0].to_vec0::<f32>().unwrap() - 13. / 4.).abs() < 1e-6);
    }
}

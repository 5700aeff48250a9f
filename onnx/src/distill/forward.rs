//! The three families' forward passes in candle operations that have gradients, so one code path runs
//! the teacher (plain tensors) and trains the student (tensors of `Var`s). candle-nn's fused softmax and
//! layer norm have no backward pass, so both are written out here; the converters' eager references
//! (`convert::*`) are the independent check that these compute what Hugging Face computes.

use std::collections::BTreeMap;

use candle_core::{D, DType, Device, Tensor};

use super::architecture::{Architecture, Family, LmHead};
use crate::ModelError;

/// Tensors by their checkpoint names.
pub type Parameters = BTreeMap<String, Tensor>;

/// What distillation compares: the last hidden state ([batch, sequence, hidden], after the final norm
/// for the decoders) and the logits ([batch, sequence, vocab]).
pub struct Outputs {
    pub hidden: Tensor,
    pub logits: Tensor,
}

fn get<'p>(params: &'p Parameters, name: &str) -> Result<&'p Tensor, ModelError> {
    params
        .get(name)
        .ok_or_else(|| ModelError::Conversion(format!("the checkpoint has no tensor {name:?}")))
}

/// Softmax over the last axis; the maximum subtracted for stability is a constant to the gradient.
pub fn softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    let shifted = x.broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())?;
    let e = shifted.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// log(softmax(x)) over the last axis, computed without forming the softmax.
pub fn log_softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    let shifted = x.broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())?;
    shifted.broadcast_sub(&shifted.exp()?.sum_keepdim(D::Minus1)?.log()?)
}

fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
    let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
    centred
        .broadcast_div(&(variance + eps)?.sqrt()?)?
        .broadcast_mul(weight)?
        .broadcast_add(bias)
}

fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let variance = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_div(&(variance + eps)?.sqrt()?)?
        .broadcast_mul(weight)
}

/// `x · W` on [b, s, in] for a matrix already laid out [in, out].
fn project(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let (b, s, inner) = x.dims3()?;
    x.reshape((b * s, inner))?.matmul(w)?.reshape((b, s, ()))
}

struct Weights<'p> {
    params: &'p Parameters,
}

impl Weights<'_> {
    fn norm(&self, x: &Tensor, name: &str, eps: f64) -> Result<Tensor, ModelError> {
        let w = get(self.params, &format!("{name}.weight"))?;
        let b = get(self.params, &format!("{name}.bias"))?;
        Ok(layer_norm(x, w, b, eps)?)
    }

    /// A PyTorch Linear (weight [out, in]), with its bias when it has one.
    fn linear(&self, x: &Tensor, name: &str) -> Result<Tensor, ModelError> {
        let y = project(x, &get(self.params, &format!("{name}.weight"))?.t()?)?;
        self.bias(y, name)
    }

    /// GPT-2's Conv1D (weight [in, out]) with its bias.
    fn conv1d(&self, x: &Tensor, name: &str) -> Result<Tensor, ModelError> {
        let y = project(x, get(self.params, &format!("{name}.weight"))?)?;
        self.bias(y, name)
    }

    fn bias(&self, y: Tensor, name: &str) -> Result<Tensor, ModelError> {
        Ok(match self.params.get(&format!("{name}.bias")) {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }

    fn embed(&self, name: &str, ids: &Tensor) -> Result<Tensor, ModelError> {
        let (b, s) = ids.dims2()?;
        Ok(get(self.params, name)?
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, s, ()))?)
    }
}

/// [s, s]: 0 where a position may attend, minus infinity after it.
fn causal_mask(s: usize, device: &Device) -> candle_core::Result<Tensor> {
    let mask: Vec<f32> = (0..s * s)
        .map(|i| {
            if i % s > i / s {
                f32::NEG_INFINITY
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_vec(mask, (s, s), device)
}

/// Scaled dot-product attention on [b, s, heads·dim] queries and [b, s, kv_heads·dim] keys and values.
fn attend(
    a: &Architecture,
    (q, k, v): (Tensor, Tensor, Tensor),
    mask: Option<&Tensor>,
    rotary: Option<(&Tensor, &Tensor)>,
) -> Result<Tensor, ModelError> {
    let (b, s, _) = q.dims3()?;
    let split = |t: Tensor, n: usize| -> candle_core::Result<Tensor> {
        t.reshape((b, s, n, a.head_dim))?
            .transpose(1, 2)?
            .contiguous()
    };
    let (mut q, mut k, mut v) = (
        split(q, a.heads)?,
        split(k, a.kv_heads)?,
        split(v, a.kv_heads)?,
    );
    if let Some((cos, sin)) = rotary {
        q = rotate(&q, cos, sin)?;
        k = rotate(&k, cos, sin)?;
    }
    if a.kv_heads != a.heads {
        let groups = a.heads / a.kv_heads;
        let repeat = |t: Tensor| -> candle_core::Result<Tensor> {
            t.unsqueeze(2)?
                .expand((b, a.kv_heads, groups, s, a.head_dim))?
                .reshape((b, a.heads, s, a.head_dim))
        };
        (k, v) = (repeat(k)?, repeat(v)?);
    }
    let mut scores = (q.matmul(&k.t()?.contiguous()?)? / (a.head_dim as f64).sqrt())?;
    if let Some(mask) = mask {
        scores = scores.broadcast_add(mask)?;
    }
    Ok(softmax_last(&scores)?
        .matmul(&v)?
        .transpose(1, 2)?
        .reshape((b, s, a.heads * a.head_dim))?)
}

/// cos and sin of the rotary angles for positions 0..s, [s, head_dim], in Hugging Face's layout.
fn rotary_tables(
    s: usize,
    a: &Architecture,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let half = a.head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| 1.0 / (a.theta as f32).powf((2 * i) as f32 / a.head_dim as f32))
        .collect();
    let inv_freq = Tensor::from_vec(inv_freq, (1, half), device)?;
    let positions = Tensor::arange(0u32, s as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((s, 1))?;
    let freqs = positions.broadcast_mul(&inv_freq)?;
    let angles = Tensor::cat(&[&freqs, &freqs], D::Minus1)?;
    Ok((angles.cos()?, angles.sin()?))
}

fn rotate(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    let half = x.dim(D::Minus1)? / 2;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?
}

/// The forward pass of a model of `architecture` with `params` on token ids [batch, sequence].
pub fn forward(
    architecture: &Architecture,
    params: &Parameters,
    ids: &Tensor,
) -> Result<Outputs, ModelError> {
    let s = ids.dim(1)?;
    if s > architecture.positions {
        return Err(ModelError::Unsupported(format!(
            "sequences of {s} tokens are longer than the model's {} positions",
            architecture.positions
        )));
    }
    let w = Weights { params };
    let hidden = match architecture.family {
        Family::Bert => bert(architecture, &w, ids)?,
        Family::Gpt2 => gpt2(architecture, &w, ids)?,
        Family::Llama => llama(architecture, &w, ids)?,
    };
    let logits = logits(architecture, &w, &hidden)?;
    Ok(Outputs { hidden, logits })
}

fn bert(a: &Architecture, w: &Weights, ids: &Tensor) -> Result<Tensor, ModelError> {
    let (s, e) = (ids.dim(1)?, format!("{}embeddings", a.prefix));
    let positions = get(w.params, &format!("{e}.position_embeddings.weight"))?.narrow(0, 0, s)?;
    // Every token of type 0: the datasets distillation reads are single segments.
    let token_type =
        get(w.params, &format!("{e}.token_type_embeddings.weight"))?.narrow(0, 0, 1)?;
    let embedded = w
        .embed(&format!("{e}.word_embeddings.weight"), ids)?
        .broadcast_add(&positions)?
        .broadcast_add(&token_type)?;
    let mut x = w.norm(&embedded, &format!("{e}.LayerNorm"), a.eps)?;
    for layer in 0..a.layers {
        let l = a.layer_prefix(layer);
        let qkv = (
            w.linear(&x, &format!("{l}attention.self.query"))?,
            w.linear(&x, &format!("{l}attention.self.key"))?,
            w.linear(&x, &format!("{l}attention.self.value"))?,
        );
        let context = attend(a, qkv, None, None)?;
        let attended = (&x + w.linear(&context, &format!("{l}attention.output.dense"))?)?;
        x = w.norm(&attended, &format!("{l}attention.output.LayerNorm"), a.eps)?;
        let inner = w.linear(&x, &format!("{l}intermediate.dense"))?;
        let inner = if a.exact_gelu {
            inner.gelu_erf()?
        } else {
            inner.gelu()?
        };
        let out = (&x + w.linear(&inner, &format!("{l}output.dense"))?)?;
        x = w.norm(&out, &format!("{l}output.LayerNorm"), a.eps)?;
    }
    Ok(x)
}

fn gpt2(a: &Architecture, w: &Weights, ids: &Tensor) -> Result<Tensor, ModelError> {
    let (s, p) = (ids.dim(1)?, &a.prefix);
    let positions = get(w.params, &format!("{p}wpe.weight"))?.narrow(0, 0, s)?;
    let mut x = w
        .embed(&format!("{p}wte.weight"), ids)?
        .broadcast_add(&positions)?;
    let mask = causal_mask(s, ids.device())?;
    for layer in 0..a.layers {
        let l = a.layer_prefix(layer);
        let h = w.norm(&x, &format!("{l}ln_1"), a.eps)?;
        let qkv = w.conv1d(&h, &format!("{l}attn.c_attn"))?;
        let part = |i: usize| qkv.narrow(D::Minus1, i * a.hidden, a.hidden);
        let context = attend(a, (part(0)?, part(1)?, part(2)?), Some(&mask), None)?;
        x = (x + w.conv1d(&context, &format!("{l}attn.c_proj"))?)?;
        let h = w.norm(&x, &format!("{l}ln_2"), a.eps)?;
        let inner = w.conv1d(&h, &format!("{l}mlp.c_fc"))?.gelu()?;
        x = (x + w.conv1d(&inner, &format!("{l}mlp.c_proj"))?)?;
    }
    w.norm(&x, &format!("{p}ln_f"), a.eps)
}

fn llama(a: &Architecture, w: &Weights, ids: &Tensor) -> Result<Tensor, ModelError> {
    let (s, p) = (ids.dim(1)?, &a.prefix);
    let mut x = w.embed(&format!("{p}embed_tokens.weight"), ids)?;
    let (cos, sin) = rotary_tables(s, a, ids.device())?;
    let mask = causal_mask(s, ids.device())?;
    let norm = |x: &Tensor, name: String| -> Result<Tensor, ModelError> {
        Ok(rms_norm(x, get(w.params, &name)?, a.eps)?)
    };
    for layer in 0..a.layers {
        let l = a.layer_prefix(layer);
        let h = norm(&x, format!("{l}input_layernorm.weight"))?;
        let qkv = (
            w.linear(&h, &format!("{l}self_attn.q_proj"))?,
            w.linear(&h, &format!("{l}self_attn.k_proj"))?,
            w.linear(&h, &format!("{l}self_attn.v_proj"))?,
        );
        let context = attend(a, qkv, Some(&mask), Some((&cos, &sin)))?;
        x = (x + w.linear(&context, &format!("{l}self_attn.o_proj"))?)?;
        let h = norm(&x, format!("{l}post_attention_layernorm.weight"))?;
        let gate = w.linear(&h, &format!("{l}mlp.gate_proj"))?.silu()?;
        let inner = (gate * w.linear(&h, &format!("{l}mlp.up_proj"))?)?;
        x = (x + w.linear(&inner, &format!("{l}mlp.down_proj"))?)?;
    }
    norm(&x, format!("{p}norm.weight"))
}

fn embeddings_name(a: &Architecture) -> String {
    match a.family {
        Family::Bert => format!("{}embeddings.word_embeddings.weight", a.prefix),
        Family::Gpt2 => format!("{}wte.weight", a.prefix),
        Family::Llama => format!("{}embed_tokens.weight", a.prefix),
    }
}

fn logits(a: &Architecture, w: &Weights, hidden: &Tensor) -> Result<Tensor, ModelError> {
    let embeddings = get(w.params, &embeddings_name(a))?;
    Ok(match &a.head {
        LmHead::Tied => project(hidden, &embeddings.t()?)?,
        LmHead::Separate(name) => project(hidden, &get(w.params, name)?.t()?)?,
        LmHead::BertMlm => {
            let t = w.linear(hidden, "cls.predictions.transform.dense")?;
            let t = if a.exact_gelu {
                t.gelu_erf()?
            } else {
                t.gelu()?
            };
            let t = w.norm(&t, "cls.predictions.transform.LayerNorm", a.eps)?;
            let y = project(&t, &embeddings.t()?)?;
            match w.params.get("cls.predictions.bias") {
                Some(bias) => y.broadcast_add(bias)?,
                None => y,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::sample_models::{self, SampleModel};

    fn parameters(sample: &SampleModel) -> Parameters {
        sample
            .tensors
            .iter()
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect()
    }

    fn ids(vocab: usize) -> Tensor {
        let ids: Vec<u32> = (0..14).map(|i| ((i * 7919 + 5) % vocab) as u32).collect();
        Tensor::from_vec(ids, (2, 7), &Device::Cpu).unwrap()
    }

    fn relative_error(a: &Tensor, b: &Tensor) -> f32 {
        let diff = (a - b).unwrap().sqr().unwrap().sum_all().unwrap();
        let norm = b.sqr().unwrap().sum_all().unwrap();
        (diff.to_scalar::<f32>().unwrap() / norm.to_scalar::<f32>().unwrap()).sqrt()
    }

    // The converters' references are the check: candle-transformers' BertModel, the eager GPT-2 and
    // Llama passes that the ONNX conversions are proven against.
    #[test]
    fn gpt2_matches_the_conversion_reference() {
        let sample = sample_models::gpt2(48, 16, 2, 2).unwrap();
        let checkpoint = Checkpoint::from_tensors(sample.tensors.clone());
        let a = Architecture::read(&sample.config, &checkpoint).unwrap();
        let ours = forward(&a, &parameters(&sample), &ids(48)).unwrap();
        let ids64 = ids(48).to_dtype(DType::I64).unwrap();
        let theirs = crate::convert::gpt2::reference(&sample.config, &checkpoint, &ids64).unwrap();
        assert!(relative_error(&ours.logits, &theirs) < 1e-5);
    }

    #[test]
    fn llama_matches_the_conversion_reference() {
        let sample = sample_models::llama(48, 16, 2, 4, 2).unwrap();
        let checkpoint = Checkpoint::from_tensors(sample.tensors.clone());
        let a = Architecture::read(&sample.config, &checkpoint).unwrap();
        let ours = forward(&a, &parameters(&sample), &ids(48)).unwrap();
        let ids64 = ids(48).to_dtype(DType::I64).unwrap();
        let theirs =
            crate::convert::llama_eager::forward(&sample.config, &checkpoint, &ids64).unwrap();
        assert!(relative_error(&ours.logits, &theirs.logits) < 1e-5);
    }

    #[test]
    fn bert_matches_the_conversion_reference() {
        let sample = sample_models::bert(48, 16, 2, 2).unwrap();
        let checkpoint = Checkpoint::from_tensors(sample.tensors.clone());
        let a = Architecture::read(&sample.config, &checkpoint).unwrap();
        let ours = forward(&a, &parameters(&sample), &ids(48)).unwrap();
        let ids64 = ids(48).to_dtype(DType::I64).unwrap();
        let inputs = HashMap::from([
            ("input_ids".to_owned(), ids64.clone()),
            ("attention_mask".to_owned(), ids64.ones_like().unwrap()),
            ("token_type_ids".to_owned(), ids64.zeros_like().unwrap()),
        ]);
        let theirs = crate::convert::bert::reference(&sample.config, &checkpoint, &inputs).unwrap();
        assert!(relative_error(&ours.hidden, &theirs) < 1e-5);
    }
}

//! Small Hugging Face checkpoints with random weights, written the ways users push them (one safetensors
//! file, shards with an index, a PyTorch zip state dict), for tests, demos and benchmarks. Sizes are the
//! caller's: tiny for tests, BERT-base for the conversion benchmark.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde_json::{Value, json};

use crate::ModelError;
use crate::graph_builder::{DimSpec, GraphBuilder, attr_float, attr_int, attr_ints};
use crate::proto::{ModelProto, tensor_proto::DataType};

/// A checkpoint in memory: its config.json and its tensors by Hugging Face name.
pub struct SampleModel {
    pub config: Value,
    pub tensors: HashMap<String, Tensor>,
}

fn randn(shape: &[usize], std: f64) -> Result<Tensor, ModelError> {
    Ok(Tensor::randn(0f32, std as f32, shape, &Device::Cpu)?)
}

fn norm_weight(n: usize) -> Result<Tensor, ModelError> {
    Ok((randn(&[n], 0.1)? + 1.0)?)
}

/// BERT with `layers` layers of width `hidden` (`heads` heads, 4× wide feed-forward).
pub fn bert(
    vocab: usize,
    hidden: usize,
    layers: usize,
    heads: usize,
) -> Result<SampleModel, ModelError> {
    let inner = 4 * hidden;
    let config = json!({
        "model_type": "bert", "architectures": ["BertModel"], "vocab_size": vocab, "hidden_size": hidden,
        "num_hidden_layers": layers, "num_attention_heads": heads, "intermediate_size": inner,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 64, "type_vocab_size": 2, "initializer_range": 0.02,
        "layer_norm_eps": 1e-12, "pad_token_id": 0, "position_embedding_type": "absolute"
    });
    let mut t = HashMap::new();
    t.insert(
        "embeddings.word_embeddings.weight".into(),
        randn(&[vocab, hidden], 0.5)?,
    );
    t.insert(
        "embeddings.position_embeddings.weight".into(),
        randn(&[64, hidden], 0.5)?,
    );
    t.insert(
        "embeddings.token_type_embeddings.weight".into(),
        randn(&[2, hidden], 0.5)?,
    );
    t.insert("embeddings.LayerNorm.weight".into(), norm_weight(hidden)?);
    t.insert("embeddings.LayerNorm.bias".into(), randn(&[hidden], 0.1)?);
    let std = (1.0 / hidden as f64).sqrt();
    for l in 0..layers {
        let p = format!("encoder.layer.{l}");
        for (name, out, inp) in [
            ("attention.self.query", hidden, hidden),
            ("attention.self.key", hidden, hidden),
            ("attention.self.value", hidden, hidden),
            ("attention.output.dense", hidden, hidden),
            ("intermediate.dense", inner, hidden),
            ("output.dense", hidden, inner),
        ] {
            t.insert(
                format!("{p}.{name}.weight"),
                randn(&[out, inp], (1.0 / inp as f64).sqrt())?,
            );
            t.insert(format!("{p}.{name}.bias"), randn(&[out], std * 0.1)?);
        }
        for name in ["attention.output.LayerNorm", "output.LayerNorm"] {
            t.insert(format!("{p}.{name}.weight"), norm_weight(hidden)?);
            t.insert(format!("{p}.{name}.bias"), randn(&[hidden], 0.1)?);
        }
    }
    Ok(SampleModel { config, tensors: t })
}

/// GPT-2 (Conv1D weights stored [in, out], LM head tied to the token embeddings).
pub fn gpt2(
    vocab: usize,
    hidden: usize,
    layers: usize,
    heads: usize,
) -> Result<SampleModel, ModelError> {
    let positions = 64;
    let config = json!({
        "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": vocab, "n_embd": hidden,
        "n_layer": layers, "n_head": heads, "n_positions": positions, "n_ctx": positions, "n_inner": null,
        "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5
    });
    let mut t = HashMap::new();
    t.insert(
        "transformer.wte.weight".into(),
        randn(&[vocab, hidden], 0.5)?,
    );
    t.insert(
        "transformer.wpe.weight".into(),
        randn(&[positions, hidden], 0.1)?,
    );
    for l in 0..layers {
        let p = format!("transformer.h.{l}");
        for (name, inp, out) in [
            ("attn.c_attn", hidden, 3 * hidden),
            ("attn.c_proj", hidden, hidden),
            ("mlp.c_fc", hidden, 4 * hidden),
            ("mlp.c_proj", 4 * hidden, hidden),
        ] {
            t.insert(
                format!("{p}.{name}.weight"),
                randn(&[inp, out], (1.0 / inp as f64).sqrt())?,
            );
            t.insert(format!("{p}.{name}.bias"), randn(&[out], 0.02)?);
        }
        for name in ["ln_1", "ln_2"] {
            t.insert(format!("{p}.{name}.weight"), norm_weight(hidden)?);
            t.insert(format!("{p}.{name}.bias"), randn(&[hidden], 0.1)?);
        }
    }
    t.insert("transformer.ln_f.weight".into(), norm_weight(hidden)?);
    t.insert("transformer.ln_f.bias".into(), randn(&[hidden], 0.1)?);
    Ok(SampleModel { config, tensors: t })
}

/// Llama with grouped-query attention (`kv_heads` key/value heads) and an untied LM head.
pub fn llama(
    vocab: usize,
    hidden: usize,
    layers: usize,
    heads: usize,
    kv_heads: usize,
) -> Result<SampleModel, ModelError> {
    let inner = 3 * hidden;
    let head_dim = hidden / heads;
    let config = json!({
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": vocab,
        "hidden_size": hidden, "intermediate_size": inner, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": kv_heads, "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "max_position_embeddings": 128, "tie_word_embeddings": false,
        "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2
    });
    let mut t = HashMap::new();
    t.insert(
        "model.embed_tokens.weight".into(),
        randn(&[vocab, hidden], 0.5)?,
    );
    for l in 0..layers {
        let p = format!("model.layers.{l}");
        for (name, out, inp) in [
            ("self_attn.q_proj", hidden, hidden),
            ("self_attn.k_proj", kv_heads * head_dim, hidden),
            ("self_attn.v_proj", kv_heads * head_dim, hidden),
            ("self_attn.o_proj", hidden, hidden),
            ("mlp.gate_proj", inner, hidden),
            ("mlp.up_proj", inner, hidden),
            ("mlp.down_proj", hidden, inner),
        ] {
            t.insert(
                format!("{p}.{name}.weight"),
                randn(&[out, inp], (1.0 / inp as f64).sqrt())?,
            );
        }
        t.insert(format!("{p}.input_layernorm.weight"), norm_weight(hidden)?);
        t.insert(
            format!("{p}.post_attention_layernorm.weight"),
            norm_weight(hidden)?,
        );
    }
    t.insert("model.norm.weight".into(), norm_weight(hidden)?);
    t.insert(
        "lm_head.weight".into(),
        randn(&[vocab, hidden], (1.0 / hidden as f64).sqrt())?,
    );
    Ok(SampleModel { config, tensors: t })
}

impl SampleModel {
    /// The same model with every tensor in `dtype` (a checkpoint saved in bf16 or fp16).
    pub fn to_dtype(self, dtype: candle_core::DType) -> Result<Self, ModelError> {
        let tensors = self
            .tensors
            .into_iter()
            .map(|(name, t)| Ok((name, t.to_dtype(dtype)?)))
            .collect::<Result<_, ModelError>>()?;
        Ok(Self {
            config: self.config,
            tensors,
        })
    }

    fn write_config(&self, dir: &Path) -> Result<(), ModelError> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).expect("json"),
        )?;
        Ok(())
    }

    /// config.json and model.safetensors.
    pub fn write_safetensors(&self, dir: &Path) -> Result<(), ModelError> {
        self.write_config(dir)?;
        candle_core::safetensors::save(&self.tensors, dir.join("model.safetensors"))?;
        Ok(())
    }

    /// config.json, `shards` safetensors files and model.safetensors.index.json, as `save_pretrained`
    /// writes a checkpoint too large for one file.
    pub fn write_sharded(&self, dir: &Path, shards: usize) -> Result<(), ModelError> {
        self.write_config(dir)?;
        let mut names: Vec<&String> = self.tensors.keys().collect();
        names.sort();
        let mut weight_map = BTreeMap::new();
        for shard in 0..shards {
            let file = format!("model-{:05}-of-{shards:05}.safetensors", shard + 1);
            let part: HashMap<String, Tensor> = names
                .iter()
                .enumerate()
                .filter(|(i, _)| i % shards == shard)
                .map(|(_, n)| ((*n).clone(), self.tensors[*n].clone()))
                .collect();
            for name in part.keys() {
                weight_map.insert(name.clone(), file.clone());
            }
            candle_core::safetensors::save(&part, dir.join(&file))?;
        }
        let index = json!({ "metadata": {}, "weight_map": weight_map });
        std::fs::write(
            dir.join("model.safetensors.index.json"),
            serde_json::to_vec_pretty(&index).expect("json"),
        )?;
        Ok(())
    }

    /// config.json and pytorch_model.bin in the zip format `torch.save` writes.
    pub fn write_pytorch(&self, dir: &Path) -> Result<(), ModelError> {
        self.write_config(dir)?;
        write_torch_zip(&dir.join("pytorch_model.bin"), &self.tensors)
    }
}

/// A state dict as `torch.save` writes it: `archive/data.pkl` (protocol 2) and one storage per tensor.
pub fn write_torch_zip(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<(), ModelError> {
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let mut pickle = vec![0x80, 2];
    let global = |p: &mut Vec<u8>, module: &str, name: &str| {
        p.push(b'c');
        p.extend_from_slice(format!("{module}\n{name}\n").as_bytes());
    };
    let text = |p: &mut Vec<u8>, s: &str| {
        p.push(b'X');
        p.extend_from_slice(&(s.len() as u32).to_le_bytes());
        p.extend_from_slice(s.as_bytes());
    };
    let int = |p: &mut Vec<u8>, v: usize| {
        p.push(b'J');
        p.extend_from_slice(&(v as i32).to_le_bytes());
    };
    global(&mut pickle, "collections", "OrderedDict");
    pickle.extend_from_slice(b")R(");
    for (key, name) in names.iter().enumerate() {
        let tensor = &tensors[*name];
        text(&mut pickle, name);
        global(&mut pickle, "torch._utils", "_rebuild_tensor_v2");
        pickle.extend_from_slice(b"((");
        text(&mut pickle, "storage");
        global(&mut pickle, "torch", "FloatStorage");
        text(&mut pickle, &key.to_string());
        text(&mut pickle, "cpu");
        int(&mut pickle, tensor.elem_count());
        pickle.extend_from_slice(b"tQ");
        int(&mut pickle, 0);
        pickle.push(b'(');
        for &d in tensor.dims() {
            int(&mut pickle, d);
        }
        pickle.push(b't');
        pickle.push(b'(');
        let mut stride = 1;
        let mut strides: Vec<usize> = tensor
            .dims()
            .iter()
            .rev()
            .map(|&d| {
                let s = stride;
                stride *= d;
                s
            })
            .collect();
        strides.reverse();
        for s in strides {
            int(&mut pickle, s);
        }
        pickle.push(b't');
        pickle.push(0x89);
        global(&mut pickle, "collections", "OrderedDict");
        pickle.extend_from_slice(b")Rt");
        pickle.push(b'R');
    }
    pickle.extend_from_slice(b"u.");
    let file = std::fs::File::create(path)?;
    let mut zip = zip::ZipWriter::new(file);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let zip_error = |e: zip::result::ZipError| ModelError::Io(e.to_string());
    zip.start_file("archive/data.pkl", stored)
        .map_err(zip_error)?;
    zip.write_all(&pickle)?;
    for (key, name) in names.iter().enumerate() {
        let values = tensors[*name]
            .flatten_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1::<f32>()?;
        zip.start_file(format!("archive/data/{key}"), stored)
            .map_err(zip_error)?;
        for v in values {
            zip.write_all(&v.to_le_bytes())?;
        }
    }
    zip.start_file("archive/version", stored)
        .map_err(zip_error)?;
    zip.write_all(b"3\n")?;
    zip.finish().map_err(zip_error)?;
    Ok(())
}

fn unit_randn(shape: &[usize]) -> Tensor {
    Tensor::randn(0f32, 1.0, shape, &Device::Cpu).expect("random tensor")
}

/// x [batch, 8] → MatMul → Add → Relu → MatMul → Add, scaled by a constant computed in the graph
/// (sqrt of a Constant), optionally with an Identity and a Dropout in the way.
pub fn mlp_graph(with_identity: bool) -> ModelProto {
    let mut g = GraphBuilder::new();
    let x = g.input(
        "x",
        DataType::Float,
        &[DimSpec::Named("batch"), DimSpec::Fixed(8)],
    );
    let x = if with_identity {
        g.op("Identity", &[&x], vec![])
    } else {
        x
    };
    let w1 = g.weight("w1", &unit_randn(&[8, 16])).expect("sample graph");
    let b1 = g.weight("b1", &unit_randn(&[16])).expect("sample graph");
    let h = g.op("MatMul", &[&x, &w1], vec![]);
    let h = g.op("Add", &[&h, &b1], vec![]);
    let h = g.op("Relu", &[&h], vec![]);
    let h = if with_identity {
        g.op("Dropout", &[&h], vec![])
    } else {
        h
    };
    let w2 = g.weight("w2", &unit_randn(&[16, 4])).expect("sample graph");
    let b2 = g.weight("b2", &unit_randn(&[4])).expect("sample graph");
    let y = g.op("MatMul", &[&h, &w2], vec![]);
    let y = g.op("Add", &[&b2, &y], vec![]);
    let four = g.op(
        "Constant",
        &[],
        vec![crate::proto::AttributeProto {
            name: Some("value_float".into()),
            f: Some(4.0),
            r#type: Some(1),
            ..Default::default()
        }],
    );
    let scale = g.op("Sqrt", &[&four], vec![]);
    g.op_into("Mul", &[&y, &scale], vec![], "y");
    g.output(
        "y",
        DataType::Float,
        &[DimSpec::Named("batch"), DimSpec::Fixed(4)],
    );
    g.finish("mlp", 17, vec![])
}

/// x [batch, 3, 8, 8] → Conv → BatchNormalization → Relu → GlobalAveragePool → Flatten → Gemm.
pub fn cnn_graph() -> ModelProto {
    let mut g = GraphBuilder::new();
    let x = g.input(
        "x",
        DataType::Float,
        &[
            DimSpec::Named("batch"),
            DimSpec::Fixed(3),
            DimSpec::Fixed(8),
            DimSpec::Fixed(8),
        ],
    );
    let w = g
        .weight("conv.w", &unit_randn(&[4, 3, 3, 3]))
        .expect("sample graph");
    let b = g.weight("conv.b", &unit_randn(&[4])).expect("sample graph");
    let c = g.op(
        "Conv",
        &[&x, &w, &b],
        vec![attr_ints("pads", &[1, 1, 1, 1])],
    );
    let gamma = g
        .weight(
            "bn.gamma",
            &unit_randn(&[4]).affine(0.1, 1.0).expect("sample graph"),
        )
        .expect("sample graph");
    let beta = g
        .weight("bn.beta", &unit_randn(&[4]))
        .expect("sample graph");
    let mean = g
        .weight("bn.mean", &unit_randn(&[4]))
        .expect("sample graph");
    let var = g
        .weight(
            "bn.var",
            &(unit_randn(&[4]).abs().expect("sample graph") + 0.5).expect("sample graph"),
        )
        .expect("sample graph");
    let n = g.op(
        "BatchNormalization",
        &[&c, &gamma, &beta, &mean, &var],
        vec![attr_float("epsilon", 1e-5)],
    );
    let r = g.op("Relu", &[&n], vec![]);
    let p = g.op("GlobalAveragePool", &[&r], vec![]);
    let f = g.op("Flatten", &[&p], vec![attr_int("axis", 1)]);
    let fc = g
        .weight("fc.w", &unit_randn(&[4, 5]))
        .expect("sample graph");
    let fb = g.weight("fc.b", &unit_randn(&[5])).expect("sample graph");
    g.op_into("Gemm", &[&f, &fc, &fb], vec![], "logits");
    g.output(
        "logits",
        DataType::Float,
        &[DimSpec::Named("batch"), DimSpec::Fixed(5)],
    );
    g.finish("cnn", 17, vec![])
}

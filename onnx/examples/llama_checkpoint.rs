//! Writes a Llama-shaped checkpoint with random bf16 weights as `save_pretrained` shards it (config.json,
//! model-0000N-of-0000M.safetensors, model.safetensors.index.json), one tensor at a time in bounded
//! memory, so checkpoints of 7B-class shapes can be made on a small machine.
//!
//!     cargo run --release -p kiln-onnx --example llama_checkpoint -- DIR [7b|3b|tiny] [LAYERS]
//!
//! 7b: hidden 4096, intermediate 11008, 32 heads, 32 layers, vocab 32000 (Llama-2-7B's shapes);
//! 3b: hidden 3200, intermediate 8640, 32 heads, 26 layers, vocab 32000 (OpenLLaMA-3B's);
//! tiny: hidden 256, intermediate 688, 8 heads (4 key/value heads), 4 layers, vocab 1000.
//! LAYERS overrides the layer count (a 7B-wide model with fewer layers).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::json;

/// Shards are cut after the tensor that takes them past this, as `save_pretrained`'s max_shard_size.
const SHARD_BYTES: u64 = 5 * 1000 * 1000 * 1000;

struct Shape {
    hidden: usize,
    intermediate: usize,
    heads: usize,
    kv_heads: usize,
    layers: usize,
    vocab: usize,
}

/// (name, shape, centre, uniform half-range).
type Planned = (String, Vec<usize>, f32, f32);

/// Linear weights and embeddings near Hugging Face's init (std 0.02), norms near 1; the projections into
/// the residual stream (o_proj, down_proj) scaled by 1/√(2·layers) as GPT-2 initializes them. Without
/// that, a random 4096-wide model is chaotic: each layer multiplies any perturbation, so quantization
/// noise that a trained model absorbs decorrelates its logits. Quality numbers on these weights measure
/// the pipeline, not what a trained model would lose.
fn tensors(s: &Shape) -> Vec<Planned> {
    let head_dim = s.hidden / s.heads;
    let kv = s.kv_heads * head_dim;
    let linear = 0.02 * 3f32.sqrt();
    let residual = linear / (2.0 * s.layers as f32).sqrt();
    let mut all = vec![(
        "model.embed_tokens.weight".to_owned(),
        vec![s.vocab, s.hidden],
        0.0,
        linear,
    )];
    for l in 0..s.layers {
        let p = format!("model.layers.{l}");
        all.push((
            format!("{p}.input_layernorm.weight"),
            vec![s.hidden],
            1.0,
            0.1,
        ));
        for (name, out, inp) in [
            ("self_attn.q_proj", s.hidden, s.hidden),
            ("self_attn.k_proj", kv, s.hidden),
            ("self_attn.v_proj", kv, s.hidden),
            ("self_attn.o_proj", s.hidden, s.hidden),
            ("mlp.gate_proj", s.intermediate, s.hidden),
            ("mlp.up_proj", s.intermediate, s.hidden),
            ("mlp.down_proj", s.hidden, s.intermediate),
        ] {
            let range = if name.ends_with("o_proj") || name.ends_with("down_proj") {
                residual
            } else {
                linear
            };
            all.push((format!("{p}.{name}.weight"), vec![out, inp], 0.0, range));
        }
        all.push((
            format!("{p}.post_attention_layernorm.weight"),
            vec![s.hidden],
            1.0,
            0.1,
        ));
    }
    all.push(("model.norm.weight".to_owned(), vec![s.hidden], 1.0, 0.1));
    all.push((
        "lm_head.weight".to_owned(),
        vec![s.vocab, s.hidden],
        0.0,
        linear,
    ));
    all
}

/// Uniform values in [centre - range, centre + range] as bf16 bytes, from a per-tensor xorshift stream.
fn write_random(out: &mut impl Write, count: usize, centre: f32, range: f32, seed: u64) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut chunk = Vec::with_capacity(1 << 21);
    let mut left = count;
    while left > 0 {
        let n = left.min(1 << 20);
        chunk.clear();
        for _ in 0..n {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32;
            let value = centre + (2.0 * unit - 1.0) * range;
            chunk.extend_from_slice(&half::bf16::from_f32(value).to_le_bytes());
        }
        out.write_all(&chunk).expect("write shard");
        left -= n;
    }
}

fn write_shard(path: &Path, part: &[Planned], first_seed: u64) {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), json!({"format": "pt"}));
    let mut offset = 0usize;
    for (name, shape, _, _) in part {
        let bytes = 2 * shape.iter().product::<usize>();
        header.insert(
            name.clone(),
            json!({"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut header = serde_json::to_vec(&header).expect("json");
    header.resize(header.len().next_multiple_of(8), b' ');
    let file = std::fs::File::create(path).expect("create shard");
    let mut out = std::io::BufWriter::with_capacity(1 << 22, file);
    out.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
    out.write_all(&header).unwrap();
    for (i, (_, shape, centre, range)) in part.iter().enumerate() {
        let count = shape.iter().product();
        write_random(&mut out, count, *centre, *range, first_seed + i as u64);
    }
    out.flush().expect("flush shard");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .expect("usage: llama_checkpoint DIR [7b|3b|tiny] [LAYERS]");
    let dir = Path::new(&dir);
    let mut shape = match args.next().as_deref().unwrap_or("7b") {
        "7b" => Shape {
            hidden: 4096,
            intermediate: 11008,
            heads: 32,
            kv_heads: 32,
            layers: 32,
            vocab: 32000,
        },
        "3b" => Shape {
            hidden: 3200,
            intermediate: 8640,
            heads: 32,
            kv_heads: 32,
            layers: 26,
            vocab: 32000,
        },
        "tiny" => Shape {
            hidden: 256,
            intermediate: 688,
            heads: 8,
            kv_heads: 4,
            layers: 4,
            vocab: 1000,
        },
        other => panic!("unknown shape {other:?}: 7b, 3b or tiny"),
    };
    if let Some(layers) = args.next() {
        shape.layers = layers.parse().expect("LAYERS is a number");
    }
    std::fs::create_dir_all(dir).expect("create DIR");
    let all = tensors(&shape);
    let mut shards: Vec<Vec<Planned>> = vec![Vec::new()];
    let mut size = 0u64;
    for tensor in all {
        if size > SHARD_BYTES {
            shards.push(Vec::new());
            size = 0;
        }
        size += 2 * tensor.1.iter().product::<usize>() as u64;
        shards.last_mut().expect("a shard").push(tensor);
    }
    let count = shards.len();
    let mut weight_map = BTreeMap::new();
    let (mut total, mut seed) = (0u64, 1u64);
    for (index, part) in shards.iter().enumerate() {
        let file = format!("model-{:05}-of-{count:05}.safetensors", index + 1);
        write_shard(&dir.join(&file), part, seed);
        seed += part.len() as u64;
        for (name, shape, _, _) in part {
            weight_map.insert(name.clone(), file.clone());
            total += 2 * shape.iter().product::<usize>() as u64;
        }
    }
    let index = json!({"metadata": {"total_size": total}, "weight_map": weight_map});
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::to_vec_pretty(&index).unwrap(),
    )
    .unwrap();
    let config = json!({
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "torch_dtype": "bfloat16",
        "vocab_size": shape.vocab, "hidden_size": shape.hidden,
        "intermediate_size": shape.intermediate, "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads, "num_key_value_heads": shape.kv_heads,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 4096,
        "tie_word_embeddings": false, "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2
    });
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    println!(
        "{} shards, {:.2} GB of bf16 weights in {}",
        count,
        total as f64 / 1e9,
        dir.display()
    );
}

//! Converted decoders generate token by token with their key/value cache: 16 greedy steps, each fed the
//! `present` values of the step before, give the tokens (and the logits, within fp32 tolerance) that the
//! graph without a cache gives on the whole sequence, and that the references give: candle-transformers'
//! Llama with its own cache, and the eager GPT-2.

use std::collections::HashMap;

use candle_core::{D, DType, Device, IndexOp, Tensor};
use kiln_onnx::checkpoint::Checkpoint;
use kiln_onnx::convert::decoder::{self, CacheLayout};
use kiln_onnx::convert::{
    CONVERTED_MAX_INLINE_BYTES, Family, Plan, SourceFile, convert_hf_with, gpt2, llama, plan,
};
use kiln_onnx::eval::Session;
use kiln_onnx::sample_models::{self, SampleModel};
use kiln_onnx::validate::{FP32_REL_L2_TOLERANCE, compare};

const STEPS: usize = 16;

/// Converts `sample` the way the pipeline does; returns the session on the written `model.onnx`.
fn converted(sample: &SampleModel, family: Family, dir: &std::path::Path) -> Session {
    converted_with(sample, family, dir, CONVERTED_MAX_INLINE_BYTES)
}

/// [`converted`], with weights over `max_inline` bytes in `out/model.onnx.data`.
fn converted_with(
    sample: &SampleModel,
    family: Family,
    dir: &std::path::Path,
    max_inline: u64,
) -> Session {
    sample.write_safetensors(dir).unwrap();
    let Plan::HuggingFace(checkpoint) = plan(&SourceFile::list(dir).unwrap()).unwrap() else {
        panic!("a Hugging Face checkpoint")
    };
    assert_eq!(checkpoint.family, family);
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let converted = convert_hf_with(&checkpoint, &out, max_inline).unwrap();
    let model =
        kiln_onnx::model_check::decode(std::fs::read(&converted.files[0].1).unwrap().into())
            .unwrap();
    Session::new(&model, Some(&out), &Device::Cpu).unwrap()
}

/// Greedy decoding with the cache: the prompt with an empty cache, then one token at a time. Returns the
/// tokens after the prompt and each step's last-position logits [b, vocab].
fn decode_cached(session: &Session, layout: CacheLayout, prompt: &Tensor) -> (Tensor, Vec<Tensor>) {
    let (b, s) = prompt.dims2().unwrap();
    let empty = Tensor::zeros(
        (b, layout.kv_heads, 0, layout.head_dim),
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let mut past: Vec<Tensor> = vec![empty; 2 * layout.layers];
    let mut ids = prompt.clone();
    let mut total = 0;
    let (mut tokens, mut logits) = (Vec::new(), Vec::new());
    for _ in 0..STEPS {
        let n = ids.dim(1).unwrap();
        let mut inputs = HashMap::from([
            ("input_ids".to_owned(), ids.clone()),
            (
                "attention_mask".to_owned(),
                decoder::attention_mask(b, total + n, &Device::Cpu).unwrap(),
            ),
            (
                "position_ids".to_owned(),
                decoder::position_ids(b, total, total + n, &Device::Cpu).unwrap(),
            ),
        ]);
        for i in 0..layout.layers {
            inputs.insert(format!("past_key_values.{i}.key"), past[2 * i].clone());
            inputs.insert(
                format!("past_key_values.{i}.value"),
                past[2 * i + 1].clone(),
            );
        }
        let outputs: HashMap<String, Tensor> = session.run(&inputs).unwrap().into_iter().collect();
        for i in 0..layout.layers {
            past[2 * i] = outputs[&format!("present.{i}.key")].clone();
            past[2 * i + 1] = outputs[&format!("present.{i}.value")].clone();
        }
        let last = outputs["logits"].i((.., n - 1)).unwrap();
        let next = last
            .argmax_keepdim(D::Minus1)
            .unwrap()
            .to_dtype(DType::I64)
            .unwrap();
        logits.push(last);
        tokens.push(next.clone());
        total += n;
        ids = next;
    }
    assert_eq!(total + 1, s + STEPS);
    (Tensor::cat(&tokens, 1).unwrap(), logits)
}

fn prompt(vocab: usize) -> Tensor {
    let ids: Vec<i64> = (0..10).map(|i| ((i * 31 + 7) % vocab) as i64).collect();
    Tensor::from_vec(ids, (2, 5), &Device::Cpu).unwrap()
}

fn close(what: &str, got: &Tensor, expected: &Tensor) {
    let c = compare(what, got, expected).unwrap();
    assert!(c.rel_l2_error <= FP32_REL_L2_TOLERANCE, "{c:?}");
}

#[test]
fn llama_decodes_with_its_cache_as_its_uncached_graph_and_candle_transformers_do() {
    let dir = tempfile::tempdir().unwrap();
    let sample = sample_models::llama(96, 64, 2, 4, 2).unwrap();
    let session = converted(&sample, Family::Llama, dir.path());
    let layout = CacheLayout {
        layers: 2,
        kv_heads: 2,
        head_dim: 16,
    };
    let prompt = prompt(96);
    let (tokens, logits) = decode_cached(&session, layout, &prompt);

    let weights = Checkpoint::from_tensors(sample.tensors.clone());
    let uncached = Session::new(
        &llama::build(&sample.config, &weights).unwrap(),
        None,
        &Device::Cpu,
    )
    .unwrap();
    let sequence = Tensor::cat(&[&prompt, &tokens], 1).unwrap();
    let whole = uncached
        .run(&HashMap::from([("input_ids".to_owned(), sequence.clone())]))
        .unwrap()
        .remove(0)
        .1;
    let s = prompt.dim(1).unwrap();
    for (step, step_logits) in logits.iter().enumerate() {
        let expected = whole.i((.., s - 1 + step)).unwrap();
        close(
            &format!("step {step}, uncached graph"),
            step_logits,
            &expected,
        );
        let greedy = expected
            .argmax(D::Minus1)
            .unwrap()
            .to_dtype(DType::I64)
            .unwrap();
        assert_eq!(
            greedy.to_vec1::<i64>().unwrap(),
            tokens.i((.., step)).unwrap().to_vec1::<i64>().unwrap(),
            "step {step}: the uncached graph picks other tokens"
        );
    }
    let reference = llama::reference_decoding(&sample.config, &weights, &prompt, &tokens).unwrap();
    for (step, (got, expected)) in logits.iter().zip(&reference).enumerate() {
        close(&format!("step {step}, candle-transformers"), got, expected);
    }
}

#[test]
fn gpt2_decodes_with_its_cache_as_its_uncached_graph_and_the_eager_reference_do() {
    let dir = tempfile::tempdir().unwrap();
    let sample = sample_models::gpt2(90, 32, 2, 4).unwrap();
    let session = converted(&sample, Family::Gpt2, dir.path());
    let layout = CacheLayout {
        layers: 2,
        kv_heads: 4,
        head_dim: 8,
    };
    let prompt = prompt(90);
    let (tokens, logits) = decode_cached(&session, layout, &prompt);
    let weights = Checkpoint::from_tensors(sample.tensors.clone());
    let sequence = Tensor::cat(&[&prompt, &tokens], 1).unwrap();
    let uncached = Session::new(
        &gpt2::build(&sample.config, &weights).unwrap(),
        None,
        &Device::Cpu,
    )
    .unwrap()
    .run(&HashMap::from([("input_ids".to_owned(), sequence.clone())]))
    .unwrap()
    .remove(0)
    .1;
    let eager = gpt2::reference(&sample.config, &weights, &sequence).unwrap();
    let s = prompt.dim(1).unwrap();
    for (step, step_logits) in logits.iter().enumerate() {
        close(
            &format!("step {step}, uncached"),
            step_logits,
            &uncached.i((.., s - 1 + step)).unwrap(),
        );
        close(
            &format!("step {step}, eager"),
            step_logits,
            &eager.i((.., s - 1 + step)).unwrap(),
        );
        let greedy = eager
            .i((.., s - 1 + step))
            .unwrap()
            .argmax(D::Minus1)
            .unwrap();
        assert_eq!(
            greedy
                .to_dtype(DType::I64)
                .unwrap()
                .to_vec1::<i64>()
                .unwrap(),
            tokens.i((.., step)).unwrap().to_vec1::<i64>().unwrap(),
            "step {step}: the reference picks other tokens"
        );
    }
}

/// Writes converted decoders (a bf16 Llama with its weights in external data, an fp32 GPT-2), their
/// prompts and the 16 tokens kiln's evaluator decoded with the cache, for scripts/onnx-crosscheck.sh to
/// decode again with ONNX Runtime.
#[test]
#[ignore = "writes files for scripts/onnx-crosscheck.sh, which runs it with KILN_EXPORT_DIR"]
fn export_decoding_for_outside_check() {
    let out = std::env::var("KILN_EXPORT_DIR")
        .expect("KILN_EXPORT_DIR names the folder to write to: run scripts/onnx-crosscheck.sh");
    let llama = sample_models::llama(96, 64, 2, 4, 2)
        .unwrap()
        .to_dtype(DType::BF16)
        .unwrap();
    let gpt2 = sample_models::gpt2(90, 32, 2, 4).unwrap();
    let cases = [
        (
            "llama",
            llama,
            Family::Llama,
            0,
            CacheLayout {
                layers: 2,
                kv_heads: 2,
                head_dim: 16,
            },
        ),
        (
            "gpt2",
            gpt2,
            Family::Gpt2,
            CONVERTED_MAX_INLINE_BYTES,
            CacheLayout {
                layers: 2,
                kv_heads: 4,
                head_dim: 8,
            },
        ),
    ];
    for (name, sample, family, max_inline, layout) in cases {
        let dir = std::path::Path::new(&out).join(format!("decoding-{name}"));
        let session = converted_with(&sample, family, &dir, max_inline);
        let prompt = prompt(sample.config["vocab_size"].as_u64().unwrap() as usize);
        let (tokens, _) = decode_cached(&session, layout, &prompt);
        let io = HashMap::from([("prompt".to_owned(), prompt), ("tokens".to_owned(), tokens)]);
        candle_core::safetensors::save(&io, dir.join("tokens.safetensors")).unwrap();
    }
    // The Llama's weight-only variants, and what kiln's evaluator computes with each on generated
    // inputs of the cached graph (past 7, new 7), for ONNX Runtime to compute again.
    let llama = std::path::Path::new(&out).join("decoding-llama");
    let original = llama.join("out/model.onnx");
    let model = kiln_onnx::model_check::decode(std::fs::read(&original).unwrap().into()).unwrap();
    let (inputs, _) = kiln_onnx::variants::inputs::generate(&model).unwrap();
    for name in ["int4", "int4-b32-asym", "int4-qdq", "int8-b32"] {
        let dir = llama.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let how = kiln_onnx::variants::weight_only::WeightOnly::parse(name).unwrap();
        let (files, _) = kiln_onnx::variants::weight_only::write(&original, &dir, how).unwrap();
        let variant =
            kiln_onnx::model_check::decode(std::fs::read(&files[0].1).unwrap().into()).unwrap();
        let outputs = kiln_onnx::eval::streaming::run(&variant, Some(&dir), &inputs, &[]).unwrap();
        let mut io = inputs.clone();
        io.insert("output.logits".to_owned(), outputs["logits"].clone());
        candle_core::safetensors::save(&io, dir.join("io.safetensors")).unwrap();
    }
}

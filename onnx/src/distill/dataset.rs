//! The token sequences a student learns on: read from a dataset version's files (token ids in safetensors
//! or .npy, or text through the teacher's `tokenizer.json`), or, with no dataset, made up — sampled from
//! the teacher for a decoder, uniform random ids for an encoder — and marked as such in the report. Split
//! into training and held-out sequences the same way on every run of a job, so a resumed job sees the
//! split it started with.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::architecture::Architecture;
use super::forward::{Parameters, forward, softmax_last};
use crate::ModelError;

/// At most this many sequences are read from a dataset (the rest is left unread, and the report says
/// how many were used).
pub const MAX_SEQUENCES: usize = 200_000;
/// Held-out sequences are at most this many.
pub const MAX_HELD_OUT: usize = 512;

/// Where the sequences came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataSource {
    /// A dataset's files, by their paths in its version.
    Dataset { files: Vec<String> },
    /// No dataset: sequences the teacher generated from a random first token (decoders).
    SampledFromTeacher,
    /// No dataset: uniform random token ids (an encoder has no next-token distribution to sample).
    UniformRandomTokens,
}

/// What the report says of the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataDescription {
    pub source: DataSource,
    pub sequence_length: usize,
    pub train_sequences: usize,
    pub held_out_sequences: usize,
    /// Tokens left over after cutting the dataset into whole sequences, or past [`MAX_SEQUENCES`].
    pub unused_tokens: usize,
}

pub struct Sequences {
    pub train: Vec<Vec<u32>>,
    pub held_out: Vec<Vec<u32>>,
    pub description: DataDescription,
}

/// How to read or make the data.
pub struct DataRequest<'a> {
    /// The dataset version's files laid out in a folder; None for the fallback.
    pub dataset: Option<&'a Path>,
    /// The teacher's `tokenizer.json`, for text datasets without their own.
    pub teacher_tokenizer: Option<&'a Path>,
    pub sequence_length: usize,
    /// Sequences made up when there is no dataset.
    pub fallback_sequences: usize,
    pub held_out_fraction: f64,
    pub seed: u64,
}

fn refuse(why: String) -> ModelError {
    ModelError::Unsupported(why)
}

/// Reads (or makes) the sequences and splits them.
pub fn prepare(
    request: &DataRequest<'_>,
    architecture: &Architecture,
    teacher: &Parameters,
) -> Result<Sequences, ModelError> {
    let length = request.sequence_length;
    if length < 2 || length > architecture.positions {
        return Err(refuse(format!(
            "sequence length {length}: it must be 2 to {} (the teacher's positions)",
            architecture.positions
        )));
    }
    let mut rng = StdRng::seed_from_u64(request.seed);
    let (mut all, source, unused) = match request.dataset {
        Some(folder) => read_dataset(folder, request, architecture.vocab)?,
        None if super::architecture::is_causal(architecture.family) => {
            let n = request.fallback_sequences.max(2);
            let made = sample_from_teacher(architecture, teacher, n, length, &mut rng)?;
            (made, DataSource::SampledFromTeacher, 0)
        }
        None => {
            let n = request.fallback_sequences.max(2);
            let made = (0..n)
                .map(|_| {
                    (0..length)
                        .map(|_| rng.random_range(0..architecture.vocab as u32))
                        .collect()
                })
                .collect();
            (made, DataSource::UniformRandomTokens, 0)
        }
    };
    if all.len() < 2 {
        return Err(refuse(format!(
            "the dataset holds {} sequence(s) of {length} tokens; distillation needs at least 2 (one to train on, one held out)",
            all.len()
        )));
    }
    all.shuffle(&mut rng);
    let held = ((all.len() as f64 * request.held_out_fraction).round() as usize)
        .clamp(1, MAX_HELD_OUT.min(all.len() - 1));
    let train = all.split_off(held);
    Ok(Sequences {
        description: DataDescription {
            source,
            sequence_length: length,
            train_sequences: train.len(),
            held_out_sequences: all.len(),
            unused_tokens: unused,
        },
        held_out: all,
        train,
    })
}

/// Every file of the dataset folder kiln reads, by kind; anything else (a README, a license) is skipped.
fn dataset_files(folder: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let mut files = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("safetensors" | "npy" | "txt" | "jsonl")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

type Read = (Vec<Vec<u32>>, DataSource, usize);

fn read_dataset(
    folder: &Path,
    request: &DataRequest<'_>,
    vocab: usize,
) -> Result<Read, ModelError> {
    let files = dataset_files(folder)?;
    if files.is_empty() {
        return Err(refuse(
            "the dataset version has no token ids (.safetensors, .npy) or text (.txt, .jsonl) to read"
                .to_owned(),
        ));
    }
    let own_tokenizer = folder.join("tokenizer.json");
    let tokenizer_path = if own_tokenizer.is_file() {
        Some(own_tokenizer.as_path())
    } else {
        request.teacher_tokenizer
    };
    let mut tokenizer = None;
    let length = request.sequence_length;
    let (mut sequences, mut stream, mut unused) = (Vec::new(), Vec::<u32>::new(), 0usize);
    let mut names = Vec::new();
    for file in &files {
        let name = file
            .strip_prefix(folder)
            .unwrap_or(file)
            .display()
            .to_string();
        let ids = match file.extension().and_then(|e| e.to_str()) {
            Some("txt" | "jsonl") => {
                if tokenizer.is_none() {
                    let path = tokenizer_path.ok_or_else(|| {
                        refuse(format!(
                            "{name} is text, and neither the dataset nor the teacher has a tokenizer.json to turn it into token ids"
                        ))
                    })?;
                    tokenizer =
                        Some(tokenizers::Tokenizer::from_file(path).map_err(|e| {
                            refuse(format!("tokenizer.json cannot be loaded: {e}"))
                        })?);
                }
                tokenize(file, &name, tokenizer.as_ref().expect("loaded above"))?
            }
            _ => token_ids(file, &name)?,
        };
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(refuse(format!(
                "{name} holds token id {bad}, outside the teacher's vocabulary of {vocab}"
            )));
        }
        names.push(name);
        stream.extend(ids);
        while stream.len() >= length && sequences.len() < MAX_SEQUENCES {
            sequences.push(stream.drain(..length).collect());
        }
        if sequences.len() >= MAX_SEQUENCES {
            unused += stream.len();
            stream.clear();
        }
    }
    unused += stream.len();
    Ok((sequences, DataSource::Dataset { files: names }, unused))
}

/// Token ids in a safetensors file (the tensor `input_ids`, or its only tensor) or a .npy array, of any
/// integer type, flattened row by row.
fn token_ids(file: &Path, name: &str) -> Result<Vec<u32>, ModelError> {
    let tensor = if file.extension().and_then(|e| e.to_str()) == Some("npy") {
        Tensor::read_npy(file).map_err(|e| refuse(format!("{name}: {e}")))?
    } else {
        let mut tensors = candle_core::safetensors::load(file, &Device::Cpu)
            .map_err(|e| refuse(format!("{name}: {e}")))?;
        match tensors.remove("input_ids") {
            Some(t) => t,
            None if tensors.len() == 1 => tensors.into_values().next().expect("one tensor"),
            None => {
                return Err(refuse(format!(
                    "{name} holds {} tensors and none is named input_ids",
                    tensors.len()
                )));
            }
        }
    };
    if tensor.dtype().is_float() {
        return Err(refuse(format!(
            "{name} holds {:?} values; token ids are integers",
            tensor.dtype()
        )));
    }
    let ids = tensor
        .flatten_all()?
        .to_dtype(DType::I64)?
        .to_vec1::<i64>()?;
    ids.into_iter()
        .map(|id| {
            u32::try_from(id).map_err(|_| refuse(format!("{name} holds token id {id}, below 0")))
        })
        .collect()
}

/// A .txt file line by line, or a .jsonl file's `text` fields, through the tokenizer.
fn tokenize(
    file: &Path,
    name: &str,
    tokenizer: &tokenizers::Tokenizer,
) -> Result<Vec<u32>, ModelError> {
    let content = std::fs::read_to_string(file)
        .map_err(|e| refuse(format!("{name} is not UTF-8 text: {e}")))?;
    let jsonl = file.extension().and_then(|e| e.to_str()) == Some("jsonl");
    let mut ids = Vec::new();
    for (number, line) in content
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let text = if jsonl {
            let record: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| refuse(format!("{name} line {}: {e}", number + 1)))?;
            match record.get("text").and_then(|t| t.as_str()) {
                Some(text) => text.to_owned(),
                None => {
                    return Err(refuse(format!(
                        "{name} line {}: no \"text\" string field",
                        number + 1
                    )));
                }
            }
        } else {
            line.to_owned()
        };
        let encoding = tokenizer
            .encode(text, true)
            .map_err(|e| refuse(format!("{name} line {}: {e}", number + 1)))?;
        ids.extend_from_slice(encoding.get_ids());
    }
    Ok(ids)
}

/// `n` sequences of `length` tokens, each from a random first token, every next token drawn from the
/// teacher's distribution (temperature 1), a few sequences at a time.
fn sample_from_teacher(
    architecture: &Architecture,
    teacher: &Parameters,
    n: usize,
    length: usize,
    rng: &mut StdRng,
) -> Result<Vec<Vec<u32>>, ModelError> {
    let device = teacher
        .values()
        .next()
        .map(|t| t.device().clone())
        .unwrap_or(Device::Cpu);
    let mut made = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        let mut rows: Vec<Vec<u32>> = chunk
            .iter()
            .map(|_| vec![rng.random_range(0..architecture.vocab as u32)])
            .collect();
        for t in 1..length {
            let flat: Vec<u32> = rows.iter().flatten().copied().collect();
            let ids = Tensor::from_vec(flat, (rows.len(), t), &device)?;
            let logits = forward(architecture, teacher, &ids)?
                .logits
                .narrow(1, t - 1, 1)?;
            let probabilities = softmax_last(&logits.squeeze(1)?)?.to_vec2::<f32>()?;
            for (row, p) in rows.iter_mut().zip(probabilities) {
                row.push(draw(&p, rng));
            }
        }
        made.extend(rows);
    }
    Ok(made)
}

/// An index drawn with the given probabilities.
fn draw(probabilities: &[f32], rng: &mut StdRng) -> u32 {
    let mut left: f32 = rng.random_range(0.0..1.0);
    for (i, &p) in probabilities.iter().enumerate() {
        left -= p;
        if left <= 0.0 {
            return i as u32;
        }
    }
    probabilities.len().saturating_sub(1) as u32
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::sample_models;

    fn gpt2() -> (Architecture, Parameters) {
        let sample = sample_models::gpt2(32, 16, 2, 2).unwrap();
        let checkpoint = Checkpoint::from_tensors(sample.tensors.clone());
        let architecture = Architecture::read(&sample.config, &checkpoint).unwrap();
        (architecture, sample.tensors.into_iter().collect())
    }

    fn request<'a>(dataset: Option<&'a Path>, tokenizer: Option<&'a Path>) -> DataRequest<'a> {
        DataRequest {
            dataset,
            teacher_tokenizer: tokenizer,
            sequence_length: 4,
            fallback_sequences: 8,
            held_out_fraction: 0.25,
            seed: 7,
        }
    }

    #[test]
    fn token_ids_from_npy_and_safetensors_are_cut_into_sequences_and_split() {
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<i64> = (0..24).map(|i| i % 32).collect();
        Tensor::from_vec(rows, (3, 8), &Device::Cpu)
            .unwrap()
            .write_npy(dir.path().join("a.npy"))
            .unwrap();
        let stream = Tensor::from_vec((0..9u32).collect::<Vec<_>>(), 9, &Device::Cpu).unwrap();
        candle_core::safetensors::save(
            &HashMap::from([("input_ids".to_owned(), stream)]),
            dir.path().join("b.safetensors"),
        )
        .unwrap();
        let (architecture, teacher) = gpt2();
        let made = prepare(&request(Some(dir.path()), None), &architecture, &teacher).unwrap();
        // 24 + 9 tokens make 8 sequences of 4 and one token left over.
        assert_eq!(made.train.len() + made.held_out.len(), 8);
        assert_eq!(made.held_out.len(), 2);
        assert_eq!(made.description.unused_tokens, 1);
        assert_eq!(
            made.description.source,
            DataSource::Dataset {
                files: vec!["a.npy".into(), "b.safetensors".into()]
            }
        );
        let again = prepare(&request(Some(dir.path()), None), &architecture, &teacher).unwrap();
        assert_eq!(
            made.held_out, again.held_out,
            "the split depends on the seed only"
        );
    }

    #[test]
    fn ids_outside_the_vocabulary_and_float_arrays_are_refused_by_name() {
        let (architecture, teacher) = gpt2();
        let dir = tempfile::tempdir().unwrap();
        Tensor::new(&[1i64, 2, 99, 3], &Device::Cpu)
            .unwrap()
            .write_npy(dir.path().join("ids.npy"))
            .unwrap();
        let e = prepare(&request(Some(dir.path()), None), &architecture, &teacher)
            .err()
            .unwrap();
        assert!(e.to_string().contains("ids.npy holds token id 99"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        Tensor::new(&[1f32, 2.0], &Device::Cpu)
            .unwrap()
            .write_npy(dir.path().join("floats.npy"))
            .unwrap();
        let e = prepare(&request(Some(dir.path()), None), &architecture, &teacher)
            .err()
            .unwrap();
        assert!(e.to_string().contains("token ids are integers"), "{e}");
    }

    #[test]
    fn text_goes_through_the_teachers_tokenizer() {
        use tokenizers::models::wordlevel::WordLevel;
        use tokenizers::pre_tokenizers::whitespace::Whitespace;
        let dir = tempfile::tempdir().unwrap();
        let words = ["[UNK]", "the", "cat", "sat", "on", "mat"];
        let vocab = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.to_string(), i as u32))
            .collect();
        let model = WordLevel::builder()
            .vocab(vocab)
            .unk_token("[UNK]".into())
            .build()
            .unwrap();
        let mut tokenizer = tokenizers::Tokenizer::new(model);
        tokenizer.with_pre_tokenizer(Some(Whitespace {}));
        let tokenizer_path = dir.path().join("tokenizer.json");
        tokenizer.save(&tokenizer_path, false).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(
            data.join("corpus.txt"),
            "the cat sat on the mat\n\nthe cat sat\n",
        )
        .unwrap();
        let (architecture, teacher) = gpt2();

        let made = prepare(
            &request(Some(&data), Some(&tokenizer_path)),
            &architecture,
            &teacher,
        )
        .unwrap();
        let mut all: Vec<Vec<u32>> = made.train.iter().chain(&made.held_out).cloned().collect();
        all.sort();
        assert_eq!(all, [vec![1, 2, 3, 4], vec![1, 5, 1, 2]]);

        let e = prepare(&request(Some(&data), None), &architecture, &teacher)
            .err()
            .unwrap();
        assert!(e.to_string().contains("tokenizer.json"), "{e}");
    }

    #[test]
    fn without_a_dataset_an_encoder_gets_uniform_random_tokens_marked_as_such() {
        let sample = sample_models::bert(32, 16, 2, 2).unwrap();
        let checkpoint = Checkpoint::from_tensors(sample.tensors.clone());
        let architecture = Architecture::read(&sample.config, &checkpoint).unwrap();
        let teacher = sample.tensors.into_iter().collect();
        let made = prepare(&request(None, None), &architecture, &teacher).unwrap();
        assert_eq!(made.description.source, DataSource::UniformRandomTokens);
        assert_eq!(made.train.len() + made.held_out.len(), 8);
    }
}

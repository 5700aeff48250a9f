//! TfIdfVectorizer over integer tokens: counts the pool's n-grams (with skips) in each row, then weighs
//! the counts (TF, IDF or TFIDF). String pools are not held by kiln's evaluator.

use std::collections::{HashMap, HashSet};

use candle_core::{DType, Tensor};

use super::super::node::{Node, required};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

fn evaluation(message: impl Into<String>) -> ModelError {
    ModelError::Evaluation(message.into())
}

/// The pool's n-grams of the sizes counted, as the trie ONNX's reference walks: every prefix of a
/// counted n-gram maps to its 1-based n-gram id (0 for a prefix that is no n-gram itself).
struct Grams {
    nodes: HashMap<Vec<i64>, usize>,
    /// Prefixes (the empty one included) that some longer counted n-gram extends.
    extended: HashSet<Vec<i64>>,
}

impl Grams {
    fn parse(node: &Node<'_>, min: i64, max: i64) -> Result<Self, ModelError> {
        let pool = node.ints("pool_int64s").unwrap_or_default();
        if pool.is_empty() && node.strings("pool_strings").is_some_and(|s| !s.is_empty()) {
            return Err(evaluation("TfIdfVectorizer over strings is not supported"));
        }
        let counts = node.ints("ngram_counts").unwrap_or_default();
        let (mut nodes, mut extended) = (HashMap::new(), HashSet::new());
        let mut id = 1;
        for (i, &start) in counts.iter().enumerate() {
            let end = counts.get(i + 1).copied().unwrap_or(pool.len() as i64);
            let size = i + 1;
            let items = usize::try_from(start)
                .ok()
                .zip(usize::try_from(end).ok())
                .filter(|&(s, e)| s <= e && e <= pool.len())
                .map(|(s, e)| &pool[s..e])
                .ok_or_else(|| evaluation("TfIdfVectorizer ngram_counts do not fit the pool"))?;
            if !(min..=max).contains(&(size as i64)) {
                id += items.len() / size;
                continue;
            }
            for gram in items.chunks_exact(size) {
                for len in 1..size {
                    nodes.entry(gram[..len].to_vec()).or_insert(0);
                }
                for len in 0..size {
                    extended.insert(gram[..len].to_vec());
                }
                nodes.insert(gram.to_vec(), id);
                id += 1;
            }
        }
        Ok(Self { nodes, extended })
    }
}

struct Counting<'a> {
    grams: &'a Grams,
    indexes: &'a [i64],
    max: usize,
}

impl Counting<'_> {
    /// Adds to `counts` the n-grams of at least `min_size` items that start at `start`, `skip` apart.
    fn walk(
        &self,
        row: &[i64],
        start: usize,
        skip: usize,
        min_size: usize,
        counts: &mut [f64],
    ) -> Result<(), ModelError> {
        let mut key = Vec::new();
        let mut item = start;
        while key.len() < self.max && item < row.len() && self.grams.extended.contains(&key) {
            key.push(row[item]);
            let Some(&id) = self.grams.nodes.get(&key) else {
                break;
            };
            if key.len() >= min_size && id != 0 {
                let slot = self
                    .indexes
                    .get(id - 1)
                    .and_then(|&i| usize::try_from(i).ok())
                    .filter(|&i| i < counts.len())
                    .ok_or_else(|| {
                        evaluation("TfIdfVectorizer ngram_indexes do not cover the pool")
                    })?;
                counts[slot] += 1.0;
            }
            item += skip;
        }
        Ok(())
    }

    /// Counts one row: every skip distance, every start; unigrams only at the first distance.
    fn row(
        &self,
        row: &[i64],
        min: usize,
        max_skip: usize,
        counts: &mut [f64],
    ) -> Result<(), ModelError> {
        let mut min_size = min;
        for skip in 1..=max_skip + 1 {
            for start in 0..row.len() {
                if start + skip * min_size.saturating_sub(1) >= row.len() {
                    break;
                }
                self.walk(row, start, skip, min_size, counts)?;
            }
            if min_size == 1 {
                min_size += 1;
                if min_size > self.max {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// Y[row, ngram_indexes[i]] weighs how often the pool's i-th n-gram occurs in X's row ([C] or [B, C]).
pub fn tf_idf_vectorizer(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let (min, max) = (
        node.int("min_gram_length", 1),
        node.int("max_gram_length", 1),
    );
    let max_skip = usize::try_from(node.int("max_skip_count", 0)).unwrap_or(0);
    let indexes = node.ints("ngram_indexes").unwrap_or_default();
    let width = indexes
        .iter()
        .copied()
        .max()
        .map_or(0, |m| m.max(-1).saturating_add(1)) as usize;
    let (rows, columns) = match x.dims() {
        [] => (1, 1),
        &[c] => (1, c),
        &[b, c] => (b, c),
        other => return Err(evaluation(format!("TfIdfVectorizer X of shape {other:?}"))),
    };
    // The output is allocated whole: the operators' element budget, not the file's (2^40).
    super::host::element_count(&[rows, width], "TfIdfVectorizer's output")?;
    let grams = Grams::parse(node, min, max)?;
    let counting = Counting {
        grams: &grams,
        indexes: &indexes,
        max: usize::try_from(max).unwrap_or(0),
    };
    let values = x.to_dtype(DType::I64)?.flatten_all()?.to_vec1::<i64>()?;
    let mut counts = vec![0.0; rows * width];
    if columns > 0 && width > 0 {
        for (row, out) in values.chunks(columns).zip(counts.chunks_mut(width)) {
            counting.row(row, usize::try_from(min).unwrap_or(0), max_skip, out)?;
        }
    }
    let weights = node.floats("weights").unwrap_or_default();
    let weigh = |i: usize, count: f64| -> f64 {
        let weight = weights.get(i % width.max(1)).map_or(1.0, |&w| f64::from(w));
        match node.string("mode").as_deref() {
            Some("IDF") if count > 0.0 => weight,
            Some("IDF") => 0.0,
            Some("TFIDF") => weight * count,
            _ => count,
        }
    };
    let mode = node.string("mode").unwrap_or_default();
    if !matches!(mode.as_str(), "TF" | "IDF" | "TFIDF") {
        return Err(evaluation(format!("TfIdfVectorizer mode {mode:?}")));
    }
    let y: Vec<f32> = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| weigh(i, c) as f32)
        .collect();
    let shape = if x.rank() == 2 {
        vec![rows, width]
    } else {
        vec![width]
    };
    Ok(vec![Tensor::from_vec(y, shape, x.device())?])
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::super::testing::{flat, int, ints, run, string};

    #[test]
    fn counts_unigrams_and_skip_bigrams() {
        // Pool: unigrams 2, 3; bigram (2, 3) counted with up to one skip.
        let attributes = vec![
            string("mode", "TF"),
            int("min_gram_length", 1),
            int("max_gram_length", 2),
            int("max_skip_count", 1),
            ints("ngram_counts", &[0, 2]),
            ints("ngram_indexes", &[0, 1, 2]),
            ints("pool_int64s", &[2, 3, 2, 3]),
        ];
        let x = Tensor::new(&[2i64, 5, 3, 2, 3], &Device::Cpu).unwrap();
        let out = run("TfIdfVectorizer", 9, attributes, &[Some(x)]);
        // 2 twice, 3 twice; (2,3) adjacent once and one apart once.
        assert_eq!(flat(&out[0]), vec![2.0, 2.0, 2.0]);
    }
}

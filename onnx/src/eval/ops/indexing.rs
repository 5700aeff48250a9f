//! Index-driven operators: OneHot, EyeLike, TopK, GatherND, ScatterElements, ScatterND, NonZero,
//! Compress. Computed on f64 values with explicit strides, then returned in the input's type.

use candle_core::{DType, Tensor};

use super::super::node::{Node, axis, int_values, one_value, required};
use super::host::element_count;
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

fn values(t: &Tensor) -> Result<Vec<f64>, ModelError> {
    Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
}

fn build(values: Vec<f64>, shape: Vec<usize>, like: &Tensor) -> Result<Tensor, ModelError> {
    Ok(Tensor::from_vec(values, shape, like.device())?.to_dtype(like.dtype())?)
}

fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

fn resolve(index: i64, len: usize) -> Result<usize, ModelError> {
    let i = if index < 0 { index + len as i64 } else { index };
    if i < 0 || i >= len as i64 {
        return Err(ModelError::Evaluation(format!(
            "index {index} is out of range for {len}"
        )));
    }
    Ok(i as usize)
}

pub fn one_hot(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let indices = values(required(inputs, 0)?)?;
    let depth = one_value(required(inputs, 1)?, "OneHot's depth")?;
    let depth = if depth >= 0.0 {
        depth.min(usize::MAX as f64) as usize
    } else {
        0
    };
    let vals = required(inputs, 2)?;
    let [off, on] = values(vals)?[..] else {
        return Err(ModelError::Evaluation(format!(
            "OneHot's values must be [off, on], not of shape {:?}",
            vals.dims()
        )));
    };
    let in_dims = required(inputs, 0)?.dims().to_vec();
    let rank = in_dims.len() + 1;
    let a = axis(node.int("axis", -1), rank)?;
    let mut out_dims = in_dims.clone();
    out_dims.insert(a, depth);
    element_count(&out_dims, "OneHot's output")?;
    let outer: usize = in_dims[..a].iter().product();
    let inner: usize = in_dims[a..].iter().product();
    let mut out = vec![off; outer * depth * inner];
    for o in 0..outer {
        for i in 0..inner {
            let idx = indices[o * inner + i] as i64;
            let idx = if idx < 0 { idx + depth as i64 } else { idx };
            if (0..depth as i64).contains(&idx) {
                out[(o * depth + idx as usize) * inner + i] = on;
            }
        }
    }
    Ok(vec![build(out, out_dims, vals)?])
}

pub fn eye_like(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let (rows, cols) = x.dims2()?;
    let k = node.int("k", 0);
    let out: Vec<f64> = (0..rows * cols)
        .map(|i| f64::from(u8::from((i % cols) as i64 - (i / cols) as i64 == k)))
        .collect();
    let t = Tensor::from_vec(out, (rows, cols), x.device())?;
    let dtype = if node.has("dtype") {
        super::super::tensor_io::dtype_of(node.int("dtype", 1) as i32)
            .ok_or_else(|| ModelError::Evaluation("EyeLike dtype".to_owned()))?
    } else {
        x.dtype()
    };
    Ok(vec![t.to_dtype(dtype)?])
}

/// The k largest (or smallest) along an axis, ties broken by the lower index.
/// A total order for TopK: NaN above every number (as NumPy and PyTorch sort it), -0 equal to 0. The
/// sort needs a total order: NaN taken as equal to everything is none, and Rust's sort may panic on it
/// (a mutated k-nearest-neighbours model found this).
fn ascending(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
        (a_nan, b_nan) => a_nan.cmp(&b_nan),
    }
}

pub fn top_k(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let k = one_value(required(inputs, 1)?, "TopK's k")?;
    let dim = axis(node.int("axis", -1), x.rank())?;
    let k = if (0.0..=x.dims()[dim] as f64).contains(&k) {
        k as usize
    } else {
        return Err(ModelError::Evaluation(format!(
            "TopK: k {k} is out of range for an axis of {}",
            x.dims()[dim]
        )));
    };
    let largest = node.int("largest", 1) != 0;
    let moved = x.transpose(dim, x.rank() - 1)?.contiguous()?;
    let len = x.dims()[dim];
    let mut shape = moved.dims().to_vec();
    *shape.last_mut().expect("rank ≥ 1") = k;
    // int64 values compared and kept as they are: through f64, values past 2^53 tied and were rounded.
    let (top, idx) = if x.dtype() == DType::I64 {
        let (top, idx) = top_of(
            &moved.flatten_all()?.to_vec1::<i64>()?,
            len,
            k,
            largest,
            Ord::cmp,
        );
        (Tensor::from_vec(top, shape.clone(), x.device())?, idx)
    } else {
        let (top, idx) = top_of(&values(&moved)?, len, k, largest, |a, b| ascending(*a, *b));
        (build(top, shape.clone(), x)?, idx)
    };
    let back = |t: Tensor| -> Result<Tensor, ModelError> {
        Ok(t.transpose(dim, x.rank() - 1)?.contiguous()?)
    };
    Ok(vec![
        back(top)?,
        back(Tensor::from_vec(idx, shape, x.device())?)?,
    ])
}

/// The `k` largest (or smallest) of each row of `len` values, and their indices; ties in index order.
fn top_of<T: Copy>(
    data: &[T],
    len: usize,
    k: usize,
    largest: bool,
    ascending: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> (Vec<T>, Vec<i64>) {
    let (mut top, mut idx) = (Vec::new(), Vec::new());
    for row in data.chunks(len.max(1)) {
        let mut order: Vec<usize> = (0..len).collect();
        order.sort_by(|&a, &b| {
            let ord = ascending(&row[a], &row[b]);
            (if largest { ord.reverse() } else { ord }).then(a.cmp(&b))
        });
        for &i in order.iter().take(k) {
            top.push(row[i]);
            idx.push(i as i64);
        }
    }
    (top, idx)
}

pub fn gather_nd(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let data = required(inputs, 0)?;
    let indices_t = required(inputs, 1)?;
    let dd = data.dims().to_vec();
    let id = indices_t.dims().to_vec();
    let last = *id
        .last()
        .ok_or_else(|| ModelError::Evaluation("GatherND of scalar indices".to_owned()))?;
    let batch = usize::try_from(node.int("batch_dims", 0))
        .ok()
        .filter(|&b| b < id.len() && b + last <= dd.len() && dd[..b] == id[..b])
        .ok_or_else(|| {
            ModelError::Evaluation(format!(
                "GatherND: batch_dims {} does not fit data {dd:?} and indices {id:?}",
                node.int("batch_dims", 0)
            ))
        })?;
    let idx = int_values(indices_t)?;
    let ds = strides(&dd);
    let batch_count: usize = dd[..batch].iter().product();
    let slice_dims = &dd[batch + last..];
    let slice_len: usize = slice_dims.iter().product();
    let per_batch: usize = id[batch..id.len() - 1].iter().product();
    element_count(&[batch_count, per_batch, slice_len], "GatherND's output")?;
    let mut starts = Vec::with_capacity(batch_count * per_batch);
    for b in 0..batch_count {
        let mut base = 0;
        let mut rem = b;
        for d in (0..batch).rev() {
            base += (rem % dd[d]) * ds[d];
            rem /= dd[d];
        }
        for p in 0..per_batch {
            let tuple = &idx[(b * per_batch + p) * last..(b * per_batch + p + 1) * last];
            let mut offset = base;
            for (j, &i) in tuple.iter().enumerate() {
                offset += resolve(i, dd[batch + j])? * ds[batch + j];
            }
            starts.push(offset);
        }
    }
    let mut shape = id[..id.len() - 1].to_vec();
    shape.extend_from_slice(slice_dims);
    // int64 values copied as they are: through f64, values past 2^53 were rounded.
    if data.dtype() == DType::I64 {
        let vals = data.flatten_all()?.to_vec1::<i64>()?;
        let out = slices_at(&vals, &starts, slice_len);
        return Ok(vec![Tensor::from_vec(out, shape, data.device())?]);
    }
    let out = slices_at(&values(data)?, &starts, slice_len);
    Ok(vec![build(out, shape, data)?])
}

/// The `len` values from each of `starts`, one after another.
fn slices_at<T: Copy>(values: &[T], starts: &[usize], len: usize) -> Vec<T> {
    starts
        .iter()
        .flat_map(|&at| values[at..at + len].iter().copied())
        .collect()
}

fn combine(reduction: &str, old: f64, new: f64) -> f64 {
    match reduction {
        "add" => old + new,
        "mul" => old * new,
        // As ONNX Runtime compares: the old value stays only when it compares greater (less), so a NaN
        // update replaces it and a NaN already there is replaced (Rust's max takes the number).
        "max" => {
            if old > new {
                old
            } else {
                new
            }
        }
        "min" => {
            if old < new {
                old
            } else {
                new
            }
        }
        _ => new,
    }
}

fn combine_integers(reduction: &str) -> fn(i64, i64) -> i64 {
    match reduction {
        "add" => i64::wrapping_add,
        "mul" => i64::wrapping_mul,
        "max" => i64::max,
        "min" => i64::min,
        _ => |_, new| new,
    }
}

/// `data` with each update combined by `reduction` into the place `walk` names for it (`walk` calls its
/// argument with an offset into `data` and the index of the update). Integers are combined as i64, exactly
/// and wrapping as ONNX Runtime adds and multiplies them (through f64, int64 values past 2^53 were
/// rounded and a sum past 2^63 saturated); anything else as f64.
fn scattered(
    data: &Tensor,
    updates: &Tensor,
    reduction: &str,
    walk: impl Fn(&mut dyn FnMut(usize, usize)) -> Result<(), ModelError>,
) -> Result<Tensor, ModelError> {
    if data.dtype() == DType::I64 && updates.dtype() == DType::I64 {
        let mut out = data.flatten_all()?.to_vec1::<i64>()?;
        let updates = updates.flatten_all()?.to_vec1::<i64>()?;
        let combine = combine_integers(reduction);
        walk(&mut |at, u| out[at] = combine(out[at], updates[u]))?;
        return Ok(Tensor::from_vec(out, data.shape(), data.device())?);
    }
    let mut out = values(data)?;
    let updates = values(updates)?;
    walk(&mut |at, u| out[at] = combine(reduction, out[at], updates[u]))?;
    build(out, data.dims().to_vec(), data)
}

pub fn scatter_elements(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let data = required(inputs, 0)?;
    let indices = required(inputs, 1)?;
    let updates = required(inputs, 2)?;
    let dim = axis(node.int("axis", 0), data.rank())?;
    let reduction = node
        .string("reduction")
        .unwrap_or_else(|| "none".to_owned());
    let dd = data.dims().to_vec();
    let ds = strides(&dd);
    let id = indices.dims().to_vec();
    let fits = id.len() == dd.len() && (0..id.len()).all(|d| d == dim || id[d] <= dd[d]);
    if !fits || updates.elem_count() != indices.elem_count() {
        return Err(ModelError::Evaluation(format!(
            "ScatterElements: indices {id:?} and updates of {} values do not fit data {dd:?}",
            updates.elem_count()
        )));
    }
    let is = strides(&id);
    let idx = int_values(indices)?;
    let out = scattered(data, updates, &reduction, |place| {
        for (n, &i) in idx.iter().enumerate() {
            let mut offset = 0;
            for d in 0..id.len() {
                let coord = (n / is[d]) % id[d];
                offset += if d == dim { resolve(i, dd[d])? } else { coord } * ds[d];
            }
            place(offset, n);
        }
        Ok(())
    })?;
    Ok(vec![out])
}

pub fn scatter_nd(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let data = required(inputs, 0)?;
    let indices = required(inputs, 1)?;
    let updates = required(inputs, 2)?;
    let reduction = node
        .string("reduction")
        .unwrap_or_else(|| "none".to_owned());
    let dd = data.dims().to_vec();
    let ds = strides(&dd);
    let last = *indices.dims().last().unwrap_or(&0);
    let tuples = indices.elem_count() / last.max(1);
    let slice_len: usize = dd.get(last..).unwrap_or(&[]).iter().product();
    if last == 0 || last > dd.len() || updates.elem_count() != tuples * slice_len {
        return Err(ModelError::Evaluation(format!(
            "ScatterND: indices {:?} and updates of {} values do not fit data {dd:?}",
            indices.dims(),
            updates.elem_count()
        )));
    }
    let idx = int_values(indices)?;
    let out = scattered(data, updates, &reduction, |place| {
        for (u, tuple) in idx.chunks(last.max(1)).enumerate() {
            let mut offset = 0;
            for (j, &i) in tuple.iter().enumerate() {
                offset += resolve(i, dd[j])? * ds[j];
            }
            for e in 0..slice_len {
                place(offset + e, u * slice_len + e);
            }
        }
        Ok(())
    })?;
    Ok(vec![out])
}

/// Coordinates of the non-zero values: [rank, count], row-major order.
pub fn non_zero(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    // A scalar is taken as one value along one axis, as ONNX Runtime (and NumPy) take it.
    let dims = if x.rank() == 0 {
        vec![1]
    } else {
        x.dims().to_vec()
    };
    let st = strides(&dims);
    let hits: Vec<usize> = values(x)?
        .iter()
        .enumerate()
        .filter(|(_, v)| **v != 0.0)
        .map(|(i, _)| i)
        .collect();
    let mut out = Vec::with_capacity(dims.len() * hits.len());
    for d in 0..dims.len() {
        out.extend(hits.iter().map(|&h| ((h / st[d]) % dims[d]) as i64));
    }
    let count = hits.len();
    Ok(vec![Tensor::from_vec(
        out,
        (dims.len(), count),
        x.device(),
    )?])
}

/// The slices along `axis` (or the flattened values) whose condition is true.
pub fn compress(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let cond = values(required(inputs, 1)?)?;
    let (x, dim) = if node.has("axis") {
        (x.clone(), axis(node.int("axis", 0), x.rank())?)
    } else {
        (x.flatten_all()?, 0)
    };
    let keep: Vec<u32> = cond
        .iter()
        .take(x.dim(dim)?)
        .enumerate()
        .filter(|(_, c)| **c != 0.0)
        .map(|(i, _)| i as u32)
        .collect();
    let count = keep.len();
    Ok(vec![x.index_select(
        &Tensor::from_vec(keep, count, x.device())?,
        dim,
    )?])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, i64s, int, run};

    #[test]
    fn top_k_returns_values_and_indices() {
        let out = run(
            "TopK",
            13,
            vec![],
            &[f32s(&[1., 4., 2., 4.], &[4]), i64s(&[2])],
        );
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![4., 4.]);
        assert_eq!(out[1].to_vec1::<i64>().unwrap(), vec![1, 3]);
    }

    #[test]
    fn top_k_sorts_nan_above_every_number_without_panicking() {
        // Many NaNs among numbers: a comparison taking NaN as equal to all made Rust's sort panic.
        let values: Vec<f32> = (0..200)
            .map(|i| {
                if i % 3 == 0 {
                    f32::NAN
                } else {
                    (i * 37 % 101) as f32
                }
            })
            .collect();
        let out = run("TopK", 13, vec![], &[f32s(&values, &[200]), i64s(&[70])]);
        let top = out[0].to_vec1::<f32>().unwrap();
        assert!(top[..67].iter().all(|v| v.is_nan()));
        assert!(top[67..].iter().all(|v| !v.is_nan()));
        assert_eq!(out[1].to_vec1::<i64>().unwrap()[..3], [0, 3, 6]);
        let smallest = run(
            "TopK",
            13,
            vec![int("largest", 0)],
            &[f32s(&[f32::NAN, 2.0, -0.0, 0.0], &[4]), i64s(&[4])],
        );
        assert_eq!(smallest[1].to_vec1::<i64>().unwrap(), vec![2, 3, 1, 0]);
    }

    #[test]
    fn one_hot_on_the_last_axis() {
        let out = run(
            "OneHot",
            13,
            vec![int("axis", -1)],
            &[i64s(&[0, 2]), i64s(&[3]), f32s(&[0., 1.], &[2])],
        );
        assert_eq!(
            out[0].to_vec2::<f32>().unwrap(),
            vec![vec![1., 0., 0.], vec![0., 0., 1.]]
        );
    }

    #[test]
    fn non_zero_lists_coordinates() {
        let out = run("NonZero", 13, vec![], &[f32s(&[0., 1., 1., 0.], &[2, 2])]);
        assert_eq!(
            out[0].to_vec2::<i64>().unwrap(),
            vec![vec![0, 1], vec![1, 0]]
        );
    }
}

//! Tensors as flat f64 values on the host, for operators that compute element by element (recurrences,
//! sampling, suppression), with the size checks their untrusted shapes need.

use candle_core::{DType, Layout, Storage, Tensor, WithDType};

use crate::ModelError;

/// The most elements one operator may allocate for a result or a scratch buffer (2^28, 2 GiB of f64).
pub const MAX_ELEMENTS: usize = 1 << 28;

/// The element count of `dims`, refused when it overflows or passes [`MAX_ELEMENTS`]. An empty shape is
/// held to the budget too, without its zero dims: its strides are products of the others and would
/// overflow in candle.
///
/// Under a run's memory limit the count is held to the room the run leaves the node as well, at four
/// bytes an element (the narrowest value these operators allocate, so that nothing that fits is refused).
pub fn element_count(dims: &[usize], what: &str) -> Result<usize, ModelError> {
    let count = iteration_count(dims, what)?;
    crate::eval::run_memory::node_has_room(count as u128 * 4)?;
    Ok(count)
}

/// [`element_count`] for a count of steps rather than of values held (an Einsum's index space): held
/// to the element cap only.
pub fn iteration_count(dims: &[usize], what: &str) -> Result<usize, ModelError> {
    dims.iter()
        .filter(|&&d| d != 0)
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .map(|n| if dims.contains(&0) { 0 } else { n })
        .ok_or_else(|| {
            ModelError::Evaluation(format!(
                "{what} of shape {dims:?} is above the limit of {MAX_ELEMENTS} elements"
            ))
        })
}

/// A tensor's values in row-major order, as f64.
pub fn values(t: &Tensor) -> Result<Vec<f64>, ModelError> {
    Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
}

/// A tensor of `dims` from f64 values, in `dtype` on `like`'s device.
pub fn build(
    values: Vec<f64>,
    dims: &[usize],
    dtype: DType,
    like: &Tensor,
) -> Result<Tensor, ModelError> {
    Ok(Tensor::from_vec(values, dims, like.device())?.to_dtype(dtype)?)
}

/// The elements of a contiguous CPU tensor's storage from `layout`'s start, `len` of them, borrowed.
pub fn host_slice<'s, T: WithDType>(
    storage: &'s Storage,
    layout: &Layout,
    len: usize,
) -> Result<&'s [T], ModelError> {
    let Storage::Cpu(cpu) = storage else {
        return Err(ModelError::Evaluation("a CPU tensor was expected".into()));
    };
    let start = layout.start_offset();
    cpu.as_slice::<T>()?
        .get(start..start + len)
        .ok_or_else(|| ModelError::Evaluation("a tensor shorter than its shape".into()))
}

/// Row-major strides of `dims`.
pub fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_count_refuses_overflow_and_huge_shapes() {
        assert_eq!(element_count(&[2, 3, 4], "x").unwrap(), 24);
        assert!(element_count(&[usize::MAX, 2], "x").is_err());
        assert!(element_count(&[1 << 20, 1 << 20], "x").is_err());
        assert_eq!(element_count(&[0, 1 << 20], "x").unwrap(), 0);
        assert!(element_count(&[0, 1 << 20, 1 << 20], "x").is_err());
    }
}

//! Element-wise work on f16 and bf16 CPU tensors through f32, as ONNX Runtime's CPU provider computes
//! it: a chunk at a time widened into a buffer on the stack (F16C where the CPU has it), computed in
//! f32 and narrowed into the result, so a tensor is read and written once and no f32 copy of it is
//! made. Sums, differences, products and quotients so rounded twice are the correctly rounded
//! half-precision results: f32 carries more than twice their precision.

use candle_core::{DType, Device, Tensor, WithDType};
use half::slice::HalfFloatSliceExt;

use super::host::host_slice;
use crate::ModelError;

/// Values widened at once: 2 KiB of f32 per buffer.
const CHUNK: usize = 512;

/// `f` over every element of a contiguous f16 or bf16 CPU tensor, in its type.
pub fn map(x: &Tensor, f: &impl Fn(f32) -> f32) -> Result<Tensor, ModelError> {
    let (storage, layout) = x.storage_and_layout();
    let out = match x.dtype() {
        DType::F16 => Values::F16(map_values(
            host_slice::<half::f16>(&storage, layout, x.elem_count())?,
            f,
        )),
        DType::BF16 => Values::Bf16(map_values(
            host_slice::<half::bf16>(&storage, layout, x.elem_count())?,
            f,
        )),
        other => return Err(not_half(other)),
    };
    out.into_tensor(x)
}

/// `f(a, b)` over contiguous half-precision CPU tensors of one type, of which one repeats whole inside
/// the other (`b` inside `a` when `b_repeats`).
pub fn repeated(
    a: &Tensor,
    b: &Tensor,
    b_repeats: bool,
    f: &impl Fn(f32, f32) -> f32,
) -> Result<Tensor, ModelError> {
    let (a_storage, a_layout) = a.storage_and_layout();
    let (b_storage, b_layout) = b.storage_and_layout();
    let shape_of = if b_repeats { a } else { b };
    let out = match a.dtype() {
        DType::F16 => {
            let x = host_slice::<half::f16>(&a_storage, a_layout, a.elem_count())?;
            let y = host_slice::<half::f16>(&b_storage, b_layout, b.elem_count())?;
            Values::F16(match b_repeats {
                true => repeated_values(x, y, f),
                false => repeated_values(y, x, &|p, q| f(q, p)),
            })
        }
        DType::BF16 => {
            let x = host_slice::<half::bf16>(&a_storage, a_layout, a.elem_count())?;
            let y = host_slice::<half::bf16>(&b_storage, b_layout, b.elem_count())?;
            Values::Bf16(match b_repeats {
                true => repeated_values(x, y, f),
                false => repeated_values(y, x, &|p, q| f(q, p)),
            })
        }
        other => return Err(not_half(other)),
    };
    out.into_tensor(shape_of)
}

enum Values {
    F16(Vec<half::f16>),
    Bf16(Vec<half::bf16>),
}

impl Values {
    fn into_tensor(self, shape_of: &Tensor) -> Result<Tensor, ModelError> {
        Ok(match self {
            Values::F16(v) => Tensor::from_vec(v, shape_of.shape(), &Device::Cpu)?,
            Values::Bf16(v) => Tensor::from_vec(v, shape_of.shape(), &Device::Cpu)?,
        })
    }
}

fn not_half(dtype: DType) -> ModelError {
    ModelError::Evaluation(format!(
        "a half-precision tensor was expected, not {dtype:?}"
    ))
}

fn map_values<H>(x: &[H], f: &impl Fn(f32) -> f32) -> Vec<H>
where
    H: WithDType,
    [H]: HalfFloatSliceExt,
{
    let mut out = vec![H::zero(); x.len()];
    let mut wide = [0f32; CHUNK];
    for (src, dst) in x.chunks(CHUNK).zip(out.chunks_mut(CHUNK)) {
        let wide = &mut wide[..src.len()];
        src.convert_to_f32_slice(wide);
        for v in wide.iter_mut() {
            *v = f(*v);
        }
        dst.convert_from_f32_slice(wide);
    }
    out
}

/// `f(big[i], small[i mod small.len()])`: the smaller operand widened once when it repeats, chunk by
/// chunk beside the larger when the two are as long.
fn repeated_values<H>(big: &[H], small: &[H], f: &impl Fn(f32, f32) -> f32) -> Vec<H>
where
    H: WithDType,
    [H]: HalfFloatSliceExt,
{
    let mut out = vec![H::zero(); big.len()];
    if small.is_empty() {
        return out;
    }
    let same = small.len() == big.len();
    let whole: Vec<f32> = if same {
        Vec::new()
    } else {
        let mut whole = vec![0f32; small.len()];
        small.convert_to_f32_slice(&mut whole);
        whole
    };
    let (mut left, mut right) = ([0f32; CHUNK], [0f32; CHUNK]);
    for (index, (src, dst)) in big.chunks(CHUNK).zip(out.chunks_mut(CHUNK)).enumerate() {
        let (left, right) = (&mut left[..src.len()], &mut right[..src.len()]);
        src.convert_to_f32_slice(left);
        let first = index * CHUNK;
        if same {
            small[first..first + src.len()].convert_to_f32_slice(right);
        } else if let [scalar] = whole[..] {
            right.fill(scalar);
        } else {
            // The repeated operand's run from where this chunk starts in it, wrapping around.
            let (mut at, mut filled) = (first % whole.len(), 0);
            while filled < right.len() {
                let take = (whole.len() - at).min(right.len() - filled);
                right[filled..filled + take].copy_from_slice(&whole[at..at + take]);
                (filled, at) = (filled + take, 0);
            }
        }
        for (l, &r) in left.iter_mut().zip(right.iter()) {
            *l = f(*l, r);
        }
        dst.convert_from_f32_slice(left);
    }
    out
}

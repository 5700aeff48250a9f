//! Matrix products.

use candle_core::{DType, Device, Tensor};

use super::super::node::{Node, optional, required};
use super::cpu_f32::{f32_slice, is_half_on_cpu, narrow_to, widen};
use super::int8_gemm::PackedInt8;
use super::integer_product::{exact_depth, exact_integer_product};
use super::matrix_product::{Operand, Product};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// NumPy `matmul`: batch dims broadcast; a 1-D operand is a row (left) or column (right) vector.
pub fn matmul(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (a, b) = (required(inputs, 0)?, required(inputs, 1)?);
    if let Some((a, b, dtype)) = half_in_f32(node, a, b)? {
        let out = matmul(node, &[Some(a), Some(b)])?;
        return out.iter().map(|t| narrow_to(t, dtype)).collect();
    }
    let (a_vector, b_vector) = (a.rank() == 1, b.rank() == 1);
    let a = if a_vector { a.unsqueeze(0)? } else { a.clone() };
    let b = if b_vector { b.unsqueeze(1)? } else { b.clone() };
    let mut out = product(&a, &b)?;
    if a_vector {
        out = out.squeeze(out.rank() - 2)?;
    }
    if b_vector {
        out = out.squeeze(out.rank() - 1)?;
    }
    Ok(vec![out])
}

/// Whether a tensor of `small`'s shape broadcasts onto `shape` without growing it.
fn onto(small: &[usize], shape: &[usize]) -> bool {
    small.len() <= shape.len()
        && small
            .iter()
            .rev()
            .zip(shape.iter().rev())
            .all(|(&s, &d)| s == 1 || s == d)
}

/// (A - a_zero_point)·(B - b_zero_point) on integers, exactly, as int32 values held in i64. Zero points
/// are scalars or, for B, one per column.
///
/// The operands are 8-bit, so each product less zero points is below 2^16 in magnitude and a sum of 256
/// of them below 2^24, where every integer is an f32: the product is computed in f32 (the fast GEMM) over
/// slices of [`EXACT_F32_DEPTH`] along the inner dimension, each slice's result exact, and the slices
/// summed in f64. Operands outside the 8-bit range (a model may hand the operator any integers) take f64
/// throughout.
pub fn matmul_integer(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (a, b) = (required(inputs, 0)?, required(inputs, 1)?);
    let (za, zb) = (optional(inputs, 2), optional(inputs, 3));
    let k = a.dims().last().copied().unwrap_or(0);
    let shapes_fit = a.rank() >= 1 && b.rank() >= 2 && b.dims()[b.rank() - 2] == k && k > 0;
    let small = shapes_fit
        && differences_within_255(node, (0, a), (2, za))?
        && differences_within_255(node, (1, b), (3, zb))?;
    if small && let Some(out) = matmul_integer_on_host(node, (a, za), (b, zb))? {
        return Ok(vec![out]);
    }
    let dtype = if small { DType::F32 } else { DType::F64 };
    // Integers below 2^9 in magnitude, and their differences, are exact in f32.
    let shifted = |t: &Tensor, zero: Option<&Tensor>| -> Result<Tensor, ModelError> {
        // A zero point broadcasts onto its operand, never the operand onto it: a `[n, 1]` zero point of
        // another n made the operand n times its size (found by the evaluator's fuzzer: 348 MB at once).
        if let Some(z) = zero
            && !onto(z.dims(), t.dims())
        {
            return Err(ModelError::Evaluation(format!(
                "MatMulInteger: a zero point of shape {:?} does not fit its operand's {:?}",
                z.dims(),
                t.dims()
            )));
        }
        let t = t.to_dtype(dtype)?;
        Ok(match zero {
            Some(z) => t.broadcast_sub(&z.to_dtype(dtype)?)?,
            None => t,
        })
    };
    let (a, b) = (shifted(a, za)?, shifted(b, zb)?);
    if dtype == DType::F64 {
        return Ok(vec![a.broadcast_matmul(&b)?.to_dtype(DType::I64)?]);
    }
    if k <= EXACT_F32_DEPTH {
        return Ok(vec![product(&a, &b)?.to_dtype(DType::I64)?]);
    }
    let mut sum: Option<Tensor> = None;
    for start in (0..k).step_by(EXACT_F32_DEPTH) {
        let depth = EXACT_F32_DEPTH.min(k - start);
        let part = product(
            &a.narrow(a.rank() - 1, start, depth)?,
            &b.narrow(b.rank() - 2, start, depth)?,
        )?
        .to_dtype(DType::F64)?;
        sum = Some(match sum {
            Some(total) => (total + part)?,
            None => part,
        });
    }
    let sum =
        sum.ok_or_else(|| ModelError::Evaluation("MatMulInteger: no inner dimension".into()))?;
    Ok(vec![sum.to_dtype(DType::I64)?])
}

/// MatMulInteger's B less its zero point as f32, [k, n] row-major, with its largest magnitude; packed
/// for the CPU's 8-bit products where it has them (then `values` is left empty).
struct IntegerWeight {
    values: Vec<f32>,
    largest: f32,
    packed: Option<PackedInt8>,
}

/// MatMulInteger on the CPU for 8-bit operands (differences within ±255), A of rank 2 or more with one
/// zero point, B a matrix with one zero point or one per column: B read once per session when it is a
/// weight of the model, the product by [`exact_integer_product`]. `None` for any other case.
fn matmul_integer_on_host(
    node: &Node<'_>,
    (a, za): (&Tensor, Option<&Tensor>),
    (b, zb): (&Tensor, Option<&Tensor>),
) -> Result<Option<Tensor>, ModelError> {
    let on_cpu = matches!(a.device(), Device::Cpu) && matches!(b.device(), Device::Cpu);
    let (k, n) = match b.dims() {
        [k, n] => (*k, *n),
        _ => return Ok(None),
    };
    let one_a_zero = za.is_none_or(|z| z.elem_count() == 1);
    let b_zero_fits = zb.is_none_or(|z| z.elem_count() == 1 || z.dims() == [n]);
    if !on_cpu || a.rank() < 2 || !one_a_zero || !b_zero_fits {
        return Ok(None);
    }
    let as_f32 = |t: &Tensor| -> Result<Vec<f32>, ModelError> {
        Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
    };
    let mut sources = vec![b];
    sources.extend(zb);
    let weight = node.derive(&sources, || {
        let mut values = as_f32(b)?;
        let zero = zb.map(as_f32).transpose()?.unwrap_or_else(|| vec![0.0]);
        if let Some(packed) = PackedInt8::pack(&values, k, n, &zero) {
            return Ok(IntegerWeight {
                values: Vec::new(),
                largest: 0.0,
                packed: Some(packed),
            });
        }
        if zb.is_some() {
            for row in values.chunks_mut(n.max(1)) {
                for (v, &z) in row.iter_mut().zip(zero.iter().cycle()) {
                    *v -= z;
                }
            }
        }
        let largest = values.iter().fold(0f32, |m, v| m.max(v.abs()));
        Ok(IntegerWeight {
            values,
            largest,
            packed: None,
        })
    })?;
    let a_zero = za.map(as_f32).transpose()?.map_or(0.0, |z| z[0]);
    let rows = a.elem_count() / k.max(1);
    let mut dims = a.dims().to_vec();
    if let Some(last) = dims.last_mut() {
        *last = n;
    }
    if let Some(packed) = &weight.packed
        && a.dtype() == DType::U8
        && (0.0..=255.0).contains(&a_zero)
    {
        // DynamicQuantizeLinear's output as it is: no pass to find its range.
        let a_u8 = a.flatten_all()?.to_vec1::<u8>()?;
        let sums = packed.multiply(&a_u8, rows, a_zero as i64);
        return Ok(Some(Tensor::from_vec(sums, dims, &Device::Cpu)?));
    }
    let mut a_values = as_f32(a)?;
    if let Some(packed) = &weight.packed {
        // A as u8: an int8 A and its zero point both moved up by 128, which leaves their difference.
        let shift = if a_values.iter().any(|&v| v < 0.0) {
            128.0
        } else {
            0.0
        };
        if a_values
            .iter()
            .all(|&v| (0.0..=255.0).contains(&(v + shift)))
        {
            let a_u8: Vec<u8> = a_values.iter().map(|&v| (v + shift) as u8).collect();
            let sums = packed.multiply(&a_u8, rows, (a_zero + shift) as i64);
            return Ok(Some(Tensor::from_vec(sums, dims, &Device::Cpu)?));
        }
        return Ok(None);
    }
    a_values.iter_mut().for_each(|v| *v -= a_zero);
    let sums = exact_integer_product(
        Operand::rows(&a_values, k),
        Operand::rows(&weight.values, n),
        Product { m: rows, n, k },
        exact_depth(255.0, weight.largest),
        candle_core::utils::get_num_threads(),
    )?;
    let sums: Vec<i64> = sums.into_iter().map(|s| s as i64).collect();
    Ok(Some(Tensor::from_vec(sums, dims, &Device::Cpu)?))
}

/// Whether every value of input `index` less its zero point is within ±255: so for a u8 or i8 operand with
/// a zero point of its own type, which the model's declared types say without reading the values (the
/// weights of a quantized layer are large), else read from the values.
fn differences_within_255(
    node: &Node<'_>,
    (index, t): (usize, &Tensor),
    (zero_index, zero): (usize, Option<&Tensor>),
) -> Result<bool, ModelError> {
    use crate::proto::tensor_proto::DataType;
    let eight_bit = |i: usize| {
        [DataType::Uint8 as i32, DataType::Int8 as i32]
            .iter()
            .position(|&d| node.input_type(i) == Some(d))
    };
    if let Some(kind) = eight_bit(index)
        && (zero.is_none() || eight_bit(zero_index) == Some(kind))
    {
        return Ok(true);
    }
    let range = |t: &Tensor| -> Result<(i64, i64), ModelError> {
        if t.elem_count() == 0 {
            return Ok((0, 0));
        }
        if t.dtype() == DType::U8 {
            return Ok((0, 255));
        }
        let flat = t.flatten_all()?.to_dtype(DType::I64)?;
        Ok((
            flat.min(0)?.to_scalar::<i64>()?,
            flat.max(0)?.to_scalar::<i64>()?,
        ))
    };
    let (low, high) = range(t)?;
    let (zero_low, zero_high) = zero.map(range).transpose()?.unwrap_or((0, 0));
    Ok(high.saturating_sub(zero_low) <= 255 && zero_high.saturating_sub(low) <= 255)
}

/// How deep an f32 product of 8-bit integers stays exact: 256 products of magnitude below 2^16.
const EXACT_F32_DEPTH: usize = 256;

/// NumPy `matmul` of operands of rank 2 or more (batch dims broadcast); a batch of rows times one
/// matrix is one product of all the rows.
fn product(a: &Tensor, b: &Tensor) -> Result<Tensor, ModelError> {
    if a.dtype() == DType::I64 && b.dtype() == DType::I64 {
        return integer_product(a, b);
    }
    if a.rank() > 2 && b.rank() == 2 {
        // Every dense layer of a transformer: candle would otherwise multiply each batch item's few rows
        // separately.
        let dims = a.dims().to_vec();
        let (rows, k) = (
            dims[..dims.len() - 1].iter().product::<usize>(),
            dims[dims.len() - 1],
        );
        let mut out_dims = dims;
        if let Some(last) = out_dims.last_mut() {
            *last = b.dim(1)?;
        }
        return Ok(a.reshape((rows, k))?.matmul(b)?.reshape(out_dims)?);
    }
    Ok(a.broadcast_matmul(b)?)
}

/// A product of integers (int32, int64, uint32, held as i64; candle multiplies no integers), batches
/// broadcast, summed wrapping as ONNX Runtime's are (an int32 65536·65536 + 3 is 3 once brought into
/// range by `narrow_integers`).
fn integer_product(a: &Tensor, b: &Tensor) -> Result<Tensor, ModelError> {
    let (ra, rb) = (a.rank(), b.rank());
    if ra < 2 || rb < 2 || b.dims()[rb - 2] != a.dims()[ra - 1] {
        return Err(ModelError::Evaluation(format!(
            "MatMul of shapes {:?} and {:?}: not matrices of the same inner dimension",
            a.dims(),
            b.dims()
        )));
    }
    let (m, k, n) = (a.dims()[ra - 2], a.dims()[ra - 1], b.dims()[rb - 1]);
    let batch = candle_core::Shape::from(&a.dims()[..ra - 2])
        .broadcast_shape_binary_op(&candle_core::Shape::from(&b.dims()[..rb - 2]), "MatMul")?;
    let items = batch.elem_count();
    // Computed one multiply-add at a time: as many as an Einsum may take.
    super::host::iteration_count(&[items, m, k, n], "MatMul's integer products")?;
    // Each operand at most once copied (to the product's batch; read in place when it has it), as the
    // output bound counts it.
    let spread = |t: &Tensor, rows: usize, cols: usize| -> Result<Tensor, ModelError> {
        let dims: Vec<usize> = batch.dims().iter().copied().chain([rows, cols]).collect();
        Ok(t.broadcast_as(dims)?.contiguous()?)
    };
    let (a, b) = (spread(a, m, k)?, spread(b, k, n)?);
    let (a_storage, a_layout) = a.storage_and_layout();
    let (b_storage, b_layout) = b.storage_and_layout();
    let on_host;
    let (x, y): (&[i64], &[i64]) = if matches!(a.device(), candle_core::Device::Cpu) {
        (
            super::host::host_slice(&a_storage, a_layout, a.elem_count())?,
            super::host::host_slice(&b_storage, b_layout, b.elem_count())?,
        )
    } else {
        on_host = (
            a.flatten_all()?.to_vec1::<i64>()?,
            b.flatten_all()?.to_vec1::<i64>()?,
        );
        (&on_host.0, &on_host.1)
    };
    let mut out = vec![0i64; items * m * n];
    for item in 0..items {
        let (x, y) = (&x[item * m * k..][..m * k], &y[item * k * n..][..k * n]);
        let rows = out[item * m * n..][..m * n].chunks_mut(n.max(1));
        for (row, sums) in rows.enumerate().take(m) {
            for (i, &v) in x[row * k..][..k].iter().enumerate() {
                for (sum, &w) in sums.iter_mut().zip(&y[i * n..][..n]) {
                    *sum = sum.wrapping_add(v.wrapping_mul(w));
                }
            }
        }
    }
    let dims: Vec<usize> = batch.dims().iter().copied().chain([m, n]).collect();
    Ok(Tensor::from_vec(out, dims, a.device())?)
}

/// A product of f16 or bf16 operands on the CPU is computed in f32 and rounded once, as ONNX Runtime's
/// CPU provider computes it (candle's half-precision product is several times slower): A widened per
/// run, B (a weight) once per session. Returns the operands and the type to round to.
fn half_in_f32(
    node: &Node<'_>,
    a: &Tensor,
    b: &Tensor,
) -> Result<Option<(Tensor, Tensor, DType)>, ModelError> {
    if !is_half_on_cpu(a) || !is_half_on_cpu(b) {
        return Ok(None);
    }
    let wide_b = node.derive(&[b], || widen(b))?;
    Ok(Some((widen(a)?, wide_b.as_ref().clone(), a.dtype())))
}

/// alpha·A'·B' + beta·C with optional transposes.
pub fn gemm(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    if let Some((a, b, dtype)) = half_in_f32(node, required(inputs, 0)?, required(inputs, 1)?)? {
        let c = optional(inputs, 2).map(widen).transpose()?;
        let out = gemm(node, &[Some(a), Some(b), c])?;
        return out.iter().map(|t| narrow_to(t, dtype)).collect();
    }
    let mut out = match gemm_on_host(node, required(inputs, 0)?, required(inputs, 1)?)? {
        Some(out) => out,
        None => {
            let mut a = required(inputs, 0)?.clone();
            let mut b = required(inputs, 1)?.clone();
            if node.int("transA", 0) != 0 {
                a = a.t()?;
            }
            if node.int("transB", 0) != 0 {
                b = b.t()?;
            }
            a.matmul(&b)?
        }
    };
    let alpha = node.float("alpha", 1.0);
    if alpha != 1.0 {
        out = out.affine(f64::from(alpha), 0.0)?;
    }
    if let Some(c) = optional(inputs, 2) {
        let beta = node.float("beta", 1.0);
        out = out.broadcast_add(&c.affine(f64::from(beta), 0.0)?)?;
    }
    Ok(vec![out])
}

/// Gemm's A'·B' for contiguous f32 matrices on the CPU through [`Product`], each operand read in place
/// whether or not it is stored transposed: candle's product would gather a transposed B (a dense
/// layer's weight, stored [out, in]) into gemm's panels on every call. `None` for other operands.
fn gemm_on_host(node: &Node<'_>, a: &Tensor, b: &Tensor) -> Result<Option<Tensor>, ModelError> {
    let plain = |t: &Tensor| {
        matches!(t.device(), Device::Cpu)
            && t.dtype() == DType::F32
            && t.rank() == 2
            && t.is_contiguous()
    };
    if !plain(a) || !plain(b) {
        return Ok(None);
    }
    let (trans_a, trans_b) = (node.int("transA", 0) != 0, node.int("transB", 0) != 0);
    let ((a_rows, a_cols), (b_rows, b_cols)) = (a.dims2()?, b.dims2()?);
    let (m, k) = if trans_a {
        (a_cols, a_rows)
    } else {
        (a_rows, a_cols)
    };
    let (b_k, n) = if trans_b {
        (b_cols, b_rows)
    } else {
        (b_rows, b_cols)
    };
    if k != b_k {
        return Ok(None);
    }
    let (a_storage, a_layout) = a.storage_and_layout();
    let (b_storage, b_layout) = b.storage_and_layout();
    let a_data = f32_slice(&a_storage, a_layout, a.elem_count())?;
    let b_data = f32_slice(&b_storage, b_layout, b.elem_count())?;
    let a_op = match trans_a {
        true => Operand::transposed(a_data, a_cols),
        false => Operand::rows(a_data, a_cols),
    };
    let b_op = match trans_b {
        true => Operand::transposed(b_data, b_cols),
        false => Operand::rows(b_data, b_cols),
    };
    let mut c = vec![0f32; m * n];
    let threads = candle_core::utils::get_num_threads();
    Product { m, n, k }.compute(&mut c, n, a_op, b_op, false, threads)?;
    Ok(Some(Tensor::from_vec(c, (m, n), &Device::Cpu)?))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, int, run};

    /// A zero point that would broadcast its operand to a multiple of its size is refused (the evaluator's
    /// fuzzer found a `[n, 1]` zero point making A n times larger, 348 MB at once); one that fits is used.
    #[test]
    fn a_zero_point_that_would_grow_its_operand_is_refused() {
        use candle_core::{Device, Tensor};
        let ints = |v: &[i64], dims: &[usize]| {
            Some(Tensor::new(v, &Device::Cpu).unwrap().reshape(dims).unwrap())
        };
        let (a, b) = (ints(&[1, 2, 3, 4, 5, 6], &[2, 3]), ints(&[1; 6], &[3, 2]));
        let e = super::super::testing::error(
            "MatMulInteger",
            10,
            vec![],
            &[a.clone(), b.clone(), ints(&[1; 5], &[5, 1])],
        );
        assert!(e.contains("does not fit its operand"), "{e}");
        let out = run("MatMulInteger", 10, vec![], &[a, b, ints(&[1], &[])]);
        assert_eq!(
            out[0].to_vec2::<i64>().unwrap(),
            vec![vec![3, 3], vec![12, 12]]
        );
    }

    #[test]
    fn matmul_broadcasts_a_weight_over_the_batch() {
        let x = f32s(&[1., 2., 3., 4.], &[2, 1, 2]);
        let w = f32s(&[1., 0., 0., 1.], &[2, 2]);
        let out = run("MatMul", 17, vec![], &[x, w]);
        assert_eq!(out[0].dims(), &[2, 1, 2]);
        assert_eq!(
            out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![1., 2., 3., 4.]
        );
    }

    proptest::proptest! {
        /// Gemm by its definition, with either operand stored transposed, alpha, beta and a bias row,
        /// across the row counts where the product is computed by dot products and by gemm.
        #[test]
        fn gemm_equals_the_definition(
            (m, n, k) in (1usize..24, 1usize..40, 1usize..40),
            (trans_a, trans_b) in proptest::prelude::any::<(bool, bool)>(),
            seed in proptest::prelude::any::<u64>(),
        ) {
            let value = |i: usize| (((i as u64).wrapping_mul(seed | 1) >> 9) % 15) as f32 - 7.0;
            let a: Vec<f32> = (0..m * k).map(value).collect();
            let b: Vec<f32> = (0..k * n).map(|i| value(i + 500)).collect();
            let bias: Vec<f32> = (0..n).map(|i| value(i + 900)).collect();
            let at = |i: usize, l: usize| if trans_a { a[l * m + i] } else { a[i * k + l] };
            let bt = |l: usize, j: usize| if trans_b { b[j * k + l] } else { b[l * n + j] };
            let out = run(
                "Gemm",
                13,
                vec![
                    int("transA", trans_a as i64),
                    int("transB", trans_b as i64),
                    super::super::testing::float("alpha", 2.0),
                    super::super::testing::float("beta", 0.5),
                ],
                &[
                    f32s(&a, &if trans_a { [k, m] } else { [m, k] }),
                    f32s(&b, &if trans_b { [n, k] } else { [k, n] }),
                    f32s(&bias, &[n]),
                ],
            );
            let got = out[0].flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for i in 0..m {
                for j in 0..n {
                    let dot: f32 = (0..k).map(|l| at(i, l) * bt(l, j)).sum();
                    proptest::prop_assert_eq!(got[i * n + j], 2.0 * dot + 0.5 * bias[j]);
                }
            }
        }
    }

    proptest::proptest! {
        /// MatMulInteger of a u8 A (DynamicQuantizeLinear's output, taken as it is) and an int8 weight
        /// wide enough for the CPU's 8-bit products, with zero points, against the definition.
        #[test]
        fn matmul_integer_of_u8_activations_equals_the_definition(
            (m, k, n) in (1usize..6, 1usize..70, 32usize..80),
            seed in proptest::prelude::any::<u64>(),
            per_column in proptest::prelude::any::<bool>(),
        ) {
            use candle_core::{Device, Tensor};
            let value = |i: usize| (((i as u64).wrapping_mul(seed | 1) >> 13) % 256) as i64;
            let a: Vec<u8> = (0..m * k).map(|i| value(i) as u8).collect();
            let b: Vec<i64> = (0..k * n).map(|i| value(i + 77) - 128).collect();
            let a_zero = value(5) as u8;
            let b_zero: Vec<i64> = (0..if per_column { n } else { 1 }).map(|j| value(j + 3) % 7 - 3).collect();
            let b_zero_shape: &[usize] = if per_column { &[n] } else { &[] };
            let out = run(
                "MatMulInteger",
                10,
                vec![],
                &[
                    Some(Tensor::from_vec(a.clone(), (m, k), &Device::Cpu).unwrap()),
                    Some(Tensor::from_vec(b.clone(), (k, n), &Device::Cpu).unwrap()),
                    Some(Tensor::new(a_zero, &Device::Cpu).unwrap()),
                    Some(Tensor::from_vec(b_zero.clone(), b_zero_shape, &Device::Cpu).unwrap()),
                ],
            );
            let got = out[0].flatten_all().unwrap().to_vec1::<i64>().unwrap();
            for i in 0..m {
                for j in 0..n {
                    let zb = b_zero[if per_column { j } else { 0 }];
                    let sum: i64 = (0..k)
                        .map(|l| (i64::from(a[i * k + l]) - i64::from(a_zero)) * (b[l * n + j] - zb))
                        .sum();
                    proptest::prop_assert_eq!(got[i * n + j], sum);
                }
            }
        }
    }

    #[test]
    fn matmul_of_a_vector_drops_its_dim() {
        let out = run(
            "MatMul",
            17,
            vec![],
            &[f32s(&[1., 2.], &[2]), f32s(&[1., 2., 3., 4.], &[2, 2])],
        );
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![7., 10.]);
    }

    #[test]
    fn matmul_integer_is_exact_past_the_depth_where_f32_sums_would_round() {
        use candle_core::{Device, Tensor};
        let ints = |values: Vec<i64>, shape: &[usize]| {
            Some(Tensor::from_vec(values, shape, &Device::Cpu).unwrap())
        };
        // 600 products of 255 * 255 (with a zero point of 0 against 255): 39,015,000, above 2^24, where f32
        // would round; also over three slices of the inner dimension, the last one short.
        let k = 600;
        let a = ints(vec![0; k], &[1, k]);
        let b = ints(vec![255; k], &[k, 1]);
        let za = ints(vec![255], &[]);
        let out = run("MatMulInteger", 10, vec![], &[a, b, za]);
        assert_eq!(
            out[0].to_vec2::<i64>().unwrap(),
            vec![vec![-255 * 255 * k as i64]]
        );
        // Differences past ±255 (a 255 less a zero point of -128): f64, or the 200-term sum would round.
        let k = 200;
        let a = ints(vec![255; k], &[1, k]);
        let b = ints(vec![255; k], &[k, 1]);
        let z = ints(vec![-128], &[]);
        let out = run("MatMulInteger", 10, vec![], &[a, b, z.clone(), z]);
        assert_eq!(
            out[0].to_vec2::<i64>().unwrap(),
            vec![vec![383 * 383 * k as i64]]
        );
        // A batch of rows against one matrix, and values past 8 bits (f64 throughout).
        let a = ints(vec![1, 2, 3, 4, 1000, 0, 0, 1], &[2, 2, 2]);
        let b = ints(vec![1, 0, 0, 1], &[2, 2]);
        let out = run("MatMulInteger", 10, vec![], &[a, b]);
        assert_eq!(
            out[0].flatten_all().unwrap().to_vec1::<i64>().unwrap(),
            vec![1, 2, 3, 4, 1000, 0, 0, 1]
        );
    }

    #[test]
    fn gemm_transposes_and_adds_the_bias() {
        let a = f32s(&[1., 2.], &[1, 2]);
        let b = f32s(&[1., 2., 3., 4.], &[2, 2]);
        let c = f32s(&[10., 20.], &[2]);
        let out = run("Gemm", 13, vec![int("transB", 1)], &[a, b, c]);
        assert_eq!(out[0].to_vec2::<f32>().unwrap(), vec![vec![15., 31.]]);
    }
}

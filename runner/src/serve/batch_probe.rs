//! Whether a model whose first dimensions have different names is batchable after all. Converters name a
//! dimension they cannot follow afresh at every tensor (tf2onnx's `unk__122` in, `unk__123` out;
//! paddle2onnx's `p2o.DynamicDimension.N`), so the names cannot say that an output's first dimension is
//! the input's: 10 of the 39 corpus models look like that. Some are batchable, some are not (an audio
//! front end whose output's first dimension is time). The model itself answers: two different rows run
//! alone and together must give the same rows, in order, with one row of output per row of input.

use bytes::Bytes;

use super::session::{AfterRun, Session};
use super::signature::{Signature, TensorSpec};
use super::tensor::{Datatype, Tensor, push_bytes_element};

/// The sizes tried for the other dimensions of any size, until the model runs: kiln's generated
/// validation inputs use 7; an audio front end needs more samples than its window, an image detector a
/// multiple of its stride.
const OTHER_DIMS: [i64; 3] = [7, 64, 640];

/// Runs row A, row B and the batch [A; B]; `Ok` when every output of the batch is A's rows then B's
/// (floats within what a different batch size changes in a kernel's summation order), `Err` saying why
/// not otherwise. Ids are 0 and 1, valid for any table of two rows or more and for masks.
pub fn rows_are_independent(session: &mut Session, signature: &Signature) -> Result<(), String> {
    let mut failed = String::new();
    for other_dims in OTHER_DIMS {
        let mut run = |rows: &[usize]| -> Result<Vec<Tensor>, String> {
            let inputs: Vec<Tensor> = signature
                .inputs
                .iter()
                .map(|spec| input(spec, rows, other_dims))
                .collect::<Result<_, _>>()?;
            session
                .run(&inputs, signature, AfterRun::GiveBack)
                .map_err(|e| format!("the probe's run failed: {e}"))
        };
        // One failed run is enough to try the next size: a model that cannot run on these shapes may
        // take long to say so (an OCR model in kiln's evaluator: 30 s a size in a debug build).
        match run(&[0]).and_then(|a| Ok((a, run(&[1])?, run(&[0, 1])?))) {
            Ok((a, b, both)) => return compare(&a, &b, &both),
            Err(e) => failed = e,
        }
    }
    Err(failed)
}

fn compare(a: &[Tensor], b: &[Tensor], both: &[Tensor]) -> Result<(), String> {
    for ((a, b), both) in a.iter().zip(b).zip(both) {
        let name = &both.name;
        let rest = |t: &Tensor| t.shape.get(1..).map(<[i64]>::to_vec);
        if a.shape.first() != Some(&1)
            || b.shape.first() != Some(&1)
            || both.shape.first() != Some(&2)
            || rest(a) != rest(both)
            || rest(b) != rest(both)
        {
            return Err(format!(
                "output {name:?} has shapes {:?} and {:?} for one row, {:?} for two",
                a.shape, b.shape, both.shape
            ));
        }
        if !same_rows(a, b, both) {
            return Err(format!(
                "output {name:?} of two rows run together differs from the rows run alone"
            ));
        }
    }
    Ok(())
}

/// A tensor of `rows.len()` rows for `spec`, row `r` filled by pattern `rows[r]`.
fn input(spec: &TensorSpec, rows: &[usize], other_dims: i64) -> Result<Tensor, String> {
    let declared = spec
        .shape
        .as_ref()
        .ok_or_else(|| format!("input {:?} declares no rank", spec.name))?;
    let mut shape = declared.clone();
    shape[0] = rows.len() as i64;
    for d in shape.iter_mut().skip(1).filter(|d| **d < 0) {
        *d = other_dims;
    }
    let per_row = shape[1..]
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?))
        .filter(|&n| n <= 1 << 22)
        .ok_or_else(|| format!("input {:?} has rows too large to probe", spec.name))?;
    let mut data = Vec::new();
    for &pattern in rows {
        for i in 0..per_row {
            push_element(&mut data, spec.datatype, pattern, i);
        }
    }
    Ok(Tensor {
        name: spec.name.clone(),
        datatype: spec.datatype,
        shape,
        data: Bytes::from(data),
    })
}

/// Element `i` of a row of pattern 0 or 1: floats of two different smooth patterns in [-1, 1], integers
/// and booleans 0 or 1, strings "a" or "b".
fn push_element(out: &mut Vec<u8>, datatype: Datatype, pattern: usize, i: usize) {
    let x = ((i * 37 + pattern * 101) % 97) as f64 / 48.0 - 1.0;
    let id = pattern as u8;
    match datatype {
        Datatype::Fp32 => out.extend((x as f32).to_le_bytes()),
        Datatype::Fp64 => out.extend(x.to_le_bytes()),
        Datatype::Fp16 => out.extend(half::f16::from_f64(x).to_le_bytes()),
        Datatype::Bf16 => out.extend(half::bf16::from_f64(x).to_le_bytes()),
        Datatype::Bytes => {
            // A one-byte element always has a length.
            let _ = push_bytes_element(out, if pattern == 0 { b"a" } else { b"b" });
        }
        other => {
            let width = other.size().unwrap_or(1);
            out.push(id);
            out.extend(std::iter::repeat_n(0, width - 1));
        }
    }
}

/// Whether `both` holds `a`'s row then `b`'s: exactly for integers, booleans and strings, within
/// 1e-4 + 1e-3 relative for floats (NaN where both have NaN).
fn same_rows(a: &Tensor, b: &Tensor, both: &Tensor) -> bool {
    let is_float = matches!(
        both.datatype,
        Datatype::Fp16 | Datatype::Bf16 | Datatype::Fp32 | Datatype::Fp64
    );
    if !is_float {
        return [&a.data[..], &b.data[..]].concat() == both.data;
    }
    let (Some(a), Some(b), Some(both)) = (a.to_f64(), b.to_f64(), both.to_f64()) else {
        return false;
    };
    a.len() + b.len() == both.len()
        && a.iter().chain(&b).zip(&both).all(|(&x, &y)| {
            (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-4 + 1e-3 * x.abs().max(y.abs())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp32(shape: Vec<i64>, values: &[f32]) -> Tensor {
        Tensor {
            name: "y".into(),
            datatype: Datatype::Fp32,
            shape,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    #[test]
    fn rows_together_match_rows_alone_within_float_noise_and_in_order() {
        let (a, b) = (fp32(vec![1, 2], &[1.0, 2.0]), fp32(vec![1, 2], &[3.0, 4.0]));
        assert!(same_rows(
            &a,
            &b,
            &fp32(vec![2, 2], &[1.0, 2.0, 3.0, 4.000_01])
        ));
        assert!(!same_rows(&a, &b, &fp32(vec![2, 2], &[3.0, 4.0, 1.0, 2.0])));
        assert!(!same_rows(&a, &b, &fp32(vec![2, 2], &[1.0, 2.0, 3.0, 4.1])));
        assert!(!same_rows(&a, &b, &fp32(vec![2, 1], &[1.0, 3.0])));
    }

    #[test]
    fn probe_inputs_differ_between_rows_and_fill_other_dims() {
        let spec = TensorSpec::new("x", Datatype::Int64, Some(vec![-1, -1, 3]));
        let t = input(&spec, &[0, 1], 7).unwrap();
        assert_eq!(t.shape, vec![2, 7, 3]);
        let values = t.to_f64().unwrap();
        let row = values.len() / 2;
        assert!(values[..row].iter().all(|&v| v == 0.0) && values[row..].iter().all(|&v| v == 1.0));
        let floats = input(
            &TensorSpec::new("f", Datatype::Fp32, Some(vec![-1, 4])),
            &[0, 1],
            7,
        )
        .unwrap();
        let values = floats.to_f64().unwrap();
        assert_ne!(values[..4], values[4..]);
        assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)));
    }
}

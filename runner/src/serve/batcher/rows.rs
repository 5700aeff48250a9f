//! A batch's rows: which requests' inputs stack, the batch's inputs stacked along the first dimension,
//! and its outputs split back into each request's rows.

use bytes::{Bytes, BytesMut};

use super::Request;
use crate::serve::ServeError;
use crate::serve::tensor::Tensor;

/// Whether two requests' inputs differ only in their first dimension.
pub(super) fn stacks(a: &[Tensor], b: &[Tensor]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.shape.len() == y.shape.len() && x.shape.get(1..) == y.shape.get(1..))
}

/// The batch's inputs, each request's rows one after another.
pub(super) fn stack(batch: &[Request]) -> Vec<Tensor> {
    let rows: usize = batch.iter().map(|r| r.rows).sum();
    batch[0]
        .inputs
        .iter()
        .enumerate()
        .map(|(i, first)| {
            let mut data = BytesMut::with_capacity(first.data.len() * batch.len());
            for request in batch {
                data.extend_from_slice(&request.inputs[i].data);
            }
            let mut shape = first.shape.clone();
            shape[0] = rows as i64;
            Tensor {
                name: first.name.clone(),
                datatype: first.datatype,
                shape,
                data: data.freeze(),
            }
        })
        .collect()
}

/// Each request's rows of the batch's outputs.
pub(super) fn split(outputs: &[Tensor], batch: &[Request]) -> Result<Vec<Vec<Tensor>>, ServeError> {
    let rows: usize = batch.iter().map(|r| r.rows).sum();
    let mut parts: Vec<Vec<Tensor>> = vec![Vec::with_capacity(outputs.len()); batch.len()];
    for output in outputs {
        if output.shape.first().copied() != Some(rows as i64) || rows == 0 {
            return Err(ServeError::Inference(format!(
                "output {:?} of the batch has shape {:?}, not {rows} rows",
                output.name, output.shape
            )));
        }
        let offsets = output.row_offsets(rows).ok_or_else(|| {
            ServeError::Inference(format!(
                "output {:?} of the batch does not split into {rows} rows",
                output.name
            ))
        })?;
        let mut row = 0;
        for (part, request) in parts.iter_mut().zip(batch) {
            let mut shape = output.shape.clone();
            shape[0] = request.rows as i64;
            let data: Bytes = output.data.slice(offsets[row]..offsets[row + request.rows]);
            row += request.rows;
            part.push(Tensor {
                name: output.name.clone(),
                datatype: output.datatype,
                shape,
                data,
            });
        }
    }
    Ok(parts)
}

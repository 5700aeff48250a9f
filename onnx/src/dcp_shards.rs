//! Checkpoints written by PyTorch's distributed checkpoint (`torch.distributed.checkpoint`) through its
//! Hugging Face storage writer with `save_sharded=True` — what an FSDP job saves: one safetensors file
//! per rank (`shard-00000-model-00001-of-00001.safetensors`, …), each holding that rank's piece of every
//! tensor under the tensor's full name, and in its header metadata `DCP_SHARDING_INFO`, a JSON object
//! giving each piece's offsets in the whole tensor (`{"name": {"saved_offsets": [row, col]}}`). kiln
//! merges the pieces when a tensor is read, as PyTorch's `consolidate_safetensors_files` would, after
//! checking that they tile the whole tensor exactly (no gap, no overlap, nothing outside it).

use std::collections::BTreeMap;

use candle_core::DType;

use crate::ModelError;

/// The header metadata key DCP writes the pieces' offsets under.
pub const SHARDING_INFO_KEY: &str = "DCP_SHARDING_INFO";

/// Each piece's offsets in its whole tensor, by tensor name, from one file's header metadata; None when
/// the file was not written by DCP.
pub fn piece_offsets(
    metadata: &BTreeMap<String, String>,
) -> Result<Option<BTreeMap<String, Vec<u64>>>, ModelError> {
    let Some(text) = metadata.get(SHARDING_INFO_KEY) else {
        return Ok(None);
    };
    let bad = |why: String| ModelError::InvalidHeader(format!("{SHARDING_INFO_KEY}: {why}"));
    let info: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let mut offsets = BTreeMap::new();
    for (name, entry) in info {
        let list = entry
            .get("saved_offsets")
            .and_then(|o| o.as_array())
            .ok_or_else(|| bad(format!("{name:?} has no saved_offsets list")))?;
        let list = list
            .iter()
            .map(|v| v.as_u64().filter(|&v| v <= crate::safetensors::MAX_DIM))
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(|| bad(format!("{name:?}: saved_offsets are not whole numbers")))?;
        offsets.insert(name, list);
    }
    Ok(Some(offsets))
}

/// One rank's piece of a tensor: where its bytes are and where it sits in the whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece<Location> {
    pub location: Location,
    pub shape: Vec<usize>,
    pub offsets: Vec<usize>,
}

/// A tensor whose pieces were found in several files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedTensor<Location> {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub pieces: Vec<Piece<Location>>,
}

fn elements(shape: &[usize]) -> u128 {
    shape.iter().map(|&d| d as u128).product()
}

impl<Location> ShardedTensor<Location> {
    /// The whole tensor's shape from its pieces, once they are checked to tile it exactly.
    pub fn assemble(
        name: &str,
        dtype: DType,
        pieces: Vec<Piece<Location>>,
    ) -> Result<Self, ModelError> {
        let bad = |why: String| ModelError::InvalidModel(format!("sharded tensor {name:?}: {why}"));
        let rank = pieces.first().map_or(0, |p| p.shape.len());
        if pieces
            .iter()
            .any(|p| p.shape.len() != rank || p.offsets.len() != rank)
        {
            return Err(bad(
                "its pieces disagree on the number of dimensions".to_owned()
            ));
        }
        let shape: Vec<usize> = (0..rank)
            .map(|d| {
                pieces
                    .iter()
                    .map(|p| p.offsets[d] + p.shape[d])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let covered: u128 = pieces.iter().map(|p| elements(&p.shape)).sum();
        if covered != elements(&shape) {
            return Err(bad(format!(
                "its {} pieces hold {covered} values, the whole {shape:?} has {}",
                pieces.len(),
                elements(&shape)
            )));
        }
        // Equal counts and no two pieces overlapping means no gap either.
        for (i, a) in pieces.iter().enumerate() {
            for b in &pieces[i + 1..] {
                let overlap = (0..rank).all(|d| {
                    a.offsets[d] < b.offsets[d] + b.shape[d]
                        && b.offsets[d] < a.offsets[d] + a.shape[d]
                });
                if overlap && elements(&a.shape) > 0 && elements(&b.shape) > 0 {
                    return Err(bad(format!(
                        "pieces at {:?} and {:?} overlap",
                        a.offsets, b.offsets
                    )));
                }
            }
        }
        Ok(Self {
            dtype,
            shape,
            pieces,
        })
    }
}

/// Copies a piece's bytes (row-major, `piece.shape`) into the whole tensor's (row-major, `whole`), a
/// last-dimension run at a time.
pub fn place(
    whole_bytes: &mut [u8],
    whole: &[usize],
    piece_bytes: &[u8],
    piece_shape: &[usize],
    offsets: &[usize],
    element_size: usize,
) {
    let rank = whole.len();
    if rank == 0 {
        whole_bytes.copy_from_slice(piece_bytes);
        return;
    }
    let run = piece_shape[rank - 1] * element_size;
    let rows: usize = piece_shape[..rank - 1].iter().product();
    if run == 0 {
        return;
    }
    let mut index = vec![0usize; rank - 1];
    for row in 0..rows {
        let mut at = 0usize;
        for d in 0..rank - 1 {
            at = at * whole[d] + index[d] + offsets[d];
        }
        let at = (at * whole[rank - 1] + offsets[rank - 1]) * element_size;
        whole_bytes[at..at + run].copy_from_slice(&piece_bytes[row * run..(row + 1) * run]);
        for d in (0..rank - 1).rev() {
            index[d] += 1;
            if index[d] < piece_shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(shape: &[usize], offsets: &[usize]) -> Piece<()> {
        Piece {
            location: (),
            shape: shape.to_vec(),
            offsets: offsets.to_vec(),
        }
    }

    #[test]
    fn pieces_must_tile_the_whole_tensor() {
        let rows = ShardedTensor::assemble(
            "w",
            DType::F32,
            vec![piece(&[3, 4], &[0, 0]), piece(&[2, 4], &[3, 0])],
        );
        assert_eq!(rows.unwrap().shape, [5, 4]);
        let gap = ShardedTensor::assemble(
            "w",
            DType::F32,
            vec![piece(&[2, 4], &[0, 0]), piece(&[2, 4], &[3, 0])],
        );
        assert!(gap.is_err());
        let overlap = ShardedTensor::assemble(
            "w",
            DType::F32,
            vec![
                piece(&[2, 2], &[0, 0]),
                piece(&[2, 2], &[1, 1]),
                piece(&[1, 1], &[0, 2]),
                piece(&[1, 1], &[2, 0]),
            ],
        );
        assert!(overlap.is_err(), "{overlap:?}");
        let ranks = ShardedTensor::assemble(
            "w",
            DType::F32,
            vec![piece(&[2], &[0]), piece(&[2, 1], &[2, 0])],
        );
        assert!(ranks.is_err());
    }

    #[test]
    fn column_pieces_land_in_their_columns() {
        // [[0 1 2], [3 4 5]] split as columns 0..2 and 2..3.
        let left = [0u8, 1, 3, 4];
        let right = [2u8, 5];
        let mut whole = [9u8; 6];
        place(&mut whole, &[2, 3], &left, &[2, 2], &[0, 0], 1);
        place(&mut whole, &[2, 3], &right, &[2, 1], &[0, 2], 1);
        assert_eq!(whole, [0, 1, 2, 3, 4, 5]);
    }
}

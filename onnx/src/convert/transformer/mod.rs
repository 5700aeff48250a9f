//! What the transformer families build their graphs from: one block builder ([`Block`], described per
//! family by a [`BlockSpec`]), and the positions and LM head around the blocks.

mod attention;
mod block;
mod mlp;
mod norm;
mod projection;

pub use attention::{Heads, Mask, Rotary};
pub use block::{Block, BlockSpec, LayerCache, NormPlacement, Qkv};
pub use mlp::{GeluForm, Mlp};
pub use norm::Norm;
pub use projection::ProjectionLayout;

use projection::linear;

use crate::ModelError;
use crate::checkpoint::Checkpoint;
use crate::graph_builder::{DimSpec, GraphBuilder, attr_int, attr_ints};
use crate::proto::tensor_proto::DataType;

/// The sequence length of `ids` ([b, s]) as a 1-element int64 tensor.
pub fn sequence_length(g: &mut GraphBuilder, ids: &str) -> String {
    g.op(
        "Shape",
        &[ids],
        vec![attr_int("start", 1), attr_int("end", 2)],
    )
}

/// The constant 0..max_positions as int64, for slicing positions from.
pub fn position_table(g: &mut GraphBuilder, max_positions: usize) -> Result<String, ModelError> {
    let all: Vec<i64> = (0..max_positions as i64).collect();
    g.ints("positions", &all)
}

/// The first `seq` rows of a table such as learned position embeddings.
pub fn first_rows(g: &mut GraphBuilder, table: &str, seq: &str) -> Result<String, ModelError> {
    let zero = g.ints("zero", &[0])?;
    Ok(g.op("Slice", &[table, &zero, seq], vec![]))
}

/// Where a causal language model's LM head weights are.
#[derive(Debug, Clone, Copy)]
pub enum LmHead<'a> {
    /// The token embedding table ([vocab, hidden], already in the graph), transposed.
    Tied { embeddings: &'a str },
    /// Its own Linear weight, by checkpoint name.
    Linear { weight: &'a str },
}

/// The graph output `logits` ([batch, sequence, vocab], the first two dims named by `dims`) from the
/// final hidden states `x`.
pub fn lm_logits(
    g: &mut GraphBuilder,
    weights: &Checkpoint,
    x: &str,
    head: LmHead<'_>,
    (vocab, dims): (usize, [&str; 2]),
) -> Result<(), ModelError> {
    match head {
        LmHead::Tied { embeddings } => {
            let head = g.op("Transpose", &[embeddings], vec![attr_ints("perm", &[1, 0])]);
            g.op_into("MatMul", &[x, &head], vec![], "logits");
        }
        LmHead::Linear { weight } => {
            let logits = linear(g, weights, x, weight, None)?;
            g.op_into("Identity", &[&logits], vec![], "logits");
        }
    }
    g.output(
        "logits",
        DataType::Float,
        &[
            DimSpec::Named(dims[0]),
            DimSpec::Named(dims[1]),
            DimSpec::Fixed(vocab as i64),
        ],
    );
    Ok(())
}

//! One transformer block, built from a [`BlockSpec`] that says how a family's block differs from the
//! others and where its weights are.

use super::attention::{
    Heads, Mask, Rotary, RotaryTables, merge_heads, repeat_kv, scaled_dot_product, split_heads,
};
use super::{Mlp, Norm, ProjectionLayout};
use crate::ModelError;
use crate::checkpoint::Checkpoint;
use crate::graph_builder::{GraphBuilder, attr_int};

/// Where a block normalizes around its two sublayers (attention, MLP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormPlacement {
    /// `x = norm(sublayer(x) + x)` (BERT).
    Post,
    /// `x = x + sublayer(norm(x))` (GPT-2, Llama).
    Pre,
}

/// The query, key and value projections' module names, relative to a layer's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qkv {
    Separate {
        query: &'static str,
        key: &'static str,
        value: &'static str,
    },
    /// One projection to [q | k | v] along the last axis (GPT-2's `c_attn`).
    Fused(&'static str),
}

/// A family's transformer block. Module names are relative to a layer's prefix
/// (`encoder.layer.3`, `h.3`, `model.layers.3`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockSpec {
    pub heads: Heads,
    pub norm: Norm,
    pub placement: NormPlacement,
    pub projections: ProjectionLayout,
    pub attention_norm: &'static str,
    pub qkv: Qkv,
    pub attention_output: &'static str,
    pub mlp_norm: &'static str,
    pub mlp: Mlp,
}

/// A layer's key/value cache in the graph: the past inputs the layer's keys and values extend (un-repeated
/// heads, [b, kv heads, past, d]) and the present outputs it writes ([b, kv heads, past + s, d]).
#[derive(Debug, Clone)]
pub struct LayerCache {
    pub past_key: String,
    pub past_value: String,
    pub present_key: String,
    pub present_value: String,
}

/// A family's block with the graph values every layer shares: the mask, the fused-QKV slice bounds and
/// the rotary tables, made once rather than once per layer.
pub struct Block {
    spec: BlockSpec,
    mask: String,
    qkv: QkvProjections,
    rotary: Option<RotaryTables>,
}

/// [`Qkv`] with what its projections need in the graph.
enum QkvProjections {
    Separate {
        query: &'static str,
        key: &'static str,
        value: &'static str,
    },
    Fused {
        module: &'static str,
        bounds: FusedBounds,
    },
}

/// Slice bounds that cut a fused [q | k | v] projection into its three parts.
struct FusedBounds {
    zero: String,
    one: String,
    two: String,
    three: String,
    axis: String,
}

impl Block {
    /// Adds the values every layer shares to the graph: the additive mask, and the slice bounds or rotary
    /// tables when the spec needs them.
    pub fn new(
        g: &mut GraphBuilder,
        spec: BlockSpec,
        mask: Mask<'_>,
        rotary: Option<Rotary<'_>>,
    ) -> Result<Self, ModelError> {
        let mask = mask.build(g)?;
        let qkv = match spec.qkv {
            Qkv::Separate { query, key, value } => QkvProjections::Separate { query, key, value },
            Qkv::Fused(module) => {
                let width = (spec.heads.query * spec.heads.dim) as i64;
                let bounds = FusedBounds {
                    zero: g.ints("split", &[0])?,
                    one: g.ints("split", &[width])?,
                    two: g.ints("split", &[2 * width])?,
                    three: g.ints("split", &[3 * width])?,
                    axis: g.ints("split_axis", &[-1])?,
                };
                QkvProjections::Fused { module, bounds }
            }
        };
        let rotary = rotary
            .map(|rotary| RotaryTables::build(g, rotary, spec.heads.dim))
            .transpose()?;
        Ok(Self {
            spec,
            mask,
            qkv,
            rotary,
        })
    }

    /// The block's output for hidden states `x` ([b, s, hidden]), with the weights of layer `layer`
    /// (its prefix in the checkpoint), attending over `cache`'s past keys and values too when given.
    pub fn layer(
        &self,
        g: &mut GraphBuilder,
        weights: &Checkpoint,
        x: &str,
        layer: &str,
        cache: Option<&LayerCache>,
    ) -> Result<String, ModelError> {
        let spec = &self.spec;
        let attention_norm = format!("{layer}.{}", spec.attention_norm);
        let x = self.residual_sublayer(g, weights, x, &attention_norm, |g, h| {
            self.attention(g, weights, h, layer, cache)
        })?;
        let mlp_norm = format!("{layer}.{}", spec.mlp_norm);
        self.residual_sublayer(g, weights, &x, &mlp_norm, |g, h| {
            spec.mlp.apply(g, weights, h, layer, spec.projections)
        })
    }

    /// `sublayer` with its norm and residual connection, as the block's placement puts them.
    fn residual_sublayer(
        &self,
        g: &mut GraphBuilder,
        weights: &Checkpoint,
        x: &str,
        norm: &str,
        sublayer: impl FnOnce(&mut GraphBuilder, &str) -> Result<String, ModelError>,
    ) -> Result<String, ModelError> {
        // The residual Add's operand order differs between the placements only so that the graphs stay
        // node for node what kiln wrote before the families shared this builder.
        match self.spec.placement {
            NormPlacement::Post => {
                let out = sublayer(g, x)?;
                let sum = g.op("Add", &[&out, x], vec![]);
                self.spec.norm.apply(g, weights, &sum, norm)
            }
            NormPlacement::Pre => {
                let normed = self.spec.norm.apply(g, weights, x, norm)?;
                let out = sublayer(g, &normed)?;
                Ok(g.op("Add", &[x, &out], vec![]))
            }
        }
    }

    /// Multi-head self-attention on `x`, through the output projection.
    fn attention(
        &self,
        g: &mut GraphBuilder,
        weights: &Checkpoint,
        x: &str,
        layer: &str,
        cache: Option<&LayerCache>,
    ) -> Result<String, ModelError> {
        let Heads {
            query: heads,
            key_value: kv_heads,
            dim,
        } = self.spec.heads;
        let (q, k, v) = self.qkv(g, weights, x, layer)?;
        let q = split_heads(g, &q, heads, dim)?;
        let k = split_heads(g, &k, kv_heads, dim)?;
        let v = split_heads(g, &v, kv_heads, dim)?;
        let (q, k) = match &self.rotary {
            Some(tables) => (tables.rotate(g, &q, dim)?, tables.rotate(g, &k, dim)?),
            None => (q, k),
        };
        // The cache holds keys after the rotation and before the grouped-query repeat, as Hugging Face's
        // does: a decode step rotates only its new keys, and the cache stays kv-heads wide.
        let (k, v) = match cache {
            Some(c) => {
                let axis = || vec![attr_int("axis", 2)];
                g.op_into("Concat", &[&c.past_key, &k], axis(), &c.present_key);
                g.op_into("Concat", &[&c.past_value, &v], axis(), &c.present_value);
                (c.present_key.clone(), c.present_value.clone())
            }
            None => (k, v),
        };
        let k = repeat_kv(g, &k, self.spec.heads)?;
        let v = repeat_kv(g, &v, self.spec.heads)?;
        let context = scaled_dot_product(g, (&q, &k, &v), &self.mask, dim)?;
        let context = merge_heads(g, &context, heads * dim)?;
        let output = format!("{layer}.{}", self.spec.attention_output);
        self.spec.projections.apply(g, weights, &context, &output)
    }

    /// The query, key and value projections of `x`, [b, s, heads·d] each.
    fn qkv(
        &self,
        g: &mut GraphBuilder,
        weights: &Checkpoint,
        x: &str,
        layer: &str,
    ) -> Result<(String, String, String), ModelError> {
        let projections = self.spec.projections;
        let project = |g: &mut GraphBuilder, name: &str| {
            projections.apply(g, weights, x, &format!("{layer}.{name}"))
        };
        match &self.qkv {
            QkvProjections::Separate { query, key, value } => {
                Ok((project(g, query)?, project(g, key)?, project(g, value)?))
            }
            QkvProjections::Fused { module, bounds: b } => {
                let qkv = project(g, module)?;
                Ok((
                    g.op("Slice", &[&qkv, &b.zero, &b.one, &b.axis], vec![]),
                    g.op("Slice", &[&qkv, &b.one, &b.two, &b.axis], vec![]),
                    g.op("Slice", &[&qkv, &b.two, &b.three, &b.axis], vec![]),
                ))
            }
        }
    }
}

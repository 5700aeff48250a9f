//! What an operator derives from its constant operands — 8-bit weights less their zero points, read as
//! f32 for the float products that compute integer ones exactly — kept between runs of a session, as
//! ONNX Runtime prepacks a node's weights once when it loads a model.
//!
//! A derived value is keyed by the identity of the tensors it came from, and kept only when each of them
//! is one of the graph's constants (its initializers, or the values computed from them when the session
//! was made): a run that overrides an initializer hands the operator another tensor, whose derived value
//! is computed for that run and not kept.

use std::any::Any;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use candle_core::{Tensor, TensorId};

use crate::ModelError;

/// One node's derived value, if any was kept.
#[derive(Default)]
pub struct DerivedSlot(Mutex<Option<Derived>>);

struct Derived {
    sources: Vec<TensorId>,
    value: Arc<dyn Any + Send + Sync>,
}

/// What a node reads its derived value through while a graph runs: its slot and the graph's constants.
#[derive(Clone, Copy)]
pub struct DerivedCache<'a> {
    pub slot: &'a DerivedSlot,
    pub constants: &'a HashSet<TensorId>,
}

impl DerivedCache<'_> {
    /// The value `make` derives from `sources`: the kept one when it came from these same tensors,
    /// else made now, and kept when every source is a constant of the graph.
    pub fn get_or_make<T: Any + Send + Sync>(
        &self,
        sources: &[&Tensor],
        make: impl FnOnce() -> Result<T, ModelError>,
    ) -> Result<Arc<T>, ModelError> {
        let ids: Vec<TensorId> = sources.iter().map(|t| t.id()).collect();
        {
            let kept = self.slot.0.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(derived) = kept.as_ref()
                && derived.sources == ids
                && let Ok(value) = Arc::clone(&derived.value).downcast::<T>()
            {
                return Ok(value);
            }
        }
        // Made outside the lock: two runs of one session may both make it once; either result is
        // the same value.
        let value = Arc::new(make()?);
        if ids.iter().all(|id| self.constants.contains(id)) {
            let mut kept = self.slot.0.lock().unwrap_or_else(|e| e.into_inner());
            *kept = Some(Derived {
                sources: ids,
                value: value.clone(),
            });
        }
        Ok(value)
    }
}

/// [`DerivedCache::get_or_make`] where a node may have no cache (a node run outside a prepared graph:
/// constant folding, streaming): then the value is made each time.
pub fn derive<T: Any + Send + Sync>(
    cache: Option<DerivedCache<'_>>,
    sources: &[&Tensor],
    make: impl FnOnce() -> Result<T, ModelError>,
) -> Result<Arc<T>, ModelError> {
    match cache {
        Some(cache) => cache.get_or_make(sources, make),
        None => make().map(Arc::new),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::collections::HashSet;

    use candle_core::{Device, Tensor};

    use super::{DerivedCache, DerivedSlot};

    #[test]
    fn a_value_derived_from_constants_is_made_once_and_from_other_tensors_each_time() {
        let weight = Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        let constants = HashSet::from([weight.id()]);
        let slot = DerivedSlot::default();
        let cache = DerivedCache {
            slot: &slot,
            constants: &constants,
        };
        let made = Cell::new(0);
        let make = || {
            made.set(made.get() + 1);
            Ok(made.get())
        };
        for _ in 0..3 {
            // A clone is the same tensor.
            assert_eq!(*cache.get_or_make(&[&weight.clone()], make).unwrap(), 1);
        }
        // A run's own tensor with the same values: derived for it, not kept, the constant's kept.
        let overriding = Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        assert_eq!(*cache.get_or_make(&[&overriding], make).unwrap(), 2);
        assert_eq!(*cache.get_or_make(&[&overriding], make).unwrap(), 3);
        assert_eq!(*cache.get_or_make(&[&weight], make).unwrap(), 1);
        // Another type asked of the same sources is made, not mistaken for the kept one.
        let other = cache.get_or_make(&[&weight], || Ok("text")).unwrap();
        assert_eq!(*other, "text");
    }
}

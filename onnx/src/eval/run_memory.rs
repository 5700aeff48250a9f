//! What the values of one run hold together, against a limit a caller may set: a server refuses a request
//! whose tensors would pass it where the kernel would otherwise end the process (and every request in
//! it). Each value's elements are counted once from the moment a node makes it (or a graph is given it)
//! to its last reader's end; a view sharing its input's storage is counted as a copy, and what an
//! operator allocates while it runs is not counted (any one tensor is bounded on its own by the
//! evaluator's element cap).

use std::cell::Cell;

use candle_core::Tensor;

use crate::error::ModelError;

#[derive(Debug, Default)]
pub struct RunMemory {
    limit: Option<u64>,
    live: Cell<u64>,
}

impl RunMemory {
    pub fn new(limit: Option<u64>) -> Self {
        Self {
            limit,
            live: Cell::new(0),
        }
    }

    /// Counts `bytes` more, or refuses them when they would pass the limit.
    pub fn hold(&self, bytes: u64) -> Result<(), ModelError> {
        let live = self.live.get().saturating_add(bytes);
        if let Some(limit) = self.limit.filter(|&limit| live > limit) {
            return Err(ModelError::MemoryLimit {
                needed: live,
                limit,
            });
        }
        self.live.set(live);
        Ok(())
    }

    pub fn let_go(&self, bytes: u64) {
        self.live.set(self.live.get().saturating_sub(bytes));
    }
}

/// The bytes of a value's elements.
pub fn tensor_bytes(tensor: &Tensor) -> u64 {
    (tensor.elem_count() as u64).saturating_mul(tensor.dtype().size_in_bytes() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_up_to_the_limit_and_what_is_let_go_makes_room() {
        let memory = RunMemory::new(Some(100));
        memory.hold(60).unwrap();
        let refused = memory.hold(41).unwrap_err();
        assert!(
            matches!(
                refused,
                ModelError::MemoryLimit {
                    needed: 101,
                    limit: 100
                }
            ),
            "{refused}"
        );
        memory.let_go(60);
        memory.hold(100).unwrap();
        RunMemory::new(None).hold(u64::MAX).unwrap();
    }
}

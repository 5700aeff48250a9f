//! What the values of one run hold together, against a limit a caller may set: a server refuses a request
//! whose tensors would pass it where the kernel would otherwise end the process (and every request in
//! it). Each value's elements are counted once from the moment a node makes it (or a graph is given it)
//! to its last reader's end, and a Loop's or Scan's outputs from one body run to the next as they are
//! kept ([`Kept`]); a view sharing its input's storage is counted as a copy. A node whose result
//! can be far larger than its inputs (`output_bound`) is refused before it runs when that result would
//! pass the limit, and the sizes operators compute on the host are held to the room the run leaves the
//! node ([`node_has_room`]); other scratch is not counted.

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

    /// Refuses `bytes` more beside what is held, where they would pass the limit, without counting them:
    /// a node's result worked out before it runs (`output_bound`), counted once it is made.
    pub fn has_room(&self, bytes: u128) -> Result<(), ModelError> {
        match self.limit {
            Some(limit) => room_for(self.live.get(), limit, bytes),
            None => Ok(()),
        }
    }

    /// Whether a caller set a limit (worked-out sizes are only needed then).
    pub fn is_limited(&self) -> bool {
        self.limit.is_some()
    }

    /// Shows the node about to run (on this thread) the room its run leaves it, until dropped.
    pub fn for_node(&self) -> NodeRoom {
        let room = self.limit.map(|limit| (self.live.get(), limit));
        NodeRoom {
            previous: NODE_ROOM.replace(room),
        }
    }

    /// What an operator keeps between its body runs, counted until it is dropped.
    pub fn kept(&self) -> Kept<'_> {
        Kept {
            memory: self,
            bytes: 0,
        }
    }

    pub fn let_go(&self, bytes: u64) {
        self.live.set(self.live.get().saturating_sub(bytes));
    }
}

thread_local! {
    /// What the run on this thread holds and may hold (live, limit), while a node of a limited run
    /// runs: the element caps deep inside operators (`ops::host::element_count`, a window's size, a
    /// transform's output) are held to it as well, since operators do not see their run.
    static NODE_ROOM: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
}

/// The room a run leaves the node running on this thread, given while it lives; dropping it puts back
/// what was there (a Loop's body runs its own nodes inside the Loop's).
pub struct NodeRoom {
    previous: Option<(u64, u64)>,
}

impl Drop for NodeRoom {
    fn drop(&mut self) {
        NODE_ROOM.set(self.previous);
    }
}

/// Refuses `bytes` more for the node running on this thread, where its run has a limit: for an
/// operator about to allocate a size it read from its inputs' values or shapes.
pub fn node_has_room(bytes: u128) -> Result<(), ModelError> {
    match NODE_ROOM.get() {
        Some((live, limit)) => room_for(live, limit, bytes),
        None => Ok(()),
    }
}

/// `bytes` more beside `live`, or the refusal naming what they would need past `limit`.
fn room_for(live: u64, limit: u64, bytes: u128) -> Result<(), ModelError> {
    let needed = u128::from(live).saturating_add(bytes);
    if needed > u128::from(limit) {
        return Err(ModelError::MemoryLimit {
            needed: u64::try_from(needed).unwrap_or(u64::MAX),
            limit,
        });
    }
    Ok(())
}

/// Values an operator keeps between its body runs (a Loop's or Scan's per-iteration outputs until they
/// are stacked), counted for as long as this lives: uncounted, ten thousand runs of a body each within
/// the limit could keep ten thousand times it.
pub struct Kept<'m> {
    memory: &'m RunMemory,
    bytes: u64,
}

impl Kept<'_> {
    /// Counts `value` too, or refuses it past the limit.
    pub fn keep(&mut self, value: &Tensor) -> Result<(), ModelError> {
        let bytes = tensor_bytes(value);
        self.memory.hold(bytes)?;
        self.bytes = self.bytes.saturating_add(bytes);
        Ok(())
    }
}

impl Drop for Kept<'_> {
    fn drop(&mut self) {
        self.memory.let_go(self.bytes);
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
        // A result worked out before it is made is refused the same way, and not counted.
        let memory = RunMemory::new(Some(100));
        memory.hold(60).unwrap();
        memory.has_room(40).unwrap();
        let refused = memory.has_room(u128::MAX).unwrap_err();
        assert!(
            matches!(
                refused,
                ModelError::MemoryLimit {
                    needed: u64::MAX,
                    limit: 100
                }
            ),
            "{refused}"
        );
        memory.hold(40).unwrap();
        RunMemory::new(None).has_room(u128::MAX).unwrap();
        // An operator sees the room of the node running on its thread, and none outside a node.
        node_has_room(u128::MAX).unwrap();
        let memory = RunMemory::new(Some(100));
        memory.hold(30).unwrap();
        {
            let _node = memory.for_node();
            node_has_room(70).unwrap();
            let refused = node_has_room(71).unwrap_err();
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
            {
                let _unlimited = RunMemory::new(None).for_node();
                node_has_room(1000).unwrap();
            }
            node_has_room(71).unwrap_err();
        }
        node_has_room(u128::MAX).unwrap();
    }
}

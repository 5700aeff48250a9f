//! How long a client may take to send a request's body and to take its answer (`--client-timeout-s`,
//! `--min-client-rate-kib`). A request's memory is held from its admission (`request_memory`) until its
//! answer has gone, so without a bound a client that announced a large body and sent it slowly, or asked
//! for a large answer and did not read it, held its part of `--max-in-flight-mib` for as long as it kept
//! the connection open, and a few such clients kept every other large request out.
//!
//! The rule is Apache's `mod_reqtimeout` body rule: a transfer must be done within the timeout of its start,
//! extended by a second for every `--min-client-rate-kib` KiB moved, so a client that keeps moving at that
//! rate is never cut off and one that stalls or trickles is, at a time that does not depend on its size.
//! The time a body waits for admission is not counted (the server is not reading it then). A body too
//! slow is answered 408 (gRPC `DEADLINE_EXCEEDED`); an answer too slow to be taken is dropped with what
//! its request held, and its connection (REST) or call (gRPC) ends.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::{ServeError, metrics};

/// Longer than any transfer: a larger timeout (or one earned by moving bytes) is this one, which an
/// instant can be moved by without overflowing.
const LONGEST: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The slice of an answer handed to actix or hyper at a time: what either holds of it for a client that
/// does not read, beside what the request's hold counts.
pub const SLICE: usize = 64 << 10;

/// The pace a client must keep; `None` where the flags lift it.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    timeout: Duration,
    bytes_per_second: u64,
}

impl Pace {
    /// `timeout_s` 0 (or less, or not a number) lifts the rule; `min_rate_kib` 0 gives every transfer
    /// only the timeout.
    pub fn new(timeout_s: f64, min_rate_kib: u64) -> Option<Self> {
        (timeout_s > 0.0).then(|| Self {
            timeout: Duration::try_from_secs_f64(timeout_s).map_or(LONGEST, |t| t.min(LONGEST)),
            bytes_per_second: min_rate_kib.saturating_mul(1024),
        })
    }

    /// What every transfer has, however little it moves.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A transfer starting now.
    pub fn start(self) -> Clock {
        Clock {
            pace: self,
            started: Instant::now(),
            moved: 0,
        }
    }

    fn rule(&self) -> String {
        format!(
            "{} s plus a second for every {} KiB moved (kiln-runner serve --client-timeout-s, \
             --min-client-rate-kib)",
            self.timeout.as_secs_f64(),
            self.bytes_per_second / 1024
        )
    }
}

/// One transfer's time against its pace.
#[derive(Debug)]
pub struct Clock {
    pace: Pace,
    started: Instant,
    moved: u64,
}

impl Clock {
    pub fn moved(&mut self, bytes: usize) {
        self.moved += bytes as u64;
    }

    /// Time the server itself kept the transfer waiting (for memory) is not the client's.
    pub fn pause(&mut self, waited: Duration) {
        self.started += waited;
    }

    pub fn deadline(&self) -> Instant {
        let earned = if self.pace.bytes_per_second == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(self.moved as f64 / self.pace.bytes_per_second as f64)
        };
        self.started + (self.pace.timeout + earned.min(LONGEST)).min(LONGEST)
    }

    /// The refusal of a body that did not come in time (counted in `/metrics`).
    pub fn too_slow(&self, announced: Option<u64>) -> ServeError {
        metrics::client_too_slow("request");
        let of = announced.map_or_else(String::new, |n| format!(" of {n}"));
        ServeError::TooSlow(format!(
            "the request's body did not come in time: {}{of} bytes in {:.1} s, where a client has {}",
            self.moved,
            self.started.elapsed().as_secs_f64(),
            self.pace.rule()
        ))
    }
}

/// An answer on its way out, with what its request holds: the server takes it a slice at a time as the
/// client reads, and once it is larger than one slice a watchdog drops it and the hold when the client
/// falls behind the pace (the server stops taking slices while a client does not read, so nothing on the
/// answer's own path would notice).
pub struct Outgoing<H: Send + 'static> {
    slot: Arc<Mutex<Slot<H>>>,
    pace: Option<Pace>,
    watchdog: Option<AbortHandle>,
}

struct Slot<H> {
    rest: Bytes,
    held: Option<H>,
    clock: Option<Clock>,
    /// Given out in copied slices (see [`Outgoing::take`]).
    sliced: bool,
    /// Dropped by the watchdog: the answer cannot be finished.
    expired: Option<String>,
}

impl<H: Send + 'static> Outgoing<H> {
    pub fn new(held: H, pace: Option<Pace>) -> Self {
        Self {
            slot: Arc::new(Mutex::new(Slot {
                rest: Bytes::new(),
                held: Some(held),
                clock: None,
                sliced: false,
                expired: None,
            })),
            pace,
            watchdog: None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slot<H>> {
        lock(&self.slot)
    }

    /// An error once the watchdog has dropped the answer: what comes after it (gRPC's trailers) must not
    /// be sent as if it were whole.
    pub fn alive(&self) -> Result<(), ServeError> {
        match &self.lock().expired {
            Some(why) => Err(ServeError::TooSlow(why.clone())),
            None => Ok(()),
        }
    }

    /// What is left to take.
    pub fn remaining(&self) -> usize {
        self.lock().rest.len()
    }

    /// Appends `data` (a frame of the answer) to what is left to take; dropped if the answer was (the next
    /// [`take`](Self::take) says why).
    pub fn push(&mut self, data: Bytes) {
        let mut slot = self.lock();
        if slot.expired.is_some() {
            return;
        }
        if slot.rest.is_empty() {
            slot.rest = data;
        } else {
            let mut joined = Vec::with_capacity(slot.rest.len() + data.len());
            joined.extend_from_slice(&slot.rest);
            joined.extend_from_slice(&data);
            slot.rest = joined.into();
        }
    }

    /// The next slice of at most [`SLICE`] bytes; `None` once all is taken ([`finish`](Self::finish) then
    /// frees the hold). An answer that fits in one slice goes as it is; a larger one goes in copies, to
    /// its last slice: a view would keep the whole answer's allocation alive wherever the server queues
    /// it (hyper's HTTP/2 streams queue a frame until the client's window lets it go), after its hold was
    /// freed.
    pub fn take(&mut self) -> Result<Option<Bytes>, ServeError> {
        let mut slot = lock(&self.slot);
        if let Some(why) = &slot.expired {
            return Err(ServeError::TooSlow(why.clone()));
        }
        if slot.rest.is_empty() {
            return Ok(None);
        }
        let slice = if slot.rest.len() <= SLICE && !slot.sliced {
            std::mem::take(&mut slot.rest)
        } else {
            let n = slot.rest.len().min(SLICE);
            let slice = Bytes::copy_from_slice(&slot.rest[..n]);
            slot.rest = slot.rest.slice(n..);
            slot.sliced = true;
            slice
        };
        if let Some(pace) = self.pace {
            slot.clock
                .get_or_insert_with(|| pace.start())
                .moved(slice.len());
            if !slot.rest.is_empty() && self.watchdog.is_none() {
                let watched = Arc::downgrade(&self.slot);
                self.watchdog = Some(tokio::spawn(watch(watched)).abort_handle());
            }
        }
        Ok(Some(slice))
    }

    /// The answer is done (all taken): its request's hold is freed.
    pub fn finish(&mut self) {
        let held = self.lock().held.take();
        drop(held);
    }

    /// The whole answer, when it is at most one [`SLICE`] and nothing was taken: it goes at once, and
    /// the hold is freed with it.
    pub fn whole(&mut self) -> Option<Bytes> {
        let mut slot = self.lock();
        if slot.rest.len() > SLICE || slot.clock.is_some() || slot.expired.is_some() {
            return None;
        }
        let whole = std::mem::take(&mut slot.rest);
        slot.held = None;
        Some(whole)
    }
}

impl<H: Send + 'static> Drop for Outgoing<H> {
    fn drop(&mut self) {
        if let Some(watchdog) = &self.watchdog {
            watchdog.abort();
        }
    }
}

fn lock<H>(slot: &Mutex<Slot<H>>) -> MutexGuard<'_, Slot<H>> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

/// Drops an answer and its hold once its client has fallen behind the pace.
async fn watch<H>(slot: Weak<Mutex<Slot<H>>>) {
    loop {
        let deadline = {
            let Some(slot) = slot.upgrade() else { return };
            let slot = lock(&slot);
            match &slot.clock {
                Some(clock) if !slot.rest.is_empty() => clock.deadline(),
                _ => return,
            }
        };
        tokio::time::sleep_until(deadline).await;
        let Some(slot) = slot.upgrade() else { return };
        let mut slot = lock(&slot);
        let Some(clock) = &slot.clock else { return };
        if slot.rest.is_empty() || Instant::now() < clock.deadline() {
            continue;
        }
        let why = format!(
            "the answer was not taken in time: {} bytes in {:.1} s, {} left, where a client has {}",
            clock.moved,
            clock.started.elapsed().as_secs_f64(),
            slot.rest.len(),
            clock.pace.rule()
        );
        tracing::warn!("{why}; dropped with what its request held");
        metrics::client_too_slow("answer");
        slot.rest = Bytes::new();
        slot.held = None;
        slot.expired = Some(why);
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dropped(Arc<std::sync::atomic::AtomicBool>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn outgoing(
        pace: Option<Pace>,
        bytes: usize,
    ) -> (Outgoing<Dropped>, Arc<std::sync::atomic::AtomicBool>) {
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut answer = Outgoing::new(Dropped(dropped.clone()), pace);
        answer.push(vec![7u8; bytes].into());
        (answer, dropped)
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_moves_a_second_for_every_rate_of_bytes_moved() {
        let pace = Pace::new(2.0, 1).unwrap();
        let mut clock = pace.start();
        let start = Instant::now();
        assert_eq!(clock.deadline() - start, Duration::from_secs(2));
        clock.moved(3 * 1024);
        assert_eq!(clock.deadline() - start, Duration::from_secs(5));
        clock.pause(Duration::from_secs(10));
        assert_eq!(clock.deadline() - start, Duration::from_secs(15));
        assert!(Pace::new(0.0, 1).is_none());
        assert!(Pace::new(f64::NAN, 1).is_none());
        assert!(Pace::new(-1.0, 1).is_none());
        let forever = Pace::new(f64::INFINITY, 0).unwrap().start();
        assert!(forever.deadline() > start + Duration::from_secs(3_000_000_000));
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_not_taken_in_time_is_dropped_with_its_hold() {
        let (mut answer, dropped) = outgoing(Pace::new(2.0, 64), 256 << 10);
        assert_eq!(answer.take().unwrap().unwrap().len(), 64 << 10);
        // 64 KiB moved at 64 KiB a second: 3 s in all.
        tokio::time::sleep(Duration::from_millis(2900)).await;
        assert!(!dropped.load(std::sync::atomic::Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(answer.remaining(), 0);
        let refused = answer.take().unwrap_err();
        assert!(matches!(refused, ServeError::TooSlow(_)), "{refused}");
        assert!(
            refused.to_string().contains("--client-timeout-s"),
            "{refused}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_taken_at_the_pace_is_never_dropped() {
        let (mut answer, dropped) = outgoing(Pace::new(1.0, 64), 1 << 20);
        while let Some(slice) = answer.take().unwrap() {
            assert_eq!(slice.len(), 64 << 10);
            tokio::time::sleep(Duration::from_millis(990)).await;
        }
        assert!(!dropped.load(std::sync::atomic::Ordering::SeqCst));
        answer.finish();
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_small_answer_goes_whole_and_frees_its_hold() {
        let (mut answer, dropped) = outgoing(Pace::new(1.0, 64), 1000);
        assert_eq!(answer.whole().unwrap().len(), 1000);
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
        let (mut large, _) = outgoing(Pace::new(1.0, 64), 100 << 10);
        assert!(large.whole().is_none());
    }

    #[test]
    fn no_slice_of_a_large_answer_shares_its_allocation() {
        let mut answer = Outgoing::new((), None);
        let original = Bytes::from(vec![7u8; 100 << 10]);
        answer.push(original.clone());
        let inside = |b: &Bytes| original.as_ptr_range().contains(&b.as_ptr());
        let first = answer.take().unwrap().unwrap();
        let last = answer.take().unwrap().unwrap();
        assert_eq!((first.len(), last.len()), (64 << 10, 36 << 10));
        // Copies, both: whatever holds them, dropping the answer frees its allocation.
        assert!(!inside(&first) && !inside(&last));
        assert!(answer.take().unwrap().is_none());
        // An answer of one slice goes as it is.
        let mut answer = Outgoing::new((), None);
        let small = Bytes::from(vec![1u8; 1000]);
        answer.push(small.clone());
        assert_eq!(answer.take().unwrap().unwrap().as_ptr(), small.as_ptr());
    }
}

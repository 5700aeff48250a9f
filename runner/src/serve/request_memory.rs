//! How much memory the requests in flight may hold together (`--max-in-flight-mib`). Without a bound,
//! the bodies being read and the requests waiting for an instance were limited only by how many clients
//! came: twelve concurrent 60 MiB requests took the runner to 880 MB, and a few dozen would have passed a
//! KServe pod's memory limit, ending the process and every request in it.
//!
//! A request is admitted when its body fits beside what the requests in flight hold: the size its client
//! announces (HTTP's Content-Length, a gRPC message's length prefix) is reserved at once, before any of
//! it is read, and a request that does not fit waits, its bytes left in the socket (TCP's and HTTP/2's
//! flow control are the backpressure), for at most its wait (`--max-memory-wait-ms`, [`WAIT`] unless told
//! otherwise); then it is answered 503 (gRPC UNAVAILABLE).
//! Reserving the whole body at once is what keeps concurrent uploads from each holding a part of the
//! budget while waiting for the rest, which stalled them all. What an admitted request makes afterwards
//! (its decoded inputs, outputs and encoded answer) is counted without waiting, so that what it holds is
//! never held up by others, and while the count is over the limit no new body is admitted. A body larger
//! than the whole limit is a 400 naming the flag.
//!
//! A body of no announced size (a chunked REST body) is admitted as it comes, so it holds part of itself
//! while the rest is on its way. One such body at a time may wait for room to grow, for at most its wait
//! in all, and the room it waits for is kept from new bodies; any other that cannot grow into free room
//! is refused at once. When every such body waited, two of them could each hold what the other needed
//! until both timed out; when none waited, two interleaved ones could both be refused at the same moment.
//! The waiting one can still wait on a gRPC call that holds its message and waits its turn for the bytes
//! after it (rare: such bytes are a second message, which the protocol's unary calls do not send); both
//! end at their wait.
//!
//! The requests waiting for room are a bounded queue: each may leave bytes that the server has received
//! but not read (a gRPC call, up to its HTTP/2 window), held where nothing counts them, so past
//! [`Budget::max_waiting`] waiting requests the next one that does not fit is refused at once. Without
//! the bound, eight gRPC connections of 128 waiting calls took a runner limited to 100 MiB from 43 to
//! 317 MB resident while the count stayed at 95 MiB.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics::Gauge;
use tokio::sync::{Notify, Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::ServeError;

/// How a body that could never fit is named in its refusal.
const BODY_NEEDS: &str = "this request's body needs";

/// How long a request waits for its body to fit before it is refused as unavailable, unless told
/// otherwise (`--max-memory-wait-ms`).
pub const WAIT: Duration = Duration::from_secs(5);

/// What one waiting request may leave received and unread in the process: a gRPC call's window and
/// the frame that made it wait (a REST body waits in the socket, with at most actix's read buffer).
const UNREAD_WHILE_WAITING: u64 = super::grpc::STREAM_WINDOW as u64 + (16 << 10);

/// The requests that may wait at once for a limit of `limit` bytes: as many as leave an eighth of it
/// unread, and at least 16.
fn max_waiting(limit: u64) -> usize {
    usize::try_from(limit / 8 / UNREAD_WHILE_WAITING)
        .unwrap_or(usize::MAX)
        .clamp(16, Semaphore::MAX_PERMITS)
}

/// The memory the requests in flight may hold together; unlimited with `--max-in-flight-mib 0`.
#[derive(Clone)]
pub struct RequestMemory(Option<Arc<Budget>>);

struct Budget {
    limit: u64,
    /// What the requests in flight hold together (it may pass the limit: see the module's comment).
    used: AtomicU64,
    /// The most `used` has been, for tests that look for a count made and freed inside a call.
    #[cfg(test)]
    peak: AtomicU64,
    /// The room the one body holding part of itself that waits to grow needs (0: none waits), which
    /// new bodies leave free.
    growing: AtomicU64,
    /// Signalled when a request frees what it held, or a growing body stops waiting.
    freed: Notify,
    /// Admits one request at a time, in arrival order: a large body is not passed over by a stream of
    /// small ones while it waits.
    turnstile: tokio::sync::Mutex<()>,
    wait: Duration,
    /// One permit for each request that may wait at once.
    waiting: Semaphore,
    max_waiting: usize,
    gauge: Gauge,
}

/// What one request holds; freed when dropped.
pub struct Held {
    budget: Option<Arc<Budget>>,
    bytes: u64,
    /// When a growing body's waits for room end, set when it first waits: however many of its chunks
    /// wait, the body waits no longer than its wait in all.
    grow_deadline: Option<Instant>,
}

impl RequestMemory {
    /// `limit` bytes in all, `None` for no limit.
    pub fn new(limit: Option<u64>) -> Self {
        Self::waiting(limit, WAIT)
    }

    /// `limit` bytes in all, a body that does not fit waiting up to `wait` for room.
    pub fn waiting(limit: Option<u64>, wait: Duration) -> Self {
        Self(limit.map(|limit| {
            let waiters = max_waiting(limit);
            Arc::new(Budget {
                limit,
                used: AtomicU64::new(0),
                #[cfg(test)]
                peak: AtomicU64::new(0),
                growing: AtomicU64::new(0),
                freed: Notify::new(),
                turnstile: tokio::sync::Mutex::new(()),
                wait,
                waiting: Semaphore::new(waiters),
                max_waiting: waiters,
                gauge: super::metrics::in_flight_bytes(),
            })
        }))
    }

    /// What the requests in flight hold now.
    pub fn used(&self) -> u64 {
        self.0
            .as_ref()
            .map_or(0, |b| b.used.load(Ordering::Relaxed))
    }

    /// The room a growing body waits for, kept from new bodies.
    #[cfg(test)]
    fn kept_for_growing(&self) -> u64 {
        self.0
            .as_ref()
            .map_or(0, |b| b.growing.load(Ordering::Relaxed))
    }

    /// The most they have held.
    #[cfg(test)]
    pub fn peak(&self) -> u64 {
        self.0
            .as_ref()
            .map_or(0, |b| b.peak.load(Ordering::Relaxed))
    }

    /// Nothing held yet: what a request starts with.
    pub fn held(&self) -> Held {
        Held {
            budget: self.0.clone(),
            bytes: 0,
            grow_deadline: None,
        }
    }
}

impl Budget {
    /// What could never fit (`needs`: "this request's body needs"): a 400 naming the flag.
    fn too_large(&self, needs: &str) -> ServeError {
        ServeError::BadRequest(format!(
            "{needs} more than the {} MiB that this server lets the requests in flight hold together \
             (kiln-runner serve --max-in-flight-mib): send fewer rows or smaller inputs",
            self.limit_mib()
        ))
    }

    fn limit_mib(&self) -> String {
        let mib = self.limit as f64 / f64::from(1 << 20);
        if mib >= 10.0 {
            format!("{mib:.0}")
        } else {
            format!("{mib:.2}")
        }
    }

    /// A body that waited its whole wait: 503, for the memory may be freed soon and another try fit.
    fn not_freed(&self) -> ServeError {
        ServeError::Unavailable(format!(
            "the requests in flight hold the {} MiB this server allows them (kiln-runner serve \
             --max-in-flight-mib) and not enough was freed within {} s; try again shortly",
            self.limit_mib(),
            self.wait.as_secs_f64()
        ))
    }

    /// A place among the requests waiting for room, counted; a 503 at once when they are all taken.
    fn start_waiting(&self) -> Result<SemaphorePermit<'_>, ServeError> {
        let place = self.waiting.try_acquire().map_err(|_| {
            ServeError::Unavailable(format!(
                "{} requests already wait for room in the {} MiB this server lets the requests in \
                 flight hold (kiln-runner serve --max-in-flight-mib); try again shortly",
                self.max_waiting,
                self.limit_mib()
            ))
        })?;
        super::metrics::waited_for_memory();
        Ok(place)
    }

    fn add(&self, bytes: u64) {
        let used = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        #[cfg(test)]
        self.peak.fetch_max(used, Ordering::Relaxed);
        self.gauge.set(used as f64);
    }

    /// Adds `bytes` when they fit under the limit with what is held and `keep_free` more.
    fn add_within_limit(&self, bytes: u64, keep_free: u64) -> bool {
        let added = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                (used.saturating_add(bytes).saturating_add(keep_free) <= self.limit)
                    .then_some(used + bytes)
            });
        if let Ok(used) = added {
            #[cfg(test)]
            self.peak.fetch_max(used + bytes, Ordering::Relaxed);
            self.gauge.set((used + bytes) as f64);
        }
        added.is_ok()
    }

    fn release(&self, bytes: u64) {
        if bytes > 0 {
            let used = self.used.fetch_sub(bytes, Ordering::Relaxed) - bytes;
            self.gauge.set(used as f64);
            self.freed.notify_waiters();
        }
    }

    /// Waits until `bytes` more fit, as the one growing body that may wait, until `deadline`; added
    /// when they do.
    async fn wait_to_grow(&self, bytes: u64, deadline: Instant) -> Result<(), ServeError> {
        let cannot_grow = || {
            ServeError::Unavailable(format!(
                "the requests in flight hold the {} MiB this server allows them (kiln-runner serve \
                 --max-in-flight-mib) and this body, sent without Content-Length, cannot grow while \
                 holding part of it; send Content-Length (the whole body is then reserved before it \
                 is read, waiting its turn), or try again shortly",
                self.limit_mib()
            ))
        };
        if self
            .growing
            .compare_exchange(0, bytes, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return Err(cannot_grow());
        }
        // Gives the room back to new bodies however this wait ends, its request dropped included.
        let _growing = Growing(self);
        let _place = self.start_waiting()?;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.add_within_limit(bytes, 0) {
                return Ok(());
            }
            tokio::time::timeout_at(deadline, freed)
                .await
                .map_err(|_| self.not_freed())?;
        }
    }
}

/// The one growing body's wait, in progress; ended when dropped.
struct Growing<'a>(&'a Budget);

impl Drop for Growing<'_> {
    fn drop(&mut self) {
        self.0.growing.store(0, Ordering::Relaxed);
        self.0.freed.notify_waiters();
    }
}

/// The wait for a body's bytes to fit: what [`Held::admit`] awaits, for a caller that polls it itself.
pub type Admission = Pin<Box<dyn Future<Output = Result<Reserved, ServeError>> + Send>>;

/// Bytes admitted and not yet [`Held::absorb`]ed into a request's hold; freed if dropped before.
pub struct Reserved {
    budget: Option<Arc<Budget>>,
    bytes: u64,
}

impl Held {
    /// Reserves `bytes` of a body about to be read, waiting (up to [`WAIT`]) until they fit beside what
    /// the requests in flight hold. A body's later chunks, when its size was not announced, are admitted
    /// the same way: that client chose to hold a part while waiting for the rest.
    pub async fn admit(&mut self, bytes: u64) -> Result<(), ServeError> {
        let reserved = self.admission(bytes)?.await?;
        self.absorb(reserved);
        Ok(())
    }

    /// The wait for `bytes` more (see [`admit`](Self::admit)); a 400 at once when this request's body
    /// would need more than the whole limit.
    pub fn admission(&self, bytes: u64) -> Result<Admission, ServeError> {
        let budget = match &self.budget {
            Some(budget) if bytes > 0 => budget.clone(),
            _ => {
                let nothing = Reserved {
                    budget: None,
                    bytes: 0,
                };
                return Ok(Box::pin(std::future::ready(Ok(nothing))));
            }
        };
        if self.bytes.saturating_add(bytes) > budget.limit {
            return Err(budget.too_large(BODY_NEEDS));
        }
        Ok(Box::pin(async move {
            let deadline = Instant::now() + budget.wait;
            let unavailable = || budget.not_freed();
            let mut place = None;
            let _turn = match budget.turnstile.try_lock() {
                Ok(turn) => turn,
                Err(_) => {
                    place = Some(budget.start_waiting()?);
                    tokio::time::timeout_at(deadline, budget.turnstile.lock())
                        .await
                        .map_err(|_| unavailable())?
                }
            };
            loop {
                // Registered before the check, so that a release between the check and the wait wakes it.
                let freed = budget.freed.notified();
                tokio::pin!(freed);
                freed.as_mut().enable();
                if budget.add_within_limit(bytes, budget.growing.load(Ordering::Relaxed)) {
                    break;
                }
                if place.is_none() {
                    place = Some(budget.start_waiting()?);
                }
                tokio::time::timeout_at(deadline, freed)
                    .await
                    .map_err(|_| unavailable())?;
            }
            Ok(Reserved {
                budget: Some(budget.clone()),
                bytes,
            })
        }))
    }

    /// Reserves `bytes` more for a request that already holds part of its body (one of no announced
    /// size, admitted as it comes). When they do not fit, it waits for room (up to its wait, counted
    /// across all its chunks) if no other such body waits, the room it needs kept from new bodies;
    /// otherwise it is refused, 503 at once (see the module's comment).
    pub async fn grow(&mut self, bytes: u64) -> Result<(), ServeError> {
        let Some(budget) = self.budget.as_ref().filter(|_| bytes > 0) else {
            return Ok(());
        };
        if self.bytes.saturating_add(bytes) > budget.limit {
            return Err(budget.too_large(BODY_NEEDS));
        }
        if !budget.add_within_limit(bytes, 0) {
            let deadline = *self
                .grow_deadline
                .get_or_insert_with(|| Instant::now() + budget.wait);
            budget.wait_to_grow(bytes, deadline).await?;
        }
        self.bytes += bytes;
        Ok(())
    }

    /// Makes what an admission reserved part of this request's hold.
    pub fn absorb(&mut self, mut reserved: Reserved) {
        self.bytes += std::mem::take(&mut reserved.bytes);
    }

    /// Counts `bytes` (`what` needs them, for the error: "this request's inputs … need") like [`count`](Self::count), unless this
    /// request would then hold more than the whole limit by itself: a 400 naming the flag, as for a
    /// body that large (what a body decodes to can be many times its size: a string costs the engine 32
    /// bytes however short, an empty protobuf message two bytes on the wire and hundreds decoded).
    pub fn count_within_limit(&mut self, bytes: usize, what: &str) -> Result<(), ServeError> {
        if let Some(budget) = &self.budget
            && self.bytes.saturating_add(bytes as u64) > budget.limit
        {
            return Err(budget.too_large(what));
        }
        self.count(bytes);
        Ok(())
    }

    /// Gives back `bytes` counted before (a copy let go: an answer's uncompressed form once compressed).
    pub fn uncount(&mut self, bytes: usize) {
        let bytes = (bytes as u64).min(self.bytes);
        if let Some(budget) = &self.budget {
            budget.release(bytes);
            self.bytes -= bytes;
        }
    }

    /// Counts `bytes` this request made while being answered, without waiting (see the module's
    /// comment): while the count is over the limit, no new body is admitted.
    pub fn count(&mut self, bytes: usize) {
        if let Some(budget) = &self.budget {
            budget.add(bytes as u64);
            self.bytes += bytes as u64;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.release(self.bytes);
        }
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.release(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests;

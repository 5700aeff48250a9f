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
//! (its decoded inputs, outputs and encoded answer) is counted without waiting: a request that holds
//! memory never waits for others', so no two wait on each other, and while the count is over the limit no
//! new body is admitted. A body larger than the whole limit is a 400 naming the flag.
//!
//! A body of no announced size (a chunked REST body) is admitted as it comes, so it holds part of itself
//! while the rest is on its way. One such body at a time may wait for room to grow, and the room it
//! waits for is kept from new bodies; any other that cannot grow into free room is refused at once.
//! When every such body waited, two of them could each hold what the other needed until both timed out;
//! when none waited, two interleaved ones could both be refused at the same moment.
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
    #[cfg(test)]
    pub fn used(&self) -> u64 {
        self.0
            .as_ref()
            .map_or(0, |b| b.used.load(Ordering::Relaxed))
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

    /// A body that waited its whole wait: 503.
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

    /// Waits until `bytes` more fit, as the one growing body that may wait; added when they do.
    async fn wait_to_grow(&self, bytes: u64) -> Result<(), ServeError> {
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
        let deadline = Instant::now() + self.wait;
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
    /// size, admitted as it comes). When they do not fit, it waits for room (up to its wait) if no other
    /// such body waits, the room it needs kept from new bodies; otherwise it is refused, 503 at once (see
    /// the module's comment).
    pub async fn grow(&mut self, bytes: u64) -> Result<(), ServeError> {
        let Some(budget) = self.budget.clone().filter(|_| bytes > 0) else {
            return Ok(());
        };
        if self.bytes.saturating_add(bytes) > budget.limit {
            return Err(budget.too_large(BODY_NEEDS));
        }
        if !budget.add_within_limit(bytes, 0) {
            budget.wait_to_grow(bytes).await?;
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
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn a_body_waits_until_others_free_enough_then_is_admitted() {
        let memory = RequestMemory::new(Some(10 << 10));
        let mut first = memory.held();
        first.admit(6 << 10).await.unwrap();
        first.count(1);
        let mut second = memory.held();
        let waiting = tokio::spawn(async move { second.admit(4 << 10).await.map(|()| second) });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "4 KiB were asked with less than 4 free"
        );
        drop(first);
        let second = waiting.await.unwrap().unwrap();
        assert_eq!(second.bytes, 4 << 10);
        assert_eq!(memory.used(), 4 << 10);
        drop(second);
        assert_eq!(memory.used(), 0);
    }

    #[tokio::test]
    async fn what_is_made_while_answering_is_counted_without_waiting_and_holds_off_new_bodies() {
        let memory = RequestMemory::waiting(Some(10 << 10), Duration::from_millis(100));
        let mut answering = memory.held();
        answering.admit(8 << 10).await.unwrap();
        answering.count(8 << 10);
        assert_eq!(memory.used(), 16 << 10);
        let refused = memory.held().admit(1).await.unwrap_err();
        assert!(matches!(refused, ServeError::Unavailable(_)), "{refused}");
        assert!(
            refused.to_string().contains("--max-in-flight-mib"),
            "{refused}"
        );
        drop(answering);
        memory.held().admit(10 << 10).await.unwrap();
    }

    #[tokio::test]
    async fn a_body_larger_than_the_whole_limit_is_refused_at_once() {
        let memory = RequestMemory::new(Some(10 << 10));
        let refused = memory.held().admit(11 << 10).await.unwrap_err();
        assert!(matches!(refused, ServeError::BadRequest(_)), "{refused}");
        assert!(
            refused.to_string().contains("--max-in-flight-mib"),
            "{refused}"
        );
        assert_eq!(memory.used(), 0);
    }

    #[tokio::test]
    async fn requests_are_admitted_in_arrival_order() {
        let memory = RequestMemory::new(Some(10 << 10));
        let mut holder = memory.held();
        holder.admit(8 << 10).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, bytes) in [("large", 10u64 << 10), ("small", 1 << 10)] {
            let (memory, order) = (memory.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let mut held = memory.held();
                held.admit(bytes).await.unwrap();
                order.lock().unwrap().push(name);
            }));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The small one would fit beside the holder, but the large one came first.
        assert!(order.lock().unwrap().is_empty());
        drop(holder);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["large", "small"]);
    }

    fn waiting_for_a_byte(
        memory: &RequestMemory,
        requests: usize,
    ) -> Vec<tokio::task::JoinHandle<Result<(), ServeError>>> {
        (0..requests)
            .map(|_| {
                let memory = memory.clone();
                tokio::spawn(async move { memory.held().admit(1).await })
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_bound_on_waiting_requests_the_next_is_refused_at_once() {
        let memory = RequestMemory::new(Some(10 << 10));
        assert_eq!(max_waiting(10 << 10), 16);
        let mut holder = memory.held();
        holder.admit(10 << 10).await.unwrap();
        let waiting = waiting_for_a_byte(&memory, 16);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let started = Instant::now();
        let refused = memory.held().admit(1).await.unwrap_err();
        assert_eq!(started.elapsed(), Duration::ZERO, "refused without waiting");
        assert!(matches!(refused, ServeError::Unavailable(_)), "{refused}");
        assert!(
            refused.to_string().starts_with("16 requests already wait")
                && refused.to_string().contains("--max-in-flight-mib"),
            "{refused}"
        );
        drop(holder);
        for admitted in waiting {
            admitted.await.unwrap().unwrap();
        }
        // Their places given back: as many may wait again.
        let mut holder = memory.held();
        holder.admit(10 << 10).await.unwrap();
        let waiting = waiting_for_a_byte(&memory, 16);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(waiting.iter().all(|w| !w.is_finished()));
        drop(holder);
        for admitted in waiting {
            admitted.await.unwrap().unwrap();
        }
    }

    #[test]
    fn the_bound_on_waiting_requests_follows_the_limit() {
        assert_eq!(max_waiting(0), 16);
        assert_eq!(max_waiting(100 << 20), 47);
        assert_eq!(max_waiting(1 << 30), 481);
        let huge = u64::MAX / 8 / UNREAD_WHILE_WAITING;
        assert_eq!(
            max_waiting(u64::MAX) as u64,
            huge.min(Semaphore::MAX_PERMITS as u64)
        );
    }

    #[tokio::test]
    async fn decoded_inputs_past_the_whole_limit_are_refused_and_not_counted() {
        let memory = RequestMemory::new(Some(10 << 10));
        let mut held = memory.held();
        held.admit(4 << 10).await.unwrap();
        held.count_within_limit(6 << 10, "inputs").unwrap();
        assert_eq!(memory.used(), 10 << 10);
        let refused = held.count_within_limit(1, "inputs").unwrap_err();
        assert!(matches!(refused, ServeError::BadRequest(_)), "{refused}");
        assert!(
            refused.to_string().contains("--max-in-flight-mib"),
            "{refused}"
        );
        assert_eq!(memory.used(), 10 << 10);
        drop(held);
        assert_eq!(memory.used(), 0);
        RequestMemory::new(None)
            .held()
            .count_within_limit(usize::MAX, "inputs")
            .unwrap();
    }

    #[tokio::test]
    async fn one_body_that_holds_part_of_itself_waits_to_grow_and_the_others_are_refused() {
        let memory = RequestMemory::new(Some(10 << 10));
        let (mut first, mut second) = (memory.held(), memory.held());
        first.grow(4 << 10).await.unwrap();
        second.grow(4 << 10).await.unwrap();
        let waiting = tokio::spawn(async move { second.grow(4 << 10).await.map(|()| second) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "4 KiB asked with 2 free");
        // 2 KiB are free, but the waiting body needs 4 of the 6 it would have: a new body waits.
        let mut new_body = memory.held();
        let admitted = tokio::time::timeout(Duration::from_millis(50), new_body.admit(2 << 10));
        assert!(admitted.await.is_err(), "admitted into the kept room");
        // Another body that holds part of itself cannot wait beside it: refused at once.
        let refused = first.grow(3 << 10).await.unwrap_err();
        assert!(matches!(refused, ServeError::Unavailable(_)), "{refused}");
        assert!(refused.to_string().contains("Content-Length"), "{refused}");
        drop(first);
        let second = waiting.await.unwrap().unwrap();
        assert_eq!(memory.used(), 8 << 10);
        // Its wait over, its room is no longer kept: a new body takes what is free.
        memory.held().admit(2 << 10).await.unwrap();
        let too_large = memory.held().grow(11 << 10).await.unwrap_err();
        assert!(
            matches!(too_large, ServeError::BadRequest(_)),
            "{too_large}"
        );
        drop(second);
        assert_eq!(memory.used(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_growing_body_that_waits_in_vain_is_refused_and_keeps_no_room() {
        let memory = RequestMemory::waiting(Some(10 << 10), Duration::from_secs(1));
        let mut holder = memory.held();
        holder.admit(8 << 10).await.unwrap();
        let mut growing = memory.held();
        growing.grow(1 << 10).await.unwrap();
        let started = Instant::now();
        let refused = growing.grow(2 << 10).await.unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert!(refused.to_string().contains("within 1 s"), "{refused}");
        memory.held().admit(1 << 10).await.unwrap();
        // A wait given up by its request (the client gone) keeps no room either.
        let mut gone = memory.held();
        let wait = tokio::spawn(async move { gone.grow(2 << 10).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        wait.abort();
        let _ = wait.await;
        drop(holder);
        memory.held().admit(9 << 10).await.unwrap();
    }

    #[tokio::test]
    async fn no_limit_holds_nothing() {
        let memory = RequestMemory::new(None);
        let mut held = memory.held();
        held.admit(u64::MAX).await.unwrap();
        held.count(usize::MAX);
        assert_eq!(held.bytes, 0);
    }
}

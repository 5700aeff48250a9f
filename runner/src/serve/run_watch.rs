//! Stops an engine run nobody needs finished any more: one past `--run-timeout-s`; one past every one
//! of its requests' own deadlines (a gRPC call's `grpc-timeout`, the protocol's `timeout` parameter);
//! one whose every client has gone (a REST connection closed, a gRPC call cancelled). Without it a request
//! whose shapes or values make the model run for minutes (a Loop's trip count, a sequence of a million
//! tokens) holds its instance for all of them, and as many such requests as there are instances stop the
//! model answering anyone.
//!
//! One thread watches every instance's runs. An instance registers each run, with its deadline and its
//! requests' clients, and takes it back when the run ends; the thread sleeps until the earliest deadline,
//! and a run still registered then is told to stop (ONNX Runtime's terminate flag, kiln's evaluator's stop
//! flag), which the engine sees before its next operator. A client going is told to the watch by the
//! request it leaves ([`RunWatch::client_gone`]), and the run is stopped when it was its last. A run
//! takes two short holds of one lock; the thread is woken only when a deadline comes before the one it
//! sleeps until (the first run after a quiet spell), not once a run.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, PoisonError};
use std::time::Instant;

/// What the watch stops a run through: set from another thread while the run goes on, cleared from the
/// instance's once the run is over and the watch has let it go.
pub trait Stoppable: Send + Sync {
    /// Tells the run in progress to stop before its next operator.
    fn stop(&self);
    /// Lets the next run go on: a stop set as a run ended must not end the next one.
    fn clear(&self);
}

/// Why a run was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Its deadline passed.
    AtDeadline,
    /// Every client of its requests went.
    ClientsGone,
}

/// A request's client as the watch knows it: the run answering the request, and whether the client has
/// gone. Both change only under the watch's lock (atomic to be shared, not to order anything).
#[derive(Default)]
pub struct Client {
    /// The id of the last run registered for its request; 0: none yet.
    run: AtomicU64,
    gone: AtomicBool,
}

/// The watch of every run of this process.
pub struct RunWatch {
    runs: Mutex<Watched>,
    wake: Condvar,
}

struct Watched {
    runs: Vec<Run>,
    next_id: u64,
    /// When the watching thread wakes next by itself; `None`: only when woken.
    sleeping_until: Option<Instant>,
}

struct Run {
    id: u64,
    deadline: Option<Instant>,
    stop: Arc<dyn Stoppable>,
    /// Clients of its requests that have not gone.
    awaited: usize,
    stopped: Option<Stopped>,
}

impl Run {
    fn stop(&mut self, why: Stopped) {
        if self.stopped.is_none() {
            self.stop.stop();
            self.stopped = Some(why);
        }
    }
}

impl RunWatch {
    /// The process's watch, its thread started the first time.
    pub fn global() -> &'static RunWatch {
        static WATCH: RunWatch = RunWatch {
            runs: Mutex::new(Watched {
                runs: Vec::new(),
                next_id: 1,
                sleeping_until: None,
            }),
            wake: Condvar::new(),
        };
        static STARTED: Once = Once::new();
        STARTED.call_once(|| {
            let spawned = std::thread::Builder::new()
                .name("serve-run-watch".to_owned())
                .spawn(|| WATCH.keep_watch());
            if let Err(e) = spawned {
                tracing::error!("cannot start the thread that stops runs past their deadline: {e}");
            }
        });
        &WATCH
    }

    fn lock(&self) -> MutexGuard<'_, Watched> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Watches a run starting now for `clients`' requests, to be stopped through `stop` at `deadline`, or
    /// once every one of `clients` has gone (at once if all have), unless it has ended.
    pub fn watch<'c>(
        &self,
        deadline: Option<Instant>,
        stop: &Arc<dyn Stoppable>,
        clients: impl IntoIterator<Item = &'c Client>,
    ) -> Watching<'_> {
        let mut watched = self.lock();
        let id = watched.next_id;
        watched.next_id += 1;
        let (mut counted, mut awaited) = (0, 0);
        for client in clients {
            client.run.store(id, Ordering::Relaxed);
            counted += 1;
            awaited += usize::from(!client.gone.load(Ordering::Relaxed));
        }
        let mut run = Run {
            id,
            deadline,
            stop: stop.clone(),
            awaited,
            stopped: None,
        };
        if counted > 0 && awaited == 0 {
            run.stop(Stopped::ClientsGone);
        }
        watched.runs.push(run);
        if let Some(deadline) = deadline
            && watched.sleeping_until.is_none_or(|at| deadline < at)
        {
            watched.sleeping_until = Some(deadline);
            self.wake.notify_one();
        }
        Watching {
            watch: self,
            id,
            ended: false,
        }
    }

    /// `client` has gone: the run answering its request, if one is, is stopped when it was its last.
    pub fn client_gone(&self, client: &Client) {
        let mut watched = self.lock();
        client.gone.store(true, Ordering::Relaxed);
        let id = client.run.load(Ordering::Relaxed);
        if let Some(run) = watched.runs.iter_mut().find(|r| r.id == id) {
            run.awaited = run.awaited.saturating_sub(1);
            if run.awaited == 0 {
                run.stop(Stopped::ClientsGone);
            }
        }
    }

    fn keep_watch(&self) {
        let mut watched = self.lock();
        loop {
            let now = Instant::now();
            for run in watched
                .runs
                .iter_mut()
                .filter(|r| r.deadline.is_some_and(|d| d <= now))
            {
                run.stop(Stopped::AtDeadline);
            }
            let next = watched
                .runs
                .iter()
                .filter(|r| r.stopped.is_none())
                .filter_map(|r| r.deadline)
                .min();
            watched.sleeping_until = next;
            watched = match next {
                Some(at) => {
                    let wait = at.saturating_duration_since(now);
                    self.wake
                        .wait_timeout(watched, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .wake
                    .wait(watched)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

/// A run being watched; ended by [`Watching::finish`] (or when dropped, by a panic say).
pub struct Watching<'a> {
    watch: &'a RunWatch,
    id: u64,
    ended: bool,
}

impl Watching<'_> {
    /// Ends the watch of a run that is over; whether, and why, it was told to stop.
    pub fn finish(mut self) -> Option<Stopped> {
        self.end()
    }

    fn end(&mut self) -> Option<Stopped> {
        self.ended = true;
        let run = {
            let mut watched = self.watch.lock();
            let at = watched.runs.iter().position(|r| r.id == self.id);
            at.map(|at| watched.runs.swap_remove(at))
        };
        // The stop is set only under the lock, on a run still watched, which it marks stopped: cleared
        // once the run is out of the watch, nothing sets it again before the next run.
        let run = run?;
        if run.stopped.is_some() {
            run.stop.clear();
        }
        run.stopped
    }
}

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    #[derive(Default)]
    struct Flag {
        set: AtomicBool,
        stops: AtomicUsize,
    }

    impl Stoppable for Flag {
        fn stop(&self) {
            self.set.store(true, Ordering::SeqCst);
            self.stops.fetch_add(1, Ordering::SeqCst);
        }
        fn clear(&self) {
            self.set.store(false, Ordering::SeqCst);
        }
    }

    /// A run that ends before its deadline is never stopped; one that goes on past it is, once, close
    /// to the deadline; and the flag is clear again for the next run.
    #[test]
    fn a_run_is_stopped_at_its_deadline_and_not_before() {
        let watch = RunWatch::global();
        let flag = Arc::new(Flag::default());
        let stop: Arc<dyn Stoppable> = flag.clone();

        let quick = watch.watch(Some(Instant::now() + Duration::from_millis(200)), &stop, []);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(quick.finish(), None);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(flag.stops.load(Ordering::SeqCst), 0);

        let started = Instant::now();
        let slow = watch.watch(Some(started + Duration::from_millis(100)), &stop, []);
        while !flag.set.load(Ordering::SeqCst) {
            assert!(started.elapsed() < Duration::from_secs(5), "never stopped");
            std::thread::sleep(Duration::from_millis(1));
        }
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(took < Duration::from_millis(600), "{took:?}");
        assert_eq!(slow.finish(), Some(Stopped::AtDeadline));
        assert!(!flag.set.load(Ordering::SeqCst));
        assert_eq!(flag.stops.load(Ordering::SeqCst), 1);
    }

    /// A deadline earlier than the one the thread sleeps until wakes it: a run of 50 ms registered while
    /// another of an hour is watched is still stopped at 50 ms.
    #[test]
    fn an_earlier_deadline_wakes_the_watch() {
        let watch = RunWatch::global();
        let (long, short) = (Arc::new(Flag::default()), Arc::new(Flag::default()));
        let (long_stop, short_stop): (Arc<dyn Stoppable>, Arc<dyn Stoppable>) =
            (long.clone(), short.clone());
        let hour = watch.watch(
            Some(Instant::now() + Duration::from_secs(3600)),
            &long_stop,
            [],
        );
        std::thread::sleep(Duration::from_millis(20));
        let started = Instant::now();
        let brief = watch.watch(Some(started + Duration::from_millis(50)), &short_stop, []);
        while !short.set.load(Ordering::SeqCst) {
            assert!(started.elapsed() < Duration::from_secs(5), "never stopped");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(brief.finish(), Some(Stopped::AtDeadline));
        assert_eq!(hour.finish(), None);
        assert_eq!(long.stops.load(Ordering::SeqCst), 0);
    }

    /// A run of two requests goes on while one client is left, and is stopped when the last goes; a run
    /// registered for clients all gone already is stopped at once; a client going after its run ended
    /// changes nothing.
    #[test]
    fn a_run_is_stopped_when_its_last_client_goes() {
        let watch = RunWatch::global();
        let flag = Arc::new(Flag::default());
        let stop: Arc<dyn Stoppable> = flag.clone();
        let (a, b) = (Client::default(), Client::default());
        let run = watch.watch(None, &stop, [&a, &b]);
        watch.client_gone(&a);
        assert!(!flag.set.load(Ordering::SeqCst));
        watch.client_gone(&b);
        assert!(flag.set.load(Ordering::SeqCst));
        assert_eq!(run.finish(), Some(Stopped::ClientsGone));
        assert!(!flag.set.load(Ordering::SeqCst));

        let again = watch.watch(None, &stop, [&a]);
        assert!(flag.set.load(Ordering::SeqCst));
        assert_eq!(again.finish(), Some(Stopped::ClientsGone));

        let c = Client::default();
        let ended = watch.watch(None, &stop, [&c]);
        assert_eq!(ended.finish(), None);
        watch.client_gone(&c);
        let next = watch.watch(None, &stop, [&Client::default()]);
        assert!(!flag.set.load(Ordering::SeqCst));
        assert_eq!(next.finish(), None);
    }
}

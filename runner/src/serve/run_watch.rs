//! Stops an engine run that passes its deadline: `--run-timeout-s`, or, when every request a run
//! answers came with a deadline of its own (a gRPC call's `grpc-timeout`, the protocol's `timeout`
//! parameter), the last of those. Without it a request whose shapes or values make the model run for
//! minutes (a Loop's trip count, a sequence of a million tokens) holds its instance for all of them, and
//! as many such requests as there are instances stop the model answering anyone.
//!
//! One thread watches every instance's runs. An instance registers each run's deadline and takes it back
//! when the run ends; the thread sleeps until the earliest deadline, and a run still registered then is
//! told to stop (ONNX Runtime's terminate flag, kiln's evaluator's stop flag), which the engine sees before
//! its next operator. A run takes two short holds of one lock; the thread is woken only when a deadline
//! comes before the one it sleeps until (the first run after a quiet spell), not once a run.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, PoisonError};
use std::time::Instant;

/// What the watch stops a run through: set from the watching thread while the run goes on, cleared
/// from the instance's once the run is over and the watch has let it go.
pub trait Stoppable: Send + Sync {
    /// Tells the run in progress to stop before its next operator.
    fn stop(&self);
    /// Lets the next run go on: a stop set as a run ended must not end the next one.
    fn clear(&self);
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
    deadline: Instant,
    stop: Arc<dyn Stoppable>,
    stopped: bool,
}

impl RunWatch {
    /// The process's watch, its thread started the first time.
    pub fn global() -> &'static RunWatch {
        static WATCH: RunWatch = RunWatch {
            runs: Mutex::new(Watched {
                runs: Vec::new(),
                next_id: 0,
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

    /// Watches a run starting now, to be stopped through `stop` at `deadline` unless it has ended.
    pub fn watch(&self, deadline: Instant, stop: &Arc<dyn Stoppable>) -> Watching<'_> {
        let mut watched = self.lock();
        let id = watched.next_id;
        watched.next_id += 1;
        watched.runs.push(Run {
            id,
            deadline,
            stop: stop.clone(),
            stopped: false,
        });
        if watched.sleeping_until.is_none_or(|at| deadline < at) {
            watched.sleeping_until = Some(deadline);
            self.wake.notify_one();
        }
        Watching {
            watch: self,
            id,
            ended: false,
        }
    }

    fn keep_watch(&self) {
        let mut watched = self.lock();
        loop {
            let now = Instant::now();
            for run in watched
                .runs
                .iter_mut()
                .filter(|r| !r.stopped && r.deadline <= now)
            {
                run.stop.stop();
                run.stopped = true;
            }
            let next = watched
                .runs
                .iter()
                .filter(|r| !r.stopped)
                .map(|r| r.deadline)
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
    /// Ends the watch of a run that is over; whether it was told to stop.
    pub fn finish(mut self) -> bool {
        self.end()
    }

    fn end(&mut self) -> bool {
        self.ended = true;
        let run = {
            let mut watched = self.watch.lock();
            let at = watched.runs.iter().position(|r| r.id == self.id);
            at.map(|at| watched.runs.swap_remove(at))
        };
        // The stop is set only under the lock, on a run still watched, which it marks stopped: cleared
        // once the run is out of the watch, nothing sets it again before the next run.
        match run {
            Some(run) if run.stopped => {
                run.stop.clear();
                true
            }
            _ => false,
        }
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

        let quick = watch.watch(Instant::now() + Duration::from_millis(200), &stop);
        std::thread::sleep(Duration::from_millis(20));
        assert!(!quick.finish());
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(flag.stops.load(Ordering::SeqCst), 0);

        let started = Instant::now();
        let slow = watch.watch(started + Duration::from_millis(100), &stop);
        while !flag.set.load(Ordering::SeqCst) {
            assert!(started.elapsed() < Duration::from_secs(5), "never stopped");
            std::thread::sleep(Duration::from_millis(1));
        }
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(took < Duration::from_millis(600), "{took:?}");
        assert!(slow.finish());
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
        let hour = watch.watch(Instant::now() + Duration::from_secs(3600), &long_stop);
        std::thread::sleep(Duration::from_millis(20));
        let started = Instant::now();
        let brief = watch.watch(started + Duration::from_millis(50), &short_stop);
        while !short.set.load(Ordering::SeqCst) {
            assert!(started.elapsed() < Duration::from_secs(5), "never stopped");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(started.elapsed() < Duration::from_millis(500));
        assert!(brief.finish());
        assert!(!hour.finish());
        assert_eq!(long.stops.load(Ordering::SeqCst), 0);
    }
}

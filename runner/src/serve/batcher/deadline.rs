//! Which of a batch's requests are still awaited, and when the run answering them is stopped.
//!
//! A request's client may stop waiting while the request is queued: its own deadline passes (gRPC's
//! `grpc-timeout`, at which the call is ended: `call_deadline`; the protocol's `timeout` parameter), or
//! it closes its connection. Its answer then has nowhere to go, and running it anyway is how a server
//! that falls behind stays behind: every client times out, retries, and the instances spend their time
//! on requests nobody awaits. Such a request is not run. A run is stopped at `--run-timeout-s`, or
//! earlier once every request it answers has passed its own deadline (or its client has gone:
//! `run_watch`).

use std::time::{Duration, Instant};

use super::Request;
use crate::serve::ServeError;
use crate::serve::metrics::VersionMetrics;

/// When a run is stopped, and what its requests are told then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RunDeadline {
    pub at: Instant,
    why: Why,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// `--run-timeout-s`, the run's limit whoever asked.
    RunTimeout(Duration),
    /// The last of the requests' own deadlines.
    Callers,
}

impl RunDeadline {
    /// The deadline of a run of `requests` starting at `now`: `timeout` after it, or the last of the
    /// requests' own deadlines when each has one and that comes first; `None`: the run is not watched.
    pub fn of(requests: &[Request], timeout: Option<Duration>, now: Instant) -> Option<Self> {
        let limit = timeout.map(|t| Self {
            at: now
                .checked_add(t)
                .unwrap_or(now + Duration::from_secs(1 << 32)),
            why: Why::RunTimeout(t),
        });
        // `None` as soon as one request has no deadline: its client waits as long as the run may take.
        let callers = requests
            .iter()
            .try_fold(None, |last: Option<Instant>, r| {
                r.deadline.map(|d| last.max(Some(d)))
            })
            .flatten()
            .map(|at| Self {
                at,
                why: Why::Callers,
            });
        match (limit, callers) {
            (Some(limit), Some(callers)) => Some(if callers.at < limit.at {
                callers
            } else {
                limit
            }),
            (limit, callers) => limit.or(callers),
        }
    }

    /// What a request of a run stopped at this deadline is answered.
    pub fn error(&self) -> ServeError {
        ServeError::DeadlineExceeded(match self.why {
            Why::RunTimeout(t) => format!(
                "the model ran past kiln-runner serve --run-timeout-s ({} s) on these inputs and was \
                 stopped; send fewer rows, or ask the runner's operator to raise the limit",
                t.as_secs_f64()
            ),
            Why::Callers => return passed_while_running(),
        })
    }

    /// Whether it is the last of the requests' own deadlines (not `--run-timeout-s`).
    pub fn is_callers(&self) -> bool {
        self.why == Why::Callers
    }

    /// The label of a stop at this deadline on `/metrics`.
    pub fn reason(&self) -> &'static str {
        match self.why {
            Why::RunTimeout(_) => "run_timeout",
            Why::Callers => "deadline",
        }
    }
}

/// What a request whose deadline passed while the model ran for it is answered.
pub(super) fn passed_while_running() -> ServeError {
    ServeError::DeadlineExceeded("the request's deadline passed while the model ran".to_owned())
}

/// The requests of `batch` whose clients still await an answer at `now`. The others are not run: those
/// whose client has gone are dropped, those past their deadline answered so, each counted as abandoned.
pub(super) fn still_awaited(
    batch: Vec<Request>,
    now: Instant,
    metrics: &VersionMetrics,
) -> Vec<Request> {
    batch
        .into_iter()
        .filter_map(|request| {
            if request.reply.is_closed() {
                metrics.abandoned();
                return None;
            }
            if request.deadline.is_some_and(|d| d <= now) {
                metrics.abandoned();
                let _ = request.reply.send(Err(ServeError::DeadlineExceeded(
                    "the request's deadline passed while it waited for an instance; it was not run"
                        .to_owned(),
                )));
                return None;
            }
            Some(request)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::tensor::Tensor;
    use tokio::sync::oneshot;

    type Answer = oneshot::Receiver<Result<Vec<Tensor>, ServeError>>;

    /// Requests with these deadlines of their own, and where each is answered.
    fn batch(deadlines: &[Option<Instant>]) -> (Vec<Request>, Vec<Answer>) {
        deadlines
            .iter()
            .map(|&deadline| {
                let (reply, answer) = oneshot::channel();
                let request = Request {
                    inputs: vec![],
                    rows: 1,
                    bytes: 0,
                    arrived: Instant::now(),
                    deadline,
                    client: Default::default(),
                    reply,
                };
                (request, answer)
            })
            .unzip()
    }

    #[test]
    fn a_run_is_stopped_at_its_timeout_or_once_every_caller_has_given_up() {
        let now = Instant::now();
        let seconds = |s| Duration::from_secs(s);
        let (soon, later) = (Some(now + seconds(1)), Some(now + seconds(5)));
        let at = |deadlines: &[Option<Instant>], timeout: Option<Duration>| {
            let (requests, _answers) = batch(deadlines);
            RunDeadline::of(&requests, timeout, now).map(|d| (d.at, d.reason()))
        };
        let minute = Some(seconds(60));
        assert_eq!(at(&[soon], minute), Some((now + seconds(1), "deadline")));
        // The last caller's deadline: until then someone awaits the answer.
        assert_eq!(
            at(&[soon, later], minute),
            Some((now + seconds(5), "deadline"))
        );
        // One caller without a deadline awaits it until the timeout.
        assert_eq!(
            at(&[soon, None], minute),
            Some((now + seconds(60), "run_timeout"))
        );
        assert_eq!(
            at(&[later], Some(seconds(2))),
            Some((now + seconds(2), "run_timeout"))
        );
        assert_eq!(at(&[soon], None), Some((now + seconds(1), "deadline")));
        assert_eq!(at(&[None], None), None);
    }

    #[test]
    fn requests_nobody_awaits_are_not_run() {
        let now = Instant::now();
        let metrics = VersionMetrics::new("deadline-test");
        let past = Some(now - Duration::from_millis(1));
        let (requests, mut answers) =
            batch(&[None, past, None, Some(now + Duration::from_secs(9))]);
        drop(answers.remove(2));
        let kept = still_awaited(requests, now, &metrics);
        assert_eq!(kept.len(), 2);
        assert!(kept.iter().all(|r| r.deadline != past));
        // The one past its deadline is told so; the one whose client went is dropped unanswered.
        let told = answers.remove(1).try_recv().unwrap().unwrap_err();
        assert!(matches!(told, ServeError::DeadlineExceeded(_)), "{told}");
    }
}

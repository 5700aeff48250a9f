//! Dynamic batching, as Triton's dynamic batcher does it: requests wait in one queue; a free instance takes
//! the oldest and, for up to `delay` after it arrived, the next ones whose shapes stack with it, up to
//! `max_batch` rows along the batch dimension, runs them as one and hands each its rows of the outputs.
//! An instance whose last batch was a lone request takes only what is already waiting: one client alone
//! is not held back for others who are not calling. Nor does an instance wait while another one is idle:
//! the wait buys throughput only when every instance is busy, and an idle one is capacity going unused
//! (with 8 clients on 2 single-threaded instances, the first would otherwise gather all 8 while the
//! second stood by). Nor does it wait when its batches have shown that more rows of the kind it holds
//! would cost no less per row ([`BatchCosts`]): waiting then buys nothing but latency.
//! A batch the engine refuses is run again one request at a time, so one bad request fails alone.
//! A request whose client no longer awaits it is not run, and a run past its deadline is stopped
//! ([`deadline`]).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use tokio::sync::oneshot;

use super::ServeError;
use super::batch_cost::BatchCosts;
use super::metrics::VersionMetrics;
use super::request_memory::RequestMemory;
use super::run_watch::{Client, RunWatch, Stoppable, Stopped};
use super::session::{AfterRun, Session};
use super::signature::Signature;
use super::tensor::Tensor;

mod deadline;
mod rows;
use deadline::{RunDeadline, still_awaited};
use rows::{split, stack, stacks};

/// How requests are batched and how many may wait.
#[derive(Debug, Clone, Copy)]
pub struct BatchPolicy {
    /// Rows per batch at most; 1 turns batching off.
    pub max_batch: usize,
    /// How long the first request of a batch waits for others.
    pub delay: Duration,
    /// Requests waiting at most; more are refused as unavailable (HTTP 503, gRPC UNAVAILABLE).
    pub max_queue: usize,
    /// Whether a run that no other request waits for has the engine give back, once it is over, the
    /// memory no tensor holds (off with `--keep-engine-memory`). While requests wait, the next run will
    /// likely need that memory again; when none does, the load has paused or ended, and a runner that
    /// served one large request does not stay at its peak.
    pub give_back_memory: bool,
    /// How long a run may take before it is stopped (`--run-timeout-s`); `None`: no limit.
    pub run_timeout: Option<Duration>,
}

struct Request {
    inputs: Vec<Tensor>,
    rows: usize,
    /// The inputs' bytes: what the batch cost is fitted against.
    bytes: usize,
    arrived: Instant,
    /// When its client stops waiting for the answer, if it said (`deadline`).
    deadline: Option<Instant>,
    /// Its client, as the run watch knows it.
    client: Arc<Client>,
    reply: oneshot::Sender<Result<Vec<Tensor>, ServeError>>,
}

/// The queue in front of one loaded variant's instances. Dropping it (the last request of a variant that
/// was switched away from has been answered) closes the queue and its instances end.
pub struct Batcher {
    sender: Sender<Request>,
    depth: Arc<AtomicUsize>,
    policy: BatchPolicy,
    metrics: VersionMetrics,
}

struct Instance {
    session: Session,
    /// Stops the session's run in progress.
    stop: Arc<dyn Stoppable>,
    /// Where a batch's stacked inputs, a copy of its requests', are counted while it runs.
    memory: RequestMemory,
    signature: Arc<Signature>,
    /// Held by the instance gathering a batch: one gathers at a time, the others wait their turn.
    receiver: Arc<Mutex<Receiver<Request>>>,
    depth: Arc<AtomicUsize>,
    /// Instances not running a batch, this one included while it gathers one.
    idle: Arc<AtomicUsize>,
    /// Signalled when an instance finishes a batch, so that one waiting for company stops waiting.
    freed: (Sender<()>, Receiver<()>),
    policy: BatchPolicy,
    /// A request that did not stack with the batch before it: the first of this instance's next batch.
    held: Option<Request>,
    /// The last batch was one request: nobody else was calling, so the next lone request does not wait
    /// `delay` for company that is not coming (a single client pays no batching delay).
    alone_last_time: bool,
    /// What this instance's batches have cost the engine, by size.
    costs: BatchCosts,
    metrics: VersionMetrics,
}

impl Batcher {
    /// Starts one thread per session of `version` (the label of its queue's and engine's metrics).
    pub fn start(
        sessions: Vec<Session>,
        signature: Arc<Signature>,
        policy: BatchPolicy,
        version: &str,
        memory: RequestMemory,
    ) -> Self {
        let metrics = VersionMetrics::new(version);
        let (sender, receiver) = crossbeam_channel::unbounded();
        let receiver = Arc::new(Mutex::new(receiver));
        let depth = Arc::new(AtomicUsize::new(0));
        let idle = Arc::new(AtomicUsize::new(sessions.len()));
        let freed = crossbeam_channel::bounded(1);
        let batching = signature.batchable && policy.max_batch > 1;
        let policy = BatchPolicy {
            max_batch: if batching { policy.max_batch } else { 1 },
            ..policy
        };
        for (n, session) in sessions.into_iter().enumerate() {
            let mut instance = Instance {
                stop: session.stop(),
                session,
                signature: signature.clone(),
                receiver: receiver.clone(),
                depth: depth.clone(),
                idle: idle.clone(),
                freed: freed.clone(),
                policy,
                held: None,
                alone_last_time: true,
                costs: BatchCosts::default(),
                metrics: metrics.clone(),
                memory: memory.clone(),
            };
            let spawned = std::thread::Builder::new()
                .name(format!("serve-instance-{n}"))
                .spawn(move || instance.serve());
            if let Err(e) = spawned {
                tracing::error!("cannot start serving instance {n}: {e}");
            }
        }
        Self {
            sender,
            depth,
            policy,
            metrics,
        }
    }

    /// Queues checked inputs and waits for their outputs; `deadline`: when the client stops waiting.
    pub async fn infer(
        &self,
        inputs: Vec<Tensor>,
        deadline: Option<Instant>,
    ) -> Result<Vec<Tensor>, ServeError> {
        if self.depth.load(Ordering::Relaxed) >= self.policy.max_queue {
            return Err(ServeError::Unavailable(format!(
                "{} requests are already waiting; try again shortly",
                self.policy.max_queue
            )));
        }
        let rows = inputs
            .first()
            .and_then(|t| t.shape.first())
            .map_or(1, |&r| r.max(0) as usize);
        let bytes = inputs.iter().map(|t| t.data.len()).sum();
        let (reply, answer) = oneshot::channel();
        let client = Arc::new(Client::default());
        let request = Request {
            inputs,
            rows,
            bytes,
            arrived: Instant::now(),
            deadline,
            client: client.clone(),
            reply,
        };
        self.depth.fetch_add(1, Ordering::Relaxed);
        self.metrics.queue_depth(self.depth.load(Ordering::Relaxed));
        if self.sender.send(request).is_err() {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            return Err(ServeError::Unavailable(
                "the model's instances stopped".to_owned(),
            ));
        }
        // Dropped before the answer came (the client went: tonic ended its call, actix its connection),
        // it tells the watch, which stops the run answering it once no other client awaits that run.
        let mut waiting = ClientWaiting(Some(client));
        let answer = answer.await;
        waiting.0 = None;
        answer.map_err(|_| {
            ServeError::Inference("the serving instance ended before answering".to_owned())
        })?
    }
}

/// A request's client waiting for its answer (`None` once answered); dropped while waiting, the client
/// has gone.
struct ClientWaiting(Option<Arc<Client>>);

impl Drop for ClientWaiting {
    fn drop(&mut self) {
        if let Some(client) = &self.0 {
            RunWatch::global().client_gone(client);
        }
    }
}

impl Instance {
    fn serve(&mut self) {
        while let Some(batch) = self.next_batch() {
            self.run(batch);
            self.idle.fetch_add(1, Ordering::Relaxed);
            // Full means a signal is already pending: one is enough to end a wait.
            let _ = self.freed.0.try_send(());
        }
    }

    fn take(&self, request: Request) -> Request {
        self.depth.fetch_sub(1, Ordering::Relaxed);
        self.metrics.queue_depth(self.depth.load(Ordering::Relaxed));
        request
    }

    /// The next batch, or `None` once the queue is closed and empty.
    fn next_batch(&mut self) -> Option<Vec<Request>> {
        let Ok(receiver) = self.receiver.lock() else {
            return None;
        };
        let first = match self.held.take() {
            Some(held) => held,
            None => self.take(receiver.recv().ok()?),
        };
        let deadline = first.arrived + self.policy.delay;
        let (mut rows, mut bytes) = (first.rows, first.bytes);
        let mut batch = vec![first];
        while rows < self.policy.max_batch {
            let next = match receiver.try_recv() {
                Ok(next) => next,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {
                    let row_bytes = bytes as f64 / rows.max(1) as f64;
                    match self.wait_for_company(&receiver, (rows, row_bytes), deadline) {
                        Some(next) => next,
                        None => break,
                    }
                }
            };
            let next = self.take(next);
            if rows + next.rows > self.policy.max_batch || !stacks(&batch[0].inputs, &next.inputs) {
                self.held = Some(next);
                break;
            }
            rows += next.rows;
            bytes += next.bytes;
            batch.push(next);
        }
        self.alone_last_time = batch.len() == 1;
        // Busy before the queue is let go: the next instance to gather must not count this one as idle.
        self.idle.fetch_sub(1, Ordering::Relaxed);
        Some(batch)
    }

    /// The next request to arrive before `deadline`, unless waiting is pointless: this instance's last
    /// batch was a lone request, a bigger batch than `rows` rows of `row_bytes` input bytes would not be
    /// cheaper per row, or another instance is (or becomes) idle.
    fn wait_for_company(
        &self,
        receiver: &Receiver<Request>,
        (rows, row_bytes): (usize, f64),
        deadline: Instant,
    ) -> Option<Request> {
        if self.alone_last_time
            || !self
                .costs
                .waiting_pays(rows, row_bytes, self.policy.max_batch)
        {
            return None;
        }
        loop {
            if self.idle.load(Ordering::Relaxed) > 1 {
                return None;
            }
            crossbeam_channel::select! {
                recv(receiver) -> next => return next.ok(),
                // A signal from before this wait is harmless: the check above runs again.
                recv(self.freed.1) -> _ => {}
                default(deadline.saturating_duration_since(Instant::now())) => return None,
            }
        }
    }

    /// Runs `inputs` (of `requests`) on the engine, a panic answered as an error and the run stopped at
    /// `deadline` or once the requests' clients have all gone, and returns how long the run took (each
    /// run is timed once, for /metrics and for the batching fit alike).
    fn run_guarded(
        &mut self,
        inputs: &[Tensor],
        requests: &[Request],
        deadline: Option<RunDeadline>,
    ) -> (Result<Vec<Tensor>, ServeError>, Duration) {
        let signature = self.signature.clone();
        let after = self.after_run();
        let started = Instant::now();
        let clients = requests.iter().map(|r| &*r.client);
        let watching = RunWatch::global().watch(deadline.map(|d| d.at), &self.stop, clients);
        let outputs = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.session.run(inputs, &signature, after)
        }))
        .unwrap_or_else(|_| {
            Err(ServeError::Inference(
                "the engine failed on these inputs (it panicked); the model was not run".to_owned(),
            ))
        });
        // Only a run the engine says it stopped was: one told to stop as it ended has its answer, and
        // one that failed otherwise (its outputs past --max-response-mib) keeps its own error.
        let outputs = match (outputs, watching.finish(), deadline) {
            (Err(ServeError::DeadlineExceeded(_)), Some(Stopped::AtDeadline), Some(deadline)) => {
                self.metrics.run_stopped(deadline.reason());
                Err(deadline.error())
            }
            (Err(ServeError::DeadlineExceeded(_)), Some(Stopped::ClientsGone), _) => {
                self.metrics.run_stopped("clients_gone");
                Err(ServeError::DeadlineExceeded(
                    "every client of this run went before it finished".to_owned(),
                ))
            }
            (outputs, ..) => outputs,
        };
        let took = started.elapsed();
        super::returned_memory::run_finished();
        self.metrics.computed(took);
        (outputs, took)
    }

    /// Whether the run about to start gives back the engine's unused memory: when asked to, and no request
    /// waits (neither in the queue nor held back by this instance for its next batch).
    fn after_run(&self) -> AfterRun {
        if self.policy.give_back_memory
            && self.held.is_none()
            && self.depth.load(Ordering::Relaxed) == 0
        {
            AfterRun::GiveBack
        } else {
            AfterRun::Keep
        }
    }

    /// Runs `inputs` of `requests`, `rows` rows, counting what a successful run cost.
    fn run_counted(
        &mut self,
        (inputs, requests): (&[Tensor], &[Request]),
        rows: usize,
        deadline: Option<RunDeadline>,
    ) -> Result<Vec<Tensor>, ServeError> {
        let bytes = inputs.iter().map(|t| t.data.len()).sum();
        let (outputs, took) = self.run_guarded(inputs, requests, deadline);
        if outputs.is_ok() {
            self.costs.record(rows, bytes, took);
        }
        outputs
    }

    /// The deadline of a run of `requests` starting now.
    fn deadline(&self, requests: &[Request]) -> Option<RunDeadline> {
        RunDeadline::of(requests, self.policy.run_timeout, Instant::now())
    }

    /// Runs a batch and answers each of its requests that is still awaited.
    fn run(&mut self, batch: Vec<Request>) {
        let starting = Instant::now();
        for request in &batch {
            self.metrics
                .queued(starting.saturating_duration_since(request.arrived));
        }
        let batch = still_awaited(batch, starting, &self.metrics);
        if batch.is_empty() {
            return;
        }
        let rows = batch.iter().map(|r| r.rows).sum();
        self.metrics.batch_size(rows);
        let deadline = self.deadline(&batch);
        if batch.len() == 1 {
            let request = batch.into_iter().next().expect("one request");
            let alone = std::slice::from_ref(&request);
            let outputs = self.run_counted((&request.inputs, alone), rows, deadline);
            let _ = request.reply.send(outputs);
            return;
        }
        let stacked = stack(&batch);
        let mut stacked_held = self.memory.held();
        stacked_held.count(stacked.iter().map(|t| t.data.len()).sum());
        let parts = self
            .run_counted((&stacked, &batch), rows, deadline)
            .and_then(|outputs| split(&outputs, &batch));
        // Freed before any request is answered: once answered, a request's client may find it held.
        drop((stacked, stacked_held));
        match parts {
            Ok(parts) => {
                for (request, outputs) in batch.into_iter().zip(parts) {
                    let _ = request.reply.send(Ok(outputs));
                }
            }
            // Stopped once every request's own deadline had passed: run alone, each would be too.
            Err(ServeError::DeadlineExceeded(_)) if deadline.is_some_and(|d| d.is_callers()) => {
                for request in batch {
                    let _ = request.reply.send(Err(deadline::passed_while_running()));
                }
            }
            Err(_) => self.run_each_alone(batch),
        }
    }

    /// Runs a failed batch's requests one at a time, so that only those that fail alone fail, each with
    /// a deadline of its own. A request whose client went while the batch ran is not run again; one past
    /// its deadline is told so.
    fn run_each_alone(&mut self, batch: Vec<Request>) {
        for request in batch {
            if request.reply.is_closed() {
                continue;
            }
            if request.deadline.is_some_and(|d| d <= Instant::now()) {
                let _ = request.reply.send(Err(deadline::passed_while_running()));
                continue;
            }
            let alone = std::slice::from_ref(&request);
            let (outputs, _) = self.run_guarded(&request.inputs, alone, self.deadline(alone));
            let _ = request.reply.send(outputs);
        }
    }
}

#[cfg(test)]
mod tests;

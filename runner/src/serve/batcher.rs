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
use super::session::{AfterRun, Session};
use super::signature::Signature;
use super::tensor::Tensor;

mod rows;
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
}

struct Request {
    inputs: Vec<Tensor>,
    rows: usize,
    /// The inputs' bytes: what the batch cost is fitted against.
    bytes: usize,
    arrived: Instant,
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

    /// Queues checked inputs and waits for their outputs.
    pub async fn infer(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, ServeError> {
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
        let request = Request {
            inputs,
            rows,
            bytes,
            arrived: Instant::now(),
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
        answer.await.map_err(|_| {
            ServeError::Inference("the serving instance ended before answering".to_owned())
        })?
    }
}

impl Instance {
    fn serve(&mut self) {
        while let Some(batch) = self.next_batch() {
            let rows = batch.iter().map(|r| r.rows).sum();
            self.metrics.batch_size(rows);
            self.run(batch, rows);
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

    /// Runs `inputs` on the engine, a panic answered as an error, and returns how long the run took
    /// (each run is timed once, for /metrics and for the batching fit alike).
    fn run_guarded(&mut self, inputs: &[Tensor]) -> (Result<Vec<Tensor>, ServeError>, Duration) {
        let signature = self.signature.clone();
        let after = self.after_run();
        let started = Instant::now();
        let outputs = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.session.run(inputs, &signature, after)
        }))
        .unwrap_or_else(|_| {
            Err(ServeError::Inference(
                "the engine failed on these inputs (it panicked); the model was not run".to_owned(),
            ))
        });
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

    /// Runs `inputs` of `rows` rows, counting what a successful run cost.
    fn run_counted(&mut self, inputs: &[Tensor], rows: usize) -> Result<Vec<Tensor>, ServeError> {
        let bytes = inputs.iter().map(|t| t.data.len()).sum();
        let (outputs, took) = self.run_guarded(inputs);
        if outputs.is_ok() {
            self.costs.record(rows, bytes, took);
        }
        outputs
    }

    /// Runs a batch of `rows` rows in all and answers each of its requests.
    fn run(&mut self, batch: Vec<Request>, rows: usize) {
        let starting = Instant::now();
        for request in &batch {
            self.metrics
                .queued(starting.saturating_duration_since(request.arrived));
        }
        if batch.len() == 1 {
            let request = batch.into_iter().next().expect("one request");
            let outputs = self.run_counted(&request.inputs, rows);
            let _ = request.reply.send(outputs);
            return;
        }
        let stacked = stack(&batch);
        let mut stacked_held = self.memory.held();
        stacked_held.count(stacked.iter().map(|t| t.data.len()).sum());
        let parts = self
            .run_counted(&stacked, rows)
            .and_then(|outputs| split(&outputs, &batch));
        // Freed before any request is answered: once answered, a request's client may find it held.
        drop((stacked, stacked_held));
        match parts {
            Ok(parts) => {
                for (request, outputs) in batch.into_iter().zip(parts) {
                    let _ = request.reply.send(Ok(outputs));
                }
            }
            Err(_) => {
                for request in batch {
                    let (outputs, _) = self.run_guarded(&request.inputs);
                    let _ = request.reply.send(outputs);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;
    use crate::serve::metrics as served_metrics;
    use candle_core::Device;
    use prost::Message;

    /// Two sessions of one x [batch, 8] → y [batch, 4] model (random weights) on kiln's evaluator.
    fn mlp(dir: &std::path::Path) -> ([Session; 2], Arc<Signature>) {
        let model = kiln_onnx::sample_models::mlp_graph(false);
        let path = dir.join("model.onnx");
        std::fs::write(&path, model.encode_to_vec()).unwrap();
        let checked = kiln_onnx::model_check::check_model(&model).unwrap();
        let signature = Signature::from_onnx(&checked.inputs, &checked.outputs).unwrap();
        assert!(signature.batchable);
        let load =
            || Session::load(&Engine::Kiln, &path, (&Device::Cpu, "cpu"), (1, true)).unwrap();
        ([load(), load()], Arc::new(signature))
    }

    fn rows(n: usize, seed: f32) -> Vec<Tensor> {
        let values: Vec<u8> = (0..n * 8)
            .flat_map(|i| (seed + i as f32 * 0.25).to_le_bytes())
            .collect();
        vec![
            Tensor::from_raw(
                "x".into(),
                super::super::tensor::Datatype::Fp32,
                vec![n as i64, 8],
                values.into(),
            )
            .unwrap(),
        ]
    }

    /// Requests that arrive together are run as one batch, and each gets exactly what it would alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_a_batch_and_each_gets_its_own_rows() {
        let dir = tempfile::tempdir().unwrap();
        let ([session, mut alone], signature) = mlp(dir.path());
        let policy = BatchPolicy {
            max_batch: 16,
            delay: Duration::from_millis(200),
            max_queue: 64,
            give_back_memory: true,
        };
        let memory = RequestMemory::new(Some(1 << 20));
        let batcher = Arc::new(Batcher::start(
            vec![session],
            signature.clone(),
            policy,
            "1",
            memory.clone(),
        ));
        let requests: Vec<(usize, f32)> = vec![(1, 0.0), (2, 1.0), (3, -2.0), (1, 5.0)];
        let answers = futures_util::future::join_all(requests.iter().map(|&(n, seed)| {
            let batcher = batcher.clone();
            async move { batcher.infer(rows(n, seed)).await }
        }))
        .await;
        for ((n, seed), answer) in requests.into_iter().zip(answers) {
            let got = answer.unwrap();
            let want = alone
                .run(&rows(n, seed), &signature, AfterRun::Keep)
                .unwrap();
            assert_eq!(got[0].shape, [n as i64, 4]);
            let close = got[0]
                .data
                .chunks_exact(4)
                .zip(want[0].data.chunks_exact(4))
                .all(|(a, b)| {
                    let (a, b) = (
                        f32::from_le_bytes(a.try_into().unwrap()),
                        f32::from_le_bytes(b.try_into().unwrap()),
                    );
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs())
                });
            assert!(close, "request of {n} rows got other rows' numbers");
        }
        // A batch's stacked inputs, a copy of its requests', were counted while it ran, and freed after.
        assert!(memory.peak() > 0);
        assert_eq!(memory.used(), 0);
    }

    /// With an instance idle, another does not wait out the delay for rows that may not come: rounds of
    /// two concurrent requests are answered at once although the delay is a minute. (With one instance,
    /// every round after the first batch of two would wait the whole minute for a third request.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_instance_does_not_wait_for_company_while_another_is_idle() {
        let dir = tempfile::tempdir().unwrap();
        let (sessions, signature) = mlp(dir.path());
        let policy = BatchPolicy {
            max_batch: 16,
            delay: Duration::from_secs(60),
            max_queue: 64,
            give_back_memory: true,
        };
        let batcher = Arc::new(Batcher::start(
            sessions.into(),
            signature,
            policy,
            "1",
            RequestMemory::new(None),
        ));
        let rounds = async {
            for round in 0..5 {
                let (a, b) = tokio::join!(
                    batcher.infer(rows(1, round as f32)),
                    batcher.infer(rows(2, -(round as f32)))
                );
                assert_eq!(a.unwrap()[0].shape, [1, 4]);
                assert_eq!(b.unwrap()[0].shape, [2, 4]);
            }
        };
        tokio::time::timeout(Duration::from_secs(30), rounds)
            .await
            .expect("a request waited for the batching delay while an instance was idle");
    }

    #[test]
    fn only_inputs_that_differ_in_the_first_dimension_stack() {
        let a = rows(2, 0.0);
        let b = rows(5, 1.0);
        assert!(stacks(&a, &b));
        let other = vec![
            Tensor::from_raw(
                "x".into(),
                super::super::tensor::Datatype::Fp32,
                vec![1, 4],
                vec![0u8; 16].into(),
            )
            .unwrap(),
        ];
        assert!(!stacks(&a, &other));
    }

    /// A `_count` or `_sum` of /metrics for `version` (0 before anything is recorded).
    fn metric(name: &str, version: &str) -> f64 {
        let series = format!("{name}{{version=\"{version}\"}} ");
        served_metrics::handle()
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(&series)?.parse().ok())
            .unwrap_or(0.0)
    }

    /// /metrics splits a request's time as Triton's do, by version: each request's wait in the queue, and
    /// each run of the engine once, however many requests it answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_request_counts_its_wait_and_each_batch_its_engine_run() {
        let dir = tempfile::tempdir().unwrap();
        let ([session, _], signature) = mlp(dir.path());
        let policy = BatchPolicy {
            max_batch: 16,
            delay: Duration::from_millis(200),
            max_queue: 64,
            give_back_memory: true,
        };
        // A version no other test of this process serves: its series are this test's alone.
        let version = "metrics-split";
        let batcher = Arc::new(Batcher::start(
            vec![session],
            signature,
            policy,
            version,
            RequestMemory::new(None),
        ));
        batcher.infer(rows(1, 0.0)).await.unwrap();
        let answers = futures_util::future::join_all((0..4).map(|n| {
            let batcher = batcher.clone();
            async move { batcher.infer(rows(1, n as f32)).await }
        }))
        .await;
        assert!(answers.iter().all(Result::is_ok));
        let requests = metric("kiln_serve_queue_duration_seconds_count", version);
        let engine_runs = metric("kiln_serve_compute_duration_seconds_count", version);
        let batches = metric("kiln_serve_batch_size_count", version);
        assert_eq!(requests, 5.0);
        // The four may or may not have shared a batch; the first ran alone.
        assert!(
            (2.0..=5.0).contains(&engine_runs),
            "{engine_runs} runs for {requests} requests"
        );
        assert_eq!(batches, engine_runs, "one batch size per run");
        assert!(metric("kiln_serve_compute_duration_seconds_sum", version) > 0.0);
        assert_eq!(metric("kiln_serve_queue_depth", version), 0.0);
    }

    /// A full queue refuses at once instead of growing without bound.
    #[tokio::test]
    async fn a_full_queue_answers_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let ([session, _], signature) = mlp(dir.path());
        let batcher = Batcher::start(
            vec![session],
            signature,
            BatchPolicy {
                max_batch: 1,
                delay: Duration::ZERO,
                max_queue: 1,
                give_back_memory: true,
            },
            "1",
            RequestMemory::new(None),
        );
        batcher.depth.store(1, Ordering::Relaxed);
        let err = batcher.infer(rows(1, 0.0)).await.unwrap_err();
        assert!(matches!(err, ServeError::Unavailable(_)), "{err}");
    }
}

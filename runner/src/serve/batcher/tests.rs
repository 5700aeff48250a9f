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
    let load = || Session::load(&Engine::Kiln, &path, (&Device::Cpu, "cpu"), (1, true)).unwrap();
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
        run_timeout: None,
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
        async move { batcher.infer(rows(n, seed), None).await }
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
        run_timeout: None,
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
                batcher.infer(rows(1, round as f32), None),
                batcher.infer(rows(2, -(round as f32)), None)
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
        run_timeout: None,
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
    batcher.infer(rows(1, 0.0), None).await.unwrap();
    let answers = futures_util::future::join_all((0..4).map(|n| {
        let batcher = batcher.clone();
        async move { batcher.infer(rows(1, n as f32), None).await }
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
            run_timeout: None,
        },
        "1",
        RequestMemory::new(None),
    );
    batcher.depth.store(1, Ordering::Relaxed);
    let err = batcher.infer(rows(1, 0.0), None).await.unwrap_err();
    assert!(matches!(err, ServeError::Unavailable(_)), "{err}");
}

mod deadlines;

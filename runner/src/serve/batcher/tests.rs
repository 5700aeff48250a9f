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

mod deadlines {
    use super::*;
    use kiln_onnx::proto::{
        AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto,
        TypeProto, ValueInfoProto, attribute_proto::AttributeType, tensor_proto::DataType,
        tensor_shape_proto, type_proto,
    };

    fn value(name: &str, elem: DataType, dims: &[i64]) -> ValueInfoProto {
        let dim = |d: &i64| tensor_shape_proto::Dimension {
            value: Some(tensor_shape_proto::dimension::Value::DimValue(*d)),
            ..Default::default()
        };
        ValueInfoProto {
            name: Some(name.to_owned()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: Some(elem as i32),
                    shape: Some(TensorShapeProto {
                        dim: dims.iter().map(dim).collect(),
                    }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        NodeProto {
            op_type: Some(op.to_owned()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// A model that runs as long as its client says: a Loop of `trips` body runs over `x` (a float).
    fn as_long_as_asked(dir: &std::path::Path) -> (Session, Arc<Signature>) {
        let body = GraphProto {
            name: Some("body".into()),
            node: vec![
                node("Identity", &["cond_in"], &["cond_out"]),
                node("Abs", &["acc_in"], &["acc_out"]),
            ],
            input: vec![
                value("i", DataType::Int64, &[]),
                value("cond_in", DataType::Bool, &[]),
                value("acc_in", DataType::Float, &[1]),
            ],
            output: vec![
                value("cond_out", DataType::Bool, &[]),
                value("acc_out", DataType::Float, &[1]),
            ],
            ..Default::default()
        };
        let mut looped = node("Loop", &["trips", "", "x"], &["y"]);
        looped.attribute.push(AttributeProto {
            name: Some("body".into()),
            r#type: Some(AttributeType::Graph as i32),
            g: Some(body),
            ..Default::default()
        });
        let model = ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(17),
            }],
            graph: Some(GraphProto {
                name: Some("as_long_as_asked".into()),
                node: vec![looped],
                input: vec![
                    value("trips", DataType::Int64, &[]),
                    value("x", DataType::Float, &[1]),
                ],
                output: vec![value("y", DataType::Float, &[1])],
                ..Default::default()
            }),
            ..Default::default()
        };
        let path = dir.join("model.onnx");
        std::fs::write(&path, model.encode_to_vec()).unwrap();
        let checked = kiln_onnx::model_check::check_model(&model).unwrap();
        let signature = Signature::from_onnx(&checked.inputs, &checked.outputs).unwrap();
        let session =
            Session::load(&Engine::Kiln, &path, (&Device::Cpu, "cpu"), (1, true)).unwrap();
        (session, Arc::new(signature))
    }

    fn trips(n: i64) -> Vec<Tensor> {
        use super::super::super::tensor::Datatype;
        vec![
            Tensor::from_raw(
                "trips".into(),
                Datatype::Int64,
                vec![],
                n.to_le_bytes().to_vec().into(),
            )
            .unwrap(),
            Tensor::from_raw(
                "x".into(),
                Datatype::Fp32,
                vec![1],
                (-2f32).to_le_bytes().to_vec().into(),
            )
            .unwrap(),
        ]
    }

    fn batcher(
        dir: &std::path::Path,
        version: &str,
        run_timeout: Option<Duration>,
    ) -> Arc<Batcher> {
        let (session, signature) = as_long_as_asked(dir);
        let policy = BatchPolicy {
            max_batch: 1,
            delay: Duration::ZERO,
            max_queue: 64,
            give_back_memory: true,
            run_timeout,
        };
        Arc::new(Batcher::start(
            vec![session],
            signature,
            policy,
            version,
            RequestMemory::new(None),
        ))
    }

    fn stopped(version: &str, reason: &str) -> f64 {
        let series =
            format!("kiln_serve_runs_stopped_total{{version=\"{version}\",reason=\"{reason}\"}} ");
        served_metrics::handle()
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(&series)?.parse().ok())
            .unwrap_or(0.0)
    }

    /// A request whose run goes on past `--run-timeout-s` (a billion trips: without the stop it runs
    /// until the evaluator's budget of a million, many seconds) is stopped and told so naming the flag,
    /// and the same instance answers the next request at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_past_the_run_timeout_is_stopped_and_the_instance_serves_on() {
        let dir = tempfile::tempdir().unwrap();
        let version = "run-timeout";
        let batcher = batcher(dir.path(), version, Some(Duration::from_millis(300)));
        let started = Instant::now();
        let refused = batcher.infer(trips(1 << 30), None).await.unwrap_err();
        let took = started.elapsed();
        assert!(
            matches!(&refused, ServeError::DeadlineExceeded(m) if m.contains("--run-timeout-s (0.3 s)")),
            "{refused}"
        );
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(stopped(version, "run_timeout"), 1.0);
        let answer = batcher.infer(trips(3), None).await.unwrap();
        assert_eq!(answer[0].data.as_ref(), 2f32.to_le_bytes());
    }

    /// Without a run timeout, a run is stopped once the request it answers passes its own deadline; a
    /// request queued behind it whose deadline passed while it waited is not run at all.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_s_own_deadline_stops_its_run_and_one_past_it_is_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let version = "client-deadline";
        let batcher = batcher(dir.path(), version, None);
        let started = Instant::now();
        let soon = Some(started + Duration::from_millis(200));
        let (slow, queued) = tokio::join!(batcher.infer(trips(1 << 30), soon), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            batcher
                .infer(trips(1 << 30), Some(started + Duration::from_millis(100)))
                .await
        });
        assert!(
            matches!(&slow, Err(ServeError::DeadlineExceeded(m)) if m.contains("while the model ran")),
            "{slow:?}"
        );
        assert!(
            matches!(&queued, Err(ServeError::DeadlineExceeded(m)) if m.contains("it was not run")),
            "{queued:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(stopped(version, "deadline"), 1.0);
        assert_eq!(metric("kiln_serve_requests_abandoned_total", version), 1.0);
        // The one run stopped; the abandoned one was never run.
        assert_eq!(
            metric("kiln_serve_compute_duration_seconds_count", version),
            1.0
        );
    }
}

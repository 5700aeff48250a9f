//! Runs stopped at their deadline and requests nobody awaits, on kiln's evaluator, with models that run
//! as long as their requests ask.

use super::*;
use kiln_onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto,
    TypeProto, ValueInfoProto, attribute_proto::AttributeType, tensor_proto::DataType,
    tensor_shape_proto, type_proto,
};
use tensor_shape_proto::dimension::Value as Dim;

/// `dims`: numbers, or names of symbolic dimensions.
fn value(name: &str, elem: DataType, dims: &[&str]) -> ValueInfoProto {
    let dim = |d: &&str| tensor_shape_proto::Dimension {
        value: Some(match d.parse() {
            Ok(n) => Dim::DimValue(n),
            Err(_) => Dim::DimParam((*d).to_owned()),
        }),
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

fn int_attribute(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(i),
        ..Default::default()
    }
}

/// A model that runs as long as its request asks: a Loop of `trips` body runs (an Abs) over `x`. With
/// `batched`, `x` is `[rows, 1]` and `trips` the largest of its values (a batch runs as long as its
/// slowest row asks); else `trips` is an input of its own and `x` one float.
fn as_long_as_asked(dir: &std::path::Path, batched: bool) -> (Session, Arc<Signature>) {
    let x_dims: &[&str] = if batched { &["rows", "1"] } else { &["1"] };
    let body = GraphProto {
        name: Some("body".into()),
        node: vec![
            node("Identity", &["cond_in"], &["cond_out"]),
            node("Abs", &["acc_in"], &["acc_out"]),
        ],
        input: vec![
            value("i", DataType::Int64, &[]),
            value("cond_in", DataType::Bool, &[]),
            value("acc_in", DataType::Float, x_dims),
        ],
        output: vec![
            value("cond_out", DataType::Bool, &[]),
            value("acc_out", DataType::Float, x_dims),
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
    let (mut nodes, mut inputs) = (vec![], vec![value("x", DataType::Float, x_dims)]);
    if batched {
        let mut largest = node("ReduceMax", &["x"], &["largest"]);
        largest.attribute.push(int_attribute("keepdims", 0));
        let mut trips = node("Cast", &["largest"], &["trips"]);
        trips
            .attribute
            .push(int_attribute("to", DataType::Int64 as i64));
        nodes.extend([largest, trips]);
    } else {
        inputs.insert(0, value("trips", DataType::Int64, &[]));
    }
    nodes.push(looped);
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(GraphProto {
            name: Some("as_long_as_asked".into()),
            node: nodes,
            input: inputs,
            output: vec![value("y", DataType::Float, x_dims)],
            ..Default::default()
        }),
        ..Default::default()
    };
    let path = dir.join("model.onnx");
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    let checked = kiln_onnx::model_check::check_model(&model).unwrap();
    let signature = Signature::from_onnx(&checked.inputs, &checked.outputs).unwrap();
    assert_eq!(signature.batchable, batched);
    let session = Session::load(&Engine::Kiln, &path, (&Device::Cpu, "cpu"), (1, true)).unwrap();
    (session, Arc::new(signature))
}

fn float(name: &str, shape: Vec<i64>, value: f32) -> Tensor {
    let data = value.to_le_bytes().to_vec().into();
    Tensor::from_raw(
        name.into(),
        super::super::super::tensor::Datatype::Fp32,
        shape,
        data,
    )
    .unwrap()
}

/// The inputs of the unbatched model: `n` trips over -2.
fn trips(n: i64) -> Vec<Tensor> {
    let count = n.to_le_bytes().to_vec().into();
    let datatype = super::super::super::tensor::Datatype::Int64;
    vec![
        Tensor::from_raw("trips".into(), datatype, vec![], count).unwrap(),
        float("x", vec![1], -2.0),
    ]
}

/// A row of the batched model asking `n` trips.
fn row(n: f32) -> Vec<Tensor> {
    vec![float("x", vec![1, 1], n)]
}

fn batcher(
    dir: &std::path::Path,
    batched: bool,
    version: &str,
    run_timeout: Option<Duration>,
) -> Arc<Batcher> {
    let (session, signature) = as_long_as_asked(dir, batched);
    let policy = BatchPolicy {
        max_batch: 16,
        delay: Duration::ZERO,
        max_queue: 64,
        give_back_memory: true,
        run_timeout,
    };
    let memory = RequestMemory::new(None);
    Arc::new(Batcher::start(
        vec![session],
        signature,
        policy,
        version,
        memory,
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

fn told(answer: &Result<Vec<Tensor>, ServeError>, words: &str) -> bool {
    matches!(answer, Err(ServeError::DeadlineExceeded(m)) if m.contains(words))
}

const ENDLESS: i64 = 1 << 30;

/// A request whose run goes on past `--run-timeout-s` (a billion trips: without the stop it runs until
/// the evaluator's budget of a million, many seconds) is stopped and told so naming the flag, and the same
/// instance answers the next request at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_the_run_timeout_is_stopped_and_the_instance_serves_on() {
    let dir = tempfile::tempdir().unwrap();
    let version = "run-timeout";
    let batcher = batcher(dir.path(), false, version, Some(Duration::from_millis(300)));
    let started = Instant::now();
    let refused = batcher.infer(trips(ENDLESS), None).await;
    let took = started.elapsed();
    assert!(told(&refused, "--run-timeout-s (0.3 s)"), "{refused:?}");
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
    let batcher = batcher(dir.path(), false, version, None);
    let started = Instant::now();
    let (slow, queued) = tokio::join!(
        batcher.infer(trips(ENDLESS), Some(started + Duration::from_millis(200))),
        async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let soon = Some(started + Duration::from_millis(100));
            batcher.infer(trips(ENDLESS), soon).await
        }
    );
    assert!(told(&slow, "while the model ran"), "{slow:?}");
    assert!(told(&queued, "it was not run"), "{queued:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(stopped(version, "deadline"), 1.0);
    assert_eq!(
        super::metric("kiln_serve_requests_abandoned_total", version),
        1.0
    );
    // The one run stopped; the abandoned one was never run.
    let runs = super::metric("kiln_serve_compute_duration_seconds_count", version);
    assert_eq!(runs, 1.0);
}

/// Two requests batched behind a held instance, both with deadlines of their own: their batch is
/// stopped at the later one, and each is told its deadline passed while the model ran, not run again
/// alone (each would start past its deadline) nor counted as abandoned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stopped_at_its_requests_deadlines_is_not_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let version = "batch-deadlines";
    let batcher = batcher(dir.path(), true, version, None);
    let started = Instant::now();
    let at = |ms| Some(started + Duration::from_millis(ms));
    let endless = ENDLESS as f32;
    let (holding, first, second) = tokio::join!(
        batcher.infer(row(endless), at(150)),
        async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            batcher.infer(row(endless), at(400)).await
        },
        async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            batcher.infer(row(endless), at(450)).await
        }
    );
    for answer in [&holding, &first, &second] {
        assert!(told(answer, "while the model ran"), "{answer:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(super::metric("kiln_serve_batch_size_sum", version), 3.0);
    assert_eq!(stopped(version, "deadline"), 2.0);
    assert_eq!(
        super::metric("kiln_serve_requests_abandoned_total", version),
        0.0
    );
    let runs = super::metric("kiln_serve_compute_duration_seconds_count", version);
    assert_eq!(runs, 2.0);
}

/// A batch stopped at `--run-timeout-s` by its slow row is run again one request at a time: the quick
/// request that shared its batch is answered, the slow one stopped again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_request_batched_with_a_slow_one_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let version = "batch-timeout";
    let batcher = batcher(dir.path(), true, version, Some(Duration::from_millis(300)));
    let endless = ENDLESS as f32;
    let (holding, slow, quick) = tokio::join!(
        batcher.infer(row(endless), None),
        async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            batcher.infer(row(endless), None).await
        },
        async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            batcher.infer(row(2.0), None).await
        }
    );
    assert!(told(&holding, "--run-timeout-s"), "{holding:?}");
    assert!(told(&slow, "--run-timeout-s"), "{slow:?}");
    assert_eq!(quick.unwrap()[0].data.as_ref(), 2f32.to_le_bytes());
    // Held alone, then the batch of two, then the slow one alone.
    assert_eq!(stopped(version, "run_timeout"), 3.0);
}

/// A run whose one client goes (its request's future dropped, as when tonic ends a cancelled call or actix
/// a closed connection) is stopped then, not at the timeout, and the instance answers the next at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_clients_all_went_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let version = "clients-gone";
    let batcher = batcher(dir.path(), false, version, Some(Duration::from_secs(600)));
    let started = Instant::now();
    let gave_up = tokio::time::timeout(
        Duration::from_millis(200),
        batcher.infer(trips(ENDLESS), None),
    )
    .await;
    assert!(gave_up.is_err(), "{gave_up:?}");
    let answer = batcher.infer(trips(3), None).await.unwrap();
    assert_eq!(answer[0].data.as_ref(), 2f32.to_le_bytes());
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(stopped(version, "clients_gone"), 1.0);
}

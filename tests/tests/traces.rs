//! Trace export through the real binary: with KILN_OTLP_ENDPOINT set, kiln-server sends its spans over
//! OTLP/HTTP (protobuf), decoded here with the OpenTelemetry project's own message types. A request that
//! carries a W3C `traceparent` becomes a child of the caller's span; pipeline jobs have spans of their own.

use std::time::{Duration, Instant};

use kiln_tests::{ADMIN_TOKEN, Backend, Server, assert_ok, receiver, settled, write_pseudo_random};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// Every span the collector got so far, with its resource's `service.name`.
fn spans(inbox: &receiver::Inbox) -> Vec<(String, Span)> {
    let mut spans = Vec::new();
    for request in inbox.lock().unwrap().iter() {
        assert_eq!(request.path, "/v1/traces");
        assert_eq!(
            request.header("content-type"),
            Some("application/x-protobuf")
        );
        let export = ExportTraceServiceRequest::decode(request.body.as_slice())
            .expect("an OTLP trace export request");
        for resource_spans in export.resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| text(a.value.as_ref()))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
    }
    spans
}

fn text(value: Option<&AnyValue>) -> Option<String> {
    match value?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        _ => None,
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| text(a.value.as_ref()))
}

fn wait_for(inbox: &receiver::Inbox, server: &Server, what: &str, found: impl Fn(&Span) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if spans(inbox).iter().any(|(_, span)| found(span)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no span {what} arrived; spans: {:#?}\n{}",
            spans(inbox)
                .iter()
                .map(|(_, s)| &s.name)
                .collect::<Vec<_>>(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn spans_reach_an_otlp_collector_and_continue_the_callers_trace() {
    let (collector, inbox) = receiver::start();
    let server = Server::start_with(
        Backend::Embedded,
        &[
            ("KILN_OTLP_ENDPOINT", &collector),
            // The SDK's batch interval (5 s by default), read from the standard variable.
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let work = tempfile::tempdir().unwrap();
    write_pseudo_random(&work.path().join("w.bin"), 10_000, 7);
    assert_ok(&server.kiln(&["push", work.path().to_str().unwrap(), "acme/traced:1"]));
    let version = settled(&server, "acme/traced:1");
    assert_eq!(version["status"], "ready");

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let status = tokio::runtime::Runtime::new().unwrap().block_on(async {
        reqwest::Client::new()
            .get(format!(
                "{}/api/v1/models/acme/traced/versions/1",
                server.url
            ))
            .bearer_auth(ADMIN_TOKEN)
            .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);

    wait_for(&inbox, &server, "continuing the caller's trace", |span| {
        hex(&span.trace_id) == trace_id && hex(&span.parent_span_id) == parent_id
    });
    let all = spans(&inbox);
    let (service, request) = all
        .iter()
        .find(|(_, s)| hex(&s.trace_id) == trace_id)
        .unwrap();
    assert_eq!(service, "kiln-server");
    // Named by the route's template, so a collector groups every version's reads together.
    assert_eq!(
        request.name,
        "GET /api/v1/models/{namespace}/{model}/versions/{version}"
    );
    let status = attribute(request, "http.status_code")
        .or_else(|| attribute(request, "http.response.status_code"));
    assert_eq!(status.as_deref(), Some("200"), "{request:#?}");
    // The request's log line names the trace, so logs and traces meet.
    assert!(
        server.log().contains(&format!("trace_id={trace_id}")),
        "{}",
        server.log()
    );

    // The first step (the scan) runs on this server, as a span of its own.
    let first = version["pipeline"][0]["kind"].as_str().unwrap().to_owned();
    wait_for(
        &inbox,
        &server,
        "of the version's first pipeline step",
        |span| {
            span.name == format!("pipeline {first}")
                && attribute(span, "job.kind").as_deref() == Some(first.as_str())
                && attribute(span, "version.id").is_some()
        },
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

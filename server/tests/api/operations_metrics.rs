//! /metrics as a Prometheus server scrapes it: parsed by a Prometheus text parser, by route template, with
//! the registry's state beside the request counts.

use openmetrics_parser::PrometheusValue;
use openmetrics_parser::prometheus::parse_prometheus;
use reqwest::StatusCode;
use serde_json::Value as Json;

use crate::harness::{Backend, TestApp, expect_json};
use crate::storage_collection::{bytes, download};

const METRICS_TOKEN: &str = "scraper-secret-0123456789";

fn free_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

async fn scrape(http: &reqwest::Client, url: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// One sample: its family's name, its labels, its value.
struct Sample {
    metric: String,
    labels: Vec<(String, String)>,
    value: PrometheusValue,
}

impl Sample {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The exposition through a Prometheus text-format parser (a grammar of the format, not kiln's code).
async fn parsed(response: reqwest::Response) -> Vec<Sample> {
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let exposition =
        parse_prometheus(&text).unwrap_or_else(|e| panic!("not Prometheus text: {e:?}\n{text}"));
    let mut samples = Vec::new();
    for (name, family) in exposition.families {
        let names = family.get_label_names().to_vec();
        for sample in family.iter_samples() {
            let labelset = sample.get_labelset().unwrap();
            let labels = names
                .iter()
                .filter_map(|n| {
                    labelset
                        .get_label_value(n)
                        .map(|v| (n.clone(), v.to_owned()))
                })
                .collect();
            samples.push(Sample {
                metric: name.clone(),
                labels,
                value: sample.value.clone(),
            });
        }
    }
    samples
}

fn find<'a>(samples: &'a [Sample], metric: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
}

fn number(sample: Option<&Sample>) -> f64 {
    match sample.map(|s| &s.value) {
        Some(PrometheusValue::Counter(c)) => c.value.as_f64(),
        Some(PrometheusValue::Gauge(v) | PrometheusValue::Unknown(v)) => v.as_f64(),
        other => panic!("not a number: {other:?}"),
    }
}

#[actix_web::test]
async fn metrics_are_prometheus_text_by_route_template_with_the_registry_state() {
    let metrics_address = free_port();
    let app = TestApp::spawn_with(Backend::Embedded, |settings| {
        settings.metrics.token = Some(METRICS_TOKEN.to_owned());
        settings.metrics.listen = Some(metrics_address);
    })
    .await;
    let weights = bytes(64 * 1024, 9);
    expect_json::<Json>(
        app.push("acme/m:1", &[("w.bin", &weights)]).await,
        StatusCode::CREATED,
    )
    .await;
    app.settled_version("acme/m:1").await;
    let response = download(&app, "acme/m/versions/1/files/w.bin").await;
    assert_eq!(response.bytes().await.unwrap().len(), weights.len());
    assert_eq!(
        app.get("/api/v1/models/acme/nothing-here").await.status(),
        StatusCode::NOT_FOUND
    );

    // On the public listener: only with the token.
    let public = app.url("/metrics");
    assert_eq!(
        scrape(&app.http, &public, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        scrape(&app.http, &public, Some("wrong-token-0123456789"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let samples = parsed(scrape(&app.http, &public, Some(METRICS_TOKEN)).await).await;

    let download_route = "/api/v1/models/{namespace}/{model}/versions/{version}/files/{path:.+}";
    let requests = number(find(
        &samples,
        "kiln_http_requests_total",
        &[
            ("method", "GET"),
            ("route", download_route),
            ("status", "200"),
        ],
    ));
    assert!(requests >= 1.0, "{requests}");
    assert!(
        find(&samples, "kiln_http_requests_total", &[("status", "404")]).is_some(),
        "the 404 is counted"
    );
    let sent = number(find(
        &samples,
        "kiln_http_response_body_bytes_total",
        &[("route", download_route)],
    ));
    assert!(sent >= weights.len() as f64, "{sent}");
    let received: f64 = samples
        .iter()
        .filter(|s| s.metric == "kiln_http_request_body_bytes_total")
        .map(|s| number(Some(s)))
        .sum();
    assert!(received >= weights.len() as f64, "{received}");
    let Some(PrometheusValue::Histogram(histogram)) = find(
        &samples,
        "kiln_http_request_duration_seconds",
        &[("route", download_route)],
    )
    .map(|s| &s.value) else {
        panic!("no latency histogram for the download route");
    };
    assert!(histogram.count >= Some(1), "{histogram:?}");
    assert!(
        histogram.buckets.iter().any(|b| b.count.as_f64() >= 1.0),
        "{histogram:?}"
    );
    // No raw path becomes a label: names callers send never multiply the series.
    assert!(
        samples
            .iter()
            .all(|s| s.label("route").is_none_or(|r| !r.contains("acme")))
    );
    // The registry's state, sampled at the scrape.
    let succeeded_scans = number(find(
        &samples,
        "kiln_pipeline_jobs",
        &[("kind", "scan"), ("state", "succeeded")],
    ));
    assert!(succeeded_scans >= 1.0);
    assert_eq!(
        number(find(&samples, "kiln_pipeline_queue_depth", &[])),
        0.0
    );
    assert!(
        find(
            &samples,
            "kiln_pipeline_job_duration_seconds",
            &[("kind", "scan")]
        )
        .is_some()
    );
    assert_eq!(
        number(find(
            &samples,
            "kiln_upload_sessions",
            &[("protocol", "kiln")]
        )),
        0.0
    );
    assert!(number(find(&samples, "kiln_db_pool_connections", &[])) >= 1.0);
    assert!(
        find(
            &samples,
            "kiln_store_operation_duration_seconds",
            &[("operation", "promote")]
        )
        .is_some()
    );
    assert!(find(&samples, "kiln_manifests_expiring", &[("within", "7d")]).is_some());

    // The dedicated listener needs no token, and serves nothing else.
    let dedicated = format!("http://{metrics_address}/metrics");
    let samples = parsed(scrape(&app.http, &dedicated, None).await).await;
    assert!(find(&samples, "kiln_http_requests_total", &[]).is_some());
    let api = format!("http://{metrics_address}/api/v1/models");
    assert_eq!(
        scrape(&app.http, &api, None).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn without_a_metrics_setting_the_public_listener_does_not_serve_them() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let response = scrape(&app.http, &app.url("/metrics"), Some(METRICS_TOKEN)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Json = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("KILN_METRICS_LISTEN"),
        "{body}"
    );
}

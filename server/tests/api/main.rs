//! The HTTP API, as a client sees it, on the embedded default and on PostgreSQL + S3.

mod harness;

mod access;
mod accounts;
mod aliases;
mod control_flow;
mod distillations;
mod downloads;
mod encryption;
mod flagged;
mod hostile;
mod http_semantics;
mod lineage;
mod listing;
mod manifests;
mod oci;
mod oci_conformance;
mod oci_image;
mod oci_push;
mod operations_metrics;
mod paging;
mod pipeline;
mod read_cache;
mod runner_engines;
mod runners;
mod service_docs;
mod servings;
mod storage_collection;
mod storage_policies;
mod uploads;
mod versions;
mod web_ui;
mod webhooks;

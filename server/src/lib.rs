//! kiln-server: the registry's HTTP API over its database and blob store.

pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod manifest;
pub mod pipeline;
pub mod services;
pub mod startup;
pub mod storage;
pub mod telemetry;

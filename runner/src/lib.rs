//! kiln-runner: measures variants for a kiln server (docs/runners.md) and serves a verified alias over the
//! Open Inference Protocol (docs/serving.md). The `kiln-runner` binary talks to a server over HTTP; the
//! server's embedded CPU runner uses the same loop in-process.

pub mod coordinator;
pub mod device;
pub mod distill_command;
pub mod distill_job;
pub mod engine;
pub mod generation;
pub mod http;
pub mod process;
pub mod serve;
pub mod work;

pub use coordinator::{Coordinator, CoordinatorError};
pub use work::Runner;

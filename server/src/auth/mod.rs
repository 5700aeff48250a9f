//! Who is calling, and what they may do.
//!
//! `policy` is the one table that says what each route needs; the HTTP layer's `authorize` middleware
//! authenticates every `/api/v1` request and checks it against that table (through the access service)
//! before any handler runs. Handlers never decide access; services only apply the visibility filter the
//! middleware computed.

pub mod credentials;
pub mod jwt;
pub mod policy;
pub mod principal;
pub mod rate_limit;

pub use principal::{Level, Principal, Scope, User};

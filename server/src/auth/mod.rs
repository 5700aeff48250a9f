//! Who is calling, and what they may do.
//!
//! `middleware` authenticates every `/api/v1` request and checks it against `policy`, the one table that
//! says what each route needs. Handlers never decide access; services only apply the visibility filter
//! the middleware computed.

pub mod credentials;
pub mod jwt;
pub mod middleware;
pub mod policy;
pub mod principal;
pub mod rate_limit;

pub use principal::{Level, Principal, Scope, User};

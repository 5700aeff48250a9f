pub mod account;
pub mod alias;
pub mod browse;
pub mod delete;
pub mod manifest;
pub mod namespace;
pub mod pull;
pub mod push;

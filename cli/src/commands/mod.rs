pub mod browse;
pub mod delete;
pub mod pull;
pub mod push;

//! Talking to a PBX: sending a rendered request once, and reading its answer.

pub mod answer;
pub mod client;
pub mod tls;

pub use tls::Tls;

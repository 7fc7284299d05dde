//! Talking to a PBX: sending a rendered request once (`client`, over the
//! branch's `tls`), turning what it sent back into a JSON value (`answer`),
//! and reading that value with a profile's expressions (`rules`).

pub mod answer;
pub mod client;
pub mod rules;
pub mod tls;

pub use tls::Tls;

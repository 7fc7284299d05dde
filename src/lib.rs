//! webdial: a web-dial gateway. See `ARCHITECTURE.md` for the map.
//!
//! Modules in reading order, from the leaves up: each depends only on
//! modules listed before it (checked by `tests/layers.rs`).

pub mod api;
pub mod app;
pub mod call;
pub mod cli;
pub mod guard;
pub mod logging;
pub mod net;
pub mod number;
pub mod pbx;
pub mod profile;
pub mod secrets;
pub mod settings;
pub mod standin;
pub mod state;
pub mod syntax;
pub mod template;

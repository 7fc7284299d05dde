//! webdial: a web-dial gateway. See `ARCHITECTURE.md` for the map.
//!
//! Modules in reading order, from the leaves up: each depends only on
//! modules listed before it (checked by `tests/it/layers.rs`).

pub mod secrets;
pub mod settings;
pub mod syntax;
pub mod number;
pub mod template;
pub mod pbx;
pub mod events;
pub mod profile;
pub mod guard;
pub mod outcome;
pub mod metrics;
pub mod remembered;
pub mod calls;
pub mod hooks;
pub mod state;
pub mod call;
pub mod watch;
pub mod logging;
pub mod net;
pub mod signals;
pub mod api;
pub mod standin;
pub mod app;
pub mod onboard;
pub mod follow;
pub mod cli;

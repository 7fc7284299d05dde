//! webdial: a web-dial gateway. See `ARCHITECTURE.md` for the map.

pub mod api;
pub mod cli;
pub mod config;
pub mod dedupe;
pub mod diagnostic;
pub mod dispatch;
pub mod gateway;
pub mod iqx;
pub mod keys;
pub mod logging;
pub mod number;
pub mod outcome;
pub mod profile;
pub mod render;
pub mod response;
pub mod secrets;
pub mod standin;
pub mod yaml;

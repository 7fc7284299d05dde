//! What stands between a request and a PBX: API keys and their rates,
//! once-per-click, per-branch in-flight limits, login sessions. Runtime
//! state lives here, apart from the configuration it applies.

pub mod keys;
pub mod limits;
pub mod once;
pub mod session;

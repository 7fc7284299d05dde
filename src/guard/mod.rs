//! What stands between a request and a PBX: API keys and once-per-click.

pub mod keys;
pub mod once;

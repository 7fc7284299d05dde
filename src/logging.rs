//! Log set-up: human-readable lines on stderr, filtered by `RUST_LOG`
//! (default `info`), every line passed through secret redaction.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber with `default` as the level when
/// `RUST_LOG` is unset. Safe to call more than once (later calls do nothing).
pub fn init(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::secrets::log_writer)
        .with_ansi(false)
        .try_init();
}

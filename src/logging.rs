//! Log set-up: human-readable lines on stderr, filtered by `RUST_LOG`,
//! every line passed through secret redaction.
//!
//! Lines are handed to a writer thread, so a dial never waits on stderr;
//! the hand-off is not lossy (a full queue makes the logger wait rather than
//! drop an audit line), and redaction happens on that thread.

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber with `default` as the level when
/// `RUST_LOG` is unset. Keep the guard until exit: dropping it flushes.
/// Later calls do nothing (and return a guard that flushes nothing).
pub fn init(default: &str) -> WorkerGuard {
    // An empty RUST_LOG is taken as unset, not as "log nothing".
    let filter = match std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty()) {
        Some(spec) => EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new(default)),
        None => EnvFilter::new(default),
    };
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        // The default queue (128k lines) is 4 MB resident from the start.
        .buffered_lines_limit(4096)
        .thread_name("webdial-log")
        // Buffered: the worker flushes after each batch it drains, so a burst
        // of dials costs one write, not one per line.
        .finish(crate::secrets::RedactingWriter(std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr())));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(false).try_init();
    guard
}

//! Log set-up: human-readable lines on stderr, filtered by `RUST_LOG`,
//! every line passed through secret redaction.
//!
//! Logging never blocks dialling. Lines are handed to a writer thread
//! through a bounded queue; when whoever reads stderr stalls (a paused
//! pager, a stuck log shipper), the writer blocks, the queue fills, and new
//! lines are dropped and counted rather than waited for: a full queue must
//! not stop every dial and `/healthz`. When the writer catches up (it has
//! written everything queued), it writes one warning with the number
//! dropped since the last one. [`dropped_lines`] is the running total.
//! Redaction happens on the writer thread.

use std::io::{self, Write};
use std::sync::{Arc, OnceLock};

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Lines queued for the writer thread. The default (128k lines) is 4 MB
/// resident from the start.
pub const QUEUE_LINES: usize = 4096;

/// The installed subscriber's count of dropped lines.
static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Installs the global subscriber with `default` as the level when
/// `RUST_LOG` is unset. Keep the guard until exit: dropping it flushes.
/// Later calls do nothing (and return a guard that flushes nothing).
pub fn init(default: &str) -> WorkerGuard {
    // An empty RUST_LOG is taken as unset, not as "log nothing".
    let filter = match std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty()) {
        Some(spec) => EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new(default)),
        None => EnvFilter::new(default),
    };
    let counter = Arc::new(OnceLock::new());
    // Buffered: the worker flushes after each batch it drains, so a burst
    // of dials costs one write, not one per line.
    let stderr = crate::secrets::RedactingWriter(io::BufWriter::with_capacity(64 * 1024, io::stderr()));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUE_LINES)
        .thread_name("webdial-log")
        .finish(DropReport { inner: stderr, counter: counter.clone(), reported: 0 });
    let dropped = writer.error_counter();
    let _ = counter.set(dropped.clone());
    let installed =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(false).try_init().is_ok();
    if installed {
        let _ = DROPPED.set(dropped);
    }
    guard
}

/// Log lines dropped since start-up because the log reader was not keeping
/// up (0 before [`init`]).
pub fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
}

/// The writer thread's end: after each batch (the queue is empty, so the
/// writer has caught up), reports the lines dropped since the last report.
struct DropReport<W: Write> {
    inner: W,
    /// Set right after the queue is built (the counter belongs to it).
    counter: Arc<OnceLock<ErrorCounter>>,
    reported: usize,
}

impl<W: Write> Write for DropReport<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        let dropped = self.counter.get().map_or(0, ErrorCounter::dropped_lines);
        if dropped > self.reported {
            let now = humantime::format_rfc3339_micros(std::time::SystemTime::now());
            let n = dropped - self.reported;
            // The subscriber's own line format, so log readers parse it alike.
            writeln!(
                self.inner,
                "{now}  WARN webdial::logging: {n} log lines dropped: the log reader was not keeping up"
            )?;
            self.reported = dropped;
        }
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_lines_are_reported_once_when_the_writer_catches_up() {
        /// A log reader that has stalled until `resume` is dropped.
        struct Stalled(std::sync::mpsc::Receiver<()>);
        impl Write for Stalled {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let _ = self.0.recv_timeout(std::time::Duration::from_secs(10));
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (resume, stalled) = std::sync::mpsc::channel();
        let counter = Arc::new(OnceLock::new());
        let (mut queue, _guard) =
            NonBlockingBuilder::default().lossy(true).buffered_lines_limit(1).finish(Stalled(stalled));
        let _ = counter.set(queue.error_counter());
        let start = std::time::Instant::now();
        for _ in 0..1000 {
            queue.write_all(b"line\n").unwrap();
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(1), "writing to a stalled log must not wait");
        let dropped = queue.error_counter().dropped_lines();
        // The writer holds one line, the queue one more: the rest are dropped.
        assert!(dropped >= 998, "{dropped}");
        drop(resume);
        let mut out = DropReport { inner: Vec::new(), counter, reported: 0 };
        out.write_all(b"kept\n").unwrap();
        out.flush().unwrap();
        out.flush().unwrap();
        let text = String::from_utf8(out.inner).unwrap();
        let reports: Vec<&str> = text.lines().filter(|l| l.contains("log lines dropped")).collect();
        assert_eq!(reports.len(), 1, "{text}");
        assert!(reports[0].contains(&format!(" WARN webdial::logging: {dropped} log lines dropped")), "{text}");
    }
}

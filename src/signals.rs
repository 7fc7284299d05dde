//! Process signals for the long-running commands (`serve`, `standin`).
//!
//! SIGTERM and SIGINT stop the process (gracefully: see
//! [`crate::net::serve`]). SIGHUP's default action would kill the process
//! with dials in flight; it is caught: `serve` reloads the profiles on it
//! (`systemctl reload`), the stand-in logs and ignores it.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Notify;

/// Resolves on the first SIGTERM or SIGINT; logs and ignores every SIGHUP.
/// See [`shutdown_signal_reloading`].
#[cfg(unix)]
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    signals(None)
}

/// As [`shutdown_signal`], and each SIGHUP wakes `hangups` (stored if
/// nothing waits yet, so a SIGHUP during start-up is not lost).
#[cfg(unix)]
pub fn shutdown_signal_reloading(hangups: Arc<Notify>) -> impl Future<Output = ()> + Send + 'static {
    signals(Some(hangups))
}

///
/// The handlers are installed when this is called, not when the future is
/// first polled, so call it early (before loading profiles): from then on
/// a SIGHUP cannot kill the process, and a SIGTERM that arrives during
/// start-up stops the server as soon as it starts. Must be called inside
/// the Tokio runtime.
#[cfg(unix)]
fn signals(hangups: Option<Arc<Notify>>) -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let install = |kind: SignalKind, name: &str| match signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!("cannot handle {name}: {e}");
            None
        }
    };
    let mut term = install(SignalKind::terminate(), "SIGTERM");
    let mut int = install(SignalKind::interrupt(), "SIGINT");
    let mut hup = install(SignalKind::hangup(), "SIGHUP");
    async move {
        loop {
            tokio::select! {
                () = next(&mut term) => {
                    tracing::info!("SIGTERM: shutting down");
                    return;
                }
                () = next(&mut int) => {
                    tracing::info!("SIGINT: shutting down");
                    return;
                }
                () = next(&mut hup) => match &hangups {
                    Some(h) => {
                        tracing::info!("SIGHUP: reloading the profiles");
                        h.notify_one();
                    }
                    None => tracing::warn!("SIGHUP: nothing to reload here; ignoring"),
                },
            }
        }
    }
}

/// The next delivery of `signal`; never, if it cannot be handled.
#[cfg(unix)]
async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
    if let Some(s) = signal.as_mut()
        && s.recv().await.is_some()
    {
        return;
    }
    // No handler, or the runtime is shutting down: wait for the others.
    *signal = None;
    std::future::pending::<()>().await;
}

/// Resolves on Ctrl-C (there is no SIGHUP).
#[cfg(not(unix))]
pub fn shutdown_signal_reloading(_: Arc<Notify>) -> impl Future<Output = ()> + Send + 'static {
    shutdown_signal()
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C: shutting down");
    }
}

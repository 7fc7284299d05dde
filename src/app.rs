//! Assembly: settings and profiles from disk → a [`Gateway`] → served. The
//! one place that builds a gateway, used by `serve`, `dial`, `render` and
//! the tests alike, so they cannot drift apart.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use crate::call::Gateway;
use crate::calls::{self, Call, CallStore, Query};
use crate::profile::{self, Profiles};
use crate::settings::diagnostic::Diagnostic;
use crate::settings::{Data, Settings};
use crate::state::{Runtime, Snapshot};

/// How long shutdown waits for requests in flight. A request is bounded by
/// its profile's timeout (at most 300 s); the usual ones take seconds.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// What was read from disk: settings (if they loaded), every branch that
/// loaded, and every problem found.
#[derive(Debug)]
pub struct Loaded {
    pub settings: Option<Settings>,
    pub profiles: Profiles,
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads `config` and the profiles it names. A missing file is fine unless
/// `must_exist` (the admin named it). `env` supplies `${NAME}` values.
pub fn load(config: &Path, must_exist: bool, env: &dyn Fn(&str) -> Option<String>) -> Loaded {
    match Settings::load(config, must_exist, env) {
        Err(diagnostics) => Loaded { settings: None, profiles: Profiles::default(), diagnostics },
        Ok(settings) => {
            let (profiles, diagnostics) = profile::Loader::new(env)
                .global_hooks(&settings.file, settings.hooks.as_ref())
                .load_dir(&settings.profiles);
            Loaded { settings: Some(settings), profiles, diagnostics }
        }
    }
}

/// Builds a gateway over loaded configuration, with fresh runtime state.
pub fn build(settings: Settings, profiles: Profiles) -> Result<Arc<Gateway>, String> {
    let snapshot = Snapshot { settings, profiles };
    let runtime = Runtime::new(&snapshot)?;
    Ok(Arc::new(Gateway::new(snapshot, runtime)))
}

/// Reads the dial log of `settings` (for `webdial log`): `Ok(None)` when
/// its file does not exist yet, which is not created here. In memory there
/// is nothing another process could read.
pub fn read_log(settings: &Settings, query: &Query) -> Result<Option<Vec<Call>>, String> {
    if settings.data == Data::Memory {
        return Err(format!(
            "{}: data is \":memory:\": the dial log lives inside the running gateway; read it with GET /v1/calls",
            settings.file.display()
        ));
    }
    let Some(log) = calls::Log::open_existing(&settings.data, settings.retention)? else { return Ok(None) };
    log.list(query).map(Some).map_err(|e| e.to_string())
}

/// Whether `addr` may be served with these settings. Without API keys only
/// loopback is served, unless the admin says something in front
/// authenticates (`no_auth`); then `Ok(Some(warning))`.
pub fn exposure(settings: &Settings, addr: SocketAddr, no_auth: bool) -> Result<Option<String>, String> {
    if !settings.keys.is_empty() || addr.ip().is_loopback() {
        return Ok(None);
    }
    if !no_auth {
        return Err(format!(
            "refusing to serve {addr} without API keys: anyone who can reach it could place calls on your lines. \
             Add `keys:` to {}, listen on a loopback address, or pass --no-auth if something in front of webdial authenticates callers",
            settings.file.display()
        ));
    }
    Ok(Some(format!(
        "!!! --no-auth: serving {addr} WITHOUT API keys. Anyone who can reach this address can place calls. !!!"
    )))
}

/// Starts passing the gateway's call events to its hooks: one task follows
/// the event bus and queues each event for the hooks that want it, with
/// the configuration current at that moment; each hook's worker sends its
/// own queue (see `hooks`). Events published before this are not offered.
/// The task ends when the gateway is gone.
pub fn start_hooks(gateway: &Arc<Gateway>) -> tokio::task::JoinHandle<()> {
    let mut events = gateway.runtime().events.subscribe();
    let gateway = Arc::downgrade(gateway);
    tokio::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(RecvError::Lagged(n)) => match gateway.upgrade() {
                    Some(gw) => {
                        gw.runtime().hooks.missed(n);
                        continue;
                    }
                    None => return,
                },
                Err(RecvError::Closed) => return,
            };
            let Some(gw) = gateway.upgrade() else { return };
            gw.runtime().hooks.offer(&gw.snapshot().profiles, &event);
        }
    })
}

/// Serves the API on `listener` within the serving limits of
/// [`crate::net::Limits`] until `shutdown`, then waits (up to `grace` from
/// the shutdown, connections and tracked requests together) for the
/// requests still in flight, so each one is sent at most once, answered to
/// its duplicates and audited before the process exits.
/// Call events go to their hooks meanwhile ([`start_hooks`]).
pub async fn serve(
    gateway: Arc<Gateway>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    start_hooks(&gateway);
    let limits = crate::net::Limits { shutdown_grace: grace, ..crate::net::Limits::default_for_serving() };
    let stopped = Arc::new(std::sync::OnceLock::new());
    let at = stopped.clone();
    let shutdown = async move {
        shutdown.await;
        let _ = at.set(tokio::time::Instant::now());
    };
    // Watching ends when serving does (the watch is dropped here).
    let _watch = match crate::watch::start(&gateway) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(
                "{e}: profile changes are not picked up by themselves; reload with SIGHUP or POST /v1/admin/reload"
            );
            None
        }
    };
    let served = crate::net::serve(listener, crate::api::router(gateway.clone()), limits, shutdown).await;
    let spent = stopped.get().map_or(Duration::ZERO, |t| t.elapsed());
    drain(&gateway, grace.saturating_sub(spent)).await;
    served
}

/// Reloads `gateway`'s profiles each time `hangups` is woken (SIGHUP: see
/// [`crate::signals::shutdown_signal_reloading`]), for as long as the
/// gateway exists.
pub fn reload_on(gateway: &Arc<Gateway>, hangups: Arc<tokio::sync::Notify>) -> tokio::task::JoinHandle<()> {
    let gateway = Arc::downgrade(gateway);
    tokio::spawn(async move {
        loop {
            hangups.notified().await;
            let Some(gw) = gateway.upgrade() else { return };
            gw.reload(crate::call::Trigger::Signal).await;
        }
    })
}

/// Waits for tracked requests to finish, at most `grace`.
pub async fn drain(gateway: &Gateway, grace: Duration) {
    let tasks = gateway.tasks();
    tasks.close();
    if tasks.is_empty() {
        return;
    }
    tracing::info!("waiting for {} request(s) in flight", tasks.len());
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        tracing::warn!("{} request(s) still in flight after {grace:?}; exiting anyway", tasks.len());
    }
}

/// Loading parses every file into short-lived values; glibc keeps the freed
/// memory mapped unless asked. Returning it keeps an idle gateway with
/// 1,000 branches small.
pub fn release_load_garbage() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap memory to the OS; it has no
    // preconditions and touches no memory the program still uses.
    unsafe {
        libc::malloc_trim(0);
    }
}

//! What the gateway holds while it serves, in two parts with different lives.
//!
//! - [`Snapshot`]: compiled, immutable configuration — settings, keys,
//!   profiles and their templates. Replaced whole (a reload builds a new one
//!   and swaps it in); a request keeps the snapshot it started with.
//! - [`Runtime`]: state that must survive a swap — PBX clients, key rate
//!   budgets, in-flight counts, the once-per-click stores, the dial log
//!   (opened from the first snapshot's `data:`; a reload keeps it), the
//!   event bus and the repeats it has seen, the recent dials' index, the hook
//!   queues, the metrics, login sessions. Keyed by
//!   names (branch, key, id), never by pointers into a snapshot.

use std::sync::Arc;
use std::time::Duration;

use crate::calls::{self, CallStore};
use crate::events::{Bus, Seen};
use crate::guard::keys::Rates;
use crate::guard::limits::InFlight;
use crate::guard::once::{self, Once};
use crate::guard::session::Sessions;
use crate::hooks::{self, Deliveries};
use crate::metrics::Metrics;
use crate::pbx::client::Dispatcher;
use crate::profile::Profiles;
use crate::remembered::Remembered;
use crate::settings::Settings;

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Compiled configuration.
#[derive(Debug)]
pub struct Snapshot {
    pub settings: Settings,
    pub profiles: Profiles,
}

/// Runtime state that outlives a snapshot.
pub struct Runtime {
    pub clients: Dispatcher,
    pub rates: Rates,
    pub in_flight: InFlight,
    /// The duplicate window's store; `None` when `dedupe_window` is zero.
    pub recent: Option<Once<Remembered>>,
    pub idempotent: Once<Remembered>,
    pub dedupe_window: Duration,
    /// The dial log: dials and actions by gateway id, for `/v1/calls`.
    pub calls: Box<dyn CallStore>,
    /// The recent dials, for finding the one a call event belongs to.
    pub index: calls::Index,
    /// Call events, to every subscriber (server-sent events, hooks).
    pub events: Bus,
    /// Hook deliveries: a queue and a worker per hook, and their counts.
    pub hooks: Deliveries,
    /// What `/metrics` shows; shared with whatever records into it.
    pub metrics: Arc<Metrics>,
    pub sessions: Sessions,
    /// Notifications seen lately, so a repeat is passed on once.
    pub seen: Seen,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("dedupe_window", &self.dedupe_window).finish_non_exhaustive()
    }
}

impl Runtime {
    /// Fresh runtime state for a gateway whose first snapshot is `snapshot`.
    /// The once-per-click stores take plain values (window, bounds), so a
    /// reload can keep them.
    pub fn new(snapshot: &Snapshot) -> Result<Runtime, String> {
        let window = snapshot.settings.dedupe_window;
        let clients = Dispatcher::new()?;
        let store = |w| Once::new(w, once::DEFAULT_MAX_BYTES, once::DEFAULT_MAX_ENTRIES);
        Ok(Runtime {
            hooks: Deliveries::new(clients.clone(), hooks::Policy::default()),
            clients,
            rates: Rates::default(),
            in_flight: InFlight::default(),
            recent: (!window.is_zero()).then(|| store(window)),
            idempotent: store(IDEMPOTENCY_WINDOW),
            dedupe_window: window,
            calls: Box::new(calls::Log::open(&snapshot.settings.data, snapshot.settings.retention)?),
            index: calls::Index::default(),
            events: Bus::default(),
            metrics: Arc::new(Metrics::new()),
            sessions: Sessions::default(),
            seen: Seen::default(),
        })
    }
}

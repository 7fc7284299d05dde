//! Who gets a connection slot: the registry of open connections, eviction
//! of the oldest idle one at the cap, and the short refusal when every
//! connection is busy.

use super::*;

/// Open connections, oldest first.
#[derive(Debug, Default)]
pub(super) struct Registry {
    pub(super) inner: Mutex<Open>,
    pub(super) next: AtomicU64,
    /// A connection ended (its descriptor is free).
    pub(super) closed: Notify,
}

#[derive(Debug, Default)]
pub(super) struct Open {
    pub(super) conns: BTreeMap<u64, Arc<ConnState>>,
    /// Of those, closed to make room but not gone yet.
    pub(super) evicting: usize,
}

/// Whether a new connection may be served.
pub(super) enum Admission {
    Admit(u64, Arc<ConnState>),
    /// Room is being made: ask again once a connection has ended.
    Wait,
    /// Every connection has a request in progress.
    Refuse,
}

impl Registry {
    pub(super) fn lock(&self) -> MutexGuard<'_, Open> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn len(&self) -> usize {
        self.lock().conns.len()
    }

    /// Registers a new connection if there is room, making room at the cap
    /// by evicting the oldest connection with nothing in progress. An
    /// evicted connection holds its descriptor until its driver has run, so
    /// at most [`EVICTION_SLACK`] may be pending before new ones wait.
    pub(super) fn admit(&self, max: usize) -> Admission {
        let mut open = self.lock();
        if open.conns.len() - open.evicting >= max && !open.evict_oldest_idle() {
            return Admission::Refuse;
        }
        if open.conns.len() >= max.saturating_add(EVICTION_SLACK) {
            return Admission::Wait;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState::new());
        open.conns.insert(id, state.clone());
        Admission::Admit(id, state)
    }

    /// [`Registry::admit`], waiting (boundedly) while room is being made.
    pub(super) async fn admit_or_wait(&self, max: usize) -> Option<(u64, Arc<ConnState>)> {
        for _ in 0..ADMIT_WAITS {
            match self.admit(max) {
                Admission::Admit(id, state) => return Some((id, state)),
                Admission::Refuse => return None,
                Admission::Wait => {
                    let _ = tokio::time::timeout(Duration::from_millis(10), self.closed.notified()).await;
                }
            }
        }
        None
    }

    pub(super) fn evict_oldest_idle(&self) -> bool {
        self.lock().evict_oldest_idle()
    }
}

/// How many times a new connection waits (10 ms each) for evicted ones to go.
pub(super) const ADMIT_WAITS: usize = 20;

impl Open {
    pub(super) fn evict_oldest_idle(&mut self) -> bool {
        let victim = self
            .conns
            .values()
            .take(EVICTION_SCAN)
            .find(|c| !c.evicted.load(Ordering::SeqCst) && c.busy.load(Ordering::SeqCst) == 0);
        match victim {
            Some(c) => {
                c.evict();
                self.evicting += 1;
                true
            }
            None => false,
        }
    }
}

/// Removes a connection from the registry when its driver ends.
pub(super) struct Registration {
    pub(super) registry: Arc<Registry>,
    pub(super) id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut open = self.registry.lock();
        if let Some(state) = open.conns.remove(&self.id)
            && state.evicted.load(Ordering::SeqCst)
        {
            open.evicting -= 1;
        }
        drop(open);
        self.registry.closed.notify_one();
    }
}

/// Counts refusals between warnings, so a flood logs a line now and then.
#[derive(Debug, Default)]
pub(super) struct Refusals {
    pub(super) since_warned: u64,
    pub(super) warned: Option<Instant>,
}

impl Refusals {
    const EVERY: Duration = Duration::from_secs(10);

    /// Counts one; true when it is time to warn (then `since_warned` is the count).
    pub(super) fn count(&mut self) -> bool {
        self.since_warned += 1;
        let due = self.warned.is_none_or(|t| t.elapsed() >= Self::EVERY);
        if due {
            self.warned = Some(Instant::now());
        }
        due
    }
}

/// Answers `429 rate_limited` (the one status table's code for "too much at
/// once") on a connection the gateway has no room for, and closes it.
/// Non-blocking: a new connection's send buffer is empty, so the short
/// answer fits; what the client already sent is read away first, or the
/// close would reset the connection and lose the answer.
pub(super) fn refuse(stream: TcpStream, max: usize, refusals: &mut Refusals) {
    if refusals.count() {
        tracing::warn!(
            "at the connection limit ({max}, every one with a request in progress): refused {} new connection(s)",
            refusals.since_warned
        );
        refusals.since_warned = 0;
    }
    let mut sink = [0u8; 4096];
    for _ in 0..4 {
        match stream.try_read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    let _ = stream.try_write(&refusal());
}

pub(super) fn refusal() -> Vec<u8> {
    use crate::outcome::{ActionResult, Refusal};
    let id = ulid::Ulid::generate().to_string();
    let reason = Refusal::RateLimited("the gateway is at its connection limit; try again shortly".into());
    let result = ActionResult::refused(&id, &reason, None, "");
    let code = result.http_status();
    let body = serde_json::to_string(&result).unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
        code.as_u16(),
        code.canonical_reason().unwrap_or(""),
        body.len()
    );
    [head.into_bytes(), body.into_bytes()].concat()
}

/// An accept that failed. A failure of that one connection is nothing; out
/// of descriptors or memory, room is made and the loop pauses rather than
/// spinning on a listener that stays ready.
pub(super) async fn accept_failed(e: &io::Error, registry: &Registry, errors: &mut Refusals) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted) {
        return;
    }
    let evicted = registry.evict_oldest_idle();
    if errors.count() {
        tracing::warn!(
            "cannot accept connections: {e} ({} time(s); {} open{})",
            errors.since_warned,
            registry.len(),
            if evicted { ", closing idle ones" } else { "" }
        );
        errors.since_warned = 0;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
}

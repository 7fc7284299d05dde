//! Call events: what a PBX tells webdial about calls, in one shape for
//! every PBX, and the bus that carries them to subscribers.
//!
//! Events come in from PBX notifications (read by [`inbound`]), are tied
//! to the dial they belong to (by `call::events`), move that call's state,
//! and go out to server-sent event streams, hooks and the call record. The bus never waits for a
//! subscriber: a slow one misses events (and reconnects with
//! `Last-Event-ID`, served from the replay ring), it never slows the PBX or
//! the other subscribers.

pub mod inbound;

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// What happened to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Ringing,
    Dialling,
    Answered,
    Ended,
    Missed,
    Rejected,
    Failed,
    Voicemail,
    Other,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Ringing => "ringing",
            EventType::Dialling => "dialling",
            EventType::Answered => "answered",
            EventType::Ended => "ended",
            EventType::Missed => "missed",
            EventType::Rejected => "rejected",
            EventType::Failed => "failed",
            EventType::Voicemail => "voicemail",
            EventType::Other => "other",
        }
    }

    /// Reads a type name; anything unknown is `other`.
    pub fn parse(name: &str) -> EventType {
        match name.trim().to_ascii_lowercase().as_str() {
            "ringing" => EventType::Ringing,
            "dialling" | "dialing" => EventType::Dialling,
            "answered" => EventType::Answered,
            "ended" => EventType::Ended,
            "missed" => EventType::Missed,
            "rejected" => EventType::Rejected,
            "failed" => EventType::Failed,
            "voicemail" => EventType::Voicemail,
            _ => EventType::Other,
        }
    }
}

/// The direction of a call, from the extension's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    In,
    Out,
}

/// The normalized event: one shape for every PBX.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEvent {
    /// webdial's own id for this event (a ULID: sortable, unique).
    pub id: String,
    pub branch: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub direction: Option<Direction>,
    pub extension: Option<String>,
    /// The other party's number.
    pub remote: Option<String>,
    /// The PBX's id of the call.
    pub call_id: Option<String>,
    /// The gateway id of the dial this call belongs to, when known.
    pub dial_id: Option<String>,
    pub external_id: Option<String>,
    /// When webdial received it (RFC 3339, UTC).
    pub at: String,
    /// The notification's own fields, as received (secrets masked).
    pub pbx: serde_json::Value,
}

/// How many events the replay ring keeps (per instance).
pub const REPLAY: usize = 10_000;
/// How many events a subscriber may lag behind before it is cut off.
pub const BACKLOG: usize = 1_024;

/// An event as the bus carries it: the event, and its JSON written once, so
/// a hundred subscribers streaming it do not serialize it a hundred times.
/// Derefs to the [`CallEvent`].
#[derive(Debug, PartialEq)]
pub struct Published {
    event: CallEvent,
    json: String,
}

impl Published {
    pub fn new(event: CallEvent) -> Self {
        // A CallEvent is strings, enums and a JSON value: it always serializes.
        let json = serde_json::to_string(&event).unwrap_or_default();
        Published { event, json }
    }

    /// The event as JSON (one line).
    pub fn json(&self) -> &str {
        &self.json
    }

    pub fn event(&self) -> &CallEvent {
        &self.event
    }
}

impl std::ops::Deref for Published {
    type Target = CallEvent;
    fn deref(&self) -> &CallEvent {
        &self.event
    }
}

/// Where a reconnecting subscriber resumes: what it missed from the ring,
/// and a subscription to everything after that, with nothing in between
/// and nothing twice.
#[derive(Debug)]
pub struct Resumed {
    pub missed: Vec<Arc<Published>>,
    pub live: broadcast::Receiver<Arc<Published>>,
}

/// Carries events to every subscriber, and keeps the last [`REPLAY`] for
/// clients that reconnect with `Last-Event-ID`. Runtime state: it outlives
/// a configuration reload.
///
/// The ring and the channel are fed under one lock, so the ring's order is
/// the order subscribers receive events in, and [`Bus::resume`] can take a
/// ring position and a subscription at the same instant.
#[derive(Debug, Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<Published>>,
    ring: Arc<Mutex<VecDeque<Arc<Published>>>>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new(BACKLOG)
    }
}

impl Bus {
    /// A bus whose subscribers may each lag `backlog` events behind.
    pub fn new(backlog: usize) -> Self {
        let (tx, _) = broadcast::channel(backlog.max(1));
        Bus { tx, ring: Arc::new(Mutex::new(VecDeque::with_capacity(64))) }
    }

    /// A panic elsewhere while holding the lock leaves a consistent ring
    /// (each change completes before anything can panic): keep using it.
    fn ring(&self) -> MutexGuard<'_, VecDeque<Arc<Published>>> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `event` to every subscriber and the replay ring. Never waits
    /// for a subscriber: one that lags is cut off, not waited for.
    pub fn publish(&self, event: CallEvent) -> Arc<Published> {
        let event = Arc::new(Published::new(event));
        self.send(event.clone());
        event
    }

    /// As [`Bus::publish`], for an event already shared elsewhere (the
    /// call record keeps the same one).
    pub fn send(&self, event: Arc<Published>) {
        let mut ring = self.ring();
        if ring.len() >= REPLAY {
            ring.pop_front();
        }
        ring.push_back(event.clone());
        // No subscriber is not an error: the event is in the ring.
        let _ = self.tx.send(event);
    }

    /// A new subscription: events published from now on. A subscriber that
    /// falls more than the backlog behind gets `RecvError::Lagged`.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }

    /// The events after `last_id` still in the ring, oldest first; `None`
    /// when `last_id` is no longer (or never was) in the ring.
    pub fn since(&self, last_id: &str) -> Option<Vec<Arc<Published>>> {
        let ring = self.ring();
        let at = ring.iter().rposition(|e| e.id == last_id)?;
        Some(ring.iter().skip(at + 1).cloned().collect())
    }

    /// A subscription that starts after `last_id`: the ring's events after
    /// it, then live ones. An id no longer in the ring but still a ULID (a
    /// client that was away for more than the ring holds, or that saw the
    /// previous process) gets every event in the ring newer than it; an id
    /// that is not a ULID gets only live events.
    pub fn resume(&self, last_id: Option<&str>) -> Resumed {
        let ring = self.ring();
        let live = self.tx.subscribe();
        let missed = match last_id {
            None => Vec::new(),
            Some(last) => match ring.iter().rposition(|e| e.id == last) {
                Some(at) => ring.iter().skip(at + 1).cloned().collect(),
                None => match ulid::Ulid::from_string(last) {
                    Ok(last) => ring
                        .iter()
                        .filter(|e| ulid::Ulid::from_string(&e.id).is_ok_and(|id| id > last))
                        .cloned()
                        .collect(),
                    Err(_) => Vec::new(),
                },
            },
        };
        drop(ring);
        Resumed { missed, live }
    }

    /// How many events the ring holds now.
    pub fn held(&self) -> usize {
        self.ring().len()
    }
}

/// How long the same notification again is taken for a repeat.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(60);
/// Most notifications remembered for spotting repeats; past this the
/// oldest are forgotten first.
pub const REPEATS_KEPT: usize = 65_536;

/// Notifications seen lately, by fingerprint, so that one a PBX sends twice
/// (a webhook retried after a slow answer, an action URL fired twice) is
/// passed on once. Only fingerprints are kept: bounded, whatever is sent.
#[derive(Debug)]
pub struct Seen {
    keys: std::hash::RandomState,
    inner: Mutex<SeenInner>,
}

#[derive(Debug, Default)]
struct SeenInner {
    set: HashSet<u64>,
    order: VecDeque<(Instant, u64)>,
}

impl Default for Seen {
    fn default() -> Self {
        Seen { keys: std::hash::RandomState::new(), inner: Mutex::new(SeenInner::default()) }
    }
}

impl Seen {
    /// Whether this is the first time within [`REPEAT_WINDOW`] that `branch`
    /// sent exactly this notification (`what`: its fields and path, as
    /// JSON); remembers it either way.
    pub fn first(&self, branch: &str, what: &serde_json::Value, now: Instant) -> bool {
        let mut h = self.keys.build_hasher();
        branch.hash(&mut h);
        what.to_string().hash(&mut h);
        let key = h.finish();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(&(at, old)) = inner.order.front() {
            if now.duration_since(at) <= REPEAT_WINDOW && inner.order.len() < REPEATS_KEPT {
                break;
            }
            inner.order.pop_front();
            inner.set.remove(&old);
        }
        if !inner.set.insert(key) {
            return false;
        }
        inner.order.push_back((now, key));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> CallEvent {
        CallEvent {
            id: id.into(),
            branch: "b".into(),
            kind: EventType::Ringing,
            direction: Some(Direction::In),
            extension: Some("35".into()),
            remote: None,
            call_id: None,
            dial_id: None,
            external_id: None,
            at: "2026-11-23T14:05:09Z".into(),
            pbx: serde_json::Value::Null,
        }
    }

    #[tokio::test]
    async fn subscribers_get_events_and_the_ring_replays_what_follows_an_id() {
        let bus = Bus::new(8);
        let mut rx = bus.subscribe();
        for id in ["a", "b", "c"] {
            bus.publish(event(id));
        }
        assert_eq!(rx.recv().await.unwrap().id, "a");
        let after_a: Vec<String> = bus.since("a").unwrap().iter().map(|e| e.id.clone()).collect();
        assert_eq!(after_a, ["b", "c"]);
        assert!(bus.since("zz").is_none());
        assert_eq!(serde_json::to_value(event("x")).unwrap()["type"], "ringing");
    }

    #[tokio::test]
    async fn a_subscriber_that_lags_is_told_so_and_never_blocks_publishing() {
        let bus = Bus::new(2);
        let mut slow = bus.subscribe();
        for i in 0..10 {
            bus.publish(event(&i.to_string()));
        }
        assert!(matches!(slow.recv().await, Err(broadcast::error::RecvError::Lagged(_))));
    }

    #[tokio::test]
    async fn resume_replays_after_the_id_then_goes_live_with_nothing_twice() {
        let bus = Bus::new(64);
        let ids: Vec<String> = (0..5).map(|_| ulid::Ulid::generate().to_string()).collect();
        for id in &ids {
            bus.publish(event(id));
        }
        let mut r = bus.resume(Some(&ids[1]));
        let missed: Vec<&str> = r.missed.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(missed, [&ids[2], &ids[3], &ids[4]]);
        bus.publish(event("live"));
        assert_eq!(r.live.recv().await.unwrap().id, "live", "the first live event is the next one, not a replay");
        assert!(bus.resume(None).missed.is_empty(), "no id: live only");
        assert!(bus.resume(Some("not-a-ulid")).missed.is_empty(), "an id that was never an event's: live only");
        let older = ulid::Ulid::from_parts(0, 0).to_string();
        assert_eq!(bus.resume(Some(&older)).missed.len(), 5, "older than the ring (ULIDs in it): all of it");
        assert!(bus.publish(event("x")).json().contains("\"type\":\"ringing\""));
    }

    #[test]
    fn the_ring_keeps_the_last_events_only() {
        let bus = Bus::new(4);
        for i in 0..(REPLAY + 10) {
            bus.publish(event(&i.to_string()));
        }
        assert_eq!(bus.held(), REPLAY);
        assert!(bus.since("9").is_none(), "the oldest went first");
        assert_eq!(bus.since(&(REPLAY + 8).to_string()).map(|v| v.len()), Some(1));
    }

    #[test]
    fn a_repeat_is_seen_within_the_window_and_forgotten_after_it() {
        let seen = Seen::default();
        let t0 = Instant::now();
        let a = serde_json::json!({"event": "8", "call_id": "1"});
        assert!(seen.first("b", &a, t0));
        assert!(!seen.first("b", &a, t0 + Duration::from_secs(1)), "the same again");
        assert!(seen.first("other", &a, t0), "another branch's is another notification");
        assert!(seen.first("b", &serde_json::json!({"event": "9", "call_id": "1"}), t0));
        assert!(seen.first("b", &a, t0 + REPEAT_WINDOW + Duration::from_secs(2)), "past the window it is new");
        for i in 0..(REPEATS_KEPT + 100) {
            seen.first("b", &serde_json::json!(i), t0);
        }
        let inner = seen.inner.lock().unwrap();
        assert!(inner.set.len() <= REPEATS_KEPT && inner.order.len() <= REPEATS_KEPT, "bounded");
    }
}

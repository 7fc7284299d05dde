//! Calls by gateway id: every dial that was sent is remembered under the
//! `id` its answer carried, so a caller that knows only that id can read the
//! dial back (`GET /v1/calls/ID`) or act on it (`POST /v1/calls/ID/hangup`)
//! without keeping the branch, extension or the PBX's call id itself.
//!
//! The store is behind [`CallStore`] so that a durable one (a database
//! file) can replace [`Memory`] without touching its users. It is runtime
//! state: it lives in [`crate::state::Runtime`] and outlives a reload.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use serde::Serialize;

use crate::outcome::Status;

/// Most dials the in-memory store keeps; past this the oldest are dropped.
pub const DEFAULT_MAX_CALLS: usize = 100_000;
/// Most bytes (estimated) the in-memory store keeps: a bound that holds
/// whatever the callers send, not only a count.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Where a dial stands. Only what the gateway itself knows so far: the PBX
/// took the request, or the request failed. Call events will move it on
/// (ringing, answered, ended…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// The PBX accepted the dial; it rings later.
    Requested,
    /// The dial was sent but did not succeed (refused by the PBX, no
    /// connection, no readable answer, or no answer in time).
    Failed,
}

/// One remembered dial.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The gateway's id of the dial (the `id` of its answer).
    pub id: String,
    pub branch: String,
    pub action: String,
    /// The extension, separators removed (as the action's templates saw it).
    pub extension: String,
    /// The number as received.
    pub number: String,
    /// The number as dialled, after the branch's number rules.
    pub dialled: Option<String>,
    /// The PBX's id of the call, when its answer gave one.
    pub call_id: Option<String>,
    /// The name of the API key that asked (`-` without keys).
    pub key: String,
    pub created: SystemTime,
    pub state: CallState,
    /// How the dial itself ended.
    pub status: Status,
}

impl Call {
    /// Roughly what the entry costs in memory: its text twice (the map's key
    /// and the age queue hold the id too) plus the fixed parts.
    fn weight(&self) -> usize {
        let opt = |s: &Option<String>| s.as_deref().map_or(0, str::len);
        std::mem::size_of::<Call>()
            + 2 * self.id.len()
            + self.branch.len()
            + self.action.len()
            + self.extension.len()
            + self.number.len()
            + opt(&self.dialled)
            + opt(&self.call_id)
            + self.key.len()
            + 64
    }
}

/// Where dials are remembered. Never fails a dial: a store that cannot
/// keep a call drops it (and says so in the log) rather than refuse.
pub trait CallStore: Send + Sync {
    /// Remembers `call`, replacing an earlier one with the same id.
    fn remember(&self, call: Call);
    /// The dial with gateway id `id`, if it is remembered.
    fn find(&self, id: &str) -> Option<Call>;
}

/// Dials in memory, bounded in entries and in bytes; the oldest go first.
#[derive(Debug)]
pub struct Memory {
    max_calls: usize,
    max_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<String, Call>,
    /// Ids, oldest first.
    age: VecDeque<String>,
    bytes: usize,
}

impl Default for Memory {
    fn default() -> Self {
        Memory::new(DEFAULT_MAX_CALLS, DEFAULT_MAX_BYTES)
    }
}

impl Memory {
    pub fn new(max_calls: usize, max_bytes: usize) -> Self {
        Memory { max_calls: max_calls.max(1), max_bytes, inner: Mutex::new(Inner::default()) }
    }

    /// A panic elsewhere while holding the lock leaves a consistent map
    /// (every change below completes before it can panic), so keep using it.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The estimated bytes held now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

impl CallStore for Memory {
    fn remember(&self, call: Call) {
        let weight = call.weight();
        if weight > self.max_bytes {
            tracing::warn!(id = %call.id, weight, "a dial is too large to remember; GET /v1/calls/{} will not find it", call.id);
            return;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.by_id.remove(&call.id) {
            inner.bytes -= old.weight();
            inner.age.retain(|id| id != &call.id);
        }
        while !inner.age.is_empty() && (inner.by_id.len() >= self.max_calls || inner.bytes + weight > self.max_bytes) {
            let Some(oldest) = inner.age.pop_front() else { break };
            if let Some(old) = inner.by_id.remove(&oldest) {
                inner.bytes -= old.weight();
            }
        }
        inner.bytes += weight;
        inner.age.push_back(call.id.clone());
        inner.by_id.insert(call.id.clone(), call);
    }

    fn find(&self, id: &str) -> Option<Call> {
        self.lock().by_id.get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str, number: &str) -> Call {
        Call {
            id: id.into(),
            branch: "b".into(),
            action: "dial".into(),
            extension: "201".into(),
            number: number.into(),
            dialled: Some(number.into()),
            call_id: Some("3250".into()),
            key: "-".into(),
            created: SystemTime::now(),
            state: CallState::Requested,
            status: Status::Accepted,
        }
    }

    #[test]
    fn remembers_and_finds_by_id_and_a_second_write_replaces_the_first() {
        let store = Memory::default();
        store.remember(call("a", "187"));
        assert_eq!(store.find("a").map(|c| c.number), Some("187".into()));
        assert_eq!(store.find("b"), None);
        let mut failed = call("a", "187");
        failed.state = CallState::Failed;
        let before = store.bytes();
        store.remember(failed);
        assert_eq!((store.len(), store.bytes()), (1, before), "replaced, not added");
        assert_eq!(store.find("a").map(|c| c.state), Some(CallState::Failed));
    }

    #[test]
    fn the_entry_bound_drops_the_oldest_first() {
        let store = Memory::new(3, usize::MAX);
        for i in 0..10 {
            store.remember(call(&format!("id{i}"), "187"));
            assert!(store.len() <= 3, "{}", store.len());
        }
        assert_eq!(store.len(), 3);
        assert!(store.find("id6").is_none(), "the oldest went first");
        assert!(["id7", "id8", "id9"].iter().all(|id| store.find(id).is_some()));
    }

    #[test]
    fn the_byte_bound_holds_whatever_the_entries_hold() {
        let one = call("x", "187").weight();
        let store = Memory::new(usize::MAX, 10 * one);
        for i in 0..100 {
            // Larger numbers as it goes: the bound is bytes, not a count.
            store.remember(call(&format!("id{i:03}"), &"1".repeat(i * 10)));
            assert!(store.bytes() <= 10 * one, "{} > {}", store.bytes(), 10 * one);
        }
        assert!(store.find("id099").is_some(), "the newest is kept");
        assert!(store.find("id000").is_none(), "the oldest went first");
        let recount: usize = (0..100).filter_map(|i| store.find(&format!("id{i:03}"))).map(|c| c.weight()).sum();
        assert_eq!(recount, store.bytes(), "the running count matches what is held");

        store.remember(call("huge", &"1".repeat(20 * one)));
        assert!(store.find("huge").is_none(), "an entry over the whole bound is not kept");
        assert!(store.find("id099").is_some(), "and drops nothing else");
    }
}

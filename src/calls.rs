//! The dial log: every dial and action that was sent to a PBX, and the call
//! events that follow, under the gateway `id` each answer carried. A caller
//! that knows only that id can read the dial back (`GET /v1/calls/ID`) or
//! act on it (`POST /v1/calls/ID/hangup`) without keeping the branch,
//! extension or the PBX's call id itself; `GET /v1/calls` and `webdial log`
//! list it.
//!
//! Users see the [`CallStore`] interface; its one implementation is
//! [`sqlite::Log`], a SQLite file (or SQLite's in-memory mode for
//! `data: ":memory:"`, so both take the same code path). A record is
//! written before its answer is sent: [`CallStore::remember`] hands back a
//! [`Receipt`] that resolves once the record is committed. It is runtime
//! state: it lives in [`crate::state::Runtime`] and outlives a reload.

pub mod index;
pub mod sqlite;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::events::EventType;
use crate::outcome::Status;

pub use index::{Clues, Index, Recorded};
pub use sqlite::Log;

/// Entries a list answers when it names no `limit`.
pub const DEFAULT_LIMIT: usize = 50;
/// The most entries one list answers: a page, not the whole log.
pub const MAX_LIMIT: usize = 500;
/// The longest `message` kept with an entry (a PBX's error text can be long).
pub const MAX_MESSAGE: usize = 1_000;

/// Where a dial stands. It starts as the gateway saw it (the PBX took the
/// request, or the request failed) and call events move it on; it never
/// goes back, and a final state stays final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// The PBX accepted the dial; it rings later.
    Requested,
    /// A phone rings (or the PBX is dialling).
    Ringing,
    /// Both sides are talking.
    Answered,
    /// The call is over.
    Ended,
    /// The dial was sent but did not succeed (refused by the PBX, no
    /// connection, no readable answer, no answer in time), or the PBX said
    /// later that it could not carry it out.
    Failed,
    /// Nobody answered.
    Missed,
    /// The called side refused.
    Rejected,
}

/// Every state, for parsing.
const STATES: [CallState; 7] = [
    CallState::Requested,
    CallState::Ringing,
    CallState::Answered,
    CallState::Ended,
    CallState::Failed,
    CallState::Missed,
    CallState::Rejected,
];

impl CallState {
    /// The name stored in the log (the same as the JSON one).
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Requested => "requested",
            CallState::Ringing => "ringing",
            CallState::Answered => "answered",
            CallState::Ended => "ended",
            CallState::Failed => "failed",
            CallState::Missed => "missed",
            CallState::Rejected => "rejected",
        }
    }

    pub fn parse(name: &str) -> Option<CallState> {
        STATES.into_iter().find(|s| s.as_str() == name)
    }

    fn rank(self) -> u8 {
        match self {
            CallState::Requested => 0,
            CallState::Ringing => 1,
            CallState::Answered => 2,
            CallState::Ended | CallState::Failed | CallState::Missed | CallState::Rejected => 3,
        }
    }

    /// Whether nothing moves it any more.
    pub fn is_final(self) -> bool {
        self.rank() == 3
    }

    /// The state after an event of `kind`: later states only, so events
    /// that arrive out of order (a `ringing` after `answered`) or twice
    /// change nothing, and the first final state stays.
    pub fn after(self, kind: EventType) -> CallState {
        let next = match kind {
            EventType::Ringing | EventType::Dialling => CallState::Ringing,
            EventType::Answered => CallState::Answered,
            EventType::Ended => CallState::Ended,
            EventType::Failed => CallState::Failed,
            EventType::Missed => CallState::Missed,
            EventType::Rejected => CallState::Rejected,
            EventType::Voicemail | EventType::Other => return self,
        };
        if next.rank() > self.rank() { next } else { self }
    }
}

/// One entry of the log: a dial, or another action, that was sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The gateway's id of the request (the `id` of its answer; a ULID).
    pub id: String,
    pub branch: String,
    /// `dial`, or the action that was run (`hangup`, `transfer`, …).
    pub action: String,
    /// The extension, separators removed (as the action's templates saw it).
    pub extension: String,
    /// The number as received (empty for actions without one).
    pub number: String,
    /// The number as dialled, after the branch's number rules.
    pub dialled: Option<String>,
    /// For a dial, the PBX's id of the call when its answer gave one; for
    /// another action, the PBX call it applied to.
    pub call_id: Option<String>,
    /// For an action run on an earlier dial (`/v1/calls/ID/ACTION`), that
    /// dial's gateway id.
    pub dial_id: Option<String>,
    /// The name of the API key that asked (`-` without keys, `local` for the
    /// command line).
    pub key: String,
    pub created: SystemTime,
    pub state: CallState,
    /// How the request itself ended.
    pub status: Status,
    /// The answer's message (the PBX's error text, …), at most
    /// [`MAX_MESSAGE`] characters.
    pub message: Option<String>,
}

/// A call event as the log keeps it. The event itself is the events
/// module's (which sits above this one); the log only needs what it filters
/// and sorts on, plus the whole event as JSON to hand back unchanged. The
/// events side builds one from its event (its id, branch, type name,
/// `dial_id`, `call_id`, when it was received, the event serialized, and
/// the state it moves the dial to) and passes it to
/// [`CallStore::record_event`]; waiting on the receipt before answering the
/// PBX's notification makes the event as durable as a dial.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// The event's own id (a ULID).
    pub id: String,
    pub branch: String,
    /// The type name (`ringing`, `answered`, …).
    pub kind: String,
    /// The gateway id of the dial the event belongs to, when known.
    pub dial_id: Option<String>,
    /// The PBX's id of the call.
    pub call_id: Option<String>,
    pub at: SystemTime,
    /// The event as JSON text.
    pub json: String,
    /// The state the dial `dial_id` moves to, if the event moves it.
    pub state: Option<CallState>,
}

/// What a list asks for. Every filter given must match; entries come newest
/// first (by id, which sorts by time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The branches the caller may see (its key's scope); `None`: all.
    pub scope: Option<Vec<String>>,
    pub branch: Option<String>,
    /// Separators removed, as stored.
    pub extension: Option<String>,
    /// Matches the number as received or as dialled.
    pub number: Option<String>,
    pub action: Option<String>,
    /// Only entries created at or after this.
    pub since: Option<SystemTime>,
    /// Only entries whose id sorts before this one: the next page after a
    /// page that ended with it.
    pub before: Option<String>,
    /// At most this many (callers bound it; see [`MAX_LIMIT`]).
    pub limit: usize,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            scope: None,
            branch: None,
            extension: None,
            number: None,
            action: None,
            since: None,
            before: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

/// An extension as the log keeps it: separators removed, as the action's
/// templates saw it, so a filter on `2-01` finds the dials from `201`.
pub fn extension_key(raw: &str) -> String {
    crate::number::DialString::parse(raw).map(|e| e.to_string()).unwrap_or_else(|_| raw.to_string())
}

/// `since`, as a caller writes it: a time (RFC 3339, `2026-11-23T14:00:00Z`)
/// or how far back from `now` (`90m`, `1h`, `7d`).
pub fn parse_since(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let text = text.trim();
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(t);
    }
    match humantime::parse_duration(text) {
        Ok(ago) => Ok(now.checked_sub(ago).filter(|t| *t >= UNIX_EPOCH).unwrap_or(UNIX_EPOCH)),
        Err(_) => Err(format!("since {text:?} is neither a time like 2026-11-23T14:00:00Z nor a duration like 1h")),
    }
}

/// The dial log failed (the file cannot be read or written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the dial log: {0}")]
pub struct StoreError(pub String);

/// A record's way into the log: resolves once it is committed (or failed).
/// The record is already queued when the receipt is handed out, so a
/// caller that never waits does not lose it.
#[must_use = "a record is only known to be kept once its receipt resolves"]
pub struct Receipt<T = ()>(Pending<T>);

enum Pending<T> {
    Ready(Result<T, StoreError>),
    Waiting(tokio::sync::oneshot::Receiver<Result<T, StoreError>>),
    /// The writer's queue was full: queued (and then waited for) on `wait`.
    Later(Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>),
}

impl<T> std::fmt::Debug for Receipt<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Receipt")
    }
}

impl<T: Send + 'static> Receipt<T> {
    pub fn ready(result: Result<T, StoreError>) -> Self {
        Receipt(Pending::Ready(result))
    }

    fn waiting(rx: tokio::sync::oneshot::Receiver<Result<T, StoreError>>) -> Self {
        Receipt(Pending::Waiting(rx))
    }

    fn later(f: impl Future<Output = Result<T, StoreError>> + Send + 'static) -> Self {
        Receipt(Pending::Later(Box::pin(f)))
    }

    /// Waits until the record is committed.
    pub async fn wait(self) -> Result<T, StoreError> {
        match self.0 {
            Pending::Ready(r) => r,
            Pending::Waiting(rx) => rx.await.unwrap_or_else(|_| Err(stopped())),
            Pending::Later(f) => f.await,
        }
    }

    /// As [`Receipt::wait`], for at most `limit`.
    pub async fn wait_for(self, limit: Duration) -> Result<T, StoreError> {
        match tokio::time::timeout(limit, self.wait()).await {
            Ok(r) => r,
            Err(_) => Err(StoreError(format!("not committed within {limit:?}"))),
        }
    }
}

fn stopped() -> StoreError {
    StoreError("the writer stopped".into())
}

/// Where dials, actions and events are kept. Recording never fails a
/// request: a record that cannot be kept is reported by its receipt (and
/// logged by the caller), and the answer still goes out, since the PBX has
/// acted already.
pub trait CallStore: Send + Sync {
    /// Records `call`, replacing an earlier entry with the same id.
    fn remember(&self, call: Call) -> Receipt;
    /// Records `event`, and moves its dial's state when it says so.
    fn record_event(&self, event: EventRecord) -> Receipt;
    /// The entry with gateway id `id`, if the log has it.
    fn find(&self, id: &str) -> Result<Option<Call>, StoreError>;
    /// Entries matching `query`, newest first, at most `query.limit`.
    fn list(&self, query: &Query) -> Result<Vec<Call>, StoreError>;
    /// The events of the dial `dial_id`, oldest first.
    fn events(&self, dial_id: &str) -> Result<Vec<EventRecord>, StoreError>;
    /// Deletes what is older than the retention, as of `now`; resolves to
    /// the number of rows deleted. Also runs by itself, periodically.
    fn sweep(&self, now: SystemTime) -> Receipt<u64>;
}

/// An entry as the API and `webdial log --json` show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallView<'a> {
    pub id: &'a str,
    pub branch: &'a str,
    pub action: &'a str,
    pub extension: &'a str,
    /// As received.
    pub number: &'a str,
    /// After the branch's number rules.
    pub dialled: Option<&'a str>,
    pub call_id: Option<&'a str>,
    pub dial_id: Option<&'a str>,
    pub state: CallState,
    /// The status of the request's own answer.
    pub status: Status,
    pub message: Option<&'a str>,
    pub created: String,
    /// The call's events, when one entry is read (not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub events: Option<Vec<serde_json::Value>>,
}

impl<'a> From<&'a Call> for CallView<'a> {
    fn from(c: &'a Call) -> Self {
        CallView {
            id: &c.id,
            branch: &c.branch,
            action: &c.action,
            extension: &c.extension,
            number: &c.number,
            dialled: c.dialled.as_deref(),
            call_id: c.call_id.as_deref(),
            dial_id: c.dial_id.as_deref(),
            state: c.state,
            status: c.status,
            message: c.message.as_deref(),
            created: humantime::format_rfc3339_seconds(c.created).to_string(),
            events: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_time_or_a_duration_back_from_now() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(parse_since("1h", now), Ok(now - Duration::from_secs(3600)));
        assert_eq!(parse_since(" 7d ", now), Ok(now - Duration::from_secs(7 * 86_400)));
        let t = parse_since("2026-11-23T14:00:00Z", now).unwrap();
        assert_eq!(humantime::format_rfc3339_seconds(t).to_string(), "2026-11-23T14:00:00Z");
        assert_eq!(parse_since("100000d", now), Ok(UNIX_EPOCH), "not before the epoch");
        assert!(parse_since("yesterday", now).unwrap_err().contains("neither a time"));
    }

    #[test]
    fn states_read_back_by_name() {
        for s in STATES {
            assert_eq!(CallState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        assert_eq!(CallState::parse("ringing?"), None);
    }
}

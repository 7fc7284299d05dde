//! Call events, the gateway's side: a PBX's notification for a branch is
//! checked and read by the branch's `events:` rules, normalized, tied to the
//! dial it belongs to (whose state it moves), and published on the bus.
//!
//! Nothing here waits on a subscriber: publishing never blocks, so the PBX
//! gets its answer at once. A notification the PBX sends twice is passed on
//! once (the second is answered, marked `duplicate`, and goes nowhere).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::Gateway;
use super::by_id::RECORD_WAIT;
use crate::calls::{Clues, EventRecord};
use crate::events::inbound::{Notification, Refused};
use crate::events::{CallEvent, Direction, Published};
use crate::guard::keys::{self, Caller, Credential};
use crate::outcome::{ActionResult, Refusal, Status};
use crate::secrets;

/// The `action` a notification's answer names.
pub const EVENT: &str = "event";

/// The most of a notification's own fields an event carries (as JSON text):
/// every subscriber and the replay ring hold each event, so one large
/// notification must not become a large event many times over.
pub const MAX_PBX_FIELDS: usize = 2048;

impl Gateway {
    /// Takes one notification for `branch`: 200 with the event's id (once it
    /// is in the dial log), or the refusal (404 no such branch or no `events:`, 401 not from whom the
    /// branch accepts, 400 unreadable). A refused notification goes nowhere.
    pub async fn receive(&self, branch: &str, n: &Notification) -> ActionResult {
        let snapshot = self.snapshot();
        let refused = |r: Refusal| ActionResult::refused(&ulid::Ulid::generate().to_string(), &r, Some(branch), EVENT);
        let Some(profile) = snapshot.profiles.get(branch) else {
            return refused(Refusal::UnknownBranch(branch.to_string()));
        };
        let Some(intake) = profile.events.as_ref().filter(|i| i.enabled()) else {
            return refused(Refusal::UnknownBranch(format!(
                "{branch:?} that receives events: its profile sets no events secret, from or verify"
            )));
        };
        let reading = match intake.receive(snapshot.profiles.templates(), n) {
            Ok(r) => r,
            Err(Refused::Unauthorized(why)) => {
                tracing::warn!(branch, peer = ?n.peer, "notification refused: {why}");
                return refused(Refusal::Unauthorized(why));
            }
            Err(Refused::Unreadable(why)) => {
                tracing::warn!(branch, peer = ?n.peer, "notification not readable: {why}");
                return refused(Refusal::InvalidRequest(why));
            }
        };
        let mut fields = reading.fields;
        // Values a phone put in the path are the notification's too.
        if let (Some(map), false) = (fields.as_object_mut(), n.path.is_empty()) {
            map.entry("path").or_insert_with(|| n.path.iter().map(|s| serde_json::Value::from(s.as_str())).collect());
        }
        secrets::redact_json(&mut fields);
        let id = ulid::Ulid::generate().to_string();
        if !self.runtime.seen.first(branch, &fields, Instant::now()) {
            tracing::debug!(branch, "the same notification again: not passed on");
            let mut r = ActionResult::new(&id, Status::Accepted, Some(branch), EVENT)
                .with_message("the same notification again: not passed on");
            r.duplicate = true;
            return r;
        }
        let mask = |v: Option<String>| v.map(|s| secrets::redact(&s).into_owned());
        let (call_id, request_id, external_id) =
            (mask(reading.call_id), mask(reading.request_id), mask(reading.external_id));
        let (extension, remote) = (mask(reading.extension), mask(reading.remote));
        let now = SystemTime::now();
        let dial_id = self.runtime.index.correlate(&Clues {
            branch,
            call_id: call_id.as_deref(),
            request_id: request_id.as_deref(),
            external_id: external_id.as_deref(),
            extension: extension.as_deref(),
            remote: remote.as_deref(),
            at: now,
        });
        let event = CallEvent {
            id: id.clone(),
            branch: branch.to_string(),
            kind: reading.kind,
            // A dial is a call the extension makes.
            direction: reading.direction.or(dial_id.as_ref().map(|_| Direction::Out)),
            extension,
            remote,
            call_id: call_id.clone(),
            dial_id: dial_id.clone(),
            external_id,
            at: humantime::format_rfc3339_seconds(now).to_string(),
            pbx: bounded(fields),
        };
        let event = Arc::new(Published::new(event));
        // Where the dial goes, decided once (events arriving together cannot
        // both move it), then the dial log, committed before anyone hears of
        // the event: a subscriber that reads the dial on seeing the event
        // finds it there, and a PBX answered 200 lost nothing.
        let moved = dial_id
            .as_deref()
            .and_then(|dial| self.runtime.index.record(dial, event.kind, event.call_id.as_deref()))
            .filter(|r| r.moved)
            .map(|r| r.state);
        let record = EventRecord {
            id: id.clone(),
            branch: branch.to_string(),
            kind: event.kind.as_str().to_string(),
            dial_id: dial_id.clone(),
            call_id: call_id.clone(),
            at: now,
            json: event.json().to_string(),
            state: moved,
        };
        if let Err(e) = self.runtime.calls.record_event(record).wait_for(RECORD_WAIT).await {
            tracing::error!(branch, id = %id, "event passed on without being recorded: {e}");
        }
        tracing::debug!(branch, id = %id, kind = event.kind.as_str(), dial_id = ?dial_id, "event");
        self.runtime.metrics.event(&snapshot.profiles, branch, event.kind.as_str());
        self.runtime.events.send(event);
        let mut r = ActionResult::new(&id, Status::Accepted, Some(branch), EVENT);
        r.call_id = call_id;
        r
    }
}

/// The notification's fields as an event carries them: whole, unless their
/// JSON is over [`MAX_PBX_FIELDS`]; then its first part, as text, marked.
fn bounded(fields: serde_json::Value) -> serde_json::Value {
    let text = fields.to_string();
    if text.len() <= MAX_PBX_FIELDS {
        return fields;
    }
    let mut end = MAX_PBX_FIELDS;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    serde_json::json!({"truncated": true, "bytes": text.len(), "start": &text[..end]})
}

/// What one event stream shows: its branch and extension filters, within
/// the branches the caller's key may use.
#[derive(Debug, Clone)]
pub struct Watch {
    /// `None`: every branch the key may use.
    branch: Option<String>,
    extension: Option<String>,
    /// The key's branches; `None`: all.
    scope: Option<Vec<String>>,
}

impl Watch {
    /// Whether `event` is one this stream shows.
    pub fn shows(&self, event: &CallEvent) -> bool {
        self.branch.as_ref().is_none_or(|b| *b == event.branch)
            && self.scope.as_ref().is_none_or(|s| s.contains(&event.branch))
            && self.extension.as_ref().is_none_or(|x| event.extension.as_deref() == Some(x.as_str()))
    }
}

impl Gateway {
    /// An event stream for `credential`, optionally one branch and one
    /// extension: 401 without a valid key (when keys are configured), 403
    /// for a branch the key may not use. Watching spends no rate: it makes
    /// no PBX do anything.
    pub fn watch(
        &self,
        credential: &Credential,
        branch: Option<String>,
        extension: Option<String>,
    ) -> Result<Watch, Refusal> {
        let snapshot = self.snapshot();
        let caller = keys::authenticate(&snapshot.settings.keys, credential)?;
        let scope = match caller {
            Caller::Key(key) => {
                if let Some(b) = &branch {
                    keys::may_use(key, b)?;
                }
                key.branches.clone()
            }
            Caller::Local | Caller::Anonymous => None,
        };
        Ok(Watch { branch, extension, scope })
    }
}

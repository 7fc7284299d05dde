//! Which dial a call event belongs to, answered at once: the recent dials,
//! in memory, by what an event may name — the PBX's call or request id,
//! the external id sent with the dial, or its branch, extension and
//! number. The dial log is the record; this is the lookup the events side
//! needs on every notification, without a query per notification. It also
//! holds where each recent dial stands, so an event's new state is decided
//! in one place under one lock (events arriving together cannot both move
//! it), and the PBX call id its events gave (what a hang-up by the dial's
//! id sends). Bounded: past [`KEPT`] dials the oldest are forgotten (their
//! events then find no dial, and the log keeps what it has).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use super::{Call, CallState};
use crate::events::EventType;

/// How long after a dial an event that names only its branch, extension
/// and number (no id the dial knows) is taken to belong to it.
pub const LINE_WINDOW: Duration = Duration::from_secs(60);
/// How many recent dials are kept for finding.
pub const KEPT: usize = 100_000;
/// How many recent dials per branch and extension are considered for an
/// event that names only the line: one person does not start more within
/// [`LINE_WINDOW`].
const LINE_KEPT: usize = 8;
/// The longest id or number kept (longer ones are not indexed).
const MAX_KEY: usize = 256;

/// What an event says that may tie it to a dial.
#[derive(Debug, Clone, Copy)]
pub struct Clues<'a> {
    pub branch: &'a str,
    /// The PBX's id of the call.
    pub call_id: Option<&'a str>,
    /// The id the PBX gave the request that made the call (a dial's answer's call id).
    pub request_id: Option<&'a str>,
    pub external_id: Option<&'a str>,
    pub extension: Option<&'a str>,
    pub remote: Option<&'a str>,
    /// When the event arrived.
    pub at: SystemTime,
}

/// What recording an event on a dial did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub state: CallState,
    /// Whether the state moved.
    pub moved: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    branch: String,
    extension: String,
    number: String,
    dialled: Option<String>,
    call_id: Option<String>,
    external_id: Option<String>,
    pbx_call_id: Option<String>,
    created: SystemTime,
    state: CallState,
}

impl Entry {
    fn refs(&self) -> impl Iterator<Item = (String, String)> + '_ {
        [&self.call_id, &self.pbx_call_id].into_iter().flatten().map(|r| (self.branch.clone(), r.clone()))
    }
}

/// The recent dials, by what events name.
#[derive(Debug, Default)]
pub struct Index {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<String, Entry>,
    /// Ids, oldest first.
    age: VecDeque<String>,
    /// (branch, a PBX id: the dial's answer's or one its events gave) → dial.
    by_ref: HashMap<(String, String), String>,
    /// (branch, external id) → dial.
    by_external: HashMap<(String, String), String>,
    /// (branch, extension) → its latest dials, newest last.
    by_line: HashMap<(String, String), VecDeque<String>>,
}

impl Inner {
    fn unindex(&mut self, id: &str, e: &Entry) {
        for r in e.refs() {
            if self.by_ref.get(&r).is_some_and(|d| d == id) {
                self.by_ref.remove(&r);
            }
        }
        if let Some(x) = &e.external_id {
            let k = (e.branch.clone(), x.clone());
            if self.by_external.get(&k).is_some_and(|d| d == id) {
                self.by_external.remove(&k);
            }
        }
        let k = (e.branch.clone(), line_form(&e.extension));
        if let Some(line) = self.by_line.get_mut(&k) {
            line.retain(|d| d != id);
            if line.is_empty() {
                self.by_line.remove(&k);
            }
        }
    }
}

/// An extension as lines are compared: letters and digits only.
fn line_form(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphanumeric).collect()
}

/// Whether a number an event names is the number a dial called: the same
/// digits, or (for numbers of 6 digits or more, which a PBX may write with
/// or without a country code, trunk prefix or outside line) the same last
/// digits, up to nine of them.
fn same_number(event: &str, dialled: &str) -> bool {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let (a, b) = (digits(event), digits(dialled));
    if a.is_empty() || b.is_empty() {
        return false;
    }
    if a == b {
        return true;
    }
    let n = a.len().min(b.len());
    if n < 6 {
        return false;
    }
    let n = n.min(9);
    a[a.len() - n..] == b[b.len() - n..]
}

impl Index {
    /// A panic elsewhere while holding the lock leaves consistent maps
    /// (each change completes before anything can panic): keep using them.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `call` (a dial that was sent), with the external id sent with it.
    pub fn remember(&self, call: &Call, external_id: Option<&str>) {
        let short = |v: &Option<String>| v.clone().filter(|s| !s.is_empty() && s.len() <= MAX_KEY);
        let entry = Entry {
            branch: call.branch.clone(),
            extension: call.extension.clone(),
            number: call.number.chars().take(MAX_KEY).collect(),
            dialled: short(&call.dialled),
            call_id: short(&call.call_id),
            external_id: short(&external_id.map(str::to_string)),
            pbx_call_id: None,
            created: call.created,
            state: call.state,
        };
        let mut inner = self.lock();
        let id = call.id.clone();
        if let Some(old) = inner.by_id.remove(&id) {
            inner.unindex(&id, &old);
            inner.age.retain(|d| d != &id);
        }
        while inner.by_id.len() >= KEPT {
            let Some(oldest) = inner.age.pop_front() else { break };
            if let Some(old) = inner.by_id.remove(&oldest) {
                inner.unindex(&oldest, &old);
            }
        }
        for r in entry.refs() {
            inner.by_ref.insert(r, id.clone());
        }
        if let Some(x) = &entry.external_id {
            inner.by_external.insert((entry.branch.clone(), x.clone()), id.clone());
        }
        let line = inner.by_line.entry((entry.branch.clone(), line_form(&entry.extension))).or_default();
        line.push_back(id.clone());
        if line.len() > LINE_KEPT {
            line.pop_front();
        }
        inner.age.push_back(id.clone());
        inner.by_id.insert(id, entry);
    }

    /// The gateway id of the dial an event belongs to: by the PBX's call
    /// id or request id (what the dial's answer or earlier events gave), by
    /// the external id sent with the dial, or else by the same branch,
    /// extension and number within [`LINE_WINDOW`] of the dial (the newest
    /// such dial still in progress, not tied to another PBX call).
    pub fn correlate(&self, clues: &Clues<'_>) -> Option<String> {
        let inner = self.lock();
        let key = |v: &str| (clues.branch.to_string(), v.to_string());
        for r in [clues.call_id, clues.request_id].into_iter().flatten() {
            if let Some(id) = inner.by_ref.get(&key(r)) {
                return Some(id.clone());
            }
        }
        if let Some(id) = clues.external_id.and_then(|x| inner.by_external.get(&key(x))) {
            return Some(id.clone());
        }
        let (extension, remote) = (clues.extension?, clues.remote?);
        let line = inner.by_line.get(&key(&line_form(extension)))?;
        line.iter().rev().find_map(|id| {
            let call = inner.by_id.get(id)?;
            let recent = clues.at.duration_since(call.created).is_ok_and(|age| age <= LINE_WINDOW);
            let other_call = matches!((clues.call_id, &call.pbx_call_id), (Some(a), Some(b)) if a != b);
            let number = same_number(remote, call.dialled.as_deref().unwrap_or(&call.number))
                || same_number(remote, &call.number);
            (recent && !call.state.is_final() && !other_call && number).then(|| id.clone())
        })
    }

    /// An event of `kind` on dial `id`: its state moves (never back), and
    /// it learns the PBX's call id from the first event that has one.
    /// `None` when the dial is no longer kept.
    pub fn record(&self, id: &str, kind: EventType, call_id: Option<&str>) -> Option<Recorded> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let entry = inner.by_id.get_mut(id)?;
        let state = entry.state.after(kind);
        let moved = state != entry.state;
        entry.state = state;
        if let (None, Some(c)) = (&entry.pbx_call_id, call_id.filter(|c| c.len() <= MAX_KEY)) {
            entry.pbx_call_id = Some(c.to_string());
            let r = (entry.branch.clone(), c.to_string());
            inner.by_ref.entry(r).or_insert_with(|| id.to_string());
        }
        Some(Recorded { state, moved })
    }

    /// The PBX's call id the events of dial `id` gave, if any.
    pub fn pbx_call_id(&self, id: &str) -> Option<String> {
        self.lock().by_id.get(id).and_then(|e| e.pbx_call_id.clone())
    }

    /// How many dials are kept.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    fn call(id: &str, number: &str) -> Call {
        Call {
            id: id.into(),
            branch: "b".into(),
            action: "dial".into(),
            extension: "201".into(),
            number: number.into(),
            dialled: Some(number.into()),
            call_id: Some("req-1".into()),
            dial_id: None,
            key: "-".into(),
            created: SystemTime::now(),
            state: CallState::Requested,
            status: Status::Accepted,
            message: None,
        }
    }

    fn clues(call_id: Option<&'static str>, request_id: Option<&'static str>) -> Clues<'static> {
        Clues {
            branch: "b",
            call_id,
            request_id,
            external_id: None,
            extension: None,
            remote: None,
            at: SystemTime::now(),
        }
    }

    /// The state after each event in turn, from `requested`.
    fn run(kinds: &[EventType]) -> Vec<CallState> {
        let mut state = CallState::Requested;
        kinds
            .iter()
            .map(|k| {
                state = state.after(*k);
                state
            })
            .collect()
    }

    #[test]
    fn the_state_moves_forward_only_and_a_final_state_stays() {
        use CallState::*;
        use EventType as E;
        let table: &[(&[EventType], &[CallState])] = &[
            // In order.
            (&[E::Dialling, E::Answered, E::Ended], &[Ringing, Answered, Ended]),
            (&[E::Ringing, E::Missed], &[Ringing, Missed]),
            (&[E::Ringing, E::Rejected], &[Ringing, Rejected]),
            (&[E::Failed], &[Failed]),
            // Out of order: a late ringing does not undo answered; nothing undoes ended.
            (&[E::Answered, E::Ringing, E::Ended], &[Answered, Answered, Ended]),
            (&[E::Ended, E::Answered, E::Ringing], &[Ended, Ended, Ended]),
            (&[E::Rejected, E::Ended, E::Failed], &[Rejected, Rejected, Rejected]),
            // Twice the same: nothing more happens.
            (&[E::Ringing, E::Ringing, E::Answered, E::Answered], &[Ringing, Ringing, Answered, Answered]),
            // Neither voicemail nor other moves a call.
            (&[E::Voicemail, E::Other, E::Ringing, E::Other], &[Requested, Requested, Ringing, Ringing]),
        ];
        for (kinds, want) in table {
            assert_eq!(run(kinds), *want, "{kinds:?}");
        }
        assert_eq!(Failed.after(E::Answered), Failed, "a dial the PBX refused stays failed");
    }

    #[test]
    fn events_move_their_dial_which_learns_the_pbx_call_id() {
        let index = Index::default();
        index.remember(&call("d1", "187"), None);
        assert_eq!(
            index.record("d1", EventType::Dialling, Some("3250")),
            Some(Recorded { state: CallState::Ringing, moved: true })
        );
        assert_eq!(
            index.record("d1", EventType::Ringing, Some("3250")),
            Some(Recorded { state: CallState::Ringing, moved: false })
        );
        index.record("d1", EventType::Ended, Some("3251"));
        assert_eq!(index.pbx_call_id("d1").as_deref(), Some("3250"));
        assert_eq!(index.correlate(&clues(Some("3250"), None)).as_deref(), Some("d1"), "the learned call id");
        assert_eq!(index.correlate(&clues(None, Some("req-1"))).as_deref(), Some("d1"), "the answer's request id");
        assert_eq!(index.correlate(&clues(Some("3251"), None)), None, "only the first call id is learned");
        assert!(index.record("nope", EventType::Ended, None).is_none());
    }

    #[test]
    fn events_find_their_dial_by_external_id_or_by_line_and_number_within_the_window() {
        let index = Index::default();
        let now = SystemTime::now();
        let mut a = call("a", "+44 20 7946 0000");
        a.dialled = Some("02079460000".into());
        a.created = now;
        index.remember(&a, Some("crm-7"));
        let line = |ext: Option<&'static str>, remote: Option<&'static str>, at| Clues {
            branch: "b",
            call_id: None,
            request_id: None,
            external_id: None,
            extension: ext,
            remote,
            at,
        };
        let by_ext_id = Clues { external_id: Some("crm-7"), ..line(None, None, now) };
        assert_eq!(index.correlate(&by_ext_id).as_deref(), Some("a"));
        for remote in ["02079460000", "+442079460000", "00442079460000", "902079460000"] {
            assert_eq!(index.correlate(&line(Some("201"), Some(remote), now)).as_deref(), Some("a"), "{remote}");
        }
        assert_eq!(index.correlate(&line(Some("202"), Some("02079460000"), now)), None, "another extension");
        assert_eq!(index.correlate(&line(Some("201"), Some("02079460001"), now)), None, "another number");
        let later = now + LINE_WINDOW + Duration::from_secs(1);
        assert_eq!(index.correlate(&line(Some("201"), Some("02079460000"), later)), None, "past the window");
        assert_eq!(index.correlate(&Clues { branch: "c", ..by_ext_id }), None, "ids are per branch");
        index.record("a", EventType::Ended, Some("3250"));
        assert_eq!(index.correlate(&line(Some("201"), Some("02079460000"), now)), None, "an ended dial is done");
    }

    #[test]
    fn a_forgotten_dial_leaves_nothing_in_the_indexes() {
        let index = Index::default();
        for i in 0..3 {
            let mut c = call("same", "187");
            c.call_id = Some(format!("r{i}"));
            index.remember(&c, Some(&format!("x{i}")));
        }
        let inner = index.lock();
        assert_eq!((inner.by_id.len(), inner.by_ref.len(), inner.by_external.len()), (1, 1, 1), "replaced, not added");
        assert_eq!(inner.by_line.values().map(VecDeque::len).sum::<usize>(), 1);
    }
}

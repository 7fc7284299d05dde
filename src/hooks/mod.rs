//! Hook deliveries: each call event goes to the hooks that want it, off
//! every request path.
//!
//! [`Deliveries::offer`] is called by the one task that follows the event
//! bus (started by `app`). It picks the hooks for the event (the global
//! ones, then the branch's: `on`, `only_external`), renders each request
//! once and puts it on that hook's own queue; it never waits for a
//! receiver. Each hook has one worker that sends its queue in order, one
//! delivery at a time, so a dead or stalled receiver holds up only its own
//! hook, never the others, the bus, or dialling.
//!
//! Unlike a dial (sent once: a second one could ring twice), a delivery is
//! retried: no connection, a timeout, a broken connection or a 5xx answer
//! is tried again after each delay of [`Policy::backoff`] (1 s, 5 s, 30 s,
//! 2 min, 10 min), then dropped and logged. A 2xx answer is delivered; any
//! other answer (4xx, 3xx: redirects are not followed) is final and
//! logged. Every attempt carries `Webdial-Event-Id: <event id>`, the same
//! on every retry, so a receiver can ignore repeats. A queue holds at most
//! [`Policy::queue`] deliveries; past that the oldest is dropped. Every
//! outcome is counted ([`Counts`]).
//!
//! Queues and counts are runtime state (they outlive a reload); a queued
//! delivery keeps the hook it was rendered for. Deliveries still queued
//! when the process exits are lost.

pub mod integra;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use crate::events::CallEvent;
use crate::number::DialString;
use crate::pbx::answer::Answer;
use crate::pbx::client::{Dispatcher, SendError};
use crate::profile::{Hook, Profile, Profiles};
use crate::template::Request;

/// The header that names the event a delivery is for.
pub const EVENT_ID_HEADER: &str = "webdial-event-id";

/// How deliveries are retried and queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The wait before each retry; after the last one, a delivery is dropped.
    pub backoff: Vec<Duration>,
    /// The most deliveries one hook keeps waiting (at least 1).
    pub queue: usize,
}

/// Deliveries one hook keeps waiting by default: about a busy branch's
/// hour of events, a few hundred kilobytes.
pub const DEFAULT_QUEUE: usize = 1_000;

impl Default for Policy {
    fn default() -> Self {
        let s = Duration::from_secs;
        Policy { backoff: vec![s(1), s(5), s(30), s(120), s(600)], queue: DEFAULT_QUEUE }
    }
}

/// Which hook a queue is for: its list (a branch's profile, or
/// `webdial.yaml` for `None`) and its place there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HookKey {
    pub branch: Option<String>,
    pub index: usize,
}

impl fmt::Display for HookKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.branch {
            Some(b) => write!(f, "branch {b} hooks[{}]", self.index),
            None => write!(f, "webdial.yaml hooks[{}]", self.index),
        }
    }
}

/// How many deliveries ended each way, since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Answered 2xx.
    pub delivered: u64,
    /// Attempts that failed and were tried again (one per retry).
    pub retried: u64,
    /// Answered something final other than 2xx (4xx, 3xx): not retried.
    pub rejected: u64,
    /// Given up: after the last retry, or a request that could not be built.
    pub dropped: u64,
    /// Dropped unsent from a full queue (the oldest first).
    pub overflowed: u64,
    /// Events the hooks never saw: the bus moved on before they were read.
    pub missed: u64,
}

impl Counts {
    /// `(result, count)` pairs, as `webdial_hook_deliveries_total{result}` shows them.
    pub fn by_result(&self) -> [(&'static str, u64); 6] {
        [
            ("delivered", self.delivered),
            ("retried", self.retried),
            ("rejected", self.rejected),
            ("dropped", self.dropped),
            ("overflowed", self.overflowed),
            ("missed", self.missed),
        ]
    }
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    retried: AtomicU64,
    rejected: AtomicU64,
    dropped: AtomicU64,
    overflowed: AtomicU64,
    missed: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// One rendered delivery, as queued and retried.
#[derive(Debug)]
struct Job {
    event_id: String,
    request: Request,
    hook: Arc<Hook>,
}

/// One hook's queue, fed by `offer`, emptied by its worker.
#[derive(Debug)]
struct Queue {
    key: HookKey,
    jobs: Mutex<VecDeque<Job>>,
    ready: Notify,
}

impl Queue {
    /// Nothing panics while the lock is held, so a poisoned queue is whole.
    fn jobs(&self) -> MutexGuard<'_, VecDeque<Job>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn next(&self) -> Job {
        loop {
            if let Some(job) = self.jobs().pop_front() {
                return job;
            }
            // A push between the pop and here left a permit: no wake-up is lost.
            self.ready.notified().await;
        }
    }
}

/// Every hook's queue and worker, and the counts. Runtime state; clones
/// share it.
#[derive(Debug, Clone)]
pub struct Deliveries {
    clients: Dispatcher,
    policy: Arc<Policy>,
    queues: Arc<Mutex<HashMap<HookKey, Arc<Queue>>>>,
    counts: Arc<Counters>,
}

impl Deliveries {
    /// Deliveries sent with `clients` (the gateway's, so a hook's `tls:`
    /// gets a pooled client like a branch's) under `policy`.
    pub fn new(clients: Dispatcher, policy: Policy) -> Self {
        Deliveries {
            clients,
            policy: Arc::new(Policy { queue: policy.queue.max(1), ..policy }),
            queues: Arc::default(),
            counts: Arc::default(),
        }
    }

    pub fn counts(&self) -> Counts {
        let c = &self.counts;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counts {
            delivered: get(&c.delivered),
            retried: get(&c.retried),
            rejected: get(&c.rejected),
            dropped: get(&c.dropped),
            overflowed: get(&c.overflowed),
            missed: get(&c.missed),
        }
    }

    /// Deliveries waiting in all queues (not counting those being sent).
    pub fn waiting(&self) -> usize {
        self.queues().values().map(|q| q.jobs().len()).sum()
    }

    /// Records events the bus dropped before they were offered.
    pub fn missed(&self, events: u64) {
        add(&self.counts.missed, events);
        tracing::warn!(events, "hooks fell behind the event bus: {events} event(s) were not offered to any hook");
    }

    fn queues(&self) -> MutexGuard<'_, HashMap<HookKey, Arc<Queue>>> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `event` for every hook in `profiles` that wants it. Never waits.
    pub fn offer(&self, profiles: &Profiles, event: &CallEvent) {
        let profile = profiles.get(&event.branch);
        let global = profiles.global_hooks().iter().map(|h| (None, h));
        let own = profile.into_iter().flat_map(|p| p.hooks.iter().map(move |h| (Some(p.branch.as_str()), h)));
        let mut json = None;
        for (branch, hook) in global.chain(own) {
            if !hook.is_for(event.kind.as_str()) || (hook.only_external && is_internal(profile, event)) {
                continue;
            }
            let key = HookKey { branch: branch.map(str::to_string), index: hook.index };
            let json = json.get_or_insert_with(|| serde_json::to_value(event).unwrap_or_default());
            let rendered = hook.template.render(profiles.templates(), json, &|f| integra::value(event, f));
            match rendered {
                Ok(mut request) => {
                    request.headers.retain(|(h, _)| !h.eq_ignore_ascii_case(EVENT_ID_HEADER));
                    request.headers.push((EVENT_ID_HEADER.into(), event.id.clone()));
                    self.enqueue(key, Job { event_id: event.id.clone(), request, hook: hook.clone() });
                }
                Err(e) => {
                    add(&self.counts.dropped, 1);
                    let field = e.field.as_deref().map(|f| format!(" ({f})")).unwrap_or_default();
                    tracing::warn!(hook = %key, event = %event.id, "hook not sent: its request cannot be built{field}: {e}");
                }
            }
        }
    }

    fn enqueue(&self, key: HookKey, job: Job) {
        let (queue, new) = {
            let mut queues = self.queues();
            match queues.get(&key) {
                Some(q) => (q.clone(), false),
                None => {
                    let q = Arc::new(Queue { key: key.clone(), jobs: Mutex::default(), ready: Notify::new() });
                    queues.insert(key, q.clone());
                    (q, true)
                }
            }
        };
        {
            let mut jobs = queue.jobs();
            if jobs.len() >= self.policy.queue {
                if let Some(oldest) = jobs.pop_front() {
                    let n = self.counts.overflowed.fetch_add(1, Ordering::Relaxed) + 1;
                    // A dead receiver under a stream of events would log every
                    // event: say it on the first and then every thousandth.
                    if n == 1 || n % 1_000 == 0 {
                        tracing::warn!(hook = %queue.key, event = %oldest.event_id, dropped_so_far = n,
                            "hook queue full ({} waiting): the oldest delivery was dropped", self.policy.queue);
                    }
                }
            }
            jobs.push_back(job);
        }
        queue.ready.notify_one();
        if new {
            self.start_worker(queue);
        }
    }

    fn start_worker(&self, queue: Arc<Queue>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(hook = %queue.key, "no async runtime to deliver hooks on: deliveries stay queued");
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            loop {
                let job = queue.next().await;
                this.deliver(&queue.key, &job).await;
            }
        });
    }

    /// Sends one delivery until it is delivered, final, or out of retries.
    async fn deliver(&self, key: &HookKey, job: &Job) {
        let mut delays = self.policy.backoff.iter();
        let mut attempt = 1;
        loop {
            let (sent, _) = self.clients.send(&job.request, job.hook.timeout, &job.hook.tls).await;
            let why = match verdict(&sent) {
                Verdict::Delivered => {
                    add(&self.counts.delivered, 1);
                    tracing::debug!(hook = %key, event = %job.event_id, attempt, "hook delivered");
                    return;
                }
                Verdict::Final(why) => {
                    add(&self.counts.rejected, 1);
                    tracing::warn!(hook = %key, event = %job.event_id, attempt, "hook refused, not retried: {why}");
                    return;
                }
                Verdict::Retry(why) => why,
            };
            let Some(delay) = delays.next() else {
                add(&self.counts.dropped, 1);
                tracing::warn!(hook = %key, event = %job.event_id, attempt, "hook dropped after {attempt} attempts: {why}");
                return;
            };
            add(&self.counts.retried, 1);
            tracing::info!(hook = %key, event = %job.event_id, attempt, "hook not delivered ({why}); retrying in {delay:?}");
            tokio::time::sleep(*delay).await;
            attempt += 1;
        }
    }
}

/// Whether the event's remote number is one of the branch's own
/// extensions (its `number.internal`). Unknown (no remote, no rule, no
/// such branch) is external: only a known internal call is skipped.
fn is_internal(profile: Option<&Arc<Profile>>, event: &CallEvent) -> bool {
    let (Some(rule), Some(remote)) = (profile.and_then(|p| p.number.internal.as_ref()), event.remote.as_deref()) else {
        return false;
    };
    // The rule is written for dial strings (separators removed), as for dials.
    match DialString::parse(remote) {
        Ok(d) => rule.is_match(d.as_str()),
        Err(_) => rule.is_match(remote),
    }
}

/// What an attempt's result means for the delivery.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Delivered,
    /// Done, not delivered: retrying would get the same answer.
    Final(String),
    /// Worth another attempt.
    Retry(String),
}

fn verdict(sent: &Result<Answer, SendError>) -> Verdict {
    match sent {
        Ok(a) if (200..300).contains(&a.http_status) => Verdict::Delivered,
        Ok(a) if a.http_status >= 500 => Verdict::Retry(format!("HTTP {}", a.http_status)),
        Ok(a) => Verdict::Final(format!("HTTP {}", a.http_status)),
        Err(SendError::Unreachable(e)) => Verdict::Retry(format!("no connection: {e}")),
        Err(SendError::Timeout(t)) => Verdict::Retry(format!("no answer within {t:?}")),
        Err(SendError::Broken(e)) => Verdict::Retry(format!("connection broken: {e}")),
        Err(e @ SendError::TooLarge) => Verdict::Final(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventType;

    #[test]
    fn the_default_schedule_is_one_five_thirty_seconds_two_then_ten_minutes() {
        let s = Duration::from_secs;
        assert_eq!(Policy::default().backoff, [s(1), s(5), s(30), s(120), s(600)]);
    }

    #[test]
    fn what_is_retried_and_what_is_final() {
        let answer = |status| Ok(Answer { http_status: status, ..Answer::default() });
        assert_eq!(verdict(&answer(200)), Verdict::Delivered);
        assert_eq!(verdict(&answer(204)), Verdict::Delivered);
        assert!(matches!(verdict(&answer(503)), Verdict::Retry(_)));
        assert!(matches!(verdict(&answer(500)), Verdict::Retry(_)));
        assert!(matches!(verdict(&answer(404)), Verdict::Final(_)));
        assert!(matches!(verdict(&answer(429)), Verdict::Final(_)));
        assert!(matches!(verdict(&answer(302)), Verdict::Final(_)));
        for e in [
            SendError::Unreachable("refused".into()),
            SendError::Timeout(Duration::from_secs(1)),
            SendError::Broken("reset".into()),
        ] {
            assert!(matches!(verdict(&Err(e)), Verdict::Retry(_)));
        }
    }

    /// The names a hook may be `on` are exactly the normalized event's types.
    #[test]
    fn hook_event_types_are_the_events_types() {
        // A new EventType fails to compile here until it is listed below and in EVENT_TYPES.
        fn listed(t: EventType) -> EventType {
            use EventType::*;
            match t {
                Ringing | Dialling | Answered | Ended | Missed | Rejected | Failed | Voicemail | Other => t,
            }
        }
        use EventType::*;
        let all = [Ringing, Dialling, Answered, Ended, Missed, Rejected, Failed, Voicemail, Other].map(listed);
        let names: Vec<&str> = all.iter().map(|t| t.as_str()).collect();
        assert_eq!(names, crate::profile::hooks::EVENT_TYPES);
        for name in crate::profile::hooks::EVENT_TYPES {
            assert_eq!(EventType::parse(name).as_str(), *name);
        }
    }

    #[test]
    fn the_sample_event_hook_templates_are_tried_with_has_exactly_the_events_fields() {
        let event = CallEvent {
            id: "x".into(),
            branch: "b".into(),
            kind: EventType::Ringing,
            direction: None,
            extension: None,
            remote: None,
            call_id: None,
            dial_id: None,
            external_id: None,
            at: String::new(),
            pbx: serde_json::Value::Null,
        };
        let keys =
            |v: serde_json::Value| v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(keys(serde_json::to_value(event).unwrap()), keys(crate::template::sample_event()));
    }
}

//! One action on one branch, from raw input to normalized result. Shared by
//! the HTTP API and the `dial`/`render` commands, so they behave identically.
//!
//! The order is the contract: authenticate, find the branch, check the key's
//! scope and rate, validate the input ([`input`]), apply the number rules,
//! render; only then send ([`send`]: after logging in, for a branch with
//! login steps). Every refusal happens before the send, so a refused
//! request never reaches a PBX. A repeated request (same caller,
//! branch, action, extension and number within the duplicate window, or the
//! same `Idempotency-Key` within 24 h) gets the first one's answer, even
//! while that one is still in flight; an `Idempotency-Key` reused for a
//! different request is a `conflict`, and nothing is sent. Each request runs in its own task,
//! tracked so shutdown can wait for it: a caller who hangs up cannot cancel
//! a dial half-way, and every request ends with exactly one audit line.
//!
//! Every dial and action that was sent is recorded in the dial log by its
//! id (`by_id`) before its answer is returned, so an action can name the
//! dial it applies to instead of its branch, extension and PBX call id; it
//! then runs in the same order as any other request.

pub mod audit;
mod branches;
mod by_id;
pub mod events;
pub mod input;
mod login;
mod reload;
mod send;

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use tokio_util::task::TaskTracker;

use crate::guard::keys::{self, Caller, Credential};
use crate::guard::once::{Claim, OnceKey, Ticket, Waiter};
use crate::outcome::{ActionResult, Refusal, Status};
use crate::remembered::Remembered;
use crate::state::{Runtime, Snapshot};
use crate::template::Rendered;
pub use branches::BranchState;
use input::{ActionInput, Checked};
pub use reload::{Report, Trigger};

/// How long a request waits for a free slot under `max_in_flight` before 429.
pub const IN_FLIGHT_WAIT: Duration = Duration::from_secs(1);

/// The gateway: the current configuration, the state that outlives it, and
/// the requests in flight.
pub struct Gateway {
    snapshot: ArcSwap<Snapshot>,
    runtime: Runtime,
    tasks: TaskTracker,
    reloads: reload::Reloads,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("branches", &self.snapshot.load().profiles.len()).finish_non_exhaustive()
    }
}

/// What a claim on the once-per-click stores found.
enum Claimed {
    /// This request is the one to send; settle the ticket (if a store
    /// applies) with its answer.
    First(Option<Ticket<Remembered>>),
    /// A repeat: the first request's answer is coming.
    Duplicate(Waiter<Remembered>),
    /// The `Idempotency-Key` was used for a different request.
    Conflict,
}

impl Gateway {
    pub fn new(snapshot: Snapshot, runtime: Runtime) -> Self {
        let reloads = reload::Reloads::new(&snapshot, &runtime.metrics);
        Gateway { snapshot: ArcSwap::from_pointee(snapshot), runtime, tasks: TaskTracker::new(), reloads }
    }

    /// The configuration requests start with now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// The requests in flight, for shutdown to wait on.
    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Runs one request to completion and logs its audit line. It runs in
    /// its own tracked task: a caller who hangs up cannot cancel it half-way,
    /// so a started request is sent at most once, settled for its
    /// duplicates, and audited — also when the process is shutting down.
    pub async fn run(self: &Arc<Self>, credential: Credential, input: ActionInput) -> ActionResult {
        self.run_tracked(credential, None, input).await
    }

    /// As [`Gateway::run`], for an action on the earlier dial whose gateway
    /// id is `call`: its branch, extension and the PBX's call id come from
    /// that dial (see `by_id`), the rest from `input`.
    pub async fn run_on_call(
        self: &Arc<Self>,
        credential: Credential,
        call: String,
        input: ActionInput,
    ) -> ActionResult {
        self.run_tracked(credential, Some(call), input).await
    }

    async fn run_tracked(
        self: &Arc<Self>,
        credential: Credential,
        call: Option<String>,
        input: ActionInput,
    ) -> ActionResult {
        let id = ulid::Ulid::generate().to_string();
        let (gw, task_id) = (self.clone(), id.clone());
        let branch = input.branch.clone();
        let action = input.action().to_string();
        match self.tasks.spawn(async move { gw.run_and_audit(&task_id, credential, call, input).await }).await {
            Ok(result) => result,
            Err(_) => ActionResult::internal(
                &id,
                branch.as_deref(),
                &action,
                "the request failed inside the gateway; the PBX may have received it",
            ),
        }
    }

    async fn run_and_audit(
        &self,
        id: &str,
        credential: Credential,
        call: Option<String>,
        input: ActionInput,
    ) -> ActionResult {
        let started = Instant::now();
        let created = SystemTime::now();
        let snapshot = self.snapshot();
        let mut caller = "-".to_string();
        let mut dialled = None;
        let dial = call.clone();
        let input = match call {
            None => Ok(input),
            Some(call) => self.on_call(&snapshot, &credential, &call, input.clone()).map_err(|r| (r, input)),
        };
        let (result, input) = match input {
            Ok(input) => {
                let result = self.decide_and_send(id, &snapshot, &credential, &input, &mut caller, &mut dialled).await;
                (result.redact(), input)
            }
            Err((refusal, input)) => (ActionResult::refused(id, &refusal, None, input.action()), input),
        };
        self.remember(&result, &input, &caller, dialled.as_deref(), created, dial.as_deref()).await;
        self.runtime.metrics.request(&snapshot.profiles, &result);
        audit::record(&result, &input, &caller, dialled.as_deref(), started);
        result
    }

    /// Every check, then (unless refused, a dry run or a duplicate) one send.
    async fn decide_and_send(
        &self,
        id: &str,
        snapshot: &Snapshot,
        credential: &Credential,
        input: &ActionInput,
        caller_name: &mut String,
        dialled: &mut Option<String>,
    ) -> ActionResult {
        let action = input.action();
        let refused = |r: Refusal| ActionResult::refused(id, &r, input.branch.as_deref(), action);
        let caller = match keys::authenticate(&snapshot.settings.keys, credential) {
            Ok(c) => c,
            Err(e) => return refused(e.into()),
        };
        *caller_name = caller.name().to_string();
        let profile = match input::branch(&snapshot.profiles, input) {
            Ok(p) => p,
            Err(r) => return refused(r),
        };
        if let Caller::Key(key) = caller {
            if let Err(e) = keys::may_use(key, &profile.branch).and_then(|()| self.runtime.rates.take(key)) {
                return refused(e.into());
            }
        }
        let checked = match input::check(profile, input) {
            Ok(c) => c,
            Err(r) => return refused(r),
        };
        *dialled = checked.context.get("number").map(str::to_string);
        self.render_and_send(id, snapshot, input, caller_name, checked).await
    }

    async fn render_and_send(
        &self,
        id: &str,
        snapshot: &Snapshot,
        input: &ActionInput,
        caller: &str,
        checked: Checked,
    ) -> ActionResult {
        let branch = checked.profile.branch.as_str();
        let action = checked.action.as_str();
        let Some(act) = checked.act() else {
            return ActionResult::internal(id, Some(branch), action, "the checked action vanished");
        };
        // A branch that logs in: with its warm session, else with it masked
        // (what a dry run shows; a refusal before anything is sent).
        let before = self.before_render(&checked, input.dry_run);
        let context = before.context.as_ref().unwrap_or(&checked.context);
        let request = match act.template.render(snapshot.profiles.templates(), context) {
            Err(e) => {
                let field = e.field.as_deref().map(|f| format!(" ({f})")).unwrap_or_default();
                let r = Refusal::InvalidRequest(format!("branch {branch:?}: the request cannot be built{field}: {e}"));
                return ActionResult::refused(id, &r, Some(branch), action);
            }
            Ok(Rendered::Uri(uri)) => {
                let status = if input.dry_run { Status::DryRun } else { Status::OpenUri };
                let mut r = ActionResult::new(id, status, Some(branch), action);
                r.uri = Some(uri);
                return r;
            }
            Ok(Rendered::Http(request)) if input.dry_run => {
                let mut r = ActionResult::new(id, Status::DryRun, Some(branch), action);
                r.request = Some(request.shown());
                return r;
            }
            Ok(Rendered::Http(request)) => request,
        };

        // One call per click: a repeat gets the first answer.
        let claimed = match self.claim(caller, input, &checked) {
            Claimed::First(ticket) => ticket,
            Claimed::Duplicate(waiter) => return duplicate(id, waiter, Some(branch), action).await,
            Claimed::Conflict => {
                let r = Refusal::Conflict(
                    "this Idempotency-Key was used for a different request (branch, action, extension, number or options); nothing was sent".into(),
                );
                return ActionResult::refused(id, &r, Some(branch), action);
            }
        };
        let permit = match self.runtime.in_flight.acquire(branch, checked.profile.max_in_flight, IN_FLIGHT_WAIT).await {
            Ok(p) => p,
            Err(full) => {
                let result = ActionResult::refused(id, &full.into(), Some(branch), action);
                self.settle(claimed, &result, true);
                return result;
            }
        };
        let busy = self.runtime.metrics.in_flight(branch);
        let (result, sent) = self.send(id, snapshot, &checked, act, request, before.session).await;
        drop((permit, busy));
        // Unsent (a failed login) or unreachable: the PBX never saw it, so the next click may try again.
        self.settle(claimed, &result, !sent || result.status == Status::Unreachable);
        result
    }

    /// Claims this request in the once-per-click stores: by its
    /// `Idempotency-Key` (with the request's fingerprint), else in the
    /// duplicate window (a zero window: no store).
    fn claim(&self, caller: &str, input: &ActionInput, checked: &Checked) -> Claimed {
        let claim = match &input.idempotency_key {
            Some(k) => self.runtime.idempotent.claim(OnceKey::idempotency(caller, k), fingerprint(checked)),
            None => {
                let Some(window) = &self.runtime.recent else { return Claimed::First(None) };
                let extension = checked.context.get("extension").unwrap_or("");
                let key =
                    OnceKey::window(caller, &checked.profile.branch, &checked.action, extension, &checked.subject);
                // The window key is the request's whole identity: no fingerprint to compare.
                window.claim(key, 0)
            }
        };
        match claim {
            Claim::First(ticket) => Claimed::First(Some(ticket)),
            Claim::Duplicate(waiter) => Claimed::Duplicate(waiter),
            Claim::Conflict => Claimed::Conflict,
        }
    }

    /// Hands the answer to the request's repeats and remembers it compactly
    /// (see `remembered`), or forgets the claim when nothing reached the PBX.
    fn settle(&self, claimed: Option<Ticket<Remembered>>, result: &ActionResult, forget: bool) {
        if let Some(ticket) = claimed {
            ticket.settle(Remembered::of(result), forget);
        }
    }
}

/// A stable fingerprint of what a request asks for, to tell a reused
/// `Idempotency-Key` with a different request from a true repeat.
pub fn fingerprint(checked: &Checked) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    checked.profile.branch.hash(&mut h);
    checked.action.hash(&mut h);
    checked.context.hash(&mut h);
    h.finish()
}

/// The first request's answer, for a repeat.
async fn duplicate(id: &str, waiter: Waiter<Remembered>, branch: Option<&str>, action: &str) -> ActionResult {
    match waiter.wait().await {
        Some(first) => first.answer(branch, action),
        None => {
            let mut r = ActionResult::internal(
                id,
                branch,
                action,
                "an identical request was in flight and failed; the PBX may have received it",
            );
            r.duplicate = true;
            r
        }
    }
}

//! One dial, from raw input to normalized result. Shared by the HTTP API and
//! the `dial`/`render` commands, so they behave identically.
//!
//! The order is the contract: authenticate, find the branch, check the key's
//! scope and rate, validate the input, apply the number rules, render; only
//! then send. Every refusal happens before the send, so a refused dial never
//! reaches a PBX. A repeated dial (same caller, branch, extension and number
//! within the duplicate window, or the same `Idempotency-Key` within 24 h)
//! gets the first dial's answer, even while that one is still in flight.
//! The send runs in its own task, so a caller who hangs up cannot cancel a
//! dial half-way and make a retry ring twice. Every dial ends with exactly
//! one audit log line.

pub mod outcome;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::call::outcome::{DialResult, PbxInfo, Refusal, Status};
use crate::guard::keys::{Caller, Credential, Keys};
use crate::guard::once::{self, Claim, Publisher, Recent};
use crate::number::{DialString, RuleError};
use crate::pbx::client::Dispatcher;
use crate::profile::{Profile, Profiles};
use crate::template::{DialValues, Rendered, Request};

/// A dial as asked for, before validation. Every field is optional here so
/// that missing input is reported by the gateway in the one result shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialInput {
    pub credential: Credential,
    pub branch: Option<String>,
    pub action: Option<String>,
    pub extension: Option<String>,
    pub number: Option<String>,
    pub caller_id: Option<String>,
    pub external_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub dry_run: bool,
}

impl Default for DialInput {
    fn default() -> Self {
        DialInput {
            credential: Credential::Presented(None),
            branch: None,
            action: None,
            extension: None,
            number: None,
            caller_id: None,
            external_id: None,
            idempotency_key: None,
            dry_run: false,
        }
    }
}

/// The longest `external_id` and `Idempotency-Key` accepted.
pub const MAX_EXTERNAL_ID: usize = 128;
/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// How long a dial waits for a free slot under `max_in_flight` before 429.
pub const IN_FLIGHT_WAIT: Duration = Duration::from_secs(1);

/// Gateway-wide settings from `webdial.yaml`.
#[derive(Debug)]
pub struct Settings {
    pub keys: Keys,
    pub dedupe_window: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { keys: Keys::default(), dedupe_window: crate::settings::DEFAULT_DEDUPE_WINDOW }
    }
}

/// Same caller, branch, extension, number.
type DedupeKey = (String, String, String, String);
/// Same caller, same `Idempotency-Key`.
type IdempotencyKey = (String, String);

/// Everything a dial needs, built once at start-up.
pub struct Gateway {
    profiles: Profiles,
    dispatcher: Dispatcher,
    keys: Keys,
    recent: Recent<DedupeKey>,
    dedupe_window: Duration,
    idempotent: Recent<IdempotencyKey>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("branches", &self.profiles.len()).finish_non_exhaustive()
    }
}

/// A dial that passed every check.
struct Checked {
    profile: Arc<Profile>,
    action: String,
    values: DialValues,
    /// The number as the duplicate check compares it (E.164 when readable).
    same_number: String,
}

/// Claims to publish the result to, and forget if nothing was sent.
enum Claimed {
    Nothing,
    Dedupe(Publisher, DedupeKey),
    Idempotency(Publisher, IdempotencyKey),
}

impl Gateway {
    pub fn new(profiles: Profiles, dispatcher: Dispatcher, settings: Settings) -> Self {
        Gateway {
            profiles,
            dispatcher,
            keys: settings.keys,
            recent: Recent::new(settings.dedupe_window, once::DEFAULT_CAP),
            dedupe_window: settings.dedupe_window,
            idempotent: Recent::new(IDEMPOTENCY_WINDOW, once::DEFAULT_CAP),
        }
    }

    pub fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    /// Runs one dial to completion and logs its audit line. The dial runs in
    /// its own task: a caller who hangs up cannot cancel it half-way, so a
    /// started dial is always sent at most once, settled for its duplicates,
    /// and audited.
    pub async fn dial(self: &Arc<Self>, input: DialInput) -> DialResult {
        let id = ulid::Ulid::generate().to_string();
        let (gw, task_id) = (self.clone(), id.clone());
        match tokio::spawn(async move { gw.dial_here(&task_id, input).await }).await {
            Ok(result) => result,
            Err(_) => {
                let mut r = DialResult::new(&id, Status::BadResponse, None, "dial");
                r.message = Some("internal error while dialling; the PBX may have received the dial".into());
                r
            }
        }
    }

    async fn dial_here(&self, id: &str, input: DialInput) -> DialResult {
        let started = Instant::now();
        let (result, caller) = self.run(id, &input).await;
        let result = result.redact();
        audit(&result, &input, &caller, started);
        result
    }

    async fn run(&self, id: &str, input: &DialInput) -> (DialResult, String) {
        let action = input.action.as_deref().unwrap_or("dial");
        let caller = match self.keys.authenticate(&input.credential) {
            Ok(c) => c,
            Err(r) => return (DialResult::refused(id, &r, input.branch.as_deref(), action), "-".into()),
        };
        let name = caller.name().to_string();
        let checked = match self.check(input, caller) {
            Ok(c) => c,
            Err(r) => return (DialResult::refused(id, &r, input.branch.as_deref(), action), name),
        };
        (self.run_checked(id, input, &name, checked).await, name)
    }

    async fn run_checked(&self, id: &str, input: &DialInput, caller: &str, checked: Checked) -> DialResult {
        let branch = Some(checked.profile.branch.as_str());
        let action = checked.action.as_str();
        let Some(act) = checked.profile.action(action) else {
            let r = Refusal::UnknownAction { branch: checked.profile.branch.clone(), action: action.to_string() };
            return DialResult::refused(id, &r, branch, action);
        };
        let request = match act.template.render(self.profiles.templates(), &checked.values) {
            Err(e) => return DialResult::refused(id, &Refusal::InvalidRequest(e.message), branch, action),
            Ok(Rendered::Uri(uri)) => {
                let mut r =
                    DialResult::new(id, if input.dry_run { Status::DryRun } else { Status::OpenUri }, branch, action);
                r.uri = Some(uri);
                return r;
            }
            Ok(Rendered::Http(request)) if input.dry_run => {
                let mut r = DialResult::new(id, Status::DryRun, branch, action);
                r.request = Some(request.shown());
                return r;
            }
            Ok(Rendered::Http(request)) => request,
        };

        // One call per click: a repeat gets the first answer.
        let claimed = match &input.idempotency_key {
            Some(k) => match self.idempotent.claim((caller.to_string(), k.clone())) {
                Claim::First(p) => Claimed::Idempotency(p, (caller.to_string(), k.clone())),
                Claim::Duplicate(rx) => return duplicate(id, rx, branch, action).await,
            },
            // A zero window turns the duplicate check off.
            None if self.dedupe_window.is_zero() => Claimed::Nothing,
            None => {
                let key = (
                    caller.to_string(),
                    checked.profile.branch.clone(),
                    checked.values.extension.clone(),
                    checked.same_number.clone(),
                );
                match self.recent.claim(key.clone()) {
                    Claim::First(p) => Claimed::Dedupe(p, key),
                    Claim::Duplicate(rx) => return duplicate(id, rx, branch, action).await,
                }
            }
        };

        let permit = match &checked.profile.in_flight {
            None => None,
            Some(sem) => match tokio::time::timeout(IN_FLIGHT_WAIT, sem.clone().acquire_owned()).await {
                Ok(Ok(p)) => Some(p),
                _ => {
                    let r = Refusal::RateLimited(format!(
                        "branch {:?} already has its maximum of dials in flight",
                        checked.profile.branch
                    ));
                    let result = DialResult::refused(id, &r, branch, action);
                    self.settle(claimed, &result, true);
                    return result;
                }
            },
        };

        let result = send(&self.dispatcher, &checked.profile, action, &request, id).await;
        drop(permit);
        // Unreachable: the PBX never saw it, so the next click may dial again.
        self.settle(claimed, &result, result.status == Status::Unreachable);
        result
    }

    fn settle(&self, claimed: Claimed, result: &DialResult, forget: bool) {
        match claimed {
            Claimed::Nothing => {}
            Claimed::Dedupe(p, key) => {
                p.publish(result);
                if forget {
                    self.recent.forget(&key);
                }
            }
            Claimed::Idempotency(p, key) => {
                p.publish(result);
                if forget {
                    self.idempotent.forget(&key);
                }
            }
        }
    }

    /// Validates input, resolves branch and action, checks the key and the number rules. No I/O.
    fn check(&self, input: &DialInput, caller: Caller<'_>) -> Result<Checked, Refusal> {
        let invalid = |m: String| Refusal::InvalidRequest(m);
        let branch = input
            .branch
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .ok_or_else(|| invalid("`branch` is missing".into()))?;
        let profile = self.profiles.get(branch).ok_or_else(|| match self.profiles.broken(branch) {
            Some(why) => Refusal::UnknownBranch(format!("{branch} (its profile did not load: {why})")),
            None => Refusal::UnknownBranch(branch.to_string()),
        })?;
        if let Caller::Key(key) = caller {
            key.may_dial(branch)?;
            key.take()?;
        }
        let action = input.action.as_deref().unwrap_or("dial");
        if profile.action(action).is_none() {
            return Err(Refusal::UnknownAction { branch: branch.to_string(), action: action.to_string() });
        }
        if let Some(k) = &input.idempotency_key {
            if k.is_empty() || k.len() > MAX_EXTERNAL_ID || k.chars().any(char::is_control) {
                return Err(invalid(format!("Idempotency-Key must be 1 to {MAX_EXTERNAL_ID} printable characters")));
            }
        }

        let required = |name: &str, v: &Option<String>| -> Result<DialString, Refusal> {
            let v = v.as_deref().ok_or_else(|| invalid(format!("`{name}` is missing")))?;
            DialString::parse(v).map_err(|e| invalid(format!("`{name}` {e}")))
        };
        let extension = required("extension", &input.extension)?;
        let number = required("number", &input.number)?;
        let caller_id = match &input.caller_id {
            Some(c) if !c.trim().is_empty() => {
                Some(DialString::parse(c).map_err(|e| invalid(format!("`caller_id` {e}")))?.to_string())
            }
            _ => None,
        };
        let external_id = match &input.external_id {
            Some(x) if x.chars().count() > MAX_EXTERNAL_ID => {
                return Err(invalid(format!("`external_id` is longer than {MAX_EXTERNAL_ID} characters")));
            }
            Some(x) if x.chars().any(char::is_control) => {
                return Err(invalid("`external_id` contains a control character".into()));
            }
            Some(x) if !x.is_empty() => Some(x.clone()),
            _ => None,
        };
        let resolved = profile.number.apply(&number).map_err(|e| match e {
            RuleError::Unreadable(m) => invalid(format!("`number` {m}")),
            RuleError::Forbidden(m) => Refusal::Forbidden(m),
        })?;
        let values = DialValues {
            branch: profile.branch.clone(),
            extension: extension.to_string(),
            number: resolved.dial,
            raw_number: input.number.clone().unwrap_or_default(),
            caller_id,
            external_id,
        };
        Ok(Checked {
            profile: profile.clone(),
            action: action.to_string(),
            values,
            same_number: resolved.e164.unwrap_or_else(|| number.to_string()),
        })
    }
}

/// The first dial's answer, for a repeat.
async fn duplicate(
    id: &str,
    rx: tokio::sync::watch::Receiver<Option<DialResult>>,
    branch: Option<&str>,
    action: &str,
) -> DialResult {
    match once::wait(rx).await {
        Some(mut first) => {
            first.duplicate = true;
            first
        }
        None => {
            let mut r = DialResult::new(id, Status::BadResponse, branch, action);
            r.message = Some("an identical dial was in flight and failed; the PBX may have received it".into());
            r.duplicate = true;
            r
        }
    }
}

/// Sends and reads one dial.
async fn send(dispatcher: &Dispatcher, profile: &Profile, action: &str, request: &Request, id: &str) -> DialResult {
    let branch = Some(profile.branch.as_str());
    let Some(act) = profile.action(action) else {
        return DialResult::new(id, Status::BadResponse, branch, action);
    };
    let (sent, elapsed) = dispatcher.send(request, act.timeout, &profile.tls).await;
    let elapsed_ms = elapsed.as_millis() as u64;
    let answer = match sent {
        Ok(a) => a,
        Err(e) => {
            let mut r = DialResult::new(id, e.status(), branch, action);
            r.message = Some(e.to_string());
            r.pbx = Some(PbxInfo { http_status: None, format: None, elapsed_ms, body: serde_json::Value::Null });
            return r;
        }
    };
    match act.response.read(&answer) {
        Ok(reading) => {
            let status = if reading.ok { Status::Accepted } else { Status::Rejected };
            let mut r = DialResult::new(id, status, branch, action);
            r.call_id = reading.call_id;
            r.message = reading.message;
            r.pbx = Some(PbxInfo {
                http_status: Some(answer.http_status),
                format: Some(reading.format),
                elapsed_ms,
                body: reading.body,
            });
            r
        }
        Err(bad) => {
            let mut r = DialResult::new(id, bad.status(), branch, action);
            r.message = Some(bad.message);
            r.pbx = Some(PbxInfo {
                http_status: Some(answer.http_status),
                format: Some(bad.format),
                elapsed_ms,
                body: bad.body,
            });
            r
        }
    }
}

/// The one structured line every dial leaves. Never a key or a secret:
/// only the fields named here (and the log writer masks secrets anyway).
fn audit(result: &DialResult, input: &DialInput, caller: &str, started: Instant) {
    tracing::info!(
        target: "webdial::audit",
        id = %result.id,
        key = caller,
        branch = result.branch.as_deref().unwrap_or(""),
        action = %result.action,
        extension = input.extension.as_deref().unwrap_or(""),
        number = input.number.as_deref().unwrap_or(""),
        status = result.status.as_str(),
        pbx_status = result.pbx.as_ref().and_then(|p| p.http_status).unwrap_or(0),
        elapsed_ms = started.elapsed().as_millis() as u64,
        duplicate = result.duplicate,
        dry_run = input.dry_run,
        "dial"
    );
}

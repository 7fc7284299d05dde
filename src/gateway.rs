//! One dial, from validated input to normalized result. Shared by the HTTP
//! API and the `dial`/`render` commands, so they behave identically.
//!
//! The order is the contract: validate the input, find the branch and the
//! action, apply the number rules, render; only then send. Every refusal
//! happens before the send, so a refused dial never reaches a PBX. Every
//! dial ends with exactly one audit log line.

use std::time::Instant;

use crate::dispatch::Dispatcher;
use crate::number::DialString;
use crate::outcome::{DialResult, PbxInfo, Refusal, Status};
use crate::profile::{Action, Profile, Profiles};
use crate::render::{DialValues, Rendered};
use std::sync::Arc;

/// A dial as asked for, before validation. Every field is optional here so
/// that missing input is reported by the gateway in the one result shape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialInput {
    pub branch: Option<String>,
    pub action: Option<String>,
    pub extension: Option<String>,
    pub number: Option<String>,
    pub caller_id: Option<String>,
    pub external_id: Option<String>,
    pub dry_run: bool,
}

/// The longest `external_id` accepted.
pub const MAX_EXTERNAL_ID: usize = 128;

/// Everything a dial needs, built once at start-up.
#[derive(Debug)]
pub struct Gateway {
    profiles: Profiles,
    dispatcher: Dispatcher,
}

/// A dial that passed every check and is ready to send.
struct Checked<'a> {
    profile: &'a Arc<Profile>,
    action_name: String,
    action: &'a Action,
    values: DialValues,
}

impl Gateway {
    pub fn new(profiles: Profiles, dispatcher: Dispatcher) -> Self {
        Gateway {
            profiles,
            dispatcher,
        }
    }

    pub fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    /// Runs one dial to completion and logs its audit line.
    pub async fn dial(&self, input: DialInput) -> DialResult {
        let started = Instant::now();
        let id = ulid::Ulid::generate().to_string();
        let result = self.run(&id, &input).await.redact();
        audit(&result, &input, started);
        result
    }

    async fn run(&self, id: &str, input: &DialInput) -> DialResult {
        let action = input.action.as_deref().unwrap_or("dial");
        let checked = match self.check(input) {
            Ok(c) => c,
            Err(refusal) => {
                return DialResult::refused(id, &refusal, input.branch.as_deref(), action);
            }
        };
        let branch = Some(checked.profile.branch.as_str());
        let rendered = match checked.action.template.render(&checked.values) {
            Ok(r) => r,
            Err(e) => {
                return DialResult::refused(
                    id,
                    &Refusal::InvalidRequest(e.message),
                    branch,
                    action,
                );
            }
        };
        let action = checked.action_name.as_str();
        let request = match rendered {
            Rendered::Uri(uri) => {
                let status = if input.dry_run {
                    Status::DryRun
                } else {
                    Status::OpenUri
                };
                let mut r = DialResult::new(id, status, branch, action);
                r.uri = Some(uri);
                return r;
            }
            Rendered::Http(request) if input.dry_run => {
                let mut r = DialResult::new(id, Status::DryRun, branch, action);
                r.request = Some(request.shown());
                return r;
            }
            Rendered::Http(request) => request,
        };

        let (sent, elapsed) = self.dispatcher.send(&request, checked.action.timeout).await;
        let elapsed_ms = elapsed.as_millis() as u64;
        let answer = match sent {
            Ok(a) => a,
            Err(e) => {
                let mut r = DialResult::new(id, e.status(), branch, action);
                r.message = Some(e.to_string());
                r.pbx = Some(PbxInfo {
                    http_status: None,
                    format: None,
                    elapsed_ms,
                    body: serde_json::Value::Null,
                });
                return r;
            }
        };
        match checked.action.response.read(&answer) {
            Ok(reading) => {
                let status = if reading.ok {
                    Status::Accepted
                } else {
                    Status::Rejected
                };
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

    /// Validates input and resolves branch and action. Pure.
    fn check<'a>(&'a self, input: &DialInput) -> Result<Checked<'a>, Refusal> {
        let invalid = |m: String| Refusal::InvalidRequest(m);
        let branch = input
            .branch
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .ok_or_else(|| invalid("`branch` is missing".into()))?;
        let profile =
            self.profiles
                .get(branch)
                .ok_or_else(|| match self.profiles.broken(branch) {
                    Some(why) => Refusal::UnknownBranch(format!(
                        "{branch} (its profile did not load: {why})"
                    )),
                    None => Refusal::UnknownBranch(branch.to_string()),
                })?;
        let action_name = input.action.as_deref().unwrap_or("dial");
        let action = profile
            .action(action_name)
            .ok_or_else(|| Refusal::UnknownAction {
                branch: branch.to_string(),
                action: action_name.to_string(),
            })?;

        let required = |name: &str, v: &Option<String>| -> Result<DialString, Refusal> {
            let v = v
                .as_deref()
                .ok_or_else(|| invalid(format!("`{name}` is missing")))?;
            DialString::parse(v).map_err(|e| invalid(format!("`{name}` {e}")))
        };
        let extension = required("extension", &input.extension)?;
        let number = required("number", &input.number)?;
        let caller_id = match &input.caller_id {
            Some(c) if !c.trim().is_empty() => Some(
                DialString::parse(c)
                    .map_err(|e| invalid(format!("`caller_id` {e}")))?
                    .to_string(),
            ),
            _ => None,
        };
        let external_id = match &input.external_id {
            Some(x) if x.chars().count() > MAX_EXTERNAL_ID => {
                return Err(invalid(format!(
                    "`external_id` is longer than {MAX_EXTERNAL_ID} characters"
                )));
            }
            Some(x) if x.chars().any(char::is_control) => {
                return Err(invalid("`external_id` contains a control character".into()));
            }
            Some(x) if !x.is_empty() => Some(x.clone()),
            _ => None,
        };
        let values = DialValues {
            branch: profile.branch.clone(),
            extension: extension.to_string(),
            number: number.to_string(),
            raw_number: input.number.clone().unwrap_or_default(),
            caller_id,
            external_id,
        };
        Ok(Checked {
            profile,
            action_name: action_name.to_string(),
            action,
            values,
        })
    }
}

/// The one structured line every dial leaves. Never a key or a secret:
/// only the fields named here (and the log writer masks secrets anyway).
fn audit(result: &DialResult, input: &DialInput, started: Instant) {
    tracing::info!(
        target: "webdial::audit",
        id = %result.id,
        branch = result.branch.as_deref().unwrap_or(""),
        action = %result.action,
        extension = input.extension.as_deref().unwrap_or(""),
        number = input.number.as_deref().unwrap_or(""),
        status = result.status.as_str(),
        pbx_status = result.pbx.as_ref().and_then(|p| p.http_status).unwrap_or(0),
        elapsed_ms = started.elapsed().as_millis() as u64,
        dry_run = input.dry_run,
        "dial"
    );
}

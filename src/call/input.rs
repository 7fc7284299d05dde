//! A request as asked for, and its validation against one action of one
//! branch. Pure: no I/O, no clock.
//!
//! What an action needs is read off its templates at load
//! ([`crate::profile::Action::uses`]): a dial always needs `extension` and
//! `number`; any other action needs the request values its templates use.
//! Values the action does not use are ignored. Every refusal here happens
//! before anything is rendered or sent.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::number::{DialString, RuleError};
use crate::outcome::Refusal;
use crate::profile::{Action, MAX_OPTION, Profile, Profiles};
use crate::template::Context;

/// The longest `external_id`, `call_id` and `Idempotency-Key` accepted.
pub const MAX_ID: usize = 128;
/// The longest DTMF string accepted.
pub const MAX_DIGITS: usize = 64;

/// A request as asked for, before validation. Every field is optional here
/// so that missing input is reported in the one result shape.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActionInput {
    pub branch: Option<String>,
    /// `None` means `dial`.
    pub action: Option<String>,
    pub extension: Option<String>,
    pub number: Option<String>,
    pub caller_id: Option<String>,
    pub external_id: Option<String>,
    pub call_id: Option<String>,
    pub digits: Option<String>,
    pub options: BTreeMap<String, String>,
    /// The `Idempotency-Key` header, exactly as received.
    pub idempotency_key: Option<Vec<u8>>,
    pub dry_run: bool,
}

impl ActionInput {
    pub fn action(&self) -> &str {
        self.action.as_deref().unwrap_or("dial")
    }
}

/// A request that passed every check: the action to run and what its
/// templates will see.
#[derive(Debug, Clone)]
pub struct Checked {
    pub profile: Arc<Profile>,
    pub action: String,
    pub context: Context,
    /// What makes two requests to this action "the same": the number in
    /// E.164 when readable, then the call id, digits and options.
    pub subject: String,
}

impl Checked {
    pub fn act(&self) -> Option<&Action> {
        self.profile.action(&self.action)
    }
}

/// Finds the branch, or says why there is none.
pub fn branch<'p>(profiles: &'p Profiles, input: &ActionInput) -> Result<&'p Arc<Profile>, Refusal> {
    let name = input
        .branch
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| Refusal::InvalidRequest("`branch` is missing".into()))?;
    profiles.get(name).ok_or_else(|| match profiles.broken(name) {
        Some(why) => Refusal::UnknownBranch(format!("{name} (its profile did not load: {why})")),
        None => Refusal::UnknownBranch(name.to_string()),
    })
}

/// Validates input against the branch's action and applies its number rules.
pub fn check(profile: &Arc<Profile>, input: &ActionInput) -> Result<Checked, Refusal> {
    let invalid = Refusal::InvalidRequest;
    let action = input.action();
    let Some(act) = profile.action(action) else {
        let known: Vec<&str> = profile.action_names().collect();
        return Err(Refusal::UnknownAction {
            branch: profile.branch.clone(),
            action: action.to_string(),
            known: known.join(", "),
        });
    };
    if let Some(k) = &input.idempotency_key {
        if k.is_empty() || k.len() > MAX_ID || k.iter().any(|b| b.is_ascii_control()) {
            return Err(invalid(format!("Idempotency-Key must be 1 to {MAX_ID} bytes without control characters")));
        }
    }
    let needs = |name: &str| (action == "dial" && matches!(name, "extension" | "number")) || act.uses.contains(name);
    let dial_string = |name: &str, v: &Option<String>| -> Result<DialString, Refusal> {
        let v = v.as_deref().ok_or_else(|| invalid(format!("`{name}` is missing")))?;
        DialString::parse(v).map_err(|e| invalid(format!("`{name}` {e}")))
    };

    let mut context = Context::new(&profile.branch);
    if needs("extension") {
        context.set("extension", dial_string("extension", &input.extension)?.to_string());
    } else if let Some(e) = input.extension.as_deref().filter(|e| !e.trim().is_empty()) {
        // Not used by the template, but kept for the audit line and duplicates.
        context.set("extension", DialString::parse(e).map_err(|e| invalid(format!("`extension` {e}")))?.to_string());
    }
    let mut subject = String::new();
    if needs("number") || needs("raw_number") {
        let number = dial_string("number", &input.number)?;
        let resolved = profile.number.apply(&number).map_err(|e| match e {
            RuleError::Unreadable(m) => invalid(format!("`number` {m}")),
            RuleError::Forbidden(m) => Refusal::Forbidden(m),
        })?;
        context.set("number", resolved.dial);
        context.set("raw_number", input.number.clone().unwrap_or_default());
        subject = resolved.e164.unwrap_or_else(|| number.to_string());
    }
    if let Some(c) = input.caller_id.as_deref().filter(|c| !c.trim().is_empty()) {
        context.set("caller_id", DialString::parse(c).map_err(|e| invalid(format!("`caller_id` {e}")))?.to_string());
    }
    if let Some(x) = input.external_id.as_deref().filter(|x| !x.is_empty()) {
        context.set("external_id", identifier("external_id", x)?);
    }
    if needs("call_id") {
        let id =
            input.call_id.as_deref().filter(|c| !c.is_empty()).ok_or_else(|| invalid("`call_id` is missing".into()))?;
        context.set("call_id", identifier("call_id", id)?);
        subject.push_str(&format!(" call:{id}"));
    }
    if needs("digits") {
        let d =
            input.digits.as_deref().filter(|d| !d.is_empty()).ok_or_else(|| invalid("`digits` is missing".into()))?;
        if d.len() > MAX_DIGITS || !d.chars().all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')) {
            return Err(invalid(format!("`digits` may hold only 0-9 * # A B C D, at most {MAX_DIGITS}")));
        }
        context.set("digits", d);
        subject.push_str(&format!(" digits:{d}"));
    }
    context.options = options(profile, &input.options)?;
    if !context.options.values().all(String::is_empty) {
        // Debug quoting keeps it unambiguous whatever the values hold.
        subject.push_str(&format!(" options:{:?}", context.options));
    }
    Ok(Checked { profile: profile.clone(), action: action.to_string(), context, subject })
}

/// The request's options checked against the ones the branch declares, and
/// every declared one filled in (the value sent, its default, or empty), so
/// templates and the duplicate key see the same complete set. An empty
/// value counts as not sent, as for `caller_id`: URL-only software often
/// sends every parameter it knows, filled or not.
fn options(profile: &Profile, given: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Refusal> {
    for (name, value) in given {
        let Some(spec) = profile.options.get(name) else {
            let known = match profile.options.is_empty() {
                true => "it declares none".to_string(),
                false => format!("it declares: {}", profile.options.keys().cloned().collect::<Vec<_>>().join(", ")),
            };
            return Err(Refusal::InvalidRequest(format!(
                "option `{}` is not one branch {:?} declares ({known})",
                name.chars().take(64).collect::<String>(),
                profile.branch
            )));
        };
        if !value.is_empty() && !spec.accepts(value) {
            return Err(Refusal::InvalidRequest(match value.chars().count() > MAX_OPTION {
                true => format!("option `{name}` is longer than {MAX_OPTION} characters"),
                false => format!("option `{name}` must match {:?}", spec.pattern),
            }));
        }
    }
    Ok(profile
        .options
        .iter()
        .map(|(name, spec)| {
            let value = given.get(name).filter(|v| !v.is_empty()).or(spec.default.as_ref()).cloned();
            (name.clone(), value.unwrap_or_default())
        })
        .collect())
}

/// An id the caller passes through (`external_id`, `call_id`): printable, bounded.
fn identifier(name: &str, v: &str) -> Result<String, Refusal> {
    if v.chars().count() > MAX_ID {
        return Err(Refusal::InvalidRequest(format!("`{name}` is longer than {MAX_ID} characters")));
    }
    if v.chars().any(char::is_control) {
        return Err(Refusal::InvalidRequest(format!("`{name}` contains a control character")));
    }
    Ok(v.to_string())
}

//! Compiling `login:` and `session:`: the requests that get a branch a
//! session (a token, a cookie) before its actions, and how long that
//! session lasts. Each step is the full form of a request, compiled like an
//! action, plus `save:` expressions over its answer; each name saved is
//! `session.NAME` to the steps after it and to every action. Whatever a
//! template reads from `session` must be saved by a step before it, so a
//! typo is a load error, not a failed dial.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::time::Duration;

use super::Action;
use super::compile::{CompileErrors, compile_action};
use super::raw::{RawAction, RawHttp, RawNames, RawSession};
use crate::number::NumberRules;
use crate::pbx::rules::Expression;
use crate::settings::yaml;
use crate::template::Templates;

/// The name under which a login's cookies reach templates: `session.cookie`.
pub const COOKIE: &str = "cookie";

/// What `renew_on` is when a profile does not say: the PBX refused the
/// token before acting (OAuth's and most HTTP APIs' expired-token answer).
pub const DEFAULT_RENEW_ON: &str = "http_status == 401";

/// The longest a session is kept, whatever its TTL says.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A branch's login, compiled.
#[derive(Debug)]
pub struct Login {
    pub steps: Vec<Step>,
    pub ttl: Ttl,
    /// True on an action's answer when the PBX refused the session before acting.
    pub renew_on: Expression,
    /// Which cookies make up `session.cookie`; `None`: all of them.
    pub cookies: Option<Vec<String>>,
    /// Every name the session holds (`cookie` and each `save:` name).
    pub names: BTreeSet<String>,
    /// Tells this login from another (after a reload that changed the
    /// steps or `vars`): a session got by another login is not used.
    pub identity: u64,
}

/// One login step: a request, and what to keep from its answer.
#[derive(Debug)]
pub struct Step {
    pub request: Action,
    pub save: Vec<(String, Expression)>,
}

/// How long a session lasts.
#[derive(Debug)]
pub enum Ttl {
    Fixed(Duration),
    /// An expression over the last step's answer, in seconds (`expires_in`).
    Answer(Expression),
    /// No `ttl:`: until an action's answer matches `renew_on`.
    UntilRefused,
}

/// Compiles `login:` and `session:`; `None` when the profile has no login.
pub(super) fn compile(
    templates: &mut Templates,
    steps: Option<Vec<RawHttp>>,
    session: Option<RawSession>,
    vars: &BTreeMap<String, serde_json::Value>,
    timeout: Duration,
    number: &NumberRules,
    errors: &mut CompileErrors,
) -> Option<Login> {
    let at = |p: &str| yaml::Path::parse(p);
    let identity = identity(&steps, &session, vars);
    let Some(raw_steps) = steps else {
        if session.is_some() {
            errors.push((at("session"), "`session:` belongs to `login:` steps, and there are none".into()));
        }
        return None;
    };
    if raw_steps.is_empty() {
        errors.push((at("login"), "`login:` has no steps: give at least one request".into()));
        return None;
    }
    let session = session.unwrap_or_default();
    let mut names = BTreeSet::from([COOKIE.to_string()]);
    let mut compiled = Vec::new();
    for (i, mut raw) in raw_steps.into_iter().enumerate() {
        let field = format!("login[{i}]");
        let save_raw = raw.save.take().map(|s| s.0).unwrap_or_default();
        let request = compile_action(templates, &field, RawAction::Full(Box::new(raw)), vars, timeout, number, errors);
        if let Some(request) = &request {
            // One session serves every request of the branch: what the first
            // caller sent must not shape it.
            if let Some(value) = request.uses.iter().next() {
                errors.push((
                    at(&field),
                    format!("`{value}` is a request value: login steps are shared by every request of the branch, and may use only `vars`, `branch`, `now` and `session`"),
                ));
            }
            for name in request.template.session_uses() {
                if !names.contains(&name) {
                    errors.push((
                        at(&field),
                        format!(
                            "`session.{name}` is not saved by an earlier step (saved before this one: {})",
                            names.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
        }
        let mut save = Vec::new();
        for (name, source) in save_raw {
            let place = at(&format!("{field}.save.{name}"));
            if name == COOKIE {
                errors.push((
                    place,
                    "`cookie` is the session's cookies (from Set-Cookie): save under another name".into(),
                ));
                continue;
            }
            if !valid_name(&name) {
                errors.push((place, format!("{name:?} is not a usable name: use lower-case letters, digits and _")));
                continue;
            }
            match Expression::compile(templates, &format!("save.{name}"), &source) {
                Ok(e) => {
                    names.insert(name.clone());
                    save.push((name, e));
                }
                Err(e) => errors.push((place, e)),
            }
        }
        if let Some(request) = request {
            compiled.push(Step { request, save });
        }
    }
    let ttl = match session.ttl.map(|s| s.0) {
        None => Ttl::UntilRefused,
        Some(text) => match duration(&text) {
            Some(d) if d > MAX_TTL => {
                errors.push((at("session.ttl"), format!("ttl must be at most {} days", MAX_TTL.as_secs() / 86400)));
                Ttl::UntilRefused
            }
            Some(d) => Ttl::Fixed(d),
            None => match Expression::compile(templates, "ttl", &text) {
                Ok(e) => Ttl::Answer(e),
                Err(e) => {
                    errors.push((at("session.ttl"), e));
                    Ttl::UntilRefused
                }
            },
        },
    };
    let renew_on = session.renew_on.as_deref().unwrap_or(DEFAULT_RENEW_ON);
    let renew_on = match Expression::compile(templates, "renew_on", renew_on) {
        Ok(e) => e,
        Err(e) => {
            errors.push((at("session.renew_on"), e));
            return None;
        }
    };
    let cookies = session.cookie.map(|c| match c {
        RawNames::One(one) => vec![one],
        RawNames::Many(many) => many,
    });
    Some(Login { steps: compiled, ttl, renew_on, cookies, names, identity })
}

/// `50m`, `1h`, `3600`: a duration; anything else is an expression.
fn duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    match t.parse::<u64>() {
        Ok(secs) => Some(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(t).ok(),
    }
}

/// Names saved end up in templates as `session.NAME`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A fingerprint of everything a login's requests are made from.
fn identity(
    steps: &Option<Vec<RawHttp>>,
    session: &Option<RawSession>,
    vars: &BTreeMap<String, serde_json::Value>,
) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{steps:?}{session:?}").hash(&mut h);
    for (k, v) in vars {
        k.hash(&mut h);
        v.to_string().hash(&mut h);
    }
    h.finish()
}

/// Checks that `action` reads from `session` only what `login` saves.
pub(super) fn check_uses(name: &str, action: &Action, login: Option<&Login>) -> Result<(), (yaml::Path, String)> {
    let at = || yaml::Path::parse(name);
    for used in action.template.session_uses() {
        match login {
            None => {
                return Err((at(), format!("uses `session.{used}`, but the profile has no `login:` steps to save it")));
            }
            Some(l) if !l.names.contains(&used) => {
                let saved = l.names.iter().cloned().collect::<Vec<_>>().join(", ");
                return Err((at(), format!("`session.{used}` is not saved by any login step (saved: {saved})")));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

//! Compiling a merged profile: checking each value and turning actions into
//! ready-to-render templates. Errors name the profile field they belong to
//! (`dial.url`, `number.allow[1]`); the loader places them in the files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::lines;
use super::login::{self, Login};
use super::raw::{
    NAMED_ACTIONS, RawAction, RawAuth, RawDuration, RawExamples, RawNumber, RawOption, RawProfile, RawTls,
};
use super::{Action, DEFAULT_TIMEOUT, MAX_OPTION, MAX_TIMEOUT, OptionSpec};
use crate::events::inbound::Intake;
use crate::number::{self, NumberFormat, NumberRules};
use crate::pbx::rules;
use crate::pbx::tls::{Fingerprint, Tls};
use crate::settings::yaml;
use crate::syntax::{dolibarr, iqx};
use crate::template::{Auth, HttpSpec, RequestTemplate, Templates};

/// One problem: where in the profile, what, and (for a template variable
/// nothing defines) which variable, so the loader can tell the branch.
#[derive(Debug, Clone)]
pub(super) struct Problem {
    pub(super) at: yaml::Path,
    pub(super) message: String,
    pub(super) missing: Option<String>,
}

impl From<(yaml::Path, String)> for Problem {
    fn from((at, message): (yaml::Path, String)) -> Self {
        Problem { at, message, missing: None }
    }
}

/// Problems, pushed as `(path, message)` pairs or as whole [`Problem`]s.
#[derive(Debug, Default)]
pub(super) struct CompileErrors(pub(super) Vec<Problem>);

impl CompileErrors {
    pub(super) fn push(&mut self, p: impl Into<Problem>) {
        self.0.push(p.into());
    }
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The parts of a profile `compile` produces.
pub(super) struct Compiled {
    pub(super) name: Option<String>,
    pub(super) actions: Vec<(String, Action)>,
    pub(super) number: NumberRules,
    pub(super) max_in_flight: Option<usize>,
    pub(super) tls: Tls,
    pub(super) options: BTreeMap<String, OptionSpec>,
    pub(super) hooks: Vec<super::hooks::Hook>,
    pub(super) login: Option<Login>,
    pub(super) events: Option<Intake>,
}

/// Turns a merged raw profile into actions; errors name their profile field.
pub(super) fn compile(
    templates: &mut Templates,
    raw: RawProfile,
    dir_of: &dyn Fn(&yaml::Path) -> PathBuf,
) -> Result<Compiled, CompileErrors> {
    let mut raw = raw;
    let defined = raw.take_actions();
    let mut errors = CompileErrors::default();
    let number = compile_number(raw.number.unwrap_or_default(), &mut errors);
    let tls = compile_tls(raw.tls.unwrap_or_default(), &yaml::Path::parse("tls"), dir_of, &mut errors);
    let options = compile_options(raw.options.take().unwrap_or_default(), &mut errors);
    if raw.max_in_flight == Some(0) {
        errors.push((yaml::Path::parse("max_in_flight"), "max_in_flight must be at least 1".into()));
    }
    let timeout = match raw.timeout.as_ref().map(RawDuration::parse).transpose() {
        Ok(t) => t.unwrap_or(DEFAULT_TIMEOUT),
        Err(e) => {
            errors.push((yaml::Path::parse("timeout"), e));
            DEFAULT_TIMEOUT
        }
    };
    check_timeout(timeout, "timeout", &mut errors);
    let mut vars = raw.vars.unwrap_or_default();
    for (name, value) in vars.iter_mut() {
        if super::introspect::holds_placeholder(value) {
            // Compiled on with a sample, so the placeholder is the one
            // problem reported for it (not every URL it would break).
            *value = super::introspect::sample(name);
            errors.push((
                yaml::Path::parse("vars").key(name),
                format!(
                    "`{name}` is still {:?}, as `webdial new` wrote it: set it (the comment above it says what it is)",
                    super::introspect::PLACEHOLDER
                ),
            ));
        }
    }
    let login = login::compile(templates, raw.login.take(), raw.session.take(), &vars, timeout, &number, &mut errors);
    let events = raw.events.take().and_then(|e| super::events::compile(templates, e, &vars, &mut errors));
    let mut actions = Vec::new();
    if defined.is_empty() {
        errors.push((
            yaml::Path::root(),
            "no actions: a branch profile needs at least `dial` (an IQX line or a request)".to_string(),
        ));
    }
    for (name, action, named) in defined {
        let at = if named { yaml::Path::root().key(&name) } else { yaml::Path::root().key("actions").key(&name) };
        if !named && !valid_action_name(&name) {
            errors.push((at, format!("{name:?} is not a usable action name: use lower-case letters, digits and _")));
            continue;
        }
        if !named && NAMED_ACTIONS.contains(&name.as_str()) {
            errors.push((at, format!("`{name}` is a top-level action: write it as `{name}:`, not under `actions:`")));
            continue;
        }
        let field = if named { name.clone() } else { format!("actions.{name}") };
        if let Some(a) = compile_action(templates, &field, action, &vars, timeout, &number, &mut errors) {
            if name == "dial" && !a.uses.contains("number") {
                let what = match a.template.is_iqx() {
                    true => "the dial line has no `#`: every dial would ring an empty number",
                    false => "the dial never uses `{{ number }}`: every dial would ring an empty number",
                };
                errors.push((at, what.to_string()));
                continue;
            }
            if let Err(e) = login::check_uses(&field, &a, login.as_ref()) {
                errors.push(e);
                continue;
            }
            actions.push((name, a));
        }
    }
    let hooks =
        super::hooks::compile(templates, raw.hooks.take().unwrap_or_default(), &vars, &number, dir_of, &mut errors);
    if errors.is_empty() {
        Ok(Compiled {
            name: raw.name,
            actions,
            number,
            max_in_flight: raw.max_in_flight,
            tls,
            options,
            hooks,
            login,
            events,
        })
    } else {
        Err(errors)
    }
}

/// Action names end up in URLs (`/v1/actions/NAME`) and metrics labels.
fn valid_action_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `options:` as written → the options callers may send. A name is what
/// templates write after `options.` and callers after `opt.`, so it must
/// be a plain identifier; a default must be a value the option accepts, or
/// a request that sends nothing would render something no caller could send.
fn compile_options(raw: BTreeMap<String, RawOption>, errors: &mut CompileErrors) -> BTreeMap<String, OptionSpec> {
    let mut out = BTreeMap::new();
    for (name, option) in raw {
        let at = yaml::Path::parse("options").key(&name);
        if !valid_option_name(&name) {
            errors.push((
                at,
                format!("{name:?} is not a usable option name: use letters, digits and _, starting with a letter"),
            ));
            continue;
        }
        let default = option.default.map(|d| d.0);
        let spec = match OptionSpec::new(&option.pattern, default.clone()) {
            Ok(s) => s,
            Err(e) => {
                errors.push((at.key("pattern"), format!("not a valid regex: {e}")));
                continue;
            }
        };
        if let Some(d) = &default {
            if !spec.accepts(d) {
                let why = match d.chars().count() > MAX_OPTION {
                    true => format!("is longer than {MAX_OPTION} characters"),
                    false => format!("does not match its pattern {:?}", option.pattern),
                };
                errors.push((at.key("default"), format!("the default {d:?} {why}")));
                continue;
            }
        }
        out.insert(name, spec);
    }
    out
}

fn valid_option_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_timeout(t: Duration, field: &str, errors: &mut CompileErrors) {
    if t.is_zero() || t > MAX_TIMEOUT {
        errors.push((yaml::Path::parse(field), format!("timeout must be between 1ms and {}s", MAX_TIMEOUT.as_secs())));
    }
}

pub(super) fn compile_action(
    templates: &mut Templates,
    name: &str,
    raw: RawAction,
    vars: &BTreeMap<String, serde_json::Value>,
    timeout: Duration,
    number_rules: &NumberRules,
    errors: &mut CompileErrors,
) -> Option<Action> {
    match raw {
        RawAction::Line(line) if dolibarr::is_mask(&line) => {
            let url = lines::dolibarr_url(name, &line, vars, errors)?;
            // No method: a GET, or nothing sent for a client-side URI mask.
            let spec = HttpSpec { url, ..Default::default() };
            compile_template(templates, name, spec, vars, number_rules, rules::Rules::default(), timeout, errors)
        }
        RawAction::Line(line) => lines::iqx_action(name, &line, timeout, errors),
        RawAction::Full(http) => {
            let http = *http;
            let field = |f: &str| yaml::Path::parse(&format!("{name}.{f}"));
            let before = errors.len();
            if http.save.is_some() {
                errors.push((field("save"), "`save` belongs to login steps (under `login:`), not to actions".into()));
            }
            let method = compile_method(http.method.as_deref(), field("method"), errors);
            let Some(url) = http.url else {
                errors.push((yaml::Path::parse(name), "no `url`".into()));
                return None;
            };
            let timeout = match http.timeout.as_ref().map(RawDuration::parse).transpose() {
                Ok(t) => t.unwrap_or(timeout),
                Err(e) => {
                    errors.push((field("timeout"), e));
                    timeout
                }
            };
            check_timeout(timeout, &format!("{name}.timeout"), errors);
            let raw_rules = http.response.unwrap_or_default();
            let (examples, listed) = match raw_rules.example {
                None => (Vec::new(), false),
                Some(RawExamples::One(one)) => (vec![one], false),
                Some(RawExamples::Many(all)) => (all, true),
            };
            let spec = rules::Spec {
                format: raw_rules.format.unwrap_or_default(),
                ok: raw_rules.ok,
                call_id: raw_rules.call_id,
                message: raw_rules.message,
                statuses: raw_rules.statuses,
                examples,
            };
            let rules = rules::Rules::compile(templates, spec).unwrap_or_else(|es| {
                for e in es {
                    let at = field(&format!("response.{}", e.field));
                    let at = match e.example {
                        Some(i) if listed => at.index(i),
                        _ => at,
                    };
                    errors.push((at, e.message));
                }
                rules::Rules::default()
            });
            let auth = compile_auth(http.auth, field("auth"), errors);
            let spec = HttpSpec {
                method,
                url,
                form: http.form.unwrap_or_default().0,
                json: http.json,
                headers: http.headers.unwrap_or_default().0,
                auth,
            };
            if errors.len() > before {
                return None;
            }
            compile_template(templates, name, spec, vars, number_rules, rules, timeout, errors)
        }
    }
}

/// A full-form template compiled into `templates`, with its answer rules.
#[allow(clippy::too_many_arguments)]
fn compile_template(
    templates: &mut Templates,
    name: &str,
    spec: HttpSpec,
    vars: &BTreeMap<String, serde_json::Value>,
    number_rules: &NumberRules,
    response: rules::Rules,
    timeout: Duration,
    errors: &mut CompileErrors,
) -> Option<Action> {
    match RequestTemplate::compile(templates, name, spec, vars, number_rules) {
        Ok(template) => {
            let uses = template.uses();
            Some(Action { template, response, timeout, uses })
        }
        Err(es) => {
            for e in es {
                errors.push(Problem { at: yaml::Path::parse(&e.field), message: e.message, missing: e.missing });
            }
            None
        }
    }
}

/// `method:` as written; `None` lets the body decide (GET without one, POST with one).
pub(super) fn compile_method(raw: Option<&str>, at: yaml::Path, errors: &mut CompileErrors) -> Option<iqx::Method> {
    match raw.map(str::to_ascii_uppercase).as_deref() {
        None => None,
        Some("GET") => Some(iqx::Method::Get),
        Some("POST") => Some(iqx::Method::Post),
        Some("PUT") => Some(iqx::Method::Put),
        Some("DELETE") => Some(iqx::Method::Delete),
        Some(other) => {
            errors.push((at, format!("method {other:?} is not supported: use GET, POST, PUT or DELETE")));
            None
        }
    }
}

/// `auth:` as written: exactly one of basic, bearer, digest.
pub(super) fn compile_auth(raw: Option<RawAuth>, at: yaml::Path, errors: &mut CompileErrors) -> Option<Auth> {
    match raw {
        None => None,
        Some(RawAuth { basic: Some(up), bearer: None, digest: None }) => {
            Some(Auth::Basic { user: up.user, password: up.password })
        }
        Some(RawAuth { basic: None, bearer: Some(t), digest: None }) => Some(Auth::Bearer(t)),
        Some(RawAuth { basic: None, bearer: None, digest: Some(up) }) => {
            Some(Auth::Digest { user: up.user, password: up.password })
        }
        Some(_) => {
            errors.push((at, "give exactly one of basic, bearer, digest".into()));
            None
        }
    }
}

fn compile_number(raw: RawNumber, errors: &mut CompileErrors) -> NumberRules {
    let at = |f: &str| yaml::Path::parse("number").key(f);
    let country =
        raw.country.as_deref().and_then(|c| number::parse_country(c).map_err(|m| errors.push((at("country"), m))).ok());
    let mut regex = |field: &str, i: Option<usize>, src: &str| {
        let path = match i {
            Some(i) => at(field).index(i),
            None => at(field),
        };
        regex::Regex::new(src).map_err(|e| errors.push((path, format!("not a valid regex: {e}")))).ok()
    };
    let internal = raw.internal.as_deref().and_then(|r| regex("internal", None, r));
    let allow: Vec<_> =
        raw.allow.unwrap_or_default().iter().enumerate().filter_map(|(i, r)| regex("allow", Some(i), r)).collect();
    let deny: Vec<_> =
        raw.deny.unwrap_or_default().iter().enumerate().filter_map(|(i, r)| regex("deny", Some(i), r)).collect();
    let format = raw.format.unwrap_or_default();
    if raw.country.is_none() && (format != NumberFormat::Digits || !allow.is_empty() || !deny.is_empty()) {
        errors.push((
            yaml::Path::parse("number"),
            "`format` and `allow`/`deny` need `country` (e.g. GB) to read numbers written without +".into(),
        ));
    }
    let outside_line = raw.outside_line.map(|s| s.0).filter(|s| !s.is_empty());
    if let Some(o) = &outside_line {
        if !o.chars().all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | ',')) {
            errors.push((at("outside_line"), format!("outside_line {o:?} may hold only digits, * # and ,")));
        }
    }
    NumberRules { country, format, outside_line, internal, allow, deny }
}

/// `tls:` as written → how the PBX's certificate is checked. `verify:
/// false` checks nothing, so it contradicts `ca` and `pin`; `pin` accepts
/// one certificate whatever its issuer, so it contradicts `ca`.
/// `at` is where this `tls:` is written (a profile's, or a hook's).
pub(super) fn compile_tls(
    raw: RawTls,
    at: &yaml::Path,
    dir_of: &dyn Fn(&yaml::Path) -> PathBuf,
    errors: &mut CompileErrors,
) -> Tls {
    let mut contradiction = |message: &str| {
        errors.push((at.clone(), message.into()));
        Tls::Verify
    };
    match (raw.verify, raw.ca, raw.pin) {
        (Some(false), Some(_), _) => contradiction("`verify: false` and `ca` contradict each other: choose one"),
        (Some(false), _, Some(_)) => contradiction("`verify: false` and `pin` contradict each other: choose one"),
        (_, Some(_), Some(_)) => contradiction("`ca` and `pin` contradict each other: choose one"),
        (Some(false), None, None) => Tls::NoVerify,
        (_, None, Some(pin)) => match Fingerprint::parse(&pin) {
            Ok(fp) => Tls::Pin(fp),
            Err(e) => {
                errors.push((at.key("pin"), format!("pin {pin:?}: {e}")));
                Tls::Verify
            }
        },
        (_, Some(ca), None) => {
            let at = at.key("ca");
            let path = dir_of(&at).join(&ca);
            let checked = std::fs::read(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
                .and_then(|pem| Tls::ca(path, pem));
            checked.unwrap_or_else(|e| {
                errors.push((at, e));
                Tls::Verify
            })
        }
        (_, None, None) => Tls::Verify,
    }
}

//! Hooks as configured: which events a hook is for and the request it
//! sends, compiled at load like actions (a hook that loads can render).
//! A branch's hooks are under `hooks:` in its profile; `hooks:` in
//! `webdial.yaml` are every branch's. Delivering them is `events::hooks`'s.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use super::compile::{CompileErrors, Problem, compile_auth, compile_method, compile_tls};
use super::raw::{RawDuration, RawHook};
use super::{DEFAULT_TIMEOUT, MAX_TIMEOUT};
use crate::number::NumberRules;
use crate::pbx::Tls;
use crate::settings::yaml;
use crate::syntax::integra;
use crate::template::{HookTemplate, HttpSpec, Templates};

/// The event types a hook may be `on`, as the normalized event names them.
pub const EVENT_TYPES: &[&str] =
    &["ringing", "dialling", "answered", "ended", "missed", "rejected", "failed", "voicemail", "other"];

/// One compiled hook.
#[derive(Debug)]
pub struct Hook {
    /// Its place in its list (`hooks[0]` is 0), for logs.
    pub index: usize,
    /// The event types it is for (names from [`EVENT_TYPES`]).
    pub on: BTreeSet<&'static str>,
    /// Skip calls whose remote number matches the branch's `number.internal`
    /// (Integra's "only on external calls").
    pub only_external: bool,
    pub template: HookTemplate,
    pub tls: Tls,
    /// For one delivery attempt, answer included.
    pub timeout: Duration,
}

impl Hook {
    /// Whether the hook is for events of this type.
    pub fn is_for(&self, event_type: &str) -> bool {
        self.on.contains(event_type)
    }
}

/// Compiles `hooks:`; problems name their place (`hooks[1].on[0]`).
pub(super) fn compile(
    templates: &mut Templates,
    raw: Vec<RawHook>,
    vars: &BTreeMap<String, serde_json::Value>,
    number: &NumberRules,
    dir_of: &dyn Fn(&yaml::Path) -> PathBuf,
    errors: &mut CompileErrors,
) -> Vec<Hook> {
    raw.into_iter()
        .enumerate()
        .filter_map(|(index, hook)| compile_one(templates, index, hook, vars, number, dir_of, errors))
        .collect()
}

fn compile_one(
    templates: &mut Templates,
    index: usize,
    raw: RawHook,
    vars: &BTreeMap<String, serde_json::Value>,
    number: &NumberRules,
    dir_of: &dyn Fn(&yaml::Path) -> PathBuf,
    errors: &mut CompileErrors,
) -> Option<Hook> {
    let at = yaml::Path::root().key("hooks").index(index);
    let before = errors.len();
    let mut on = BTreeSet::new();
    for (i, name) in raw.on.iter().enumerate() {
        let lower = name.trim().to_ascii_lowercase();
        let lower = if lower == "dialing" { "dialling".to_string() } else { lower };
        match EVENT_TYPES.iter().find(|t| **t == lower) {
            Some(t) => {
                on.insert(*t);
            }
            None => errors.push((
                at.key("on").index(i),
                format!("{name:?} is not an event type: use {}", EVENT_TYPES.join(", ")),
            )),
        }
    }
    if raw.on.is_empty() {
        errors.push((at.key("on"), "`on` lists no event type: the hook would never be sent".to_string()));
    }
    let timeout = match raw.timeout.as_ref().map(RawDuration::parse).transpose() {
        Ok(t) => t.unwrap_or(DEFAULT_TIMEOUT),
        Err(e) => {
            errors.push((at.key("timeout"), e));
            DEFAULT_TIMEOUT
        }
    };
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        errors.push((at.key("timeout"), format!("timeout must be between 1ms and {}s", MAX_TIMEOUT.as_secs())));
    }
    let tls = compile_tls(raw.tls.unwrap_or_default(), &at.key("tls"), dir_of, errors);

    let full_form = raw.method.is_some()
        || raw.form.is_some()
        || raw.json.is_some()
        || raw.headers.is_some()
        || raw.auth.is_some()
        || raw.url.contains("{{")
        || raw.url.contains("{%");
    let template = if full_form {
        if integra::has_placeholder(&raw.url) {
            errors.push((
                at.key("url"),
                "Integra placeholders (!00–!07) work in a one-line url only; in the full form write \
                 {{ event.extension }}, {{ event.remote }}, …"
                    .to_string(),
            ));
            return None;
        }
        let method = compile_method(raw.method.as_deref(), at.key("method"), errors);
        let auth = compile_auth(raw.auth, at.key("auth"), errors);
        if errors.len() > before {
            return None;
        }
        let spec = HttpSpec {
            method,
            url: raw.url,
            form: raw.form.unwrap_or_default().0,
            json: raw.json,
            headers: raw.headers.unwrap_or_default().0,
            auth,
        };
        let field = format!("hooks[{index}]");
        match HookTemplate::compile(templates, &field, spec, vars, number) {
            Ok(t) => t,
            Err(es) => {
                for e in es {
                    errors.push(Problem {
                        at: place_of(&at, &field, &e.field),
                        message: e.message,
                        missing: e.missing,
                    });
                }
                return None;
            }
        }
    } else {
        match integra::parse(&raw.url) {
            Ok(line) => HookTemplate::integra(line),
            Err(e) => {
                errors.push((at.key("url"), format!("{e} (at character {} of the line)", e.offset() + 1)));
                return None;
            }
        }
    };
    if errors.len() > before {
        return None;
    }
    Some(Hook { index, on, only_external: raw.only_external.unwrap_or(false), template, tls, timeout })
}

/// A template field (`hooks[2].json.type`) as a place in the file.
fn place_of(hook: &yaml::Path, prefix: &str, field: &str) -> yaml::Path {
    let rest = field.strip_prefix(prefix).unwrap_or("");
    let mut path = hook.clone();
    path.0.extend(yaml::Path::parse(rest).0);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(yaml_text: &str) -> RawHook {
        serde_yaml::from_str(yaml_text).unwrap()
    }

    fn one(text: &str) -> Result<Hook, Vec<(String, String)>> {
        let mut errors = CompileErrors::default();
        let mut env = crate::template::new_env();
        let hooks = compile(
            &mut env,
            vec![raw(text)],
            &BTreeMap::new(),
            &NumberRules::default(),
            &|_| PathBuf::new(),
            &mut errors,
        );
        if errors.is_empty() {
            hooks.into_iter().next().ok_or_else(Vec::new)
        } else {
            Err(errors.0.into_iter().map(|p| (p.at.to_string(), p.message)).collect())
        }
    }

    #[test]
    fn a_url_alone_is_an_integra_line_and_a_template_or_a_body_is_the_full_form() {
        let h = one("{on: [ringing, Dialing], only_external: true, url: 'http://crm/p?c=!01'}").unwrap();
        assert!(h.template.is_integra() && h.only_external);
        assert_eq!(h.on, BTreeSet::from(["ringing", "dialling"]));
        assert!(!one("{on: [ended], url: 'http://crm/c/{{ event.call_id }}'}").unwrap().template.is_integra());
        assert!(
            !one("{on: [ended], url: 'http://crm/c', json: {id: '{{ event.id }}'}}").unwrap().template.is_integra()
        );
    }

    #[test]
    fn problems_are_placed_in_the_hook() {
        let cases = [
            ("{on: [ringin], url: 'http://h/'}", "hooks[0].on[0]", "not an event type"),
            ("{on: [], url: 'http://h/'}", "hooks[0].on", "never be sent"),
            ("{on: [ended], url: 'http://h!00/'}", "hooks[0].url", "never choose"),
            ("{on: [ended], url: 'http://h/?x=!09'}", "hooks[0].url", "character 13"),
            ("{on: [ended], url: 'http://h/?x=!01', method: POST}", "hooks[0].url", "one-line url only"),
            ("{on: [ended], url: 'http://h/', json: {a: '{{ nope }}'}}", "hooks[0].json.a", "`nope` is not defined"),
            ("{on: [ended], url: 'http://h/', method: PATCH}", "hooks[0].method", "not supported"),
            ("{on: [ended], url: 'http://h/', timeout: 0s}", "hooks[0].timeout", "between"),
            ("{on: [ended], url: 'http://h/', tls: {verify: false, pin: x}}", "hooks[0].tls", "contradict"),
        ];
        for (text, at, says) in cases {
            let errs = one(text).err().unwrap_or_default();
            assert!(errs.iter().any(|(p, m)| p == at && m.contains(says)), "{text}: {errs:?}");
        }
    }
}

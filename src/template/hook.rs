//! A hook's request, rendered for one event. Pure, like every template.
//!
//! Two forms, as for actions: an Integra line
//! (`http://crm/popup.php?caller=!01`, see [`crate::syntax::integra`]) or
//! the full form, whose templates compile into the shared environment and
//! see `event` (the normalized event as a map), `branch`, `now` and the
//! branch's `vars`. The encoding contract is the actions' one: every value
//! placed in a URL is percent-encoded as a component, so `026&admin=1`,
//! `/../`, `?` or `#` in an event field can never add a parameter or a
//! path segment, and event values never choose the scheme, host or port.
//! One more rule for event values, which no caller validated: a value that
//! would make a whole path segment `.` or `..` (which URL parsers resolve,
//! encoded or not) is refused, so a value cannot remove a segment either.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::Value;
use minijinja::value::{Enumerator, Object};
use percent_encoding::utf8_percent_encode;

use super::jinja::{self, Jinja, Scope};
use super::urls::{COMPONENT, FixedBase, build_url, split_url};
use super::{CompileError, HttpSpec, RenderError, Request, Templates};
use crate::number::NumberRules;
use crate::syntax::integra::{self, Field, Piece};
use crate::syntax::iqx::Method;

/// A compiled hook request: renders without parsing anything again.
#[derive(Debug, Clone)]
pub struct HookTemplate {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Integra(integra::Line, Option<FixedBase>),
    Jinja(Box<Jinja>),
}

impl HookTemplate {
    /// From an Integra line (already parsed).
    pub fn integra(line: integra::Line) -> Self {
        let base = match line.url.first() {
            Some(Piece::Lit(first)) => FixedBase::new(split_url(first).0),
            _ => None,
        };
        HookTemplate { kind: Kind::Integra(line, base) }
    }

    /// Compiles the full form into `env`; `field` prefixes error fields
    /// (e.g. `hooks[0]`). Tried once with [`sample_event`] at load.
    pub fn compile(
        env: &mut Templates,
        field: &str,
        spec: HttpSpec,
        vars: &BTreeMap<String, serde_json::Value>,
        number: &NumberRules,
    ) -> Result<Self, Vec<CompileError>> {
        jinja::compile(env, field, spec, vars, number, Scope::Hook)
            .map(|j| HookTemplate { kind: Kind::Jinja(Box::new(j)) })
    }

    /// The names of the templates it renders with in the shared
    /// environment (none for an Integra line).
    pub fn template_names(&self) -> Vec<&str> {
        match &self.kind {
            Kind::Integra(..) => Vec::new(),
            Kind::Jinja(j) => j.template_names(),
        }
    }

    /// An Integra line (as opposed to the full form).
    pub fn is_integra(&self) -> bool {
        matches!(self.kind, Kind::Integra(..))
    }

    /// The request for one event. `event` is the normalized event as a JSON
    /// map (what the full form sees); `field` gives each Integra
    /// placeholder's value (what the line sees), unencoded.
    pub fn render(
        &self,
        env: &Templates,
        event: &serde_json::Value,
        field: &dyn Fn(Field) -> String,
    ) -> Result<Request, RenderError> {
        match &self.kind {
            Kind::Integra(line, base) => render_integra(line, base.as_ref(), field),
            Kind::Jinja(j) => {
                let branch = event.get("branch").and_then(serde_json::Value::as_str).unwrap_or("");
                j.render_event(env, branch, event)
            }
        }
    }
}

fn render_integra(
    line: &integra::Line,
    base: Option<&FixedBase>,
    value: &dyn Fn(Field) -> String,
) -> Result<Request, RenderError> {
    let mut url = String::new();
    // Where each placeholder's value landed, to check the path's segments.
    let mut placed = Vec::new();
    for piece in &line.url {
        match piece {
            Piece::Lit(s) => url.push_str(s),
            Piece::Field(f) => {
                let start = url.len();
                url.extend(utf8_percent_encode(&value(*f), COMPONENT));
                placed.push((start, url.len(), *f));
            }
        }
    }
    check_segments(&url, &placed)?;
    let url = build_url(base, &url)?;
    Ok(Request { method: Method::Get, url, headers: Vec::new(), body: None, digest: None, shown_auth: None })
}

/// Refuses a path segment that a value turned into `.` or `..`. Encoded
/// values hold no raw `/`, `?` or `#`, so the path and its segments can be
/// read straight off the rendered text.
fn check_segments(url: &str, placed: &[(usize, usize, Field)]) -> Result<(), RenderError> {
    let start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let Some(path_start) = url[start..].find(['/', '?', '#']).map(|i| start + i) else {
        return Ok(());
    };
    let path_end = url[path_start..].find(['?', '#']).map(|i| path_start + i).unwrap_or(url.len());
    let mut at = path_start;
    for segment in url[path_start..path_end].split('/') {
        let (seg_start, seg_end) = (at, at + segment.len());
        at = seg_end + 1;
        // An empty value changes no segment; a value never spans two.
        let filled = placed.iter().find(|(s, e, _)| s < e && *s >= seg_start && *e <= seg_end);
        let dots = segment.to_ascii_lowercase().replace("%2e", ".");
        if let (Some((_, _, f)), "." | "..") = (filled, dots.as_str()) {
            return Err(RenderError::new(format!(
                "!{:02}'s value would make the path segment {segment:?}, which removes a segment: not sent",
                f.number()
            )));
        }
    }
    Ok(())
}

/// A plausible event, shaped like the normalized one, to try every hook
/// template once at load: a template that uses a field the event does not
/// have (`event.remot`) fails there, not on the first call.
pub fn sample_event() -> serde_json::Value {
    serde_json::json!({
        "id": "01SAMPLEEVENT0000000000000",
        "branch": "sample",
        "type": "ringing",
        "direction": "in",
        "extension": "201",
        "remote": "+442079460000",
        "call_id": "sample-call-1",
        "dial_id": null,
        "external_id": null,
        "at": "2026-11-23T14:05:09Z",
        "pbx": {},
    })
}

/// `event` as templates see it: its fields as they are, except that `pbx`
/// (the notification's own fields) renders a field this notification did
/// not carry as empty instead of failing. One PBX sends different fields
/// with different events, and the environment is strict about undefined
/// names, so a hook written for `event.pbx.did` must still render for the
/// notification that has none.
pub(super) fn event_value(event: &serde_json::Value) -> Value {
    match event {
        serde_json::Value::Object(map) => Value::from_object(EventFields(map.clone())),
        other => Value::from(minijinja::value::Serde(other)),
    }
}

#[derive(Debug)]
struct EventFields(serde_json::Map<String, serde_json::Value>);

impl Object for EventFields {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        match self.0.get(key)? {
            serde_json::Value::Object(pbx) if key == "pbx" => Some(Value::from_object(PbxFields(pbx.clone()))),
            v => Some(Value::from(minijinja::value::Serde(v))),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.0.keys().map(|k| Value::from(k.as_str())).collect())
    }
}

#[derive(Debug)]
struct PbxFields(serde_json::Map<String, serde_json::Value>);

impl Object for PbxFields {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let value = key.as_str().and_then(|k| self.0.get(k));
        Some(value.map(|v| Value::from(minijinja::value::Serde(v))).unwrap_or_else(|| Value::from("")))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.0.keys().map(|k| Value::from(k.as_str())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::new_env;

    fn values(f: Field) -> String {
        match f {
            Field::OwnExtension => "35".into(),
            Field::Remote => "026&admin=1".into(),
            Field::Action => "CALL_IN".into(),
            Field::Time => "23/11/2026_14.05.09".into(),
            Field::CallId => "a/../b?c#d".into(),
            _ => String::new(),
        }
    }

    fn integra_url(line: &str, value: &dyn Fn(Field) -> String) -> Result<String, RenderError> {
        let t = HookTemplate::integra(integra::parse(line).unwrap());
        t.render(&new_env(), &sample_event(), value).map(|r| r.url.to_string())
    }

    #[test]
    fn every_integra_value_is_encoded_as_a_component() {
        let got = integra_url("http://crm.local/c/!05/p.php?caller=!01&action=!02&ext=!00&t=!04&x=!03", &values);
        assert_eq!(
            got.unwrap(),
            "http://crm.local/c/a%2F..%2Fb%3Fc%23d/p.php?caller=026%26admin%3D1&action=CALL_IN&ext=35&t=23%2F11%2F2026_14.05.09&x="
        );
    }

    #[test]
    fn a_value_that_would_be_a_dot_segment_is_refused_and_dots_inside_a_segment_are_fine() {
        for (dots, refused) in [("..", true), (".", true), ("...", false), ("a..", false)] {
            let got = integra_url("http://h/a/!00/b", &|_| dots.to_string());
            assert_eq!(got.is_err(), refused, "{dots}: {got:?}");
        }
        assert!(integra_url("http://h/a/.!00/b", &|_| ".".to_string()).is_err(), "a literal dot plus a dot");
        assert!(integra_url("http://h/a/!00", &|_| "..".to_string()).is_err(), "as the last segment");
        assert!(integra_url("http://h/a?x=!00", &|_| "..".to_string()).is_ok(), "in the query it is text");
    }

    fn hook(spec: HttpSpec) -> Result<(HookTemplate, Templates), Vec<CompileError>> {
        let mut env = new_env();
        let vars = BTreeMap::from([("crm".to_string(), serde_json::json!("crm.example"))]);
        HookTemplate::compile(&mut env, "hooks[0]", spec, &vars, &NumberRules::default()).map(|t| (t, env))
    }

    #[test]
    fn the_full_form_sees_the_event_and_encodes_it_for_its_place() {
        let spec = HttpSpec {
            url: "http://{{ crm }}/calls/{{ event.call_id }}?from={{ event.remote }}".into(),
            json: Some(
                serde_json::json!({"type": "{{ event.type }}", "did": "{{ event.pbx.did }}", "b": "{{ branch }}"}),
            ),
            ..Default::default()
        };
        let (t, env) = hook(spec).unwrap();
        let mut event = sample_event();
        event["call_id"] = "1/../2".into();
        event["remote"] = "026&admin=1".into();
        event["branch"] = "milan".into();
        let req = t.render(&env, &event, &|_| String::new()).unwrap();
        assert_eq!(req.url.as_str(), "http://crm.example/calls/1%2F..%2F2?from=026%26admin%3D1");
        let body: serde_json::Value = serde_json::from_str(req.body.as_deref().unwrap()).unwrap();
        assert_eq!(body, serde_json::json!({"type": "ringing", "did": "", "b": "milan"}));
        assert_eq!(req.method, Method::Post);
    }

    #[test]
    fn hook_templates_are_checked_at_load() {
        let url = |u: &str| HttpSpec { url: u.into(), ..Default::default() };
        let message = |u: &str| hook(url(u)).unwrap_err()[0].message.clone();
        assert!(message("http://{{ event.remote }}.example/").contains("never choose"));
        assert!(message("http://h/?n={{ number }}").contains("hook has no caller"));
        assert!(
            message("http://h/?n={{ event.remot }}").contains("undefined"),
            "{}",
            message("http://h/?n={{ event.remot }}")
        );
        assert!(message("tel:{{ event.remote }}").contains("http://"));
        assert!(hook(url("http://h/?d={{ event.pbx.anything }}")).is_ok(), "the PBX's fields are open");
    }

    #[test]
    fn an_action_never_sees_an_event() {
        let mut env = new_env();
        let spec = HttpSpec { url: "http://h/?n={{ number }}&e={{ event.id }}".into(), ..Default::default() };
        let errs = crate::template::RequestTemplate::compile(
            &mut env,
            "dial",
            spec,
            &BTreeMap::new(),
            &NumberRules::default(),
        )
        .unwrap_err();
        assert!(errs[0].message.contains("an action has no event"), "{errs:?}");
    }
}

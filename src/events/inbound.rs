//! Reading a PBX's notification: who may send one, and what it says, by a
//! branch's `events:` rules. Pure: no I/O, no state.
//!
//! A notification is an HTTP request to `/v1/events/BRANCH[/…]`. Its fields
//! are merged from the query, then the body (a form, JSON or XML object, read
//! as answers are, depth-bounded); the `read:` expressions see those fields,
//! then the profile's `vars` (which win: a notification cannot replace the
//! key its signature is checked with), then `fields` (all of them), `body`
//! (the parsed body), `form` (the form fields only), `headers` (names
//! lower-cased), `raw` (the body's text), `path` (what follows the branch in
//! the URL path, split on `/`) and `url` (the path and query as received),
//! which win over all. The `secret` query parameter is the shared secret,
//! never a field.
//!
//! Who may send: the shared `secret` (`?secret=` or `X-Webdial-Secret`,
//! compared in constant time), the source address (`from:`, CIDR ranges),
//! and `verify:`, an expression that must be true (a signature over `raw`).
//! Every one given must pass. A branch that gives none receives nothing:
//! events move call states and reach business software, so an open door is
//! not a default.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use minijinja::value::ValueKind;
use minijinja::{Environment, Value};
use serde_json::Value as Json;
use subtle::ConstantTimeEq;

use super::{Direction, EventType};
use crate::pbx::answer::{Answer, Format, parse_body};
use crate::pbx::rules::{Expression, View};

/// The longest value kept from a notification for an event's own fields
/// (`extension`, `remote`, `call_id`…): ids and numbers are short, and a
/// hostile notification must not make every event it moves large.
pub const MAX_VALUE: usize = 256;

/// The names every `read:`/`verify:` expression sees besides the fields;
/// they win over fields and `vars` of the same name.
pub const RESERVED: &[&str] = &["fields", "body", "form", "headers", "raw", "path", "url"];

/// `events:` as written.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub secret: Option<String>,
    pub from: Vec<String>,
    pub verify: Option<String>,
    pub read: ReadSpec,
}

/// `events.read:` as written: one expression per field of the normalized event.
#[derive(Debug, Clone, Default)]
pub struct ReadSpec {
    pub kind: Option<String>,
    pub direction: Option<String>,
    pub extension: Option<String>,
    pub remote: Option<String>,
    pub call_id: Option<String>,
    pub request_id: Option<String>,
    pub external_id: Option<String>,
}

/// A problem with `events:`: where (`read.type`, `from[1]`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

/// A branch's `events:`, compiled at load.
#[derive(Debug)]
pub struct Intake {
    secret: Option<String>,
    from: Vec<IpNet>,
    verify: Option<Expression>,
    read: Read,
    vars: BTreeMap<String, Value>,
}

#[derive(Debug, Default)]
struct Read {
    kind: Option<Expression>,
    direction: Option<Expression>,
    extension: Option<Expression>,
    remote: Option<Expression>,
    call_id: Option<Expression>,
    request_id: Option<Expression>,
    external_id: Option<Expression>,
}

/// One notification as it arrived.
#[derive(Debug, Clone, Default)]
pub struct Notification {
    /// The raw query string (no `?`).
    pub query: String,
    /// Every header, names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body's text.
    pub body: String,
    /// What followed `/v1/events/BRANCH/` in the path, split on `/` (decoded).
    pub path: Vec<String>,
    /// The path and query as received (`/v1/events/b?x=1`): what a signature
    /// over the URL covers, after the scheme and host the PBX was given.
    pub url: String,
    /// The sender's address, when known.
    pub peer: Option<IpAddr>,
}

impl Notification {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Why a notification is not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// 401: the sender is not who the branch accepts (dropped, not read).
    #[error("{0}")]
    Unauthorized(String),
    /// 400: it cannot be read with the branch's rules.
    #[error("{0}")]
    Unreadable(String),
}

/// What a notification said, by the branch's rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub kind: EventType,
    pub direction: Option<Direction>,
    pub extension: Option<String>,
    pub remote: Option<String>,
    pub call_id: Option<String>,
    pub request_id: Option<String>,
    pub external_id: Option<String>,
    /// The notification's fields (query and body), the secret left out.
    pub fields: Json,
}

impl Intake {
    /// Compiles `spec` into `env`, the environment notifications are read
    /// with; `vars` are the profile's. Every problem is returned.
    pub fn compile(
        env: &mut Environment<'static>,
        spec: Spec,
        vars: &BTreeMap<String, Json>,
    ) -> Result<Intake, Vec<SpecError>> {
        let mut errors = Vec::new();
        let mut from = Vec::new();
        for (i, net) in spec.from.iter().enumerate() {
            match parse_net(net) {
                Ok(n) => from.push(n),
                Err(message) => errors.push(SpecError { field: format!("from[{i}]"), message }),
            }
        }
        if spec.secret.as_deref().is_some_and(|s| s.trim().is_empty()) {
            errors.push(SpecError { field: "secret".into(), message: "the secret is empty".into() });
        }
        let mut compile = |field: &str, source: Option<String>| {
            let source = source?;
            Expression::compile(env, &format!("events.{field}"), &source)
                .map_err(|message| errors.push(SpecError { field: field.to_string(), message }))
                .ok()
        };
        let verify = compile("verify", spec.verify);
        let r = spec.read;
        let no_type = r.kind.is_none();
        let read = Read {
            kind: compile("read.type", r.kind),
            direction: compile("read.direction", r.direction),
            extension: compile("read.extension", r.extension),
            remote: compile("read.remote", r.remote),
            call_id: compile("read.call_id", r.call_id),
            request_id: compile("read.request_id", r.request_id),
            external_id: compile("read.external_id", r.external_id),
        };
        if no_type {
            errors.push(SpecError {
                field: "read".into(),
                message: "no `type`: say how a notification tells ringing, answered, ended… (e.g. `type: \"{'8': 'ringing'}[event] | default('other')\"`)".into(),
            });
        }
        let vars = vars.iter().map(|(k, v)| (k.clone(), Value::from(minijinja::value::Serde(v)))).collect();
        if errors.is_empty() { Ok(Intake { secret: spec.secret, from, verify, read, vars }) } else { Err(errors) }
    }

    /// Whether the branch says who may send (a secret, addresses or a
    /// signature check): without any, it receives nothing.
    pub fn enabled(&self) -> bool {
        self.secret.is_some() || !self.from.is_empty() || self.verify.is_some()
    }

    /// Checks who sent `n`, then reads it. Nothing that is refused is read
    /// further than its signature needs.
    pub fn receive(&self, env: &Environment<'_>, n: &Notification) -> Result<Reading, Refused> {
        self.admit(n)?;
        let parsed = parse_fields(n);
        let (fields, body, form) = match &parsed {
            Ok(p) => (p.fields.clone(), p.body.clone(), p.form.clone()),
            Err(_) => (serde_json::Map::new(), Json::Null, serde_json::Map::new()),
        };
        let view = self.view(&fields, body, form, n);
        if let Some(verify) = &self.verify {
            match verify.eval(env, &view, "the notification") {
                Ok(v) if v.is_true() => {}
                Ok(_) => return Err(Refused::Unauthorized("the notification's signature does not verify".into())),
                Err(e) => {
                    return Err(Refused::Unauthorized(format!("the notification's signature cannot be checked: {e}")));
                }
            }
        }
        if let Err(e) = parsed {
            return Err(Refused::Unreadable(e));
        }
        let text = |expr: &Option<Expression>| -> Result<Option<String>, Refused> {
            let Some(expr) = expr else { return Ok(None) };
            let v = expr.eval(env, &view, "the notification").map_err(Refused::Unreadable)?;
            Ok(text_of(&v))
        };
        let kind = text(&self.read.kind)?.map_or(EventType::Other, |t| EventType::parse(&t));
        let direction = text(&self.read.direction)?.and_then(|d| direction(&d));
        Ok(Reading {
            kind,
            direction,
            extension: text(&self.read.extension)?,
            remote: text(&self.read.remote)?,
            call_id: text(&self.read.call_id)?,
            request_id: text(&self.read.request_id)?,
            external_id: text(&self.read.external_id)?,
            fields: Json::Object(fields),
        })
    }

    /// The secret and the source address, before anything is parsed.
    fn admit(&self, n: &Notification) -> Result<(), Refused> {
        if !self.enabled() {
            return Err(Refused::Unauthorized("this branch accepts no notifications".into()));
        }
        if let Some(secret) = &self.secret {
            let presented = n
                .header("x-webdial-secret")
                .map(str::to_string)
                .or_else(|| query_pairs(&n.query).find(|(k, _)| k == "secret").map(|(_, v)| v));
            let Some(presented) = presented else {
                return Err(Refused::Unauthorized(
                    "no secret: send it as ?secret=… or in the X-Webdial-Secret header".into(),
                ));
            };
            if !bool::from(secret.as_bytes().ct_eq(presented.as_bytes())) {
                return Err(Refused::Unauthorized("the secret is wrong".into()));
            }
        }
        if !self.from.is_empty() {
            let allowed = n.peer.map(canonical).is_some_and(|ip| self.from.iter().any(|net| net.contains(&ip)));
            if !allowed {
                let who = n.peer.map_or_else(|| "an unknown address".to_string(), |ip| ip.to_string());
                return Err(Refused::Unauthorized(format!("{who} is not among the branch's `from` addresses")));
            }
        }
        Ok(())
    }

    fn view(
        &self,
        fields: &serde_json::Map<String, Json>,
        body: Json,
        form: serde_json::Map<String, Json>,
        n: &Notification,
    ) -> View {
        let whole = Value::from(minijinja::value::Serde(Json::Object(fields.clone())));
        let mut names: BTreeMap<String, Value> =
            fields.keys().filter_map(|k| whole.get_attr(k).ok().map(|v| (k.clone(), v))).collect();
        names.extend(self.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &n.headers {
            headers.entry(name.clone()).and_modify(|v| *v = format!("{v}, {value}")).or_insert_with(|| value.clone());
        }
        names.insert("fields".into(), whole);
        names.insert("body".into(), Value::from(minijinja::value::Serde(body)));
        names.insert("form".into(), Value::from(minijinja::value::Serde(Json::Object(form))));
        names.insert("headers".into(), Value::from(headers));
        names.insert("raw".into(), Value::from(n.body.as_str()));
        names.insert("path".into(), Value::from(n.path.clone()));
        names.insert("url".into(), Value::from(n.url.as_str()));
        View::of(names)
    }
}

/// A notification's fields, merged; its parsed body; its form fields.
struct Parsed {
    fields: serde_json::Map<String, Json>,
    body: Json,
    form: serde_json::Map<String, Json>,
}

fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

/// The query's fields, then the body's (a form, or a JSON or XML object):
/// the body wins. A name repeated in one place keeps its first value. A
/// body whose Content-Type says JSON or XML but that is not is unreadable.
fn parse_fields(n: &Notification) -> Result<Parsed, String> {
    let mut fields = serde_json::Map::new();
    let add = |map: &mut serde_json::Map<String, Json>, k: String, v: String| {
        if k != "secret" && !map.contains_key(&k) {
            map.insert(k, Json::String(v));
        }
    };
    for (k, v) in query_pairs(&n.query) {
        add(&mut fields, k, v);
    }
    let content_type = n.header("content-type").map(str::to_string);
    let essence = content_type.as_deref().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let mut form = serde_json::Map::new();
    if n.body.trim().is_empty() {
        return Ok(Parsed { fields, body: Json::Null, form });
    }
    if essence == "application/x-www-form-urlencoded" {
        for (k, v) in query_pairs(&n.body) {
            add(&mut form, k, v);
        }
        for (k, v) in &form {
            fields.insert(k.clone(), v.clone());
        }
        return Ok(Parsed { fields, body: Json::Object(form.clone()), form });
    }
    let answer = Answer { content_type, body: n.body.clone(), ..Answer::default() };
    let (format, body) =
        parse_body(Format::Auto, &answer).map_err(|e| e.message.replacen("the answer", "the notification", 1))?;
    if let (Format::Json | Format::Xml, Json::Object(map)) = (format, &body) {
        for (k, v) in map {
            if k != "secret" {
                fields.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(Parsed { fields, body, form })
}

/// An expression's value as an event field: text, trimmed, at most
/// [`MAX_VALUE`] characters; none, undefined and empty are nothing.
fn text_of(v: &Value) -> Option<String> {
    let text = match v.kind() {
        ValueKind::Undefined | ValueKind::None => return None,
        ValueKind::String => v.as_str().unwrap_or_default().trim().to_string(),
        _ => v.to_string().trim().to_string(),
    };
    let text: String = text.chars().take(MAX_VALUE).collect();
    (!text.is_empty()).then_some(text)
}

fn direction(d: &str) -> Option<Direction> {
    match d.trim().to_ascii_lowercase().as_str() {
        "in" | "inbound" | "incoming" => Some(Direction::In),
        "out" | "outbound" | "outgoing" => Some(Direction::Out),
        _ => None,
    }
}

/// `192.168.7.0/24`, `10.0.0.5` (that address alone) or an IPv6 range.
fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| format!("{text:?} is not an address range (like 192.168.7.0/24) or an address"))
}

/// An IPv4 peer seen on an IPv6 socket (`::ffff:10.0.0.5`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intake(spec: Spec, vars: &[(&str, &str)]) -> (crate::template::Templates, Intake) {
        let mut env = crate::template::new_env();
        let vars = vars.iter().map(|(k, v)| (k.to_string(), Json::String(v.to_string()))).collect();
        let intake = Intake::compile(&mut env, spec, &vars).unwrap();
        (env, intake)
    }

    fn read_type(source: &str) -> ReadSpec {
        ReadSpec { kind: Some(source.into()), ..ReadSpec::default() }
    }

    fn get(query: &str) -> Notification {
        Notification { query: query.into(), url: format!("/v1/events/b?{query}"), ..Notification::default() }
    }

    #[test]
    fn the_secret_is_required_in_the_query_or_a_header_and_never_becomes_a_field() {
        let spec = Spec { secret: Some("s3cret".into()), read: read_type("'ringing'"), ..Spec::default() };
        let (env, intake) = intake(spec, &[]);
        let ok = intake.receive(&env, &get("secret=s3cret&ext=35")).unwrap();
        assert_eq!(ok.fields, serde_json::json!({"ext": "35"}));
        let mut by_header = get("ext=35");
        by_header.headers.push(("x-webdial-secret".into(), "s3cret".into()));
        assert!(intake.receive(&env, &by_header).is_ok());
        for query in ["ext=35", "secret=s3cre&ext=35", "secret=s3cret2", "secret="] {
            assert!(matches!(intake.receive(&env, &get(query)), Err(Refused::Unauthorized(_))), "{query}");
        }
    }

    #[test]
    fn from_ranges_check_the_sender_address() {
        let spec =
            Spec { from: vec!["192.168.7.0/24".into(), "10.0.0.5".into()], read: read_type("'x'"), ..Spec::default() };
        let (env, intake) = intake(spec, &[]);
        let from = |ip: &str| Notification { peer: Some(ip.parse().unwrap()), ..get("") };
        for (ip, ok) in [
            ("192.168.7.9", true),
            ("::ffff:192.168.7.9", true),
            ("10.0.0.5", true),
            ("10.0.0.6", false),
            ("192.168.8.1", false),
        ] {
            assert_eq!(intake.receive(&env, &from(ip)).is_ok(), ok, "{ip}");
        }
        assert!(intake.receive(&env, &get("")).is_err(), "an unknown sender is not in any range");
        let mut env2 = crate::template::new_env();
        let bad = Spec { from: vec!["192.168.7.0/33".into()], read: read_type("'x'"), ..Spec::default() };
        let e = Intake::compile(&mut env2, bad, &BTreeMap::new()).unwrap_err();
        assert_eq!(e[0].field, "from[0]");
    }

    #[test]
    fn expressions_see_fields_then_vars_then_the_reserved_names() {
        let spec = Spec {
            secret: Some("s".into()),
            verify: Some("token == 'from-vars' and fields.token == 'from-the-pbx'".into()),
            read: ReadSpec {
                kind: Some("{'8': 'ringing', '9': 'dialling'}[event] | default('other')".into()),
                direction: Some("{'8': 'in', '9': 'out'}[event] | default(none)".into()),
                extension: Some("local | default('') | replace('sip:', '') | split('@') | first".into()),
                remote: Some("path[1]".into()),
                call_id: Some("path[5]".into()),
                ..ReadSpec::default()
            },
            ..Spec::default()
        };
        let (env, intake) = intake(spec, &[("token", "from-vars")]);
        let mut n = get("secret=s&token=from-the-pbx&event=9&local=sip:201@pbx.example");
        n.path = vec!["outgoing".into(), "187".into()];
        let r = intake.receive(&env, &n).unwrap();
        assert_eq!((r.kind, r.direction), (EventType::Dialling, Some(Direction::Out)));
        assert_eq!((r.extension.as_deref(), r.remote.as_deref(), r.call_id), (Some("201"), Some("187"), None));
        let r = intake.receive(&env, &get("secret=s&token=from-the-pbx&event=99")).unwrap();
        assert_eq!((r.kind, r.direction), (EventType::Other, None), "an unknown code, and none at all");
        let r = intake.receive(&env, &get("secret=s&token=from-the-pbx")).unwrap();
        assert_eq!(r.kind, EventType::Other);
    }

    #[test]
    fn bodies_are_read_as_forms_json_or_xml_and_a_broken_one_is_unreadable() {
        let spec = Spec {
            secret: Some("s".into()),
            read: ReadSpec { kind: Some("'x'".into()), extension: Some("ext".into()), ..ReadSpec::default() },
            ..Spec::default()
        };
        let (env, intake) = intake(spec, &[]);
        let post = |ct: &str, body: &str| Notification {
            headers: vec![("content-type".into(), ct.into())],
            body: body.into(),
            ..get("secret=s&ext=query")
        };
        let cases = [
            ("application/x-www-form-urlencoded", "ext=35&a=1", "35"),
            ("application/json", r#"{"ext": "36"}"#, "36"),
            ("text/xml", "<event><ext>37</ext></event>", "37"),
            ("text/plain", "ext=38", "query"),
        ];
        for (ct, body, want) in cases {
            assert_eq!(intake.receive(&env, &post(ct, body)).unwrap().extension.as_deref(), Some(want), "{ct}");
        }
        for (ct, body) in [("application/json", "{\"ext\": "), ("application/xml", "<a><b></a>")] {
            assert!(matches!(intake.receive(&env, &post(ct, body)), Err(Refused::Unreadable(_))), "{ct}");
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(intake.receive(&env, &post("application/json", &deep)), Err(Refused::Unreadable(_))));
    }

    #[test]
    fn a_branch_that_names_no_sender_receives_nothing_and_type_is_required() {
        let (env, intake) = intake(Spec { read: read_type("'x'"), ..Spec::default() }, &[]);
        assert!(!intake.enabled());
        assert!(matches!(intake.receive(&env, &get("")), Err(Refused::Unauthorized(_))));
        let mut env = crate::template::new_env();
        let e = Intake::compile(&mut env, Spec { secret: Some("s".into()), ..Spec::default() }, &BTreeMap::new());
        assert_eq!(e.unwrap_err()[0].field, "read");
        let broken = Spec { secret: Some("s".into()), read: read_type("event =="), ..Spec::default() };
        assert_eq!(Intake::compile(&mut env, broken, &BTreeMap::new()).unwrap_err()[0].field, "read.type");
    }
}

//! A profile's answer expressions, applied to a parsed answer. Pure: no I/O.
//!
//! This is the half of answer reading that knows profiles (the formats are
//! [`super::answer`]): the `ok`, `call_id` and `message` expressions
//! (minijinja) see the body's top-level keys plus `body`, `raw`,
//! `http_status` and `headers`, which win over body keys of the same name.
//! On an answer with a status read as an answer (any 2xx, or those
//! `statuses:` lists: a desk phone may accept a dial with a 302), any
//! expression that cannot be evaluated makes the answer a bad response;
//! nothing here panics or guesses. Any other status is a refusal
//! whatever its body (an empty redirect, a web server's error page): the
//! body is read as far as it can be, for `message` and for the operator, and
//! the HTTP status is the message when the PBX's own words cannot be found.
//! An expression that fails on a name the answer lacks says so, with the
//! keys the answer does have.
//!
//! At load, an expression's syntax is all that can be checked on its own:
//! which names a PBX's answer will hold is known only from an answer. So a
//! `response:` may give `example:`, one sample answer body or a list of them
//! (a success and a refusal); each is read with the rules at load, and an
//! expression that uses a name the example lacks is a load error at that
//! expression's place (an example plainly in another format, say a preset's
//! JSON in a branch that reads XML, is left out). `example:` is how an admin
//! gets expressions checked before the first dial; the shipped presets carry
//! their systems' answers.
//!
//! Expressions are compiled once, at load, into the one minijinja
//! environment the profile loader shares between all branches (the request
//! templates' [`crate::template::Templates`]), as small templates named by
//! their source: 1,000 branches on one preset compile its expressions once
//! (minijinja sets aside some 12 KB per compiled expression), the same
//! filters serve templates and expressions, and nothing is process-wide.
//! [`Rules`] keeps the names; reading takes that environment back. (A
//! `minijinja::Expression` cannot be kept instead: it borrows the
//! environment that compiled it, which would then have to live forever.)
//!
//! A login's expressions (`save`, `ttl`, `renew_on`) are answer expressions
//! too, outside `response:`: an [`Expression`] evaluated on the [`View`] of
//! an answer that the same rules read.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::value::ValueKind;
use minijinja::{Environment, Value};
use serde_json::Value as Json;

use super::answer::{Answer, BadResponse, Format, parse_body, sniff};
use crate::template::template_error;

/// A profile's `response:` as written; [`Rules::compile`] checks it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spec {
    pub format: Format,
    pub ok: Option<String>,
    pub call_id: Option<String>,
    pub message: Option<String>,
    /// The HTTP statuses whose answers are read as answers; `None`: every 2xx.
    pub statuses: Option<Vec<u16>>,
    /// Sample answer bodies (`example:`), tried at load: see [`Rules::compile`].
    pub examples: Vec<String>,
}

/// A problem with a `response:`: the field it is in (`ok`, `call_id`,
/// `message`, `example`), which example (for `example` itself) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub field: &'static str,
    pub example: Option<usize>,
    pub message: String,
}

/// A profile's rules for reading answers, compiled at load. The default
/// (an IQX line's) reads any format and takes a 2xx status for success.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    format: Format,
    /// The HTTP statuses read as answers; `None`: every 2xx.
    statuses: Option<Vec<u16>>,
    ok: Option<Expr>,
    call_id: Option<Expr>,
    message: Option<Expr>,
}

/// One compiled expression: the field it is, and the name of its template
/// in the environment (the prefix, then the expression's source).
#[derive(Debug, Clone)]
struct Expr {
    field: Arc<str>,
    template: Arc<str>,
}

/// Where an expression template's name starts; what follows is its source.
const PREFIX: &str = "answer#";
/// The variable an expression template sets to the expression's value.
const RESULT: &str = "__answer";

impl Expr {
    fn source(&self) -> &str {
        self.template.get(PREFIX.len()..).unwrap_or_default()
    }

    /// `ok: outcome == '0'`, as messages quote it.
    fn quoted(&self) -> String {
        format!("`{}: {}`", self.field, self.source())
    }

    /// Compiles `source` into `env` unless an identical expression already
    /// is there; `field` is how messages name it (`ok`, `save.token`).
    fn compile(env: &mut Environment<'static>, field: &str, source: &str) -> Result<Expr, String> {
        let error = |e: minijinja::Error| template_error(&e);
        let template: Arc<str> = Arc::from(format!("{PREFIX}{source}"));
        if env.get_template(&template).is_err() {
            // One expression and nothing else, checked as such before it is
            // put in a template, so that it cannot close the tag around it.
            env.compile_expression_owned(source.to_string()).map_err(error)?;
            env.add_template_owned(template.to_string(), format!("{{% set {RESULT} = ({source}) %}}"))
                .map_err(error)?;
        }
        Ok(Expr { field: Arc::from(field), template })
    }

    /// The expression's value in `ctx`, or why it has none, in full: the
    /// first name it uses that `ctx` lacks (in `what`: "the answer"), else
    /// minijinja's own words.
    fn eval(&self, env: &Environment<'_>, ctx: &Value, what: &str) -> Result<Value, String> {
        let failed = |e: minijinja::Error| match self.missing(env, ctx, what) {
            Some(missing) => format!("{}: {missing}", self.quoted()),
            None => format!("{} could not be evaluated: {}", self.quoted(), template_error(&e)),
        };
        let template = env.get_template(&self.template).map_err(failed)?;
        let done = template.render_captured(ctx.clone()).map_err(failed)?;
        Ok(done.state().lookup(RESULT).unwrap_or(Value::UNDEFINED))
    }

    /// The first name (or `a.b` path) the expression uses that `ctx` does not
    /// have, said with what it does have: "`outcom` is not in the answer
    /// (its keys: outcome, request_id)". Only on the error path: it parses
    /// the expression again.
    fn missing(&self, env: &Environment<'_>, ctx: &Value, what: &str) -> Option<String> {
        let template = env.get_template(&self.template).ok()?;
        let source = self.source();
        let mut paths: Vec<String> = template.undeclared_variables(true).into_iter().collect();
        paths.sort_by_key(|p| (source.find(p.as_str()).unwrap_or(usize::MAX), p.clone()));
        for path in &paths {
            let mut segments = path.split('.');
            let first = segments.next().unwrap_or_default();
            let Some(mut value) = defined(ctx.get_attr(first)) else {
                if env.globals().any(|(name, _)| name == first) {
                    continue;
                }
                let body = ctx.get_attr("body").unwrap_or_default();
                return Some(format!("`{first}` is not in {what} ({})", describe(None, &body)));
            };
            let mut at = first.to_string();
            for segment in segments {
                let Some(next) = defined(value.get_attr(segment)) else {
                    return Some(format!("`{at}.{segment}` is not in {what} ({})", describe(Some(&at), &value)));
                };
                at = format!("{at}.{segment}");
                value = next;
            }
        }
        None
    }
}

fn defined(v: Result<Value, minijinja::Error>) -> Option<Value> {
    v.ok().filter(|v| !v.is_undefined())
}

/// At most this many keys are listed in a message.
const KEYS_SHOWN: usize = 20;

/// What a value of the answer is, for a message: its keys (the first
/// [`KEYS_SHOWN`]) or its kind. `name` is `None` for the answer itself.
fn describe(name: Option<&str>, v: &Value) -> String {
    let subject = name.map_or_else(|| "it".to_string(), |n| format!("`{n}`"));
    match v.kind() {
        ValueKind::Map => {
            let keys: Vec<String> = v.try_iter().map(|keys| keys.map(|k| k.to_string()).collect()).unwrap_or_default();
            let whose = name.map_or_else(|| "its".to_string(), |n| format!("`{n}`'s"));
            match keys.len() {
                0 => format!("{subject} has no keys"),
                n if n <= KEYS_SHOWN => format!("{whose} keys: {}", keys.join(", ")),
                n => format!("{whose} keys: {}, and {} more", keys[..KEYS_SHOWN].join(", "), n - KEYS_SHOWN),
            }
        }
        ValueKind::String if name.is_none() => "it was read as text, which has no keys: `raw` holds it".into(),
        ValueKind::String => format!("{subject} is text"),
        ValueKind::Seq | ValueKind::Iterable => format!("{subject} is a list"),
        ValueKind::Number => format!("{subject} is a number"),
        ValueKind::Bool => format!("{subject} is {v}"),
        ValueKind::None => format!("{subject} is null"),
        _ => format!("{subject} has no keys"),
    }
}

/// The answer, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub ok: bool,
    pub call_id: Option<String>,
    pub message: Option<String>,
    /// The format actually used (never `auto`).
    pub format: Format,
    pub body: Json,
}

/// What the expressions see of one answer ([`Rules::view`]).
#[derive(Debug, Clone)]
pub struct View(Value);

impl View {
    /// A view of something other than an answer (a PBX's notification),
    /// given as the names its expressions see.
    pub fn of(names: BTreeMap<String, Value>) -> View {
        View(Value::from(names))
    }
}

/// An answer expression outside `response:` — a login step's `save`, a
/// session's `ttl` and `renew_on` — compiled at load into the shared
/// environment like `response:`'s own, and evaluated on a [`View`].
#[derive(Debug, Clone)]
pub struct Expression {
    expr: Expr,
    /// Whether it reads anything but `http_status` and `headers`: the
    /// default `renew_on`, tried on every answer of a branch that logs in,
    /// needs no body parsed for it.
    reads_body: bool,
    /// Whether it reads `headers` (else they are not gathered for it).
    reads_headers: bool,
}

impl Expression {
    /// Compiles `source`; `field` is how messages name it (`save.token`).
    pub fn compile(env: &mut Environment<'static>, field: &str, source: &str) -> Result<Expression, String> {
        let expr = Expr::compile(env, field, source)?;
        let reads = env.get_template(&expr.template).map(|t| t.undeclared_variables(false)).unwrap_or_default();
        let reads_body = reads.iter().any(|name| name != "http_status" && name != "headers");
        Ok(Expression { expr, reads_body, reads_headers: reads.contains("headers") })
    }

    /// Its value on `view`. Giving nothing (none, or a name the answer
    /// lacks) is an error that says what the answer has: a value to keep
    /// must be there, never a guess.
    pub fn value(&self, env: &Environment<'_>, view: &View) -> Result<Value, String> {
        let value = self.expr.eval(env, &view.0, "the answer")?;
        if value.is_undefined() || value.is_none() {
            return Err(match self.expr.missing(env, &view.0, "the answer") {
                Some(missing) => format!("{}: {missing}", self.expr.quoted()),
                None => format!("{} gave nothing", self.expr.quoted()),
            });
        }
        Ok(value)
    }

    /// Whether it is true of `answer`, read with `rules`. One that cannot
    /// be evaluated is false: used where true triggers something
    /// (`renew_on` sends again).
    pub fn holds(&self, env: &Environment<'_>, rules: &Rules, answer: &Answer) -> bool {
        let view = match self.reads_body {
            true => rules.view(answer),
            false => View(status_context(answer, self.reads_headers)),
        };
        self.expr.eval(env, &view.0, "the answer").is_ok_and(|v| v.is_true())
    }

    /// Its value on `view`, none and undefined included (a field a
    /// notification may or may not carry); an error only when it cannot be
    /// evaluated, with `what` naming the view in the message ("the
    /// notification").
    pub fn eval(&self, env: &Environment<'_>, view: &View, what: &str) -> Result<Value, String> {
        self.expr.eval(env, &view.0, what)
    }

    /// `save.token: access_token`, as messages quote it.
    pub fn quoted(&self) -> String {
        self.expr.quoted()
    }
}

impl Rules {
    /// The names of its expressions' templates in the environment.
    pub fn template_names(&self) -> Vec<&str> {
        [&self.ok, &self.call_id, &self.message].into_iter().flatten().map(|e| &*e.template).collect()
    }

    /// Compiles each expression into `env`, the environment answers will be
    /// read with (strict about undefined names, as [`crate::template::new_env`]
    /// makes it), then reads each example with the rules, as if it came with
    /// HTTP 200 and no Content-Type. An example must parse; `ok`, then
    /// `call_id` if it reads as accepted or `message` if refused (what
    /// reading a real answer like it would evaluate), must evaluate without
    /// using a name it lacks. An example plainly in another format than the
    /// rules' (by its first character: JSON for `format: xml`, XML or JSON
    /// for `format: text`) was written for other rules, typically a preset's
    /// that the branch changed, and is not tried. Every problem is returned,
    /// each with its field.
    pub fn compile(env: &mut Environment<'static>, spec: Spec) -> Result<Rules, Vec<RuleError>> {
        let mut errors = Vec::new();
        let mut compile = |field: &'static str, source: Option<String>| {
            Expr::compile(env, field, &source?)
                .map_err(|message| errors.push(RuleError { field, example: None, message }))
                .ok()
        };
        let bad_status = spec.statuses.iter().flatten().find(|s| !(100..=599).contains(*s)).copied();
        let rules = Rules {
            format: spec.format,
            statuses: spec.statuses.clone(),
            ok: compile("ok", spec.ok),
            call_id: compile("call_id", spec.call_id),
            message: compile("message", spec.message),
        };
        if let Some(bad) = bad_status {
            errors.push(RuleError {
                field: "statuses",
                example: None,
                message: format!("{bad} is not an HTTP status"),
            });
        }
        if errors.is_empty() {
            let several = spec.examples.len() > 1;
            for (i, example) in spec.examples.iter().enumerate() {
                // Plainly another format (a preset's JSON examples, in a branch
                // that asks its PBX for XML): written for other rules, left out.
                if spec.format != Format::Auto && sniff(None, example).0 != spec.format {
                    continue;
                }
                let what = if several { format!("example {}", i + 1) } else { "the example".to_string() };
                match rules.try_example(env, example, &what) {
                    Err(e) if e.field == "example" => errors.push(RuleError { example: Some(i), ..e }),
                    // One problem per expression is enough to see the typo.
                    Err(e) if !errors.iter().any(|seen| seen.field == e.field) => errors.push(e),
                    _ => {}
                }
            }
        }
        if errors.is_empty() { Ok(rules) } else { Err(errors) }
    }

    /// Reads one example the way [`Rules::read`] would read such an answer,
    /// but fails on any expression that uses a name the example lacks, even
    /// where reading would take it as undefined (a typo in `call_id` would
    /// otherwise just lose every call id).
    fn try_example(&self, env: &Environment<'_>, example: &str, what: &str) -> Result<(), RuleError> {
        let answer = Answer { body: example.to_string(), ..Answer::default() };
        let (_, body) = parse_body(self.format, &answer).map_err(|e| RuleError {
            field: "example",
            example: None,
            message: format!("{what} cannot be read: {}", e.message),
        })?;
        let ctx = context(&body, &answer);
        let try_on = |field: &'static str, expr: &Expr| {
            let fail = |message| RuleError { field, example: None, message };
            let value = expr.eval(env, &ctx, what).map_err(fail)?;
            match value.is_undefined().then(|| expr.missing(env, &ctx, what)).flatten() {
                Some(missing) => Err(fail(format!("{}: {missing}", expr.quoted()))),
                None => Ok(value),
            }
        };
        let ok = match &self.ok {
            Some(expr) => try_on("ok", expr)?.is_true(),
            None => true,
        };
        match (ok, &self.call_id, &self.message) {
            (true, Some(expr), _) => try_on("call_id", expr).map(drop),
            (false, _, Some(expr)) => try_on("message", expr).map(drop),
            _ => Ok(()),
        }
    }

    /// Whether an answer with this HTTP status is read as an answer (rather
    /// than a failure): one of `statuses:`, else any 2xx.
    fn answers(&self, http_status: u16) -> bool {
        match &self.statuses {
            Some(listed) => listed.contains(&http_status),
            None => (200..300).contains(&http_status),
        }
    }

    /// What expressions see of `answer`, read in these rules' format as far
    /// as it can be (as text when it cannot): for the expressions that are
    /// not `response:`'s own ([`Expression`]).
    pub fn view(&self, answer: &Answer) -> View {
        let body = match parse_body(self.format, answer) {
            Ok((_, body)) => body,
            Err(_) => Json::String(answer.body.clone()),
        };
        View(context(&body, answer))
    }

    /// Reads one answer, with the environment the rules were compiled into.
    /// An answer with one of the statuses read as answers (any 2xx unless
    /// `statuses:` lists them) must be readable with the rules; any other is
    /// a refusal whatever its body, which is read as far as it can be only
    /// to find the PBX's own words (else the HTTP status says why).
    pub fn read(&self, env: &Environment<'_>, answer: &Answer) -> Result<Reading, BadResponse> {
        let success = self.answers(answer.http_status);
        let (format, body) = match parse_body(self.format, answer) {
            Ok(parsed) => parsed,
            Err(bad) if success => return Err(bad),
            // What could be read of a refusal: its text.
            Err(_) => (Format::Text, Json::String(answer.body.clone())),
        };
        let bad = |message: String| BadResponse { message, format, body: body.clone() };
        let ctx = context(&body, answer);

        let text = |expr: &Option<Expr>| -> Result<Option<String>, BadResponse> {
            let Some(expr) = expr else { return Ok(None) };
            let v = expr.eval(env, &ctx, "the answer").map_err(bad)?;
            Ok(if v.is_none() || v.is_undefined() { None } else { Some(v.to_string().trim().to_string()) }
                .filter(|s| !s.is_empty()))
        };
        if !success {
            let message = text(&self.message).ok().flatten().unwrap_or_else(|| http_failure(answer));
            return Ok(Reading { ok: false, call_id: None, message: Some(message), format, body });
        }
        let ok = match &self.ok {
            Some(expr) => expr.eval(env, &ctx, "the answer").map_err(bad)?.is_true(),
            None => true,
        };
        let (call_id, message) = if ok { (text(&self.call_id)?, None) } else { (None, text(&self.message)?) };
        Ok(Reading { ok, call_id, message, format, body })
    }
}

/// What the expressions see: the body's top-level keys, then `body`, `raw`,
/// `http_status` and `headers` (names lower-cased; a repeated header's
/// values joined with `, `), which win. The body is converted once; its keys
/// share that value.
fn context(body: &Json, answer: &Answer) -> Value {
    let whole = Value::from(minijinja::value::Serde(body));
    let mut ctx: BTreeMap<String, Value> = match body {
        Json::Object(map) => map.keys().filter_map(|k| whole.get_attr(k).ok().map(|v| (k.clone(), v))).collect(),
        _ => BTreeMap::new(),
    };
    ctx.insert("body".into(), whole);
    ctx.insert("raw".into(), Value::from(answer.body.as_str()));
    ctx.insert("http_status".into(), Value::from(answer.http_status));
    ctx.insert("headers".into(), headers(answer));
    Value::from(ctx)
}

/// What an expression that reads only `http_status` (and `headers`, when
/// `with_headers`) sees.
fn status_context(answer: &Answer, with_headers: bool) -> Value {
    let mut ctx = BTreeMap::from([("http_status", Value::from(answer.http_status))]);
    if with_headers {
        ctx.insert("headers", headers(answer));
    }
    Value::from(ctx)
}

/// The answer's headers by lower-cased name; a repeated one's values joined with `, `.
fn headers(answer: &Answer) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &answer.headers {
        headers.entry(name.clone()).and_modify(|v| *v = format!("{v}, {value}")).or_insert_with(|| value.clone());
    }
    Value::from(headers)
}

fn http_failure(answer: &Answer) -> String {
    let reason = http::StatusCode::from_u16(answer.http_status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
    match (&answer.location, answer.http_status) {
        (Some(to), 300..=399) => {
            format!("the PBX answered HTTP {} {reason} to {to}; redirects are not followed", answer.http_status)
        }
        _ => format!("the PBX answered HTTP {} {reason}", answer.http_status).trim_end().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::answer::testing::*;
    use super::*;
    use serde_json::json;

    /// Reads `answer` with `spec` compiled into an environment like the loader's.
    fn read(spec: &Spec, answer: &Answer) -> Result<Reading, BadResponse> {
        let mut env = crate::template::new_env();
        let rules = Rules::compile(&mut env, spec.clone()).unwrap();
        rules.read(&env, answer)
    }

    fn voispeed() -> Spec {
        Spec {
            format: Format::Xml,
            ok: Some("outcome == '0'".into()),
            call_id: Some("request_id".into()),
            message: Some("error".into()),
            statuses: None,
            examples: Vec::new(),
        }
    }

    #[test]
    fn the_expressions_cope_with_a_body_nested_up_to_the_bound() {
        on_a_small_stack(|| {
            for (format, deepest) in [(Format::Xml, nested_xml(64)), (Format::Json, nested_json(64))] {
                let rules = Spec {
                    format,
                    ok: Some("body is defined".into()),
                    call_id: Some("body".into()),
                    ..Default::default()
                };
                let r = read(&rules, &answer(200, None, &deepest)).unwrap();
                assert!(r.ok && r.call_id.is_some(), "{format:?}");
            }
        });
    }

    #[test]
    fn voispeed_accepted_and_rejected() {
        let r = read(
            &voispeed(),
            &answer(200, Some("text/html"), "<result><outcome>0</outcome><request_id>42</request_id></result>"),
        )
        .unwrap();
        assert_eq!((r.ok, r.call_id.as_deref(), r.message.as_deref()), (true, Some("42"), None));
        let r = read(
            &voispeed(),
            &answer(200, None, "<result><outcome>1</outcome><error>connection not found</error></result>"),
        )
        .unwrap();
        assert_eq!((r.ok, r.call_id.as_deref(), r.message.as_deref()), (false, None, Some("connection not found")));
    }

    #[test]
    fn broken_xml_is_a_bad_response_when_xml_is_required() {
        let e = read(&voispeed(), &answer(200, None, "<result><outcome>0</outc")).unwrap_err();
        assert!(e.message.contains("not valid XML"), "{e}");
    }

    #[test]
    fn a_missing_key_is_a_bad_response_not_a_guess() {
        let e = read(&voispeed(), &answer(200, None, "<result><status>ok</status></result>")).unwrap_err();
        assert!(e.message.contains("`ok: outcome == '0'`"), "{e}");
    }

    #[test]
    fn a_name_the_answer_lacks_is_named_with_what_the_answer_has() {
        let spec = |format, ok: &str| Spec { format, ok: Some(ok.into()), ..Spec::default() };
        let voispeed = "<result><outcome>0</outcome><request_id>1</request_id></result>";
        let cases = [
            (
                spec(Format::Xml, "outcom == '0'"),
                voispeed,
                "`ok: outcom == '0'`: `outcom` is not in the answer (its keys: outcome, request_id)",
            ),
            (
                spec(Format::Xml, "outcome == '0' and requestid | length > 0"),
                voispeed,
                "`ok: outcome == '0' and requestid | length > 0`: `requestid` is not in the answer (its keys: outcome, request_id)",
            ),
            (
                spec(Format::Json, "body.stat | upper == 'OK'"),
                "{\"status\": \"OK\"}",
                "`ok: body.stat | upper == 'OK'`: `body.stat` is not in the answer (`body`'s keys: status)",
            ),
            (
                spec(Format::Json, "result.code == 0"),
                "{\"result\": \"fine\"}",
                "`ok: result.code == 0`: `result.code` is not in the answer (`result` is text)",
            ),
            (
                spec(Format::Text, "status == 'OK'"),
                "OK",
                "`ok: status == 'OK'`: `status` is not in the answer (it was read as text, which has no keys: `raw` holds it)",
            ),
            (
                spec(Format::Json, "status == 'OK'"),
                "[1, 2]",
                "`ok: status == 'OK'`: `status` is not in the answer (it is a list)",
            ),
            // Every name is there: minijinja's own words.
            (spec(Format::Json, "status + 1"), "{\"status\": \"OK\"}", "`ok: status + 1` could not be evaluated: "),
        ];
        for (spec, body, want) in cases {
            let e = read(&spec, &answer(200, None, body)).unwrap_err();
            assert!(e.message.starts_with(want), "{body}:\n got {}\nwant {want}", e.message);
        }
        let e = read(&spec(Format::Json, "outcom"), &answer(200, None, "{\"outcome\": 0}"));
        assert!(e.is_ok_and(|r| !r.ok), "a bare name the answer lacks is undefined, which is false");
    }

    #[test]
    fn a_long_list_of_keys_is_cut_short() {
        let body: String =
            format!("{{{}}}", (0..30).map(|i| format!("\"k{i:02}\": {i}")).collect::<Vec<_>>().join(","));
        let e = read(
            &Spec { format: Format::Json, ok: Some("nope == 1".into()), ..Spec::default() },
            &answer(200, None, &body),
        );
        let message = e.unwrap_err().message;
        assert!(message.ends_with("k17, k18, k19, and 10 more)"), "{message}");
    }

    #[test]
    fn reserved_names_win_over_body_keys() {
        let rules = Spec {
            ok: Some("http_status == 200 and body.http_status == 'x' and raw != ''".into()),
            ..Default::default()
        };
        assert!(read(&rules, &answer(200, None, "{\"http_status\": \"x\"}")).unwrap().ok);
    }

    #[test]
    fn default_ok_is_a_2xx_status_and_failures_say_why() {
        let r = read(&Spec::default(), &answer(500, None, "oops")).unwrap();
        assert_eq!((r.ok, r.message.as_deref()), (false, Some("the PBX answered HTTP 500 Internal Server Error")));
        let r = read(&voispeed(), &answer(503, None, "<html>down</html>")).unwrap();
        assert!(!r.ok);
        assert!(read(&Spec::default(), &answer(204, None, "")).unwrap().ok);
    }

    #[test]
    fn a_non_2xx_answer_is_a_refusal_whatever_its_body() {
        let c2c = Spec {
            format: Format::Json,
            ok: Some("status == 'OK'".into()),
            call_id: Some("dial1_uid".into()),
            message: Some("reason".into()),
            statuses: None,
            examples: Vec::new(),
        };
        let iis = "<!DOCTYPE html><html><body><h1>Service Unavailable</h1></body></html>";
        let text = |s: &str| Json::String(s.into());
        let cases = [
            (
                voispeed(),
                302,
                "",
                "the PBX answered HTTP 302 Found to /login; redirects are not followed",
                Format::Text,
                text(""),
            ),
            (voispeed(), 503, iis, "the PBX answered HTTP 503 Service Unavailable", Format::Text, text(iis)),
            (c2c.clone(), 401, "", "the PBX answered HTTP 401 Unauthorized", Format::Text, text("")),
            (
                c2c.clone(),
                502,
                "{\"status\": ",
                "the PBX answered HTTP 502 Bad Gateway",
                Format::Text,
                text("{\"status\": "),
            ),
            // The PBX's own words, when the message expression finds them.
            (
                voispeed(),
                500,
                "<result><outcome>1</outcome><error>database down</error></result>",
                "database down",
                Format::Xml,
                json!({"outcome": "1", "error": "database down"}),
            ),
            (
                c2c,
                400,
                "{\"status\":\"FAIL\",\"reason\":\"bad org\"}",
                "bad org",
                Format::Json,
                json!({"status": "FAIL", "reason": "bad org"}),
            ),
        ];
        for (rules, status, body, message, format, parsed) in cases {
            let mut a = answer(status, Some("text/html"), body);
            a.location = (status == 302).then(|| "/login".to_string());
            let r = read(&rules, &a).unwrap_or_else(|e| panic!("HTTP {status} {body:?} must be a refusal: {e}"));
            assert!(!r.ok, "{status}");
            assert_eq!(
                (r.message.as_deref(), r.format, &r.body),
                (Some(message), format, &parsed),
                "{status} {body:?}"
            );
        }
    }

    #[test]
    fn json_and_text_rules() {
        let rules = Spec {
            format: Format::Json,
            ok: Some("status == 'ok'".into()),
            call_id: Some("dial1_uid".into()),
            message: Some("reason".into()),
            statuses: None,
            examples: Vec::new(),
        };
        let r = read(&rules, &answer(200, None, "{\"status\":\"ok\",\"dial1_uid\":\"1.2\"}")).unwrap();
        assert_eq!(r.call_id.as_deref(), Some("1.2"));
        let text = Spec {
            format: Format::Text,
            ok: Some("raw is startingwith('OK')".into()),
            message: Some("raw".into()),
            ..Default::default()
        };
        assert!(read(&text, &answer(200, None, "OK 1")).unwrap().ok);
        assert_eq!(read(&text, &answer(200, None, "FAIL busy")).unwrap().message.as_deref(), Some("FAIL busy"));
    }

    #[test]
    fn broken_expressions_are_found_at_load() {
        let mut env = crate::template::new_env();
        let broken = Spec { ok: Some("outcome ==".into()), message: Some("error }}{{ x".into()), ..voispeed() };
        let errors = Rules::compile(&mut env, broken).unwrap_err();
        assert_eq!(errors.iter().map(|e| e.field).collect::<Vec<_>>(), ["ok", "message"], "{errors:?}");
        assert!(Rules::compile(&mut env, voispeed()).is_ok());
    }

    #[test]
    fn an_expression_stays_one_expression_inside_its_template() {
        let tag_closers = Spec { ok: Some("raw == '%}{{ 1 }}{% set x = 2 %}'".into()), ..Spec::default() };
        assert!(read(&tag_closers, &answer(200, None, "%}{{ 1 }}{% set x = 2 %}")).unwrap().ok);
        assert!(!read(&tag_closers, &answer(200, None, "1")).unwrap().ok);
        let mut env = crate::template::new_env();
        for escape in ["1) %}{{ raw }}{% set y = (1", "1 %}", "x }}"] {
            let spec = Spec { ok: Some(escape.into()), ..Spec::default() };
            assert!(Rules::compile(&mut env, spec).is_err(), "{escape:?} is not one expression");
        }
    }

    /// VOIspeed's answers, as its integration guide shows them.
    const ACCEPTED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<result>\n<outcome>0</outcome>\n<request_id>15652770917203</request_id>\n</result>";
    const REFUSED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<result>\n<outcome>1</outcome>\n<error>connection not found</error></result>";

    #[test]
    fn examples_check_the_expressions_at_load() {
        let with = |ok: &str, call_id: &str, message: &str, examples: &[&str]| Spec {
            ok: Some(ok.into()),
            call_id: Some(call_id.into()),
            message: Some(message.into()),
            examples: examples.iter().map(|e| e.to_string()).collect(),
            ..voispeed()
        };
        let keys = "(its keys: outcome, request_id)";
        // The rules, then each problem expected: field, example, message (its start).
        type Problems = Vec<(&'static str, Option<usize>, String)>;
        let cases: Vec<(Spec, Problems)> = vec![
            (with("outcome == '0'", "request_id", "error", &[ACCEPTED, REFUSED]), vec![]),
            (
                with("outcom == '0'", "request_id", "error", &[ACCEPTED]),
                vec![("ok", None, format!("`ok: outcom == '0'`: `outcom` is not in the example {keys}"))],
            ),
            // A bare name the example lacks would read as nothing: a lost call id.
            (
                with("outcome == '0'", "request_idd", "error", &[ACCEPTED]),
                vec![("call_id", None, format!("`call_id: request_idd`: `request_idd` is not in the example {keys}"))],
            ),
            (
                with("outcome == '0'", "request_id", "eror", &[ACCEPTED, REFUSED]),
                vec![(
                    "message",
                    None,
                    "`message: eror`: `eror` is not in example 2 (its keys: error, outcome)".to_string(),
                )],
            ),
            // `message` is not what an accepted answer is read with, so it is not tried on one.
            (with("outcome == '0'", "request_id", "eror | trim", &[ACCEPTED]), vec![]),
            (
                with("outcome == '0'", "request_id", "error", &[ACCEPTED, "<result><outcome>0</outcome"]),
                vec![("example", Some(1), "example 2 cannot be read: the answer is not valid XML: ".to_string())],
            ),
            // Written for other rules: a JSON example is not tried on XML rules, nor XML on text.
            (with("outcom == '0'", "request_id", "error", &["{\"outcome\": 0}"]), vec![]),
            (Spec { format: Format::Text, ..with("outcom == '0'", "request_id", "error", &[ACCEPTED]) }, vec![]),
            (
                Spec { format: Format::Auto, ..with("outcom == '0'", "request_id", "error", &[ACCEPTED]) },
                vec![("ok", None, format!("`ok: outcom == '0'`: `outcom` is not in the example {keys}"))],
            ),
        ];
        for (spec, want) in cases {
            let mut env = crate::template::new_env();
            let got = Rules::compile(&mut env, spec.clone()).err().unwrap_or_default();
            let got: Vec<_> = got.iter().map(|e| (e.field, e.example, e.message.as_str())).collect();
            assert_eq!(got.len(), want.len(), "{spec:?}: {got:?}");
            for ((field, example, message), (want_field, want_example, want_message)) in got.iter().zip(&want) {
                assert_eq!((field, example), (want_field, want_example), "{message}");
                assert!(message.starts_with(want_message.as_str()), "got {message}\nwant {want_message}");
            }
        }
    }

    #[test]
    fn expressions_are_compiled_once_into_the_loaders_environment() {
        let mut env = crate::template::new_env();
        let before = env.templates().count();
        let a = Rules::compile(&mut env, voispeed()).unwrap();
        let b = Rules::compile(&mut env, voispeed()).unwrap();
        assert_eq!(env.templates().count(), before + 3, "two branches on one preset: its three expressions, once");
        let accepted = answer(200, None, "<result><outcome>0</outcome><request_id>7</request_id></result>");
        assert_eq!(a.read(&env, &accepted).unwrap().call_id.as_deref(), Some("7"));
        assert_eq!(b.read(&env, &accepted).unwrap().call_id.as_deref(), Some("7"));
        // Kept nowhere else: an environment that did not compile them does not know them.
        let e = a.read(&crate::template::new_env(), &accepted).unwrap_err();
        assert!(e.message.contains("`ok: outcome == '0'` could not be evaluated"), "{e}");
    }

    #[test]
    fn expressions_see_the_answers_headers_by_lower_cased_name() {
        let mut a = answer(200, Some("application/json"), "{\"headers\": \"a body key\", \"status\": \"OK\"}");
        a.headers = vec![
            ("x-auth-token".into(), "tok-1".into()),
            ("set-cookie".into(), "a=1; Path=/".into()),
            ("set-cookie".into(), "b=2".into()),
        ];
        let spec = Spec {
            format: Format::Json,
            ok: Some("headers['x-auth-token'] == 'tok-1' and body.headers == 'a body key'".into()),
            call_id: Some("headers['set-cookie']".into()),
            ..Spec::default()
        };
        let r = read(&spec, &a).unwrap();
        assert!(r.ok, "headers win over a body key of the same name, which stays reachable as body.headers");
        assert_eq!(r.call_id.as_deref(), Some("a=1; Path=/, b=2"), "a repeated header's values joined");
        let missing = Spec { ok: Some("headers.location == '/x'".into()), ..Spec::default() };
        let e = read(&missing, &a).unwrap_err();
        assert!(e.message.contains("`headers.location` is not in the answer"), "{e}");
    }

    #[test]
    fn statuses_lists_the_statuses_read_as_answers() {
        let snom = Spec { statuses: Some(vec![200, 302]), ..Spec::default() };
        let mut redirect = answer(302, None, "");
        redirect.location = Some("/index.htm".into());
        assert!(read(&snom, &redirect).unwrap().ok, "a desk phone that answers a dial with a redirect");
        assert!(read(&snom, &answer(200, None, "")).unwrap().ok);
        let r = read(&snom, &answer(201, None, "")).unwrap();
        assert_eq!((r.ok, r.message.as_deref()), (false, Some("the PBX answered HTTP 201 Created")), "not listed");
        assert!(!read(&Spec::default(), &redirect).unwrap().ok, "by default only 2xx are answers");
        let mut env = crate::template::new_env();
        let e = Rules::compile(&mut env, Spec { statuses: Some(vec![200, 2000]), ..Spec::default() }).unwrap_err();
        assert_eq!((e[0].field, e[0].message.as_str()), ("statuses", "2000 is not an HTTP status"));
    }

    #[test]
    fn expressions_outside_response_read_a_view_of_the_answer() {
        let mut env = crate::template::new_env();
        let token = Expression::compile(&mut env, "save.token", "access_token").unwrap();
        let ttl = Expression::compile(&mut env, "ttl", "expires_in").unwrap();
        let renew = Expression::compile(&mut env, "renew_on", "http_status == 401 or errcode == 10004").unwrap();
        let rules = Rules::compile(&mut env, Spec { format: Format::Json, ..Spec::default() }).unwrap();
        let ok = rules.view(&answer(200, None, "{\"access_token\": \"t\", \"expires_in\": 60}"));
        assert_eq!(token.value(&env, &ok).unwrap().as_str(), Some("t"));
        assert_eq!(i64::try_from(ttl.value(&env, &ok).unwrap()).ok(), Some(60));
        let other = rules.view(&answer(200, None, "{\"error\": \"invalid_client\"}"));
        let e = token.value(&env, &other).unwrap_err();
        assert_eq!(e, "`save.token: access_token`: `access_token` is not in the answer (its keys: error)");
        let refused = |status, body: &str| answer(status, None, body);
        assert!(
            !renew.holds(&env, &rules, &refused(200, "{\"error\": \"invalid_client\"}")),
            "cannot be evaluated: false"
        );
        assert!(renew.holds(&env, &rules, &refused(401, "")), "a refusal's body is read as far as it goes");
        assert!(renew.holds(&env, &rules, &refused(200, "{\"errcode\": 10004}")));
        let status_only =
            Expression::compile(&mut env, "renew_on", "http_status == 401 or headers['x-expired']").unwrap();
        assert!(!status_only.reads_body && status_only.reads_headers && renew.reads_body && !renew.reads_headers);
        assert!(status_only.holds(&env, &rules, &refused(401, "not JSON")));
        let mut expired = refused(200, "{}");
        expired.headers.push(("x-expired".into(), "1".into()));
        assert!(status_only.holds(&env, &rules, &expired) && !status_only.holds(&env, &rules, &refused(200, "{}")));
        let null = rules.view(&answer(200, None, "{\"access_token\": null}"));
        assert_eq!(token.value(&env, &null).unwrap_err(), "`save.token: access_token` gave nothing");
    }
}

//! A profile's answer expressions, applied to a parsed answer. Pure: no I/O.
//!
//! This is the half of answer reading that knows profiles (the formats are
//! [`super::answer`]): the `ok`, `call_id` and `message` expressions
//! (minijinja) see the body's top-level keys plus `body`, `raw` and
//! `http_status`, which win over body keys of the same name. On a 2xx
//! answer, any expression that cannot be evaluated makes the answer a bad
//! response; nothing here panics or guesses. Any other status is a refusal
//! whatever its body (an empty redirect, a web server's error page): the
//! body is read as far as it can be, for `message` and for the operator, and
//! the HTTP status is the message when the PBX's own words cannot be found.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use minijinja::{Environment, UndefinedBehavior, Value};
use serde_json::Value as Json;

use super::answer::{Answer, BadResponse, Format, parse_body};

/// A profile's rules for reading answers. Expressions are checked at load.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    pub format: Format,
    pub ok: Option<String>,
    pub call_id: Option<String>,
    pub message: Option<String>,
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

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env
    })
}

impl Rules {
    /// Compiles each expression once, so a profile with a broken one does not load.
    /// Returns (field, message) per problem.
    pub fn check(&self) -> Vec<(&'static str, String)> {
        [("ok", &self.ok), ("call_id", &self.call_id), ("message", &self.message)]
            .into_iter()
            .filter_map(|(name, e)| {
                let e = e.as_deref()?;
                env().compile_expression(e).err().map(|err| (name, crate::template::template_error(&err)))
            })
            .collect()
    }

    /// Reads one answer. A 2xx answer must be readable with the rules; any
    /// other is a refusal whatever its body, which is read as far as it can
    /// be only to find the PBX's own words (else the HTTP status says why).
    pub fn read(&self, answer: &Answer) -> Result<Reading, BadResponse> {
        let success = (200..300).contains(&answer.http_status);
        let (format, body) = match parse_body(self.format, answer) {
            Ok(parsed) => parsed,
            Err(bad) if success => return Err(bad),
            // What could be read of a refusal: its text.
            Err(_) => (Format::Text, Json::String(answer.body.clone())),
        };
        let bad = |message: String| BadResponse { message, format, body: body.clone() };

        // The body is converted once; its top-level keys share that value.
        let whole = Value::from(minijinja::value::Serde(&body));
        let mut ctx: BTreeMap<String, Value> = match &body {
            Json::Object(map) => map.keys().filter_map(|k| whole.get_attr(k).ok().map(|v| (k.clone(), v))).collect(),
            _ => BTreeMap::new(),
        };
        ctx.insert("body".into(), whole);
        ctx.insert("raw".into(), Value::from(answer.body.as_str()));
        ctx.insert("http_status".into(), Value::from(answer.http_status));

        let text = |name: &str, expr: &Option<String>| -> Result<Option<String>, BadResponse> {
            let Some(expr) = expr else { return Ok(None) };
            let v = eval(expr, &ctx).map_err(|e| bad(format!("`{name}: {expr}` could not be evaluated: {e}")))?;
            Ok(if v.is_none() || v.is_undefined() { None } else { Some(v.to_string().trim().to_string()) }
                .filter(|s| !s.is_empty()))
        };
        if !success {
            let message = text("message", &self.message).ok().flatten().unwrap_or_else(|| http_failure(answer));
            return Ok(Reading { ok: false, call_id: None, message: Some(message), format, body });
        }
        let ok = match &self.ok {
            Some(expr) => {
                eval(expr, &ctx).map_err(|e| bad(format!("`ok: {expr}` could not be evaluated: {e}")))?.is_true()
            }
            None => true,
        };
        let (call_id, message) =
            if ok { (text("call_id", &self.call_id)?, None) } else { (None, text("message", &self.message)?) };
        Ok(Reading { ok, call_id, message, format, body })
    }
}

fn eval(expr: &str, ctx: &BTreeMap<String, Value>) -> Result<Value, String> {
    compiled(expr)?.eval(ctx).map_err(|e| crate::template::template_error(&e))
}

type Compiled = Arc<minijinja::Expression<'static, 'static>>;

/// Expressions come from profiles, so there are few; each is compiled once.
fn compiled(expr: &str) -> Result<Compiled, String> {
    static CACHE: OnceLock<RwLock<HashMap<String, Compiled>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(c) = cache.read().ok().and_then(|m| m.get(expr).cloned()) {
        return Ok(c);
    }
    let c =
        Arc::new(env().compile_expression_owned(expr.to_string()).map_err(|e| crate::template::template_error(&e))?);
    if let Ok(mut m) = cache.write() {
        m.insert(expr.to_string(), c.clone());
    }
    Ok(c)
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

    fn voispeed() -> Rules {
        Rules {
            format: Format::Xml,
            ok: Some("outcome == '0'".into()),
            call_id: Some("request_id".into()),
            message: Some("error".into()),
        }
    }

    #[test]
    fn the_expressions_cope_with_a_body_nested_up_to_the_bound() {
        on_a_small_stack(|| {
            for (format, deepest) in [(Format::Xml, nested_xml(64)), (Format::Json, nested_json(64))] {
                let rules = Rules {
                    format,
                    ok: Some("body is defined".into()),
                    call_id: Some("body".into()),
                    ..Default::default()
                };
                let r = rules.read(&answer(200, None, &deepest)).unwrap();
                assert!(r.ok && r.call_id.is_some(), "{format:?}");
            }
        });
    }

    #[test]
    fn voispeed_accepted_and_rejected() {
        let r = voispeed()
            .read(&answer(200, Some("text/html"), "<result><outcome>0</outcome><request_id>42</request_id></result>"))
            .unwrap();
        assert_eq!((r.ok, r.call_id.as_deref(), r.message.as_deref()), (true, Some("42"), None));
        let r = voispeed()
            .read(&answer(200, None, "<result><outcome>1</outcome><error>connection not found</error></result>"))
            .unwrap();
        assert_eq!((r.ok, r.call_id.as_deref(), r.message.as_deref()), (false, None, Some("connection not found")));
    }

    #[test]
    fn broken_xml_is_a_bad_response_when_xml_is_required() {
        let e = voispeed().read(&answer(200, None, "<result><outcome>0</outc")).unwrap_err();
        assert!(e.message.contains("not valid XML"), "{e}");
    }

    #[test]
    fn a_missing_key_is_a_bad_response_not_a_guess() {
        let e = voispeed().read(&answer(200, None, "<result><status>ok</status></result>")).unwrap_err();
        assert!(e.message.contains("`ok: outcome == '0'`"), "{e}");
    }

    #[test]
    fn reserved_names_win_over_body_keys() {
        let rules = Rules {
            ok: Some("http_status == 200 and body.http_status == 'x' and raw != ''".into()),
            ..Default::default()
        };
        assert!(rules.read(&answer(200, None, "{\"http_status\": \"x\"}")).unwrap().ok);
    }

    #[test]
    fn default_ok_is_a_2xx_status_and_failures_say_why() {
        let r = Rules::default().read(&answer(500, None, "oops")).unwrap();
        assert_eq!((r.ok, r.message.as_deref()), (false, Some("the PBX answered HTTP 500 Internal Server Error")));
        let r = voispeed().read(&answer(503, None, "<html>down</html>")).unwrap();
        assert!(!r.ok);
        assert!(Rules::default().read(&answer(204, None, "")).unwrap().ok);
    }

    #[test]
    fn a_non_2xx_answer_is_a_refusal_whatever_its_body() {
        let c2c = Rules {
            format: Format::Json,
            ok: Some("status == 'OK'".into()),
            call_id: Some("dial1_uid".into()),
            message: Some("reason".into()),
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
            let r = rules.read(&a).unwrap_or_else(|e| panic!("HTTP {status} {body:?} must be a refusal: {e}"));
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
        let rules = Rules {
            format: Format::Json,
            ok: Some("status == 'ok'".into()),
            call_id: Some("dial1_uid".into()),
            message: Some("reason".into()),
        };
        let r = rules.read(&answer(200, None, "{\"status\":\"ok\",\"dial1_uid\":\"1.2\"}")).unwrap();
        assert_eq!(r.call_id.as_deref(), Some("1.2"));
        let text = Rules {
            format: Format::Text,
            ok: Some("raw is startingwith('OK')".into()),
            message: Some("raw".into()),
            ..Default::default()
        };
        assert!(text.read(&answer(200, None, "OK 1")).unwrap().ok);
        assert_eq!(text.read(&answer(200, None, "FAIL busy")).unwrap().message.as_deref(), Some("FAIL busy"));
    }

    #[test]
    fn broken_expressions_are_found_at_load() {
        let rules = Rules { ok: Some("outcome ==".into()), ..Default::default() };
        assert_eq!(rules.check().len(), 1);
        assert!(voispeed().check().is_empty());
    }
}

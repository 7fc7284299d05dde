//! Reads a PBX's answer with a profile's rules. Pure: no I/O.
//!
//! The body is parsed by format (`auto` looks at the Content-Type, then at
//! the first character) into one JSON value: XML becomes an object (the root
//! element's children are keys, repeated ones a list, attributes `@name`,
//! text a trimmed string, mixed text `#text`), JSON stays JSON, text stays a
//! string. The `ok`, `call_id` and `message` expressions (minijinja) see the
//! body's top-level keys plus `body`, `raw` and `http_status`, which win over
//! body keys of the same name. On a 2xx answer, any expression that cannot
//! be evaluated makes the answer a bad response; nothing here panics or
//! guesses. Any other status is a refusal whatever its body (an empty
//! redirect, a web server's error page): the body is read as far as it can
//! be, for `message` and for the operator, and the HTTP status is the
//! message when the PBX's own words cannot be found.
//!
//! Answers are untrusted: one nested deeper than [`MAX_DEPTH`] levels is not
//! read (a bad response when its format is required, text when the format
//! was only guessed), so no answer can exhaust the stack of the code that
//! walks it, here or after.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// How to parse an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Auto,
    Xml,
    Json,
    Text,
}

/// A profile's rules for reading answers. Expressions are checked at load.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    pub format: Format,
    pub ok: Option<String>,
    pub call_id: Option<String>,
    pub message: Option<String>,
}

/// What the PBX sent back, as received.
#[derive(Debug, Clone)]
pub struct Answer {
    pub http_status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub body: String,
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

/// The answer could not be read with the profile's rules.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct BadResponse {
    pub message: String,
    /// The format tried and the body as far as it could be read (raw text if it could not).
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

/// Parses the body per `format`, resolving `auto`.
pub fn parse_body(format: Format, answer: &Answer) -> Result<(Format, Json), BadResponse> {
    let raw = answer.body.as_str();
    let fail = |format, message: String| BadResponse { message, format, body: Json::String(raw.to_string()) };
    let resolved = match format {
        Format::Auto => sniff(answer.content_type.as_deref(), raw),
        f => (f, true),
    };
    let (format, strict) = resolved;
    match format {
        Format::Json => match json_to_value(raw) {
            Ok(v) => Ok((Format::Json, v)),
            Err(_) if !strict => Ok((Format::Text, Json::String(raw.to_string()))),
            Err(e) => Err(fail(Format::Json, e)),
        },
        Format::Xml => match xml_to_json(raw) {
            Ok(v) => Ok((Format::Xml, v)),
            Err(_) if !strict => Ok((Format::Text, Json::String(raw.to_string()))),
            Err(e) => Err(fail(Format::Xml, e)),
        },
        Format::Text | Format::Auto => Ok((Format::Text, Json::String(raw.to_string()))),
    }
}

/// Picks a format for `auto`. The flag says whether the choice was declared
/// (Content-Type: a parse failure is a bad response) or guessed from the
/// first character (a parse failure falls back to text).
fn sniff(content_type: Option<&str>, raw: &str) -> (Format, bool) {
    let ct = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if ct == "application/json" || ct.ends_with("+json") {
        return (Format::Json, true);
    }
    if ct == "application/xml" || ct == "text/xml" || ct.ends_with("+xml") {
        return (Format::Xml, true);
    }
    let start = raw.trim_start();
    let lower: String = start.chars().take(15).collect::<String>().to_ascii_lowercase();
    if start.starts_with('<') && !lower.starts_with("<!doctype html") && !lower.starts_with("<html") {
        (Format::Xml, false)
    } else if start.starts_with('{') || start.starts_with('[') {
        (Format::Json, false)
    } else {
        (Format::Text, false)
    }
}

/// How deeply an answer may nest: XML elements inside elements, JSON arrays
/// and objects inside each other. Real PBX answers nest 2 levels (VOIspeed's
/// `<result><outcome>`) to about 8 (a SOAP envelope, a cloud API's JSON);
/// 64 is far above any of them and far below what could exhaust a stack in
/// the steps that walk the value (XML conversion, the expressions' view of
/// it, secret redaction, writing the result), all of which recurse.
pub const MAX_DEPTH: usize = 64;

fn too_deep() -> String {
    format!("the answer nests more than {MAX_DEPTH} levels deep, which no PBX answer does: not read")
}

/// JSON text → value, refusing more than [`MAX_DEPTH`] levels before parsing
/// (serde_json's own limit, 128, would be a less helpful "recursion limit").
fn json_to_value(raw: &str) -> Result<Json, String> {
    if json_depth_exceeds(raw, MAX_DEPTH) {
        return Err(too_deep());
    }
    serde_json::from_str(raw).map_err(|e| format!("the answer is not valid JSON: {e}"))
}

/// Whether brackets outside strings nest deeper than `max`: one pass, no recursion.
fn json_depth_exceeds(raw: &str, max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in raw.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// XML → JSON per the module rules. DTDs are refused (no entity expansion);
/// roxmltree parses without recursing, and the conversion stops at
/// [`MAX_DEPTH`], so no answer can overflow the stack.
pub fn xml_to_json(raw: &str) -> Result<Json, String> {
    let doc = roxmltree::Document::parse(raw).map_err(|e| format!("the answer is not valid XML: {e}"))?;
    element(doc.root_element(), 1).ok_or_else(too_deep)
}

/// One element at `depth` (the root is 1); `None` past [`MAX_DEPTH`].
fn element(node: roxmltree::Node<'_, '_>, depth: usize) -> Option<Json> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut map = serde_json::Map::new();
    for a in node.attributes() {
        map.insert(format!("@{}", a.name()), Json::String(a.value().to_string()));
    }
    let mut text = String::new();
    let mut has_children = false;
    for child in node.children() {
        if child.is_element() {
            has_children = true;
            let key = child.tag_name().name().to_string();
            let value = element(child, depth + 1)?;
            match map.get_mut(&key) {
                // An element's value is never a list, so a list here is one we made.
                Some(Json::Array(items)) => items.push(value),
                Some(existing) => {
                    let first = existing.take();
                    *existing = Json::Array(vec![first, value]);
                }
                None => {
                    map.insert(key, value);
                }
            }
        } else if let Some(t) = child.text() {
            text.push_str(t);
        }
    }
    let text = text.trim();
    if depth > 1 && map.is_empty() && !has_children {
        return Some(Json::String(text.to_string()));
    }
    if !text.is_empty() {
        map.insert("#text".into(), Json::String(text.to_string()));
    }
    Some(Json::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(status: u16, ct: Option<&str>, body: &str) -> Answer {
        Answer { http_status: status, content_type: ct.map(str::to_string), location: None, body: body.to_string() }
    }

    fn voispeed() -> Rules {
        Rules {
            format: Format::Xml,
            ok: Some("outcome == '0'".into()),
            call_id: Some("request_id".into()),
            message: Some("error".into()),
        }
    }

    #[test]
    fn xml_becomes_an_object() {
        let cases = [
            (
                "<result><outcome>0</outcome><request_id> 15652770917203 </request_id></result>",
                json!({"outcome": "0", "request_id": "15652770917203"}),
            ),
            ("<r a=\"1\"><x>1</x><x>2</x><x>3</x></r>", json!({"@a": "1", "x": ["1", "2", "3"]})),
            ("<r><leg id=\"7\">up</leg><empty/></r>", json!({"leg": {"@id": "7", "#text": "up"}, "empty": ""})),
            (
                "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<result><outcome>1</outcome><error>connection not found</error></result>",
                json!({"outcome": "1", "error": "connection not found"}),
            ),
        ];
        for (xml, want) in cases {
            assert_eq!(xml_to_json(xml).unwrap(), want, "{xml}");
        }
    }

    /// Answers `levels` deep: XML elements in elements, JSON arrays in arrays.
    fn nested_xml(levels: usize) -> String {
        format!("{}x{}", "<a>".repeat(levels), "</a>".repeat(levels))
    }
    fn nested_json(levels: usize) -> String {
        format!("{}{}", "[".repeat(levels), "]".repeat(levels))
    }

    /// Runs `f` on a thread with a small stack, so unbounded recursion fails
    /// here (by aborting the test binary) rather than only on bigger inputs.
    fn on_a_small_stack(f: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new().stack_size(256 * 1024).spawn(f).unwrap().join().unwrap();
    }

    #[test]
    fn answers_nested_past_the_bound_are_refused_without_recursing() {
        on_a_small_stack(|| {
            let xml = nested_xml(3_000);
            let json = nested_json(100_000);
            let cases = [
                (Format::Xml, None, &xml),
                (Format::Auto, Some("text/xml"), &xml),
                (Format::Json, None, &json),
                (Format::Auto, Some("application/json"), &json),
            ];
            for (format, ct, body) in cases {
                let e = parse_body(format, &answer(200, ct, body)).unwrap_err();
                assert!(e.message.contains("more than 64 levels"), "{format:?} {ct:?}: {e}");
                assert_eq!(e.body, Json::String(body.to_string()), "the raw answer is kept");
            }
            // Guessed from the first character: not read as XML or JSON, kept as text.
            for body in [&xml, &json] {
                assert_eq!(parse_body(Format::Auto, &answer(200, None, body)).unwrap().0, Format::Text);
            }
        });
    }

    #[test]
    fn nesting_up_to_the_bound_is_read_and_everything_after_it_copes() {
        on_a_small_stack(|| {
            let cases =
                [(Format::Xml, nested_xml(64), nested_xml(65)), (Format::Json, nested_json(64), nested_json(65))];
            for (format, deepest, too_deep) in cases {
                let (_, mut body) = parse_body(format, &answer(200, None, &deepest)).unwrap();
                // What a reading goes through next: the expressions, redaction, the result's JSON.
                let rules = Rules {
                    format,
                    ok: Some("body is defined".into()),
                    call_id: Some("body".into()),
                    ..Default::default()
                };
                assert!(rules.read(&answer(200, None, &deepest)).unwrap().ok, "{format:?}");
                crate::secrets::redact_json(&mut body);
                assert!(serde_json::to_string(&body).unwrap().len() > 64);
                assert!(parse_body(format, &answer(200, None, &too_deep)).is_err(), "{format:?}");
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
    fn auto_format_table() {
        let cases = [
            (Some("application/json"), "{\"a\":1}", Format::Json),
            (Some("text/xml; charset=utf-8"), "<a>1</a>", Format::Xml),
            (None, "<a>1</a>", Format::Xml),
            (None, "  [1]", Format::Json),
            (Some("text/html"), "<!DOCTYPE html><html></html>", Format::Text),
            (None, "<html><body>OK</body></html>", Format::Text),
            (None, "OK", Format::Text),
            (None, "{not json", Format::Text),
        ];
        for (ct, body, want) in cases {
            assert_eq!(parse_body(Format::Auto, &answer(200, ct, body)).unwrap().0, want, "{body}");
        }
        assert!(parse_body(Format::Auto, &answer(200, Some("application/json"), "{not json")).is_err());
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

//! What a PBX sent, turned into one JSON value. Pure: no I/O.
//!
//! This is the half of answer reading that knows formats and nothing of
//! profiles' expressions (those are [`super::rules`]): the body is parsed by
//! format (`auto` looks at the Content-Type, then at the first character)
//! into one JSON value. XML becomes an object (the root element's children
//! are keys, repeated ones a list, attributes `@name`, text a trimmed string,
//! mixed text `#text`), JSON stays JSON, text stays a string. A declared
//! format that does not parse is a [`BadResponse`]; a guessed one falls back
//! to text.
//!
//! Answers are untrusted: one nested deeper than [`MAX_DEPTH`] levels is not
//! read (a bad response when its format is required, text when the format
//! was only guessed), so no answer can exhaust the stack of the code that
//! walks it, here or after.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::template::json_depth_exceeds;

/// How to parse an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Auto,
    Xml,
    Json,
    Text,
}

/// What the PBX sent back, as received.
#[derive(Debug, Clone)]
pub struct Answer {
    pub http_status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    /// Every header, names lower-cased, in the order received (a repeated
    /// one, such as `set-cookie`, once per value).
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// An empty HTTP 200 answer, for building examples and tests.
impl Default for Answer {
    fn default() -> Self {
        Answer { http_status: 200, content_type: None, location: None, headers: Vec::new(), body: String::new() }
    }
}

/// The answer could not be read: not in its format, or not with the profile's rules.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct BadResponse {
    pub message: String,
    /// The format tried and the body as far as it could be read (raw text if it could not).
    pub format: Format,
    pub body: Json,
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
pub(crate) fn sniff(content_type: Option<&str>, raw: &str) -> (Format, bool) {
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
pub(super) mod testing {
    use super::Answer;

    pub(in crate::pbx) fn answer(status: u16, ct: Option<&str>, body: &str) -> Answer {
        Answer {
            http_status: status,
            content_type: ct.map(str::to_string),
            body: body.to_string(),
            ..Answer::default()
        }
    }

    /// Answers `levels` deep: XML elements in elements, JSON arrays in arrays.
    pub(in crate::pbx) fn nested_xml(levels: usize) -> String {
        format!("{}x{}", "<a>".repeat(levels), "</a>".repeat(levels))
    }
    pub(in crate::pbx) fn nested_json(levels: usize) -> String {
        format!("{}{}", "[".repeat(levels), "]".repeat(levels))
    }

    /// Runs `f` on a thread with a small stack, so unbounded recursion fails
    /// here (by aborting the test binary) rather than only on bigger inputs.
    pub(in crate::pbx) fn on_a_small_stack(f: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new().stack_size(256 * 1024).spawn(f).unwrap().join().unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use serde_json::json;

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
        assert_eq!(MAX_DEPTH, crate::template::FROM_JSON_DEPTH, "JSON inside an answer's string nests no deeper");
    }

    #[test]
    fn nesting_up_to_the_bound_is_read_and_written_back() {
        on_a_small_stack(|| {
            for (format, deepest, too_deep) in
                [(Format::Xml, nested_xml(64), nested_xml(65)), (Format::Json, nested_json(64), nested_json(65))]
            {
                let (_, mut body) = parse_body(format, &answer(200, None, &deepest)).unwrap();
                // What happens to a body after the rules: redaction, the result's JSON.
                crate::secrets::redact_json(&mut body);
                assert!(serde_json::to_string(&body).unwrap().len() > 64);
                assert!(parse_body(format, &answer(200, None, &too_deep)).is_err(), "{format:?}");
            }
        });
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
}

//! VOIspeed SERI, as its integration guide describes it: every service is a
//! `GET /PBX/seri_endpoint.php?service=…&token=T&…`, answered with
//! `<result><outcome>0</outcome><request_id>…</request_id></result>` (the
//! request is accepted and acted on later) or
//! `<result><outcome>1</outcome><error>reason</error></result>`, as XML served
//! as text/html (a PHP page that does not set its content type).
//!
//! [`SERVICES`] lists the services the shipped presets use, with the
//! parameters each needs, spelled as the guide's examples spell them. The
//! refusals use the guide's own words where it gives any: "connection not
//! found", here for an extension, entity or call id starting with 9, so tests
//! can play one. Elsewhere the words are the stand-in's: "invalid token",
//! "missing parameter NAME", "unknown service", "invalid action", "invalid
//! mode", "invalid entity type". The guide shows the answer of
//! `call_request`, `call_action`, `set_user_mode`, `call_request_ext` and
//! `get_current_calls`; the other extended services answer like
//! `call_request_ext`, its sibling. Nothing is kept between requests:
//! nothing rings, so every call id not starting with 9 is a call in progress.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{Received, SERI_TOKEN};

/// One SERI service: its name and the parameters it cannot do without.
struct Service {
    name: &'static str,
    required: &'static [&'static str],
}

/// The services the stand-in answers. Parameter names are the guide's
/// (from its examples); `call_divert_ext`'s are not in the guide and are
/// those the shipped preset sends (see `profiles/presets/voispeed-extended.yaml`).
const SERVICES: &[Service] = &[
    Service { name: "call_request", required: &["ext", "number"] },
    Service { name: "call_action", required: &["ext", "call_id", "action"] },
    Service { name: "set_user_mode", required: &["ext", "mode"] },
    Service {
        name: "call_request_ext",
        required: &["calling_id", "calling_type", "calling_number", "called_id", "called_type", "called_number"],
    },
    Service {
        name: "call_transfer_ext",
        required: &[
            "replace_com_id",
            "replace_type",
            "replace_id",
            "replace_local_id",
            "recipient_com_id",
            "recipient_type",
            "recipient_id",
            "recipient_call_id",
        ],
    },
    Service {
        name: "call_divert_ext",
        required: &["call_id", "replace_type", "replace_id", "recipient_type", "recipient_id", "recipient_number"],
    },
    Service { name: "call_recording_ext", required: &["call_id"] },
    Service { name: "call_terminate", required: &["call_id"] },
    Service { name: "get_current_calls", required: &[] },
];

/// Entity types (the guide's appendix, table 1): user, ring group, gateway,
/// IVR, terminal, company voicemail, meeting room, parked lines, department.
const ENTITY_TYPES: &[&str] = &["0", "1", "2", "3", "7", "8", "10", "11", "13"];

/// Parameters naming an extension, an entity or a call: one starting with 9
/// is one the PBX does not know.
const LOOKED_UP: &[&str] =
    &["ext", "call_id", "calling_id", "replace_com_id", "replace_id", "recipient_com_id", "recipient_call_id"];

/// Parameters holding an entity type.
const TYPES: &[&str] = &["calling_type", "called_type", "replace_type", "recipient_type"];

/// A PHP page that does not set its content type: XML served as text/html.
fn xml(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n{body}"),
    )
        .into_response()
}

fn fail(reason: &str) -> Response {
    xml(format!("<result>\n<outcome>1</outcome>\n<error>{reason}</error></result>"))
}

/// The answer, and for an accepted `call_request` the user events the PBX
/// would notify as the call goes on (query strings, in order).
pub(super) fn seri(got: &Received, mut id: impl FnMut() -> u64) -> (Response, Vec<String>) {
    match refusal(got) {
        Some(reason) => (fail(&reason), Vec::new()),
        None if got.param("service").as_deref() == Some("get_current_calls") => {
            (xml(CURRENT_CALLS.to_string()), Vec::new())
        }
        None => {
            let request_id = id();
            let answer =
                xml(format!("<result>\n<outcome>0</outcome>\n<request_id>{request_id}</request_id>\n</result>"));
            let events = match got.param("service").as_deref() {
                Some("call_request") => user_events(got, request_id, id()),
                _ => Vec::new(),
            };
            (answer, events)
        }
    }
}

/// The user events of a `call_request` carried out: outgoing_call (9),
/// call_answered (14), call_disconnect_out (16), each with the extension,
/// the number, the call's id, the request's id and the extid sent with the
/// dial; or, for a number starting with 8 (a call the PBX accepts but
/// cannot make), cmd_failed (1) with the request's id. As the guide's
/// event logger shows them (`event_type=2&event=9&event_name=outgoing_call&ext=35`),
/// with the parameters it says they carry.
fn user_events(got: &Received, request_id: u64, call_id: u64) -> Vec<String> {
    let (ext, number) = (got.param("ext").unwrap_or_default(), got.param("number").unwrap_or_default());
    let extid = got.param("extid");
    let event = |code: &str, name: &str, with_call: bool| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("event_type", "2").append_pair("event", code).append_pair("event_name", name);
        q.append_pair("ext", &ext);
        if with_call {
            q.append_pair("number", &number).append_pair("call_id", &call_id.to_string());
        }
        q.append_pair("request_id", &request_id.to_string());
        if let Some(x) = &extid {
            q.append_pair("extid", x);
        }
        q.finish()
    };
    if number.starts_with('8') {
        return vec![event("1", "cmd_failed", false)];
    }
    vec![
        event("9", "outgoing_call", true),
        event("14", "call_answered", true),
        event("16", "call_disconnect_out", true),
    ]
}

/// The caller the stand-in plays when `/_standin/ring` names none.
pub(super) const DEFAULT_CALLER: &str = "+390261616161";

/// `POST /_standin/ring?ext=E&from=N`: an incoming call to E from N, told
/// as the PBX's user event incoming_call (8) would tell it (the query
/// string to notify), or why it cannot be (as words for a 400).
pub(super) fn ring(got: &Received, call_id: u64) -> Result<String, String> {
    if got.method != "POST" {
        return Err("POST /_standin/ring?ext=E&from=NUMBER".into());
    }
    let ext = got.param("ext").filter(|e| !e.is_empty()).ok_or("ring needs ext=EXTENSION")?;
    let from = got.param("from").filter(|f| !f.is_empty()).unwrap_or_else(|| DEFAULT_CALLER.to_string());
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("event_type", "2").append_pair("event", "8").append_pair("event_name", "incoming_call");
    q.append_pair("ext", &ext).append_pair("number", &from).append_pair("call_id", &call_id.to_string());
    Ok(q.finish())
}

/// Why the PBX refuses this request, if it does.
fn refusal(got: &Received) -> Option<String> {
    if got.method != "GET" {
        return Some("service requests are HTTP GETs".into());
    }
    let service = got.param("service").unwrap_or_default();
    let Some(spec) = SERVICES.iter().find(|s| s.name == service) else {
        return Some("unknown service".into());
    };
    if got.param("token").as_deref() != Some(SERI_TOKEN) {
        return Some("invalid token".into());
    }
    let given = |k: &str| got.param(k).filter(|v| !v.is_empty());
    if let Some(missing) = spec.required.iter().find(|k| given(k).is_none()) {
        return Some(format!("missing parameter {missing}"));
    }
    if TYPES.iter().filter_map(|k| given(k)).any(|t| !ENTITY_TYPES.contains(&t.as_str())) {
        return Some("invalid entity type".into());
    }
    match (service.as_str(), given("action").as_deref(), given("mode").as_deref()) {
        ("call_action", Some("disconnect"), _) => {}
        // A divert needs where to; its note is optional.
        ("call_action", Some("divert"), _) if given("number").is_none() => {
            return Some("missing parameter number".into());
        }
        ("call_action", Some("divert"), _) => {}
        ("call_action", _, _) => return Some("invalid action".into()),
        // Normal, do not disturb, away, divert (which needs where to).
        ("set_user_mode", _, Some("4")) if given("number").is_none() => {
            return Some("missing parameter number".into());
        }
        ("set_user_mode", _, Some("1" | "2" | "3" | "4")) => {}
        ("set_user_mode", _, _) => return Some("invalid mode".into()),
        _ => {}
    }
    if LOOKED_UP.iter().filter_map(|k| given(k)).any(|v| v.starts_with('9')) {
        return Some("connection not found".into());
    }
    None
}

/// `get_current_calls`: one call in progress, with the fields the guide lists.
const CURRENT_CALLS: &str = "<result>
<outcome>0</outcome>
<call>
<id>3250</id>
<start_time>2026-11-23 14:05:09</start_time>
<calling_id>17</calling_id>
<calling_type>0</calling_type>
<calling_number>35</calling_number>
<calling_desc>Demo User</calling_desc>
<called_id>1</called_id>
<called_type>2</called_type>
<called_number>187</called_number>
<called_desc>187</called_desc>
<connected_id>1</connected_id>
<connected_type>2</connected_type>
<connected_desc>187</connected_desc>
<recording>0</recording>
<external_id></external_id>
<p2p>0</p2p>
<codec>8</codec>
</call>
</result>";

//! FreeSWITCH's mod_xml_rpc web server, the `/api/` flavour, as its source
//! (`mod_xml_rpc.c`, `mod_commands.c`) answers it: `GET /api/COMMAND?ARGS`
//! runs the API command with the query string, URL-decoded once, as its
//! argument string (arguments apart by spaces, `%20` on the wire). Every
//! command's answer is HTTP 200 `text/plain`, whatever it says: `+OK …` or
//! `-ERR …` (or `-USAGE: …`) — a refusal is a 200 too.
//!
//! - Auth: HTTP Basic with `xml_rpc.conf.xml`'s `auth-user`/`auth-pass`
//!   ([`USER`] `freeswitch`, [`PASSWORD`] `works`, FreeSWITCH's defaults);
//!   else `401` with a `WWW-Authenticate: Basic` challenge.
//! - `originate [{var=value,…}]DIALSTRING EXTEN [DIALPLAN] [CONTEXT]`:
//!   `+OK <uuid>` once the first leg answers (the real one blocks until
//!   then; the stand-in answers at once). Fewer than two arguments:
//!   `-USAGE: …`.
//! - `uuid_kill UUID` (`+OK` / `-ERR No Such Channel!`), `uuid_transfer UUID
//!   DEST [DIALPLAN] [CONTEXT]` (`+OK` / `-ERR No Such Channel!`),
//!   `uuid_send_dtmf UUID DIGITS` (nothing on success, as mod_commands
//!   writes; `-ERR Cannot locate session!`), `uuid_hold [off] UUID`
//!   (`+OK Success` / `-ERR Operation Failed`). Another command:
//!   `-ERR COMMAND Command not found!`.
//!
//! - Events: after an originate it answered `+OK`, the leg's JSON CDR as
//!   mod_json_cdr POSTs it at hangup (plain JSON: `encode` and
//!   `encode-values` false): `{"core-uuid", "channel_data", "variables":
//!   {uuid, direction, caller_id_number, destination_number, hangup_cause,
//!   duration, billsec…}}`, to the stand-in's notification URL.
//!
//! The stand-in's own choices, so tests can play FreeSWITCH's refusals: a
//! dial string whose user starts with 9 (`user/901`) is `-ERR
//! USER_NOT_REGISTERED`, one starting with 8 `-ERR NO_ANSWER`. The uuids it
//! hands out are remembered (in [`super::Logins`] under [`CHANNELS`]) and
//! are the only ones the uuid_ commands find; the originate's channel
//! variables are checked for the `{…}` form only.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use serde_json::json;

use super::{Push, Received, Shared, asterisk_ari::basic};

/// mod_xml_rpc's default credentials.
pub const USER: &str = "freeswitch";
pub const PASSWORD: &str = "works";

/// Where the stand-in keeps the uuids of the calls it originated.
pub const CHANNELS: &str = "freeswitch";

const ORIGINATE_USAGE: &str = "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n";

/// Whether `path` is one of mod_xml_rpc's `/api/COMMAND` paths (one segment after `/api/`).
pub(super) fn serves(path: &str) -> bool {
    path.strip_prefix("/api/").is_some_and(|c| !c.is_empty() && !c.contains('/'))
}

fn text(body: impl Into<String>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], body.into()).into_response()
}

pub(super) fn answer(shared: &Shared, got: &Received) -> Response {
    if !basic(got).is_some_and(|(u, p)| u == USER && p == PASSWORD) {
        let challenge = [(header::WWW_AUTHENTICATE, r#"Basic realm="freeswitch""#)];
        return (StatusCode::UNAUTHORIZED, challenge, "401 Unauthorized").into_response();
    }
    let command = got.path.trim_start_matches("/api/");
    let raw = got.query.as_deref().unwrap_or_default();
    let args = percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned();
    let argv: Vec<&str> = args.split(' ').filter(|a| !a.is_empty()).collect();
    let channels = shared.logins.of(CHANNELS);
    let known = |uuid: Option<&&str>| channels.accepts(uuid.copied());
    match command {
        "originate" => originate(shared, &argv),
        "uuid_kill" if argv.is_empty() => text("-USAGE: <uuid> [cause]\n"),
        "uuid_kill" if known(argv.first()) => text("+OK\n"),
        "uuid_kill" => text("-ERR No Such Channel!\n"),
        "uuid_transfer" if !(2..=5).contains(&argv.len()) => {
            text("-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n")
        }
        "uuid_transfer" if known(argv.first()) => text("+OK\n"),
        "uuid_transfer" => text("-ERR No Such Channel!\n"),
        "uuid_send_dtmf" if argv.len() < 2 => text("-USAGE: <uuid> <dtmf_data>\n"),
        "uuid_send_dtmf" if known(argv.first()) => text(""),
        "uuid_send_dtmf" => text("-ERR Cannot locate session!\n"),
        "uuid_hold" => {
            let uuid =
                if argv.first().is_some_and(|a| matches!(*a, "off" | "toggle")) { argv.get(1) } else { argv.first() };
            if known(uuid) { text("+OK Success\n") } else { text("-ERR Operation Failed\n") }
        }
        other => text(format!("-ERR {other} Command not found!\n")),
    }
}

fn originate(shared: &Shared, argv: &[&str]) -> Response {
    let [url, exten, ..] = argv else { return text(ORIGINATE_USAGE) };
    let dial_string = match url.strip_prefix('{') {
        Some(rest) => match rest.split_once('}') {
            Some((vars, dial)) if vars.split(',').all(|v| v.contains('=')) => dial,
            _ => return text("-ERR INVALID_URL\n"),
        },
        None => url,
    };
    let user = dial_string.strip_prefix("user/").unwrap_or(dial_string);
    if user.starts_with('9') {
        return text("-ERR USER_NOT_REGISTERED\n");
    }
    if user.starts_with('8') {
        return text("-ERR NO_ANSWER\n");
    }
    let n = shared.id();
    let uuid =
        format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", (n >> 16) & 0xffff_ffff, n & 0xffff, n % 0xfff, n % 0xffd, n);
    shared.logins.of(CHANNELS).accept(&uuid);
    let cdr = json!({
        "core-uuid": "5b1f2c3d-0000-4000-8000-00000000c0de",
        "channel_data": {"state": "CS_REPORTING", "direction": "outbound", "state_number": "11"},
        "variables": {
            "uuid": uuid, "direction": "outbound", "dialed_user": user, "caller_id_number": "0000000000",
            "destination_number": exten, "context": argv.get(3).copied().unwrap_or("default"),
            "hangup_cause": "NORMAL_CLEARING", "duration": "6", "billsec": "4"
        }
    });
    shared.push(vec![Push::Post {
        to: None,
        content_type: "application/json",
        body: cdr.to_string(),
        headers: Vec::new(),
    }]);
    text(format!("+OK {uuid}\n"))
}

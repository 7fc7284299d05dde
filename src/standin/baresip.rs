//! baresip's `httpd` module, as its source (`modules/httpd/httpd.c`, the
//! menu module's command tables) has it: `GET /?COMMAND` answers the
//! command's output in an HTML page (`text/html`), `GET /raw/?COMMAND` the
//! same output as `text/plain`; both with `Access-Control-Allow-Origin: *`;
//! every other path is 404. There is no authentication.
//!
//! - The query (after the `?`) is unescaped by libre's SIP *header*
//!   unescaper: `%XX` is decoded, `+` stays `+`, and a raw character outside
//!   RFC 3261's header set (`@`, `,`, space, `;`, `=`, `&`, …) is refused, so
//!   the request is answered 404 — which is why `@` must be sent as `%40`.
//! - `/CMD ARGS` is a long command, anything else a one-key command (`d`
//!   dial, `b` hang up). Long commands served: `dial URI` (`call uri: URI`,
//!   `call id: ID`), `hangup`, `hold`, `resume`, `sndcode DIGITS`,
//!   `transfer URI`; anything else is `command not found (NAME)`.
//! - Current baresip ends each output with `err: %m` (`err: Success` when
//!   the command did what it was asked); baresip 1.0.0 (Debian 12) prints no
//!   `err:` line, and answers nothing at all to a failing command.
//!
//! The stand-in's own choices: a dial URI whose user part starts with 9 is
//! refused (`ua_connect failed: Connection refused`), and so is a dial with
//! no URI (`can't find a URI to dial to`); `hangup`, `hold`, `resume`,
//! `sndcode` and `transfer` answer `err: Success` with or without a call,
//! since baresip's menu acts on its current call and says nothing when
//! there is none.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Received;

/// Whether `path` is one of the httpd module's.
pub(super) fn serves(path: &str) -> bool {
    path == "/" || path == "/raw/"
}

pub(super) fn httpd(got: &Received, id: impl FnOnce() -> u64) -> Response {
    if got.method != "GET" && got.method != "HEAD" {
        return not_found();
    }
    let Some(command) = header_unescape(got.query.as_deref().unwrap_or("")) else {
        return not_found();
    };
    let command = if command.is_empty() { "h".to_string() } else { command };
    let output = run(&command, id);
    if got.path == "/raw/" {
        ([(header::CONTENT_TYPE, "text/plain;charset=UTF-8"), (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], output)
            .into_response()
    } else {
        let page = format!(
            "<html>\n<head>\n<title>Baresip v3.0.0</title>\n</head>\n<body>\n<pre>\n{output}</pre>\n</body>\n</html>\n"
        );
        ([(header::CONTENT_TYPE, "text/html;charset=UTF-8"), (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], page)
            .into_response()
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/html")], "<h2>404 Not Found</h2>").into_response()
}

/// libre's `uri_header_unescape`: `%XX` decoded; a raw character outside
/// the SIP header set is an error (`None`).
fn header_unescape(query: &str) -> Option<String> {
    let bytes = query.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = query.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b"-_.!~*'()[]/?:+$".contains(&b)) {
            return None;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The command's output, as the menu module prints it (current baresip).
fn run(command: &str, id: impl FnOnce() -> u64) -> String {
    let (name, arg) = match command.strip_prefix('/') {
        Some(long) => long.split_once(' ').map_or((long, ""), |(n, a)| (n, a.trim_start())),
        // One-key commands: the key, then its parameter.
        None => {
            let (key, arg) = command.split_at(command.chars().next().map_or(0, char::len_utf8));
            let name = match key {
                "d" => "dial",
                "b" => "hangup",
                "h" => "help",
                other => other,
            };
            (name, arg)
        }
    };
    match name {
        "dial" if arg.is_empty() => "can't find a URI to dial to\nerr: Invalid argument\n".into(),
        "dial" => {
            let user = arg.trim_start_matches("sip:").trim_start_matches("sips:");
            if user.starts_with('9') {
                format!("call uri: {arg}\nua_connect failed: Connection refused\nerr: Connection refused\n")
            } else {
                format!("call uri: {arg}\ncall id: {:016x}\nerr: Success\n", id())
            }
        }
        "hangup" | "hold" | "resume" | "sndcode" | "transfer" => "err: Success\n".into(),
        "help" => "dial, hangup, hold, resume, sndcode, transfer\nerr: Success\n".into(),
        other => format!("command not found ({other})\nerr: Operation not supported\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_unescaper_decodes_escapes_and_refuses_a_raw_at_sign() {
        assert_eq!(header_unescape("/dial%20sip%3A1%40h").as_deref(), Some("/dial sip:1@h"));
        assert_eq!(header_unescape("d+44").as_deref(), Some("d+44"));
        assert_eq!(header_unescape("/dial sip:1@h"), None);
        assert_eq!(header_unescape("/dial%20sip:1@h"), None);
        assert_eq!(header_unescape("%4"), None);
        assert_eq!(header_unescape("%zz"), None);
    }

    #[test]
    fn commands_print_what_the_menu_prints() {
        assert_eq!(run("/dial sip:1@h", || 1), "call uri: sip:1@h\ncall id: 0000000000000001\nerr: Success\n");
        assert!(run("dsip:9@h", || 1).contains("ua_connect failed"));
        assert!(run("/dial", || 1).starts_with("can't find a URI"));
        assert_eq!(run("b", || 1), "err: Success\n");
        assert!(run("/nope", || 1).starts_with("command not found (nope)"));
    }
}

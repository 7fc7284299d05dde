//! Asterisk AMI over HTTP (AJAM), the `/rawman` flavour, as Asterisk's
//! `main/manager.c` answers it: every answer is `200 text/plain`, lines
//! `Key: value` ending in CRLF and a blank line.
//!
//! - `action=login&username=U&secret=S`: `Response: Success` /
//!   `Message: Authentication accepted` and
//!   `Set-Cookie: mansession_id="<hex>"; Version=1; Max-Age=60`; wrong
//!   credentials: `Response: Error` / `Message: Authentication failed`.
//! - Any other action without a live `mansession_id` cookie:
//!   `Response: Error` / `Message: Permission denied` (what Asterisk says for
//!   a session that timed out), still a 200.
//! - `action=originate` wants `channel` and `exten`/`context`/`priority`
//!   (or `application`); answers `Response: Success` /
//!   `Message: Originate successfully queued`, echoing `ActionID`. A
//!   channel whose resource starts with 9 (`PJSIP/901`) answers
//!   `Message: Originate failed`, so tests can play a refusal.
//! - `action=hangup&channel=C`: `Message: Channel Hungup` for a channel an
//!   originate named (by `channelid`), else `Message: No such channel`.
//!
//! Tests can end every session at once ([`Sessions::kill_all`]), as an
//! Asterisk restart or `httptimeout` would.

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{KEEP, Received};

/// The manager user the stand-in knows (`manager.conf`), and its secret.
pub const USER: &str = "webdial";
pub const PASSWORD: &str = "demo-ami-secret";

/// The stand-in's manager sessions (the shared kind of issued token) and
/// the channels it originated.
#[derive(Debug, Default)]
pub struct Sessions {
    sessions: super::tokens::Tokens,
    channels: Mutex<VecDeque<String>>,
}

impl Sessions {
    /// Every session ends now (the next action is `Permission denied`).
    pub fn kill_all(&self) {
        self.sessions.expire_all();
    }

    /// Every session id issued, oldest first.
    pub fn issued(&self) -> Vec<String> {
        self.sessions.issued()
    }

    fn open(&self) -> String {
        self.sessions.issue()
    }

    fn live(&self, cookie: Option<&str>) -> bool {
        self.sessions.accepts(cookie.and_then(session_id).as_deref())
    }

    fn originated(&self, channel: &str) {
        if let Ok(mut channels) = self.channels.lock() {
            if channels.len() >= KEEP {
                channels.pop_front();
            }
            channels.push_back(channel.to_string());
        }
    }

    fn hang_up(&self, channel: &str) -> bool {
        let Ok(mut channels) = self.channels.lock() else { return false };
        let Some(at) = channels.iter().position(|c| c == channel) else { return false };
        channels.remove(at);
        true
    }
}

/// `mansession_id` out of a Cookie header, quotes removed (Asterisk sets it
/// quoted).
fn session_id(cookie: &str) -> Option<String> {
    cookie.split(';').find_map(|c| {
        let (name, value) = c.trim().split_once('=')?;
        (name == "mansession_id").then(|| value.trim_matches('"').to_string())
    })
}

/// `Key: value` lines, CRLF each, and the blank line that ends a message.
fn lines(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

pub(super) fn rawman(sessions: &Sessions, got: &Received) -> Response {
    let p = |k: &str| {
        got.params().into_iter().find(|(name, _)| name.eq_ignore_ascii_case(k)).map(|(_, v)| v).unwrap_or_default()
    };
    let action = p("action").to_ascii_lowercase();
    let action_id = p("actionid");
    let answer = |response: &str, message: &str| {
        let mut pairs = vec![("Response", response)];
        if !action_id.is_empty() {
            pairs.push(("ActionID", action_id.as_str()));
        }
        pairs.push(("Message", message));
        text(lines(&pairs))
    };
    if action == "login" {
        if p("username") != USER || p("secret") != PASSWORD {
            return answer("Error", "Authentication failed");
        }
        let id = sessions.open();
        let cookie = format!("mansession_id=\"{id}\"; Version=1; Max-Age=60");
        return ([(header::SET_COOKIE, cookie)], answer("Success", "Authentication accepted")).into_response();
    }
    if !sessions.live(got.cookie.as_deref()) {
        return answer("Error", "Permission denied");
    }
    match action.as_str() {
        "originate" => {
            let channel = p("channel");
            if channel.is_empty() {
                return answer("Error", "Channel not specified");
            }
            let Some((_, resource)) = channel.split_once('/') else { return answer("Error", "Invalid channel") };
            if p("application").is_empty() && (p("exten").is_empty() || p("context").is_empty()) {
                return answer("Error", "Exten not specified");
            }
            if resource.starts_with('9') {
                return answer("Error", "Originate failed");
            }
            let id = p("channelid");
            if !id.is_empty() {
                sessions.originated(&id);
            }
            answer("Success", "Originate successfully queued")
        }
        "hangup" => {
            let channel = p("channel");
            if channel.is_empty() {
                return answer("Error", "No channel specified");
            }
            if sessions.hang_up(&channel) {
                answer("Success", "Channel Hungup")
            } else {
                answer("Error", "No such channel")
            }
        }
        "logoff" => answer("Goodbye", "Thanks for all the fish."),
        "ping" => answer("Success", "Pong"),
        _ => answer("Error", "Invalid/unknown command"),
    }
}

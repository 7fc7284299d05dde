//! Grandstream UCM6xxx HTTPS API ("new" API), as Grandstream's HTTPS API
//! page and third-party clients use it: every request is `POST /api` with
//! JSON `{"request": {"action": …, …}}`, every answer JSON
//! `{"status": N, "response": {…}}`, `status` 0 meaning done.
//!
//! - `challenge` `{user, version}`: `response.challenge`, a new one each time.
//! - `login` `{user, token}`, `token` = md5(challenge + password) for the
//!   user's last challenge (used once): `response.cookie`; anything else
//!   status [`LOGIN_FAILED`].
//! - Every other action needs `"cookie"`: a cookie login issued and not
//!   expired, else status [`COOKIE_EXPIRED`].
//! - `dialOutbound` `{caller, outbound}` (and `dialExtension`
//!   `{caller, callee}`): status 0, no call id; a `caller` starting with 9,
//!   or a missing parameter, is status [`INVALID_PARAMETERS`].
//! - `Hangup` `{channel}`: status 0, or [`INVALID_PARAMETERS`] without one.
//!
//! −1 for invalid parameters, with `response.error_msg`
//! "Invalid parameters!", is what the UCM answers; −37 for a failed login and −6
//! for an expired cookie are what third-party clients report, not confirmed
//! in Grandstream's pages. Tests can expire every cookie at once
//! ([`UcmCookies::expire_all`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use md5::Digest as _;
use serde_json::{Value, json};

use super::{KEEP, Received};

/// The API user the stand-in knows, and its password.
pub const USER: &str = "cdrapi";
pub const PASSWORD: &str = "demo-ucm-pass";

pub const INVALID_PARAMETERS: i64 = -1;
pub const COOKIE_EXPIRED: i64 = -6;
pub const LOGIN_FAILED: i64 = -37;

/// The stand-in's challenges and cookies.
#[derive(Debug, Default)]
pub struct UcmCookies {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    challenges: HashMap<String, String>,
    live: HashSet<String>,
    issued: VecDeque<String>,
}

impl UcmCookies {
    /// Every cookie issued so far is expired from now on.
    pub fn expire_all(&self) {
        if let Ok(mut c) = self.inner.lock() {
            c.live.clear();
        }
    }

    /// Every cookie issued, oldest first.
    pub fn issued(&self) -> Vec<String> {
        self.inner.lock().map(|c| c.issued.iter().cloned().collect()).unwrap_or_default()
    }

    fn challenge(&self, user: &str) -> String {
        let challenge = format!("{:016}", ulid::Ulid::generate().0 % 10_000_000_000_000_000);
        if let Ok(mut c) = self.inner.lock() {
            if c.challenges.len() >= KEEP {
                c.challenges.clear();
            }
            c.challenges.insert(user.to_string(), challenge.clone());
        }
        challenge
    }

    fn login(&self, user: &str, token: &str) -> Option<String> {
        let mut c = self.inner.lock().ok()?;
        let challenge = c.challenges.remove(user)?;
        if user != USER || token != hex(&md5::Md5::digest(format!("{challenge}{PASSWORD}").as_bytes())) {
            return None;
        }
        let cookie = format!("sid{:x}", ulid::Ulid::generate().0 as u64);
        if c.live.len() >= KEEP {
            c.live.clear();
        }
        if c.issued.len() >= KEEP {
            c.issued.pop_front();
        }
        c.live.insert(cookie.clone());
        c.issued.push_back(cookie.clone());
        Some(cookie)
    }

    fn live(&self, cookie: &str) -> bool {
        self.inner.lock().is_ok_and(|c| c.live.contains(cookie))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn status(status: i64, response: Value) -> Response {
    let response = if status == INVALID_PARAMETERS { json!({"error_msg": "Invalid parameters!"}) } else { response };
    axum::Json(json!({"response": response, "status": status})).into_response()
}

pub(super) fn api(cookies: &UcmCookies, got: &Received) -> Response {
    if got.method != "POST" {
        return (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
    }
    let body: Value = serde_json::from_str(&got.body).unwrap_or(json!({}));
    let request = body.get("request").cloned().unwrap_or(json!({}));
    let p = |k: &str| request.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    match p("action").as_str() {
        "challenge" if p("user").is_empty() => status(INVALID_PARAMETERS, json!({})),
        "challenge" => status(0, json!({"challenge": cookies.challenge(&p("user"))})),
        "login" => match cookies.login(&p("user"), &p("token")) {
            Some(cookie) => status(0, json!({"cookie": cookie})),
            None => status(LOGIN_FAILED, json!({})),
        },
        _ if !cookies.live(&p("cookie")) => status(COOKIE_EXPIRED, json!({})),
        "dialOutbound" if p("caller").is_empty() || p("outbound").is_empty() => status(INVALID_PARAMETERS, json!({})),
        "dialExtension" if p("caller").is_empty() || p("callee").is_empty() => status(INVALID_PARAMETERS, json!({})),
        "dialOutbound" | "dialExtension" if p("caller").starts_with('9') => status(INVALID_PARAMETERS, json!({})),
        "dialOutbound" | "dialExtension" => status(0, json!({})),
        "Hangup" if p("channel").is_empty() => status(INVALID_PARAMETERS, json!({})),
        "Hangup" => status(0, json!({})),
        _ => status(INVALID_PARAMETERS, json!({})),
    }
}

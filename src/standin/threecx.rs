//! 3CX v20 Call Control API, as 3CX's call-control examples use it:
//! `POST /connect/token` (form `client_id`, `client_secret`,
//! `grant_type=client_credentials`) issues a bearer token with
//! `expires_in`; every `/callcontrol/…` request needs a token it issued
//! and has not expired, else `401`. `POST /callcontrol/{dn}/makecall`
//! with JSON `{"destination": …}` answers
//! `{finalstatus, reason, reasontext, result}`, `result` being the new
//! participant (its `id` is what `drop`/`divert`/`transferto` take); a
//! `dn` starting with 9 fails (`finalstatus` `Failed`), so tests can play a
//! refusal. `POST /callcontrol/{dn}/participants/{id}/{drop|answer|divert|routeto|transferto}`
//! acts on a participant (`divert`, `routeto` and `transferto` need a
//! `destination`). A token is valid for an hour; tests can expire every
//! token at once ([`Tokens::expire_all`]) and change the `expires_in` that
//! new ones announce ([`Tokens::announce`]), so a gateway's session can be
//! made short without waiting on a clock.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{KEEP, Received};

/// The API client the stand-in knows: its DN, and its API key.
pub const CLIENT_ID: &str = "900";
pub const CLIENT_SECRET: &str = "demo-3cx-secret";

/// What the stand-in's 3CX knows of its tokens.
#[derive(Debug)]
pub struct Tokens {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    valid: HashMap<String, Instant>,
    /// Every token issued, oldest first (at most [`KEEP`]), for tests that
    /// check none reached a log line or an answer.
    issued: VecDeque<String>,
    /// What new tokens announce as `expires_in`.
    announced: Duration,
}

/// How long a token is accepted, unless expired by [`Tokens::expire_all`].
const VALID_FOR: Duration = Duration::from_secs(3600);

impl Default for Tokens {
    fn default() -> Self {
        Tokens { inner: Mutex::new(Inner { valid: HashMap::new(), issued: VecDeque::new(), announced: VALID_FOR }) }
    }
}

impl Tokens {
    /// Every token issued so far is expired from now on.
    pub fn expire_all(&self) {
        if let Ok(mut t) = self.inner.lock() {
            t.valid.clear();
        }
    }

    /// The `expires_in` that tokens issued from now on announce (they are
    /// accepted for an hour all the same).
    pub fn announce(&self, expires_in: Duration) {
        if let Ok(mut t) = self.inner.lock() {
            t.announced = expires_in;
        }
    }

    /// Every token issued, oldest first.
    pub fn issued(&self) -> Vec<String> {
        self.inner.lock().map(|t| t.issued.iter().cloned().collect()).unwrap_or_default()
    }

    fn issue(&self) -> (String, u64) {
        let token = format!("3cx.{}.{}", ulid::Ulid::generate(), ulid::Ulid::generate()).to_ascii_lowercase();
        let Ok(mut t) = self.inner.lock() else { return (token, 0) };
        let now = Instant::now();
        if t.valid.len() >= KEEP {
            t.valid.retain(|_, until| *until > now);
        }
        if t.issued.len() >= KEEP {
            t.issued.pop_front();
        }
        t.valid.insert(token.clone(), now + VALID_FOR);
        t.issued.push_back(token.clone());
        (token, t.announced.as_secs())
    }

    fn accepts(&self, authorization: Option<&str>) -> bool {
        let Some(token) = authorization.and_then(|a| a.strip_prefix("Bearer ")) else { return false };
        self.inner.lock().is_ok_and(|t| t.valid.get(token).is_some_and(|until| *until > Instant::now()))
    }
}

pub(super) fn token(tokens: &Tokens, got: &Received) -> Response {
    if got.method != "POST" {
        return (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
    }
    let p = |k: &str| got.param(k).unwrap_or_default();
    if p("grant_type") != "client_credentials" {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "unsupported_grant_type"}))).into_response();
    }
    if p("client_id") != CLIENT_ID || p("client_secret") != CLIENT_SECRET {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_client"}))).into_response();
    }
    let (access_token, expires_in) = tokens.issue();
    axum::Json(
        json!({"token_type": "Bearer", "expires_in": expires_in, "access_token": access_token, "refresh_token": null}),
    )
    .into_response()
}

pub(super) fn callcontrol(tokens: &Tokens, got: &Received, mut id: impl FnMut() -> u64) -> Response {
    if !tokens.accepts(got.authorization.as_deref()) {
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")], "")
            .into_response();
    }
    if got.method != "POST" {
        return (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
    }
    let parts: Vec<&str> = got.path.trim_start_matches("/callcontrol/").split('/').collect();
    let body: serde_json::Value = serde_json::from_str(&got.body).unwrap_or(json!({}));
    let destination = body.get("destination").and_then(|d| d.as_str()).unwrap_or_default().to_string();
    let answer = |status: &str, reasontext: &str, result: serde_json::Value| {
        axum::Json(json!({"finalstatus": status, "reason": if status == "Success" { "None" } else { "Rejected" }, "reasontext": reasontext, "result": result}))
            .into_response()
    };
    let participant = |id: u64, dn: &str, status: &str, party: &str| json!({"id": id, "status": status, "dn": dn, "party_dn": party, "party_caller_id": party, "device_id": format!("sip:{dn}@127.0.0.1"), "callid": id + 1000, "legid": 1});
    match parts.as_slice() {
        [dn, "makecall"] if destination.is_empty() => answer("Failed", "destination is required", json!(null)),
        [dn, "makecall"] if dn.starts_with('9') => answer("Failed", "no device registered for this DN", json!(null)),
        [dn, "makecall"] => answer("Success", "", participant(id(), dn, "Dialing", &destination)),
        [dn, "participants", pid, verb] => {
            let Ok(pid) = pid.parse::<u64>() else {
                return (StatusCode::NOT_FOUND, "no such participant").into_response();
            };
            match *verb {
                "drop" | "answer" => answer("Success", "", participant(pid, dn, "Dropped", "")),
                "divert" | "routeto" | "transferto" if destination.is_empty() => {
                    answer("Failed", "destination is required", json!(null))
                }
                "divert" | "routeto" | "transferto" => {
                    answer("Success", "", participant(pid, dn, "Connected", &destination))
                }
                _ => (StatusCode::NOT_FOUND, "not found").into_response(),
            }
        }
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

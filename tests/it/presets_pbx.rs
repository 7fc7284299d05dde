//! The presets of the PBX group (Asterisk ARI, FreeSWITCH, FreePBX, Wazo,
//! Kazoo), each against its stand-in: the exact requests the PBX received,
//! accepted with the call id, each documented refusal `rejected` in the
//! system's own words, a hanging PBX a `timeout`, logins and their expiry
//! where the system has them, events in where it pushes them, and a dry
//! run that sends nothing. One file per system under `presets_pbx/`.

use serde_json::{Value, json};
use webdial::standin::Received;

use crate::helpers::{App, read, spawn};

mod ari;
mod freepbx;
mod freeswitch;
mod kazoo;
mod wazo;

/// A dial for branch `x`.
fn dial(ext: &str, number: &str) -> Value {
    json!({"branch": "x", "extension": ext, "number": number})
}

/// `POST /v1/actions/ACTION` with `body`.
async fn action(app: &App, action: &str, body: Value) -> (u16, Value) {
    read(app.client.post(format!("{}/v1/actions/{action}", app.url)).json(&body).send().await.unwrap()).await
}

/// Decoded query parameters, in order.
fn query(r: &Received) -> Vec<(String, String)> {
    form_urlencoded::parse(r.query.as_deref().unwrap_or("").as_bytes()).into_owned().collect()
}

fn param(r: &Received, name: &str) -> Option<String> {
    query(r).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// `Basic base64(user:password)`.
fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// `(HTTP code, status, message)` of a gateway answer, for one-line asserts.
fn outcome(code: u16, body: &Value) -> (u16, String, String) {
    let text = |k: &str| body[k].as_str().unwrap_or_default().to_string();
    (code, text("status"), text("message"))
}

/// A dry run of `profile` sends nothing to the PBX (not even a login).
async fn dry_run_sends_nothing(profile: &str) -> Value {
    let app = spawn(&[("x", profile)]).await;
    let (code, body) =
        app.post(json!({"branch": "x", "extension": "201", "number": "+442079460000", "dry_run": true})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("dry_run")), "{body}");
    assert!(app.received().is_empty(), "a dry run sends nothing: {:#?}", app.received());
    body
}

/// `profile` with a PBX that never answers: a dial is a `timeout`, sent once.
async fn hanging_pbx_is_a_timeout(profile: &str) {
    let app = spawn(&[("x", profile)]).await;
    app.pbx.set_behaviour(webdial::standin::Behaviour::Hang);
    let started = std::time::Instant::now();
    let (code, body) = app.post(dial("201", "02079460000")).await;
    assert_eq!((code, body["status"].as_str()), (504, Some("timeout")), "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "the timeout bounds the wait");
    assert_eq!(app.received().len(), 1, "sent once, never retried: {:#?}", app.received());
}

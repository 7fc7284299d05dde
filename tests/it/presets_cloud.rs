//! The shipped presets for cloud voice APIs (Twilio, Telnyx, Plivo,
//! RingCentral RingOut, sipgate io, Vonage), each against its stand-in:
//! the exact request the API received (method, path, body, auth), accepted
//! with the API's call id, each documented refusal `rejected` with the
//! API's own words, a hanging API a `timeout`, login and token expiry where
//! the API wants a login, the events the API pushes (signed as it signs
//! them) read as normalized events, the control verbs, and a dry run that
//! sends nothing.

use std::time::Duration;

use serde_json::{Value, json};
use webdial::standin::Received;

use crate::helpers::{App, action, basic, dial, pairs, read, spawn_with_env};

mod plivo;
mod ringcentral;
mod sipgate;
mod telnyx;
mod twilio;
mod vonage;

/// How long a test waits for something that should come at once.
const WAIT: Duration = Duration::from_secs(5);

/// An action on an earlier dial, by the gateway's id of it.
async fn on_call(app: &App, id: &str, action: &str) -> (u16, Value) {
    let url = format!("{}/v1/calls/{id}/{action}", app.url);
    read(app.client.post(url).json(&json!({})).send().await.unwrap()).await
}

/// Form parameters of a request's body, decoded, in order.
fn form(r: &Received) -> Vec<(String, String)> {
    form_urlencoded::parse(r.body.as_bytes()).into_owned().collect()
}

fn accepted(code: u16, body: &Value) {
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
}

fn rejected(code: u16, body: &Value, http_status: u16, message: &str) {
    assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{body}");
    assert_eq!(body["pbx"]["http_status"], http_status, "{body}");
    assert_eq!(body["message"], message, "{body}");
}

/// A gateway whose branch `x` is `profile` with `GATEWAY` replaced by the
/// gateway's own URL (which a cloud API calls back): started with a
/// placeholder, then the branch rewritten and reloaded.
async fn spawn_called_back(profile: &str, env: &[(&str, &str)]) -> App {
    let app = spawn_with_env(&[("x", &profile.replace("GATEWAY", "http://127.0.0.1:9"))], env).await;
    let text = profile.replace("GATEWAY", &app.url).replace("PBXHOST", &app.pbx.addr.to_string());
    std::fs::write(app.dir().join("profiles/x.yaml"), text).unwrap();
    let report = app.gw.reload(webdial::call::Trigger::Api).await;
    assert!(report.ok && report.changed.iter().any(|b| b == "x"), "{report:?}");
    app
}

/// A hanging API: the dial is a `timeout` after the branch's 300 ms.
async fn hanging_is_a_timeout(profile: &str, env: &[(&str, &str)], ext: &str) {
    let app = spawn_with_env(&[("x", &format!("{profile}timeout: 300ms\n"))], env).await;
    app.pbx.set_behaviour(webdial::standin::Behaviour::Hang);
    let started = std::time::Instant::now();
    let (code, body) = app.post(dial(ext, "+442079460000")).await;
    assert_eq!((code, body["status"].as_str()), (504, Some("timeout")), "{body}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

/// A dry run: the request shown, nothing sent (not even a login).
async fn dry_run_sends_nothing(profile: &str, env: &[(&str, &str)], ext: &str) -> Value {
    let app = spawn_with_env(&[("x", profile)], env).await;
    let (code, body) =
        app.post(json!({"branch": "x", "extension": ext, "number": "+442079460000", "dry_run": true})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("dry_run")), "{body}");
    assert!(app.received().is_empty(), "a dry run sends nothing: {:#?}", app.received());
    body
}

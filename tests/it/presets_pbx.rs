//! The presets of the PBX group (Asterisk ARI, FreeSWITCH, FreePBX, Wazo,
//! Kazoo), each against its stand-in: the exact requests the PBX received,
//! accepted with the call id, each documented refusal `rejected` in the
//! system's own words, a hanging PBX a `timeout`, logins and their expiry
//! where the system has them, events in where it pushes them, and a dry
//! run that sends nothing. One file per system under `presets_pbx/`.

use serde_json::{Value, json};

use crate::helpers::{action, basic, dial, pairs, param, query, spawn};

mod ari;
mod freepbx;
mod freeswitch;
mod kazoo;
mod wazo;

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

//! `presets/fanvil.yaml` against the stand-in playing extension 201's
//! Fanvil phone.

use std::time::Duration;

use serde_json::json;
use webdial::standin::{Behaviour, FANVIL_PASSWORD, FANVIL_USER};

use super::{action, basic, dial, line, phones, refuses_extensions_outside_the_map};
use crate::helpers::spawn;

fn fanvil(more: &str) -> String {
    format!(
        "extends: presets/fanvil.yaml\nvars: {{user: {FANVIL_USER}, password: {FANVIL_PASSWORD}, phones: {}}}\n{more}",
        phones()
    )
}

const PATH: &str = "/cgi-bin/ConfigManApp.com";

#[tokio::test]
async fn fanvil_dials_with_speaker_number_enter_and_hangs_up_with_release() {
    let app = spawn(&[("x", &fanvil(""))]).await;
    let (code, body) = app.post(dial("201", "0261616161")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    assert_eq!(body["call_id"], json!(null), "{body}");
    let (code, body) = action(&app, "hangup", json!({"branch": "x", "extension": "201"})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(line(&got[0]), ("GET".into(), PATH.into(), "key=SPEAKER;0261616161;ENTER".into()));
    assert_eq!(line(&got[1]), ("GET".into(), PATH.into(), "key=RELEASE".into()));
    let want = basic(FANVIL_USER, FANVIL_PASSWORD);
    assert!(got.iter().all(|r| r.authorization.as_deref() == Some(want.as_str())), "{got:#?}");
}

#[tokio::test]
async fn fanvil_a_number_cannot_add_keys_or_parameters() {
    let app = spawn(&[("x", &fanvil(""))]).await;
    // `;` is not a dial character: refused before anything is sent.
    let (code, _) = app.post(dial("201", "0261;RELEASE")).await;
    assert_eq!(code, 400);
    let (_, body) = app.post(dial("201", "+44 20 7946 0000")).await;
    assert_eq!(body["status"], "accepted", "{body}");
    assert_eq!(app.only_request().query.as_deref(), Some("key=SPEAKER;%2B442079460000;ENTER"));
}

#[tokio::test]
async fn fanvil_picks_only_phones_of_the_map_and_wrong_credentials_are_rejected() {
    let app = spawn(&[("x", &fanvil(""))]).await;
    refuses_extensions_outside_the_map(&app).await;
    let (code, body) = app.post(dial("202", "0261616161")).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("unreachable")), "{body}");
    let wrong = spawn(&[("x", &fanvil("").replace(FANVIL_PASSWORD, "wrong"))]).await;
    let (_, body) = wrong.post(dial("201", "0261616161")).await;
    assert_eq!((body["status"].as_str(), body["pbx"]["http_status"].as_u64()), (Some("rejected"), Some(401)), "{body}");
}

#[tokio::test]
async fn fanvil_hanging_phone_is_a_timeout_and_a_dry_run_sends_nothing() {
    let app = spawn(&[("x", &fanvil("timeout: 300ms\n"))]).await;
    let (code, body) =
        app.post(json!({"branch": "x", "extension": "201", "number": "0261616161", "dry_run": true})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("dry_run")), "{body}");
    assert!(app.received().is_empty());
    app.pbx.set_behaviour(Behaviour::Hang);
    let (code, body) = app.post(dial("201", "0261616161")).await;
    assert_eq!((code, body["status"].as_str()), (504, Some("timeout")), "{body}");
}

#[tokio::test]
async fn fanvil_action_urls_are_events_of_the_branch() {
    let app = spawn(&[("x", &fanvil("events: {secret: s3cret}\n"))]).await;
    let mut events = app.events("", None).await;
    let (code, _) =
        app.notify_get("x?secret=s3cret&event=established&local=201@pbx&remote=0261616161@pbx&call_id=f7").await;
    assert_eq!(code, 200);
    let e = events.next(Duration::from_secs(5)).await.expect("an event").data;
    assert_eq!(
        [&e["type"], &e["extension"], &e["remote"], &e["call_id"]],
        [&json!("answered"), &json!("201"), &json!("0261616161"), &json!("f7")]
    );
}

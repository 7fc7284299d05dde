//! `presets/yealink.yaml` against the stand-in playing extension 201's
//! Yealink phone.

use std::time::Duration;

use serde_json::json;
use webdial::standin::{Behaviour, YEALINK_PASSWORD, YEALINK_USER};

use super::{action, basic, dial, line, phones, refuses_extensions_outside_the_map};
use crate::helpers::spawn;

fn yealink(more: &str) -> String {
    format!(
        "extends: presets/yealink.yaml\nvars: {{user: {YEALINK_USER}, password: {YEALINK_PASSWORD}, phones: {}{more}}}\n",
        phones()
    )
}

#[tokio::test]
async fn yealink_dials_with_key_number_on_the_extensions_phone() {
    let app = spawn(&[("x", &yealink(""))]).await;
    let (code, body) = app.post(dial("201", "+44 20 7946 0000")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    assert_eq!(body["call_id"], json!(null), "{body}");
    let got = app.only_request();
    assert_eq!(line(&got), ("GET".into(), "/servlet".into(), "key=number=%2B442079460000".into()));
    assert_eq!(got.authorization.as_deref(), Some(basic(YEALINK_USER, YEALINK_PASSWORD).as_str()));
}

#[tokio::test]
async fn yealink_dials_from_the_account_when_set_and_hangs_up_with_callend() {
    let app = spawn(&[("x", &yealink(", account: 'sip:201@pbx.example'"))]).await;
    let (code, body) = app.post(dial("201", "0261616161")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let (code, body) = action(&app, "hangup", json!({"branch": "x", "extension": "201"})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0].query.as_deref(), Some("key=number=0261616161&outgoing_uri=sip%3A201%40pbx.example"));
    assert_eq!(line(&got[1]), ("GET".into(), "/servlet".into(), "key=CALLEND".into()));
}

#[tokio::test]
async fn yealink_picks_only_phones_of_the_map() {
    let app = spawn(&[("x", &yealink(""))]).await;
    refuses_extensions_outside_the_map(&app).await;
    let (code, body) = app.post(dial("202", "0261616161")).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("unreachable")), "{body}");
}

#[tokio::test]
async fn yealink_refuses_a_gateway_outside_its_action_uri_allowlist_and_wrong_credentials() {
    let app = spawn(&[("x", &yealink(""))]).await;
    app.pbx.yealink().limit_to("192.0.2.1");
    let (code, body) = app.post(dial("201", "0261616161")).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{body}");
    assert_eq!(body["pbx"]["http_status"], 403, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("features.action_uri_limit_ip"), "the phone's own words: {message}");
    app.pbx.yealink().limit_to("192.0.2.1, 127.0.0.1");
    let (_, body) = app.post(dial("201", "0261616162")).await;
    assert_eq!(body["status"], "accepted", "{body}");

    let wrong = spawn(&[("x", &yealink("").replace(YEALINK_PASSWORD, "wrong"))]).await;
    let (_, body) = wrong.post(dial("201", "0261616161")).await;
    assert_eq!((body["status"].as_str(), body["pbx"]["http_status"].as_u64()), (Some("rejected"), Some(401)), "{body}");
}

#[tokio::test]
async fn yealink_hanging_phone_is_a_timeout_and_a_dry_run_sends_nothing() {
    let app = spawn(&[("x", &format!("{}timeout: 300ms\n", yealink("")))]).await;
    let (code, body) =
        app.post(json!({"branch": "x", "extension": "201", "number": "0261616161", "dry_run": true})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("dry_run")), "{body}");
    assert_eq!(body["request"]["url"], format!("http://{}/servlet?key=number=0261616161", app.pbx.addr));
    assert!(app.received().is_empty());
    app.pbx.set_behaviour(Behaviour::Hang);
    let (code, body) = app.post(dial("201", "0261616161")).await;
    assert_eq!((code, body["status"].as_str()), (504, Some("timeout")), "{body}");
}

#[tokio::test]
async fn yealink_action_urls_are_events_of_the_branch() {
    let app = spawn(&[("x", &format!("{}events: {{secret: s3cret}}\n", yealink("")))]).await;
    let mut events = app.events("", None).await;
    let (code, _) = app
        .notify_get("x?secret=s3cret&event=incoming_call&local=201@10.0.0.2&remote=sip:0261616161@pbx&call_id=7")
        .await;
    assert_eq!(code, 200);
    let e = events.next(Duration::from_secs(5)).await.expect("an event").data;
    assert_eq!(
        [&e["type"], &e["direction"], &e["extension"], &e["remote"], &e["call_id"]],
        [&json!("ringing"), &json!("in"), &json!("201"), &json!("0261616161"), &json!("7")]
    );
}

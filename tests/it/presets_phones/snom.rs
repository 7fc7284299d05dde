//! `presets/snom.yaml` (and `snom-digest.yaml`) against the stand-in
//! playing extension 201's Snom phone.

use std::time::Duration;

use serde_json::json;
use webdial::standin::{Behaviour, SNOM_PASSWORD, SNOM_USER};

use super::{action, basic, dial, line, phones, refuses_extensions_outside_the_map};
use crate::helpers::spawn;

fn snom(preset: &str, more: &str) -> String {
    format!(
        "extends: presets/{preset}.yaml\nvars: {{user: {SNOM_USER}, password: {SNOM_PASSWORD}, phones: {}{more}}}\n",
        phones()
    )
}

#[tokio::test]
async fn snom_dials_on_the_extensions_phone_with_basic_auth_and_a_302_is_accepted() {
    let app = spawn(&[("x", &snom("snom", ""))]).await;
    let (code, body) = app.post(dial("201", "+44 20 7946 0000")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    assert_eq!(body["pbx"]["http_status"], 302, "{body}");
    assert_eq!(body["call_id"], json!(null), "a phone gives no call id: {body}");
    let got = app.only_request();
    assert_eq!(line(&got), ("GET".into(), "/command.htm".into(), "number=%2B442079460000".into()));
    assert_eq!(got.authorization.as_deref(), Some(basic(SNOM_USER, SNOM_PASSWORD).as_str()));
}

#[tokio::test]
async fn snom_sends_the_outgoing_identity_when_the_branch_sets_one() {
    let app = spawn(&[("x", &snom("snom", ", outgoing_uri: 'sip:201@pbx.example'"))]).await;
    let (code, body) = app.post(dial("201", "0261616161")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.only_request();
    assert_eq!(got.query.as_deref(), Some("number=0261616161&outgoing_uri=sip%3A201%40pbx.example"));
}

#[tokio::test]
async fn snom_picks_only_phones_of_the_map() {
    let app = spawn(&[("x", &snom("snom", ""))]).await;
    refuses_extensions_outside_the_map(&app).await;
    let (code, body) = app.post(dial("202", "0261616161")).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("unreachable")), "202 is another phone: {body}");
    assert!(app.received().is_empty());
}

#[tokio::test]
async fn snom_wrong_credentials_are_rejected_with_the_phones_401() {
    let app = spawn(&[("x", &snom("snom", "").replace(SNOM_PASSWORD, "wrong"))]).await;
    let (code, body) = app.post(dial("201", "0261616161")).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{body}");
    assert_eq!(body["pbx"]["http_status"], 401, "{body}");
    assert_eq!(app.received().len(), 1, "a Basic refusal is not retried");
}

#[tokio::test]
async fn snom_hangs_up_with_cancel_and_sends_dtmf_digits() {
    let app = spawn(&[("x", &snom("snom", ""))]).await;
    let (code, body) = action(&app, "hangup", json!({"branch": "x", "extension": "201"})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let (code, body) = action(&app, "dtmf", json!({"branch": "x", "extension": "201", "digits": "12#"})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(line(&got[0]), ("GET".into(), "/command.htm".into(), "key=CANCEL".into()));
    assert_eq!(line(&got[1]), ("GET".into(), "/command.htm".into(), "key_dtmf=12%23".into()));
    assert!(got.iter().all(|r| r.authorization.as_deref() == Some(basic(SNOM_USER, SNOM_PASSWORD).as_str())));
    let (code, body) = action(&app, "hangup", json!({"branch": "x", "extension": "207"})).await;
    assert_eq!((code, body["status"].as_str()), (400, Some("invalid_request")), "{body}");
    assert_eq!(app.received().len(), 2);
}

#[tokio::test]
async fn snom_digest_answers_the_phones_challenge_once() {
    let app = spawn(&[("x", &snom("snom-digest", ""))]).await;
    app.pbx.set_behaviour(Behaviour::Digest { user: SNOM_USER.into(), password: SNOM_PASSWORD.into() });
    let (code, body) = app.post(dial("201", "0261616161")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.received();
    assert_eq!(got.len(), 2, "the challenge, then its answer: {got:#?}");
    assert_eq!(got[0].authorization, None);
    let answer = got[1].authorization.as_deref().unwrap_or_default();
    assert!(answer.starts_with("Digest ") && answer.contains(&format!("username=\"{SNOM_USER}\"")), "{answer}");
    assert_eq!(got[1].query.as_deref(), Some("number=0261616161"));
}

#[tokio::test]
async fn snom_hanging_phone_is_a_timeout_and_a_dry_run_sends_nothing() {
    let app = spawn(&[("x", &format!("{}timeout: 300ms\n", snom("snom", "")))]).await;
    let (code, body) =
        app.post(json!({"branch": "x", "extension": "201", "number": "0261616161", "dry_run": true})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("dry_run")), "{body}");
    let url = body["request"]["url"].as_str().unwrap_or_default();
    assert_eq!(url, format!("http://{}/command.htm?number=0261616161", app.pbx.addr), "{body}");
    assert!(app.received().is_empty());
    app.pbx.set_behaviour(Behaviour::Hang);
    let started = std::time::Instant::now();
    let (code, body) = app.post(dial("201", "0261616161")).await;
    assert_eq!((code, body["status"].as_str()), (504, Some("timeout")), "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn snom_action_urls_are_events_of_the_branch() {
    let app = spawn(&[("x", &format!("{}events: {{secret: s3cret}}\n", snom("snom", "")))]).await;
    let mut events = app.events("", None).await;
    let (code, sent) = app
        .notify_get("x?secret=s3cret&event=connected&local=sip:201@pbx&remote=sip:0261616161@pbx&call_id=ab12@10.0.0.3")
        .await;
    assert_eq!((code, sent["status"].as_str()), (200, Some("accepted")), "{sent}");
    let e = events.next(Duration::from_secs(5)).await.expect("an event").data;
    assert_eq!(
        [&e["type"], &e["extension"], &e["remote"], &e["call_id"]],
        [&json!("answered"), &json!("201"), &json!("0261616161"), &json!("ab12@10.0.0.3")]
    );
    let (code, _) = app.notify_get("x?secret=wrong&event=connected&local=201").await;
    assert_eq!(code, 401);
}

#[tokio::test]
async fn snom_a_hangup_by_gateway_id_goes_to_the_phone_that_dialled() {
    let app = spawn(&[("x", &snom("snom", ""))]).await;
    let (_, dialled) = app.post(dial("201", "0261616161")).await;
    assert_eq!(dialled["status"], "accepted", "{dialled}");
    let id = dialled["id"].as_str().unwrap_or_default();
    let resp = app.client.post(format!("{}/v1/calls/{id}/hangup", app.url)).json(&json!({})).send().await.unwrap();
    let (code, hung) = crate::helpers::read(resp).await;
    assert_eq!((code, hung["status"].as_str()), (200, Some("accepted")), "{hung}");
    let got = app.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(line(&got[1]), ("GET".into(), "/command.htm".into(), "key=CANCEL".into()));
}

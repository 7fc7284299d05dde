//! `presets/freepbx.yaml` (ARI with FreePBX's defaults) against the ARI stand-in.

use serde_json::json;
use webdial::standin::{ARI_PASSWORD, ARI_USER};

use super::{action, basic, dial, dry_run_sends_nothing, outcome, param};
use crate::helpers::spawn;

fn freepbx(vars: &str) -> String {
    format!(
        "extends: presets/freepbx.yaml\nvars: {{host: PBXHOST, user: {ARI_USER}, password: {ARI_PASSWORD}{vars}}}\n"
    )
}

#[tokio::test]
async fn freepbx_dials_over_ari_in_from_internal_and_hangs_up_under_its_http_prefix() {
    let app = spawn(&[("x", &freepbx(", prefix: asterisk"))]).await;
    let (code, body) = app.post(dial("201", "02079460000")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.only_request();
    assert_eq!((got.method.as_str(), got.path.as_str()), ("POST", "/asterisk/ari/channels"));
    assert_eq!(got.authorization.as_deref(), Some(basic(ARI_USER, ARI_PASSWORD).as_str()));
    assert_eq!(param(&got, "endpoint").as_deref(), Some("PJSIP/201"));
    assert_eq!(param(&got, "extension").as_deref(), Some("02079460000"));
    assert_eq!(param(&got, "context").as_deref(), Some("from-internal"));
    let id = body["call_id"].as_str().unwrap().to_string();
    assert_eq!(param(&got, "channelId").as_deref(), Some(id.as_str()));

    let (code, answer) = action(&app, "hangup", json!({"branch": "x", "call_id": id})).await;
    assert_eq!((code, answer["status"].as_str()), (200, Some("accepted")), "{answer}");
    let hangup = app.received().pop().unwrap();
    assert_eq!((hangup.method.as_str(), hangup.path.as_str()), ("DELETE", &*format!("/asterisk/ari/channels/{id}")));
}

#[tokio::test]
async fn freepbx_refusals_and_the_stasis_trap_come_through_in_asterisks_words() {
    let app = spawn(&[("x", &freepbx(""))]).await;
    let (code, body) = app.post(dial("901", "02079460000")).await;
    assert_eq!(outcome(code, &body), (502, "rejected".into(), "Allocation failed".into()));
    let (_, body) = app.post(dial("201", "02079460000")).await;
    let (code, body) = action(&app, "dtmf", json!({"branch": "x", "call_id": body["call_id"], "digits": "1"})).await;
    assert_eq!(outcome(code, &body), (502, "rejected".into(), "Channel not in Stasis application".into()));
    assert!(app.received().iter().all(|r| r.path.starts_with("/ari/channels")), "no prefix by default");
}

#[tokio::test]
async fn freepbx_a_dry_run_sends_nothing() {
    let body = dry_run_sends_nothing(&freepbx("")).await;
    assert!(body.to_string().contains("context=from-internal"), "{body}");
}

#[tokio::test]
async fn freepbx_a_hanging_asterisk_is_a_timeout() {
    super::hanging_pbx_is_a_timeout(&format!("{}timeout: 300ms\n", freepbx(""))).await;
}

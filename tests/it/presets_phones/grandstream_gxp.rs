//! `presets/grandstream-gxp.yaml` against the stand-in playing extension
//! 201's Grandstream GXP phone.

use std::time::Duration;

use serde_json::json;
use webdial::standin::{Behaviour, GXP_PASSWORD};

use super::{action, dial, line, phones, refuses_extensions_outside_the_map};
use crate::helpers::{spawn, spawn_with_env};

fn gxp(more: &str) -> String {
    format!("extends: presets/grandstream-gxp.yaml\nvars: {{password: {GXP_PASSWORD}, phones: {}}}\n{more}", phones())
}

#[tokio::test]
async fn gxp_dials_with_api_make_call_and_hangs_up_with_endcall() {
    let app = spawn(&[("x", &gxp(""))]).await;
    let (code, body) = app.post(dial("201", "+44 20 7946 0000")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    assert_eq!(body["call_id"], json!(null), "{body}");
    let (code, body) = action(&app, "hangup", json!({"branch": "x", "extension": "201"})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    let dialled = format!("phonenumber=%2B442079460000&account=0&password={GXP_PASSWORD}");
    assert_eq!(line(&got[0]), ("GET".into(), "/cgi-bin/api-make_call".into(), dialled));
    let ended = format!("cmd=endcall&passcode={GXP_PASSWORD}");
    assert_eq!(line(&got[1]), ("GET".into(), "/cgi-bin/api-phone_operation".into(), ended));
}

#[tokio::test]
async fn gxp_refusals_are_rejected_with_the_phones_words() {
    let app = spawn(&[("x", &gxp(""))]).await;
    let (code, body) = app.post(dial("201", "9123")).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{body}");
    assert_eq!(body["message"], "failed", "{body}");
    let wrong = spawn(&[("x", &gxp("").replace(GXP_PASSWORD, "wrong"))]).await;
    let (_, body) = wrong.post(dial("201", "0261616161")).await;
    assert_eq!((body["status"].as_str(), body["message"].as_str()), (Some("rejected"), Some("unauthorized")), "{body}");
    assert_eq!(body["pbx"]["http_status"], 200, "a refusal in a 200: {body}");
}

#[tokio::test]
async fn gxp_picks_only_phones_of_the_map_and_the_password_is_never_shown() {
    let app =
        spawn_with_env(&[("x", &gxp("").replace(GXP_PASSWORD, "\"${GXP_PASS}\""))], &[("GXP_PASS", GXP_PASSWORD)])
            .await;
    refuses_extensions_outside_the_map(&app).await;
    let (code, body) = app.post(dial("202", "0261616161")).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("unreachable")), "{body}");
    let (_, body) = app.post(json!({"branch": "x", "extension": "201", "number": "0261616161", "dry_run": true})).await;
    assert_eq!(body["status"], "dry_run", "{body}");
    let url = body["request"]["url"].as_str().unwrap_or_default();
    assert!(url.ends_with("password=***") && !body.to_string().contains(GXP_PASSWORD), "{body}");
    assert!(app.received().is_empty());
}

#[tokio::test]
async fn gxp_hanging_phone_is_a_timeout() {
    let app = spawn(&[("x", &gxp("timeout: 300ms\n"))]).await;
    app.pbx.set_behaviour(Behaviour::Hang);
    let (code, body) = app.post(dial("201", "0261616161")).await;
    assert_eq!((code, body["status"].as_str()), (504, Some("timeout")), "{body}");
}

#[tokio::test]
async fn gxp_action_urls_with_values_in_the_path_are_events_of_the_branch() {
    let app = spawn(&[("x", &gxp("events: {from: [\"127.0.0.0/8\"]}\n"))]).await;
    let mut events = app.events("", None).await;
    let (code, _) = app.notify_get("x/established/201/0261616161/77").await;
    assert_eq!(code, 200);
    let e = events.next(Duration::from_secs(5)).await.expect("an event").data;
    assert_eq!(
        [&e["type"], &e["extension"], &e["remote"], &e["call_id"]],
        [&json!("answered"), &json!("201"), &json!("0261616161"), &json!("77")]
    );
}

//! `presets/poly.yaml` against the stand-in playing extension 201's Poly
//! VVX phone.

use serde_json::{Value, json};
use webdial::standin::{Behaviour, POLY_PASSWORD, POLY_USER};

use super::{action, basic, dial, phones, refuses_extensions_outside_the_map};
use crate::helpers::spawn;

fn poly(more: &str) -> String {
    format!(
        "extends: presets/poly.yaml\nvars: {{scheme: http, user: {POLY_USER}, password: {POLY_PASSWORD}, phones: {}}}\n{more}",
        phones()
    )
}

#[tokio::test]
async fn poly_dials_with_a_json_post_and_status_2000_is_accepted() {
    let app = spawn(&[("x", &poly(""))]).await;
    let (code, body) = app.post(dial("201", "+44 20 7946 0000")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    assert_eq!(body["call_id"], json!(null), "{body}");
    let got = app.only_request();
    assert_eq!((got.method.as_str(), got.path.as_str(), got.query.as_deref()), ("POST", "/api/v1/callctrl/dial", None));
    assert_eq!(got.content_type.as_deref(), Some("application/json"));
    let sent: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(sent, json!({"data": {"Dest": "+442079460000", "Line": "1", "Type": "TEL"}}));
    assert_eq!(got.authorization.as_deref(), Some(basic(POLY_USER, POLY_PASSWORD).as_str()));
}

#[tokio::test]
async fn poly_an_error_status_in_a_200_is_rejected_with_its_words() {
    let app = spawn(&[("x", &poly(""))]).await;
    let (code, body) = app.post(dial("201", "9123")).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{body}");
    assert_eq!((body["message"].as_str(), body["pbx"]["http_status"].as_u64()), (Some("device busy"), Some(200)));
    let other_line = spawn(&[("x", &poly("").replace("phones:", "line: '7', phones:"))]).await;
    let (_, body) = other_line.post(dial("201", "0261616161")).await;
    assert_eq!((body["status"].as_str(), body["message"].as_str()), (Some("rejected"), Some("line does not exist")));
    assert_eq!(serde_json::from_str::<Value>(&other_line.only_request().body).unwrap()["data"]["Line"], "7");
    let wrong = spawn(&[("x", &poly("").replace(POLY_PASSWORD, "wrong"))]).await;
    let (_, body) = wrong.post(dial("201", "0261616161")).await;
    assert_eq!((body["status"].as_str(), body["pbx"]["http_status"].as_u64()), (Some("rejected"), Some(401)), "{body}");
}

#[tokio::test]
async fn poly_hangs_up_the_phones_call_reference() {
    let app = spawn(&[("x", &poly(""))]).await;
    let (code, body) = action(&app, "hangup", json!({"branch": "x", "extension": "201", "call_id": "0x1b"})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let (_, body) = action(&app, "hangup", json!({"branch": "x", "extension": "201", "call_id": "99"})).await;
    assert_eq!((body["status"].as_str(), body["message"].as_str()), (Some("rejected"), Some("call does not exist")));
    let got = app.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].path, "/api/v1/callctrl/endCall");
    assert_eq!(serde_json::from_str::<Value>(&got[0].body).unwrap(), json!({"data": {"Ref": "0x1b"}}));
}

#[tokio::test]
async fn poly_picks_only_phones_of_the_map_times_out_and_a_dry_run_sends_nothing() {
    let app = spawn(&[("x", &poly("timeout: 300ms\n"))]).await;
    refuses_extensions_outside_the_map(&app).await;
    let (code, body) = app.post(dial("202", "0261616161")).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("unreachable")), "{body}");
    let (_, body) = app.post(json!({"branch": "x", "extension": "201", "number": "0261616161", "dry_run": true})).await;
    assert_eq!(body["status"], "dry_run", "{body}");
    assert!(app.received().is_empty());
    app.pbx.set_behaviour(Behaviour::Hang);
    let (code, body) = app.post(dial("201", "0261616161")).await;
    assert_eq!((code, body["status"].as_str()), (504, Some("timeout")), "{body}");
}

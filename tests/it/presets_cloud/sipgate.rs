//! `presets/sipgate.yaml` against the sipgate io stand-in.

use serde_json::json;
use webdial::standin::{SIPGATE_TOKEN as TOKEN, SIPGATE_TOKEN_ID as TOKEN_ID};

use super::*;

const ENV: &[(&str, &str)] = &[("SG_TOKEN", TOKEN)];

fn profile(rest: &str) -> String {
    format!(
        "extends: presets/sipgate.yaml\nvars: {{scheme: http, host: PBXHOST, token_id: {TOKEN_ID}, token: \"${{SG_TOKEN}}\"}}\n{rest}"
    )
}

fn body(r: &Received) -> Value {
    serde_json::from_str(&r.body).unwrap_or(Value::Null)
}

#[tokio::test]
async fn sipgate_rings_the_extensions_device_then_the_number() {
    let app = spawn_with_env(&[("x", &profile(""))], ENV).await;
    let (code, answer) = app.post(dial("0", "+4921100000000")).await;
    accepted(code, &answer);
    let got = app.only_request();
    assert_eq!((got.method.as_str(), got.path.as_str()), ("POST", "/v2/sessions/calls"));
    assert_eq!(got.content_type.as_deref(), Some("application/json"));
    assert_eq!(got.authorization, Some(basic(TOKEN_ID, TOKEN)));
    assert_eq!(body(&got), json!({"deviceId": "e0", "caller": "e0", "callee": "+4921100000000"}));
    assert_eq!(answer["call_id"], app.pbx.logins("sipgate").issued()[0].as_str());
}

#[tokio::test]
async fn sipgate_refusals_are_named_by_their_status() {
    let app = spawn_with_env(
        &[
            ("x", &profile("")),
            ("w", &profile("").replace("${SG_TOKEN}", "wrong")),
            ("z", &profile("").replace("device_type: e", "").replace("}\n", ", device_type: z}\n")),
        ],
        ENV,
    )
    .await;
    let cases = [
        ("x", "+9123", 400, "sipgate refused the request (a field is missing or a number is invalid)"),
        ("x", "+8123", 402, "sipgate: insufficient balance"),
        ("w", "+4921100000000", 401, "sipgate refused the token id or token"),
        (
            "z",
            "+4921100000000",
            403,
            "sipgate: the device does not belong to the token owner, or the token lacks the scope",
        ),
    ];
    for (branch, number, status, words) in cases {
        let (code, answer) = app.post(json!({"branch": branch, "extension": "0", "number": number})).await;
        rejected(code, &answer, status, words);
    }
    let (code, answer) = action(&app, "hangup", json!({"branch": "x", "call_id": "gone"})).await;
    rejected(code, &answer, 404, "sipgate: no such call");
    assert_eq!(app.received().len(), 5);
}

#[tokio::test]
async fn sipgate_hanging_is_a_timeout_and_a_dry_run_sends_nothing() {
    hanging_is_a_timeout(&profile(""), ENV, "0").await;
    let shown = dry_run_sends_nothing(&profile(""), ENV, "0").await;
    let auth = shown["request"]["headers"]["authorization"].as_str().unwrap_or("");
    assert!(auth.starts_with("Basic ***") && !shown.to_string().contains(TOKEN), "{shown}");
}

#[tokio::test]
async fn sipgate_call_manipulation_acts_on_the_call_id() {
    let app = spawn_with_env(&[("x", &profile(""))], ENV).await;
    let (_, answer) = app.post(dial("0", "+4921100000000")).await;
    let call = answer["call_id"].as_str().unwrap().to_string();
    let cases = [
        ("dtmf", json!({"digits": "12#"}), "POST", "/dtmf", json!({"sequence": "12#"})),
        ("hold", json!({}), "PUT", "/hold", json!({"value": true})),
        ("unhold", json!({}), "PUT", "/hold", json!({"value": false})),
        (
            "transfer",
            json!({"number": "+4921100000001"}),
            "POST",
            "/transfer",
            json!({"attended": false, "phoneNumber": "+4921100000001"}),
        ),
        ("hangup", json!({}), "DELETE", "", Value::Null),
    ];
    for (action_name, extra, method, tail, sent) in cases {
        let mut b = json!({"branch": "x", "extension": "0", "call_id": call});
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (code, r) = action(&app, action_name, b).await;
        accepted(code, &r);
        let got = app.received().pop().unwrap();
        assert_eq!(
            (got.method.as_str(), got.path.clone()),
            (method, format!("/v2/calls/{call}{tail}")),
            "{action_name}"
        );
        assert_eq!(body(&got), sent, "{action_name}");
        assert_eq!(got.authorization, Some(basic(TOKEN_ID, TOKEN)));
    }
}

#[tokio::test]
async fn sipgate_push_notifications_are_read_with_the_branchs_secret() {
    let app = spawn_with_env(&[("x", &profile("events: {secret: s3cret-sipgate}\n"))], ENV).await;
    let mut events = app.events("branch=x", None).await;
    let form = "application/x-www-form-urlencoded";
    let cases = [
        (
            "event=newCall&direction=out&from=492111234567&to=4921100000000&callId=C1&user%5B%5D=Alice",
            json!(["dialling", "out", null, "4921100000000", "C1"]),
        ),
        (
            "event=newCall&direction=in&from=4921100000000&to=492111234567&callId=C2&user%5B%5D=Alice",
            json!(["ringing", "in", null, "4921100000000", "C2"]),
        ),
        (
            "event=answer&direction=in&from=4921100000000&to=492111234567&callId=C2&user=Alice",
            json!(["answered", "in", null, "4921100000000", "C2"]),
        ),
        (
            "event=hangup&direction=in&cause=cancel&from=4921100000000&to=492111234567&callId=C3",
            json!(["missed", "in", null, "4921100000000", "C3"]),
        ),
        (
            "event=hangup&direction=out&cause=busy&from=492111234567&to=4921100000000&callId=C1",
            json!(["rejected", "out", null, "4921100000000", "C1"]),
        ),
        (
            "event=hangup&direction=in&cause=normalClearing&from=4921100000000&to=492111234567&callId=C2",
            json!(["ended", "in", null, "4921100000000", "C2"]),
        ),
    ];
    for (fields, want) in &cases {
        let (status, r) = app.notify_post("x?secret=s3cret-sipgate", form, fields, &[]).await;
        assert_eq!(status, 200, "{r}");
        let e = events.next(WAIT).await.expect("an event").data;
        assert_eq!(&json!([e["type"], e["direction"], e["extension"], e["remote"], e["call_id"]]), want, "{fields}");
    }
    let (status, _) = app.notify_post("x?secret=wrong", form, cases[0].0, &[]).await;
    assert_eq!(status, 401);
}

//! `presets/kazoo.yaml` against the Kazoo stand-in (user_auth, quickcall, channels, webhooks).

use std::time::Duration;

use serde_json::{Value, json};
use webdial::standin::{Behaviour, KAZOO_ACCOUNT_ID, KAZOO_ACCOUNT_NAME, KAZOO_PASSWORD, KAZOO_USER, Received};

use super::{action, dial, dry_run_sends_nothing, outcome};
use crate::helpers::spawn;

const AUTH: &str = "/v2/user_auth";
const ALICE: &str = "72855158432d790dfb22d03ff64c033e";

fn kazoo(password: &str, rest: &str) -> String {
    format!(
        "extends: presets/kazoo.yaml\nvars: {{host: PBXHOST, user: {KAZOO_USER}, password: {password}, account_name: {KAZOO_ACCOUNT_NAME}, users: {{\"201\": {ALICE}, \"901\": 9a55158432d790dfb22d03ff64c0901}}}}\n{rest}"
    )
}

fn json_body(r: &Received) -> Value {
    serde_json::from_str(&r.body).unwrap()
}

fn paths(got: &[Received]) -> Vec<String> {
    got.iter().map(|r| format!("{} {}", r.method, r.path)).collect()
}

fn quickcall(user: &str, number: &str) -> String {
    format!("POST /v2/accounts/{KAZOO_ACCOUNT_ID}/users/{user}/quickcall/{number}")
}

#[tokio::test]
async fn kazoo_logs_in_with_md5_credentials_then_quickcalls_the_extensions_user_in_its_account() {
    let app = spawn(&[("x", &kazoo(KAZOO_PASSWORD, ""))]).await;
    let (code, body) = app
        .post(json!({"branch": "x", "extension": "201", "number": "+44 20 7946 0000", "caller_id": "02079460999"}))
        .await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.received();
    assert_eq!(paths(&got), [format!("PUT {AUTH}"), quickcall(ALICE, "%2B442079460000")]);
    let (login, call) = (&got[0], &got[1]);
    let md5 = "0718ab62812546b464f1180326e826f7"; // md5("webdial:demo-kazoo-secret")
    assert_eq!(
        json_body(login),
        json!({"data": {"credentials": md5, "account_name": KAZOO_ACCOUNT_NAME, "method": "md5"}})
    );
    let token = &app.pbx.logins("kazoo").issued()[0];
    assert_eq!(call.header("x-auth-token"), Some(token.as_str()));
    assert_eq!(call.query.as_deref(), Some("cid-number=02079460999"));
    assert_eq!(call.body, "", "a blocking quickcall: POST without a body");
    let call_id = body["call_id"].as_str().unwrap();
    assert!(call_id.ends_with("-quickcall"), "the ringing leg's call id: {body}");
    assert!(!body.to_string().contains(token.as_str()), "{body}");
}

#[tokio::test]
async fn kazoo_hangup_and_transfer_act_on_the_quickcalls_channel() {
    let app = spawn(&[("x", &kazoo(KAZOO_PASSWORD, ""))]).await;
    let (_, body) = app.post(dial("201", "02079460000")).await;
    let id = body["call_id"].as_str().unwrap().to_string();
    let channel = format!("/v2/accounts/{KAZOO_ACCOUNT_ID}/channels/{id}");
    let (code, answer) = action(&app, "transfer", json!({"branch": "x", "call_id": id, "number": "2600"})).await;
    assert_eq!((code, answer["status"].as_str()), (200, Some("accepted")), "{answer}");
    let (code, answer) = action(&app, "hangup", json!({"branch": "x", "call_id": id})).await;
    assert_eq!((code, answer["status"].as_str()), (200, Some("accepted")), "{answer}");
    let got = app.received().split_off(2);
    assert_eq!(paths(&got), [format!("POST {channel}"), format!("POST {channel}")]);
    assert_eq!(json_body(&got[0]), json!({"data": {"action": "transfer", "target": "2600"}}));
    assert_eq!(json_body(&got[1]), json!({"data": {"action": "hangup"}}));
    assert_eq!(app.received().iter().filter(|r| r.path == AUTH).count(), 1, "one login");
}

#[tokio::test]
async fn kazoo_refusals_are_rejected_with_kazoos_words() {
    let app = spawn(&[("x", &kazoo(KAZOO_PASSWORD, ""))]).await;
    let (code, body) = app.post(dial("901", "02079460000")).await;
    assert_eq!(outcome(code, &body), (502, "rejected".into(), "DESTINATION_OUT_OF_ORDER".into()), "{body}");
    assert_eq!(body["pbx"]["http_status"], 500, "{body}");
    let before = app.received().len();
    let (code, body) = app.post(dial("202", "02079460000")).await;
    assert_eq!((code, body["status"].as_str()), (400, Some("invalid_request")), "unmapped: {body}");
    assert!(body["message"].as_str().unwrap().contains("\"202\" is not a key of `users`"), "{body}");
    assert_eq!(app.received().len(), before, "an unmapped extension sends nothing");
    let (code, body) = action(&app, "hangup", json!({"branch": "x", "call_id": "gone-quickcall"})).await;
    assert_eq!(outcome(code, &body), (502, "rejected".into(), "bad identifier".into()), "{body}");
    assert_eq!(app.received().iter().filter(|r| r.path == AUTH).count(), 1, "a refusal is not an expired token");

    let wrong = spawn(&[("x", &kazoo("nope", ""))]).await;
    let (code, body) = wrong.post(dial("201", "02079460000")).await;
    assert_eq!(outcome(code, &body), (502, "rejected".into(), "login: invalid credentials".into()));
    assert_eq!(paths(&wrong.received()), [format!("PUT {AUTH}")], "nothing but the login");
}

#[tokio::test]
async fn kazoo_an_expired_token_401_logs_in_once_more_and_quickcalls_exactly_twice() {
    let app = spawn(&[("x", &kazoo(KAZOO_PASSWORD, ""))]).await;
    assert_eq!(app.post(dial("201", "02079460000")).await.0, 200);
    app.pbx.logins("kazoo").expire_all();
    let before = app.received().len();
    let (code, body) = app.post(dial("201", "02079460001")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.received().split_off(before);
    let qc = quickcall(ALICE, "02079460001");
    assert_eq!(paths(&got), [qc.clone(), format!("PUT {AUTH}"), qc]);
    let tokens = app.pbx.logins("kazoo").issued();
    assert_eq!(tokens.len(), 2, "exactly one new login");
    assert_eq!(got[2].header("x-auth-token"), Some(tokens[1].as_str()));
}

#[tokio::test]
async fn kazoo_channel_webhooks_follow_the_quickcall_to_its_end() {
    let app = spawn(&[("x", &kazoo(KAZOO_PASSWORD, "events: {secret: s3cret-kazoo}\n"))]).await;
    app.pbx.notify_to(&format!("{}/v1/events/x?secret=s3cret-kazoo", app.url), Duration::from_millis(50));
    let mut events = app.events("branch=x", None).await;
    let (_, body) = app.post(dial("201", "02079460000")).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let e = events.next(Duration::from_secs(10)).await.expect("the channel webhook").data;
        assert_eq!(e["dial_id"], body["id"], "tied to the dial by the leg's call id: {e}");
        assert_eq!((e["call_id"].as_str(), e["remote"].as_str()), (body["call_id"].as_str(), Some("02079460000")));
        assert_eq!(e["pbx"]["hook_event"].as_str().map(|h| h.starts_with("channel_")), Some(true), "{e}");
        seen.push(e["type"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, ["ringing", "answered", "ended"]);
}

#[tokio::test]
async fn kazoo_a_busy_destroy_is_rejected_and_a_no_answer_missed() {
    let app = spawn(&[("x", &kazoo(KAZOO_PASSWORD, "events: {secret: s}\n"))]).await;
    let mut events = app.events("branch=x", None).await;
    for (cause, kind) in [("USER_BUSY", "rejected"), ("NO_ANSWER", "missed"), ("NORMAL_CLEARING", "ended")] {
        let hook = json!({"hook_event": "channel_destroy", "call_id": format!("c-{cause}"), "call_direction": "inbound", "caller_id_number": "201", "callee_id_number": "+442079460000", "hangup_cause": cause});
        let (code, _) = app.notify_post("x?secret=s", "application/json", &hook.to_string(), &[]).await;
        assert_eq!(code, 200);
        let e = events.next(Duration::from_secs(10)).await.expect("event").data;
        assert_eq!(
            (e["type"].as_str(), e["extension"].as_str(), e["remote"].as_str()),
            (Some(kind), Some("201"), Some("+442079460000")),
            "{cause}: {e}"
        );
    }
}

#[tokio::test]
async fn kazoo_a_hanging_quickcall_is_a_timeout_sent_once() {
    let app = spawn(&[("x", &kazoo(KAZOO_PASSWORD, "timeout: 300ms\n"))]).await;
    assert_eq!(app.post(dial("201", "02079460000")).await.0, 200);
    app.pbx.set_behaviour(Behaviour::Hang);
    let before = app.received().len();
    let (code, body) = app.post(dial("201", "02079460001")).await;
    assert_eq!((code, body["status"].as_str()), (504, Some("timeout")), "{body}");
    assert_eq!(paths(&app.received().split_off(before)), [quickcall(ALICE, "02079460001")], "once, no new login");
}

#[tokio::test]
async fn kazoo_a_dry_run_sends_nothing_not_even_a_login() {
    let body = dry_run_sends_nothing(&kazoo(KAZOO_PASSWORD, "")).await;
    assert_eq!(body["request"]["headers"]["x-auth-token"], "***", "{body}");
}

#[tokio::test]
async fn kazoo_with_endpoint_type_devices_the_quickcall_rings_the_mapped_device() {
    let device = "63fbb9ac78e11f3ccb387928a423798a";
    let profile = format!(
        "extends: presets/kazoo.yaml\nvars: {{host: PBXHOST, user: {KAZOO_USER}, password: {KAZOO_PASSWORD}, account_name: {KAZOO_ACCOUNT_NAME}, endpoint_type: devices, users: {{\"3001\": {device}}}}}\n"
    );
    let app = spawn(&[("x", &profile)]).await;
    let (code, body) = app.post(dial("3001", "02079460000")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let call = app.received().pop().unwrap();
    assert_eq!(call.path, format!("/v2/accounts/{KAZOO_ACCOUNT_ID}/devices/{device}/quickcall/02079460000"));
    assert_eq!(call.query, None, "no caller id, no query");
}

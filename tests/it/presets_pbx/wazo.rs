//! `presets/wazo.yaml` against the Wazo stand-in (wazo-auth, wazo-calld, webhookd events).

use std::time::Duration;

use serde_json::{Value, json};
use webdial::standin::{Behaviour, Received, WAZO_PASSWORD, WAZO_USER};

use super::{action, basic, dial, dry_run_sends_nothing, outcome};
use crate::helpers::spawn;

const TOKEN: &str = "/api/auth/0.1/token";
const CALLS: &str = "/api/calld/1.0/calls";
const ALICE: &str = "5f6e7d8c-0000-4000-8000-00000000a201";

fn wazo(password: &str, rest: &str) -> String {
    format!(
        "extends: presets/wazo.yaml\nvars: {{scheme: http, host: PBXHOST, user: {WAZO_USER}, password: {password}, context: ctx-acme-internal, users: {{\"201\": {ALICE}, \"901\": 9f6e7d8c-0000-4000-8000-00000000a901}}}}\n{rest}"
    )
}

fn json_body(r: &Received) -> Value {
    serde_json::from_str(&r.body).unwrap()
}

fn paths(got: &[Received]) -> Vec<String> {
    got.iter().map(|r| format!("{} {}", r.method, r.path)).collect()
}

#[tokio::test]
async fn wazo_gets_a_token_with_basic_auth_then_creates_the_call_for_the_extensions_user() {
    let app = spawn(&[("x", &wazo(WAZO_PASSWORD, ""))]).await;
    let (code, body) = app.post(dial("201", "+44 20 7946 0000")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.received();
    assert_eq!(paths(&got), [format!("POST {TOKEN}"), format!("POST {CALLS}")]);
    let (login, call) = (&got[0], &got[1]);
    assert_eq!(login.authorization.as_deref(), Some(basic(WAZO_USER, WAZO_PASSWORD).as_str()));
    assert_eq!(login.content_type.as_deref(), Some("application/json"));
    assert_eq!(json_body(login), json!({"expiration": 3600}));
    let token = &app.pbx.logins("wazo").issued()[0];
    assert_eq!(call.header("x-auth-token"), Some(token.as_str()));
    assert_eq!(call.authorization, None);
    assert_eq!(
        json_body(call),
        json!({"source": {"user": ALICE}, "destination": {"context": "ctx-acme-internal", "extension": "+442079460000", "priority": 1}})
    );
    assert!(body["call_id"].as_str().is_some_and(|c| c.contains('.')), "calld's call_id: {body}");
    assert!(!body.to_string().contains(token.as_str()), "{body}");
}

#[tokio::test]
async fn wazo_hangup_dtmf_hold_and_unhold_act_on_the_call_with_the_same_token() {
    let app = spawn(&[("x", &wazo(WAZO_PASSWORD, ""))]).await;
    let (_, body) = app.post(dial("201", "02079460000")).await;
    let id = body["call_id"].as_str().unwrap().to_string();
    let each = [
        ("dtmf", json!({"digits": "12#"}), "PUT", format!("{CALLS}/{id}/dtmf"), Some("digits=12%23")),
        ("hold", json!({}), "PUT", format!("{CALLS}/{id}/hold/start"), None),
        ("unhold", json!({}), "PUT", format!("{CALLS}/{id}/hold/stop"), None),
        ("hangup", json!({}), "DELETE", format!("{CALLS}/{id}"), None),
    ];
    for (name, mut extra, method, path, q) in each {
        extra["branch"] = json!("x");
        extra["call_id"] = json!(id);
        let (code, answer) = action(&app, name, extra).await;
        assert_eq!((code, answer["status"].as_str()), (200, Some("accepted")), "{name}: {answer}");
        let got = app.received().pop().unwrap();
        assert_eq!(
            (got.method.as_str(), got.path.as_str(), got.query.as_deref()),
            (method, path.as_str(), q),
            "{name}"
        );
        assert_eq!(got.header("x-auth-token"), app.received()[1].header("x-auth-token"), "{name}: one token");
    }
    assert_eq!(app.received().iter().filter(|r| r.path == TOKEN).count(), 1, "one login for all");
}

#[tokio::test]
async fn wazo_refusals_are_rejected_with_calld_and_auth_words() {
    let app = spawn(&[("x", &wazo(WAZO_PASSWORD, ""))]).await;
    let (code, body) = app.post(dial("901", "02079460000")).await;
    assert_eq!(outcome(code, &body), (502, "rejected".into(), "User has no line".into()));
    assert_eq!(body["pbx"]["http_status"], 400, "{body}");
    let before = app.received().len();
    let (code, body) = app.post(dial("202", "02079460000")).await;
    assert_eq!((code, body["status"].as_str()), (400, Some("invalid_request")), "unmapped: {body}");
    assert!(body["message"].as_str().unwrap().contains("\"202\" is not a key of `users`"), "{body}");
    assert_eq!(app.received().len(), before, "an unmapped extension sends nothing");
    let (code, body) = action(&app, "hangup", json!({"branch": "x", "call_id": "1765000000.1"})).await;
    assert_eq!(outcome(code, &body), (502, "rejected".into(), "No such call".into()));
    assert_eq!(app.received().iter().filter(|r| r.path == TOKEN).count(), 1, "a refusal is not an expired token");

    let wrong = spawn(&[("x", &wazo("nope", ""))]).await;
    let (code, body) = wrong.post(dial("201", "02079460000")).await;
    assert_eq!(outcome(code, &body), (502, "rejected".into(), "login: Authentication Failed".into()));
    assert_eq!(paths(&wrong.received()), [format!("POST {TOKEN}")], "nothing but the login");
}

#[tokio::test]
async fn wazo_a_map_without_the_sample_extension_loads_and_an_unmapped_dial_sends_not_even_a_login() {
    let profile = format!(
        "extends: presets/wazo.yaml\nvars: {{scheme: http, host: PBXHOST, user: {WAZO_USER}, password: {WAZO_PASSWORD}, context: c, users: {{\"3001\": {ALICE}}}}}\n"
    );
    let app = spawn(&[("x", &profile)]).await;
    let (code, body) = app.post(dial("201", "02079460000")).await;
    assert_eq!((code, body["status"].as_str()), (400, Some("invalid_request")), "{body}");
    assert!(app.received().is_empty(), "refused before the login: {:#?}", app.received());
    let (code, body) = app.post(dial("3001", "02079460000")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    assert_eq!(json_body(&app.received()[1])["source"]["user"], ALICE);
}

#[tokio::test]
async fn wazo_an_expired_token_401_logs_in_once_more_and_dials_exactly_twice() {
    let app = spawn(&[("x", &wazo(WAZO_PASSWORD, ""))]).await;
    assert_eq!(app.post(dial("201", "02079460000")).await.0, 200);
    app.pbx.logins("wazo").expire_all();
    let before = app.received().len();
    let (code, body) = app.post(dial("201", "02079460001")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.received().split_off(before);
    assert_eq!(paths(&got), [format!("POST {CALLS}"), format!("POST {TOKEN}"), format!("POST {CALLS}")]);
    let tokens = app.pbx.logins("wazo").issued();
    assert_eq!(tokens.len(), 2, "exactly one new login");
    assert_eq!(got[2].header("x-auth-token"), Some(tokens[1].as_str()), "sent again with the new token");
    assert_eq!(got[0].body, got[2].body, "the same call");
}

#[tokio::test]
async fn wazo_webhookd_call_events_follow_the_dial_to_its_end() {
    let app = spawn(&[("x", &wazo(WAZO_PASSWORD, "events: {secret: s3cret-wazo}\n"))]).await;
    app.pbx.notify_to(&format!("{}/v1/events/x?secret=s3cret-wazo", app.url), Duration::from_millis(50));
    let mut events = app.events("branch=x", None).await;
    let (_, body) = app.post(dial("201", "02079460000")).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let e = events.next(Duration::from_secs(10)).await.expect("webhookd's event").data;
        assert_eq!(e["dial_id"], body["id"], "tied to the dial by calld's call_id: {e}");
        assert_eq!((e["call_id"].as_str(), e["remote"].as_str()), (body["call_id"].as_str(), Some("02079460000")));
        seen.push(e["type"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, ["ringing", "answered", "ended"]);
    let resp = app.client.get(format!("{}/v1/calls/{}", app.url, body["id"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["state"], "ended");
}

#[tokio::test]
async fn wazo_a_hanging_calld_is_a_timeout_sent_once_and_a_hanging_login_a_failed_login() {
    let app = spawn(&[("x", &wazo(WAZO_PASSWORD, "timeout: 300ms\n"))]).await;
    assert_eq!(app.post(dial("201", "02079460000")).await.0, 200);
    app.pbx.set_behaviour(Behaviour::Hang);
    let before = app.received().len();
    let (code, body) = app.post(dial("201", "02079460001")).await;
    assert_eq!((code, body["status"].as_str()), (504, Some("timeout")), "{body}");
    assert_eq!(paths(&app.received().split_off(before)), [format!("POST {CALLS}")], "once, and no new login");

    let fresh = spawn(&[("x", &wazo(WAZO_PASSWORD, "timeout: 300ms\n"))]).await;
    fresh.pbx.set_behaviour(Behaviour::Hang);
    let (code, body) = fresh.post(dial("201", "02079460000")).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{body}");
    assert!(body["message"].as_str().unwrap().starts_with("login: "), "{body}");
    assert_eq!(paths(&fresh.received()), [format!("POST {TOKEN}")]);
}

#[tokio::test]
async fn wazo_a_dry_run_sends_nothing_not_even_a_login() {
    let body = dry_run_sends_nothing(&wazo(WAZO_PASSWORD, "")).await;
    assert_eq!(body["request"]["headers"]["x-auth-token"], "***", "{body}");
}

//! Presets for baresip, Yeastar S-Series and Vodia, each against its
//! stand-in: the exact request the system received, accepted with its call
//! id where it gives one, each documented refusal `rejected` in the
//! system's words, a hanging system `timeout`, login and token expiry where
//! the system has them; a dry run sends nothing. (baresip against the real
//! program: `real_baresip`.)

use serde_json::{Value, json};
use webdial::standin::{Behaviour, Received};

use crate::helpers::{App, read, spawn};

pub(crate) async fn action(app: &App, action: &str, body: Value) -> (u16, Value) {
    read(app.client.post(format!("{}/v1/actions/{action}", app.url)).json(&body).send().await.expect("action")).await
}

fn status(answer: &(u16, Value)) -> (u16, Option<&str>) {
    (answer.0, answer.1["status"].as_str())
}

async fn dry_run_sends_nothing(profile: &str) {
    let app = spawn(&[("x", profile)]).await;
    let answer = app.post(json!({"branch": "x", "extension": "201", "number": "02079460000", "dry_run": true})).await;
    assert_eq!(status(&answer), (200, Some("dry_run")), "{}", answer.1);
    assert!(app.received().is_empty(), "a dry run sends nothing, not even a login: {:#?}", app.received());
}

async fn hanging_is_a_timeout(profile: &str) {
    let app = spawn(&[("x", &format!("{profile}timeout: 300ms\n"))]).await;
    app.pbx.set_behaviour(Behaviour::Hang);
    let answer = app.post(json!({"branch": "x", "extension": "201", "number": "02079460000"})).await;
    assert_eq!(status(&answer), (504, Some("timeout")), "{}", answer.1);
}

// ---- baresip ------------------------------------------------------------------

fn baresip(domain: &str) -> String {
    format!("extends: presets/baresip.yaml\nvars: {{scheme: http, host: PBXHOST, domain: \"{domain}\"}}\n")
}

fn path_and_query(r: &Received) -> String {
    format!("{} {}?{}", r.method, r.path, r.query.as_deref().unwrap_or(""))
}

#[tokio::test]
async fn baresip_dials_the_number_at_the_domain_with_at_sign_and_space_escaped() {
    let app = spawn(&[("x", &baresip("pbx.example.com:5060"))]).await;
    let answer = app.post(json!({"branch": "x", "extension": "201", "number": "+44 20 7946 0000"})).await;
    assert_eq!(status(&answer), (200, Some("accepted")), "{}", answer.1);
    let got = app.only_request();
    assert_eq!(path_and_query(&got), "GET /raw/?/dial%20sip%3A%2B442079460000%40pbx.example.com%3A5060");
    assert_eq!(got.authorization, None);
    // The call id baresip printed.
    let id = answer.1["call_id"].as_str().unwrap_or_default().to_string();
    assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{}", answer.1);
}

#[tokio::test]
async fn baresip_without_a_domain_sends_the_number_alone() {
    let app = spawn(&[("x", &baresip(""))]).await;
    let answer = app.post(json!({"branch": "x", "extension": "201", "number": "02079460000"})).await;
    assert_eq!(status(&answer), (200, Some("accepted")), "{}", answer.1);
    assert_eq!(path_and_query(&app.only_request()), "GET /raw/?/dial%2002079460000");
}

#[tokio::test]
async fn baresip_refusals_are_rejected_with_its_output() {
    let app = spawn(&[("x", &baresip("pbx.example.com"))]).await;
    let answer = app.post(json!({"branch": "x", "extension": "201", "number": "9001"})).await;
    assert_eq!(status(&answer), (502, Some("rejected")), "{}", answer.1);
    assert_eq!(
        answer.1["message"],
        "call uri: sip:9001@pbx.example.com; ua_connect failed: Connection refused; err: Connection refused"
    );
    assert_eq!(answer.1["call_id"], Value::Null);
}

#[tokio::test]
async fn baresip_a_page_without_an_err_line_is_accepted_as_baresip_1_0_answers() {
    let app = spawn(&[("x", &baresip("pbx.example.com"))]).await;
    app.pbx.set_behaviour(Behaviour::Fixed { status: 200, content_type: "text/plain".into(), body: String::new() });
    let answer = app.post(json!({"branch": "x", "extension": "201", "number": "02079460000"})).await;
    assert_eq!(status(&answer), (200, Some("accepted")), "{}", answer.1);
    assert_eq!(answer.1["call_id"], Value::Null);
}

#[tokio::test]
async fn baresip_hangup_hold_unhold_dtmf_and_transfer_send_the_menu_commands() {
    let app = spawn(&[("x", &baresip("pbx.example.com"))]).await;
    let cases = [
        ("hangup", json!({"branch": "x", "extension": "201"}), "GET /raw/?/hangup"),
        ("hold", json!({"branch": "x", "extension": "201"}), "GET /raw/?/hold"),
        ("unhold", json!({"branch": "x", "extension": "201"}), "GET /raw/?/resume"),
        ("dtmf", json!({"branch": "x", "extension": "201", "digits": "12#"}), "GET /raw/?/sndcode%2012%23"),
        (
            "transfer",
            json!({"branch": "x", "extension": "201", "number": "202"}),
            "GET /raw/?/transfer%20sip%3A202%40pbx.example.com",
        ),
    ];
    for (i, (name, body, sent)) in cases.into_iter().enumerate() {
        let answer = action(&app, name, body).await;
        assert_eq!(status(&answer), (200, Some("accepted")), "{name}: {}", answer.1);
        let got = app.received();
        assert_eq!(got.len(), i + 1, "{name}: one request each");
        assert_eq!(path_and_query(&got[i]), sent, "{name}");
    }
}

#[tokio::test]
async fn baresip_an_unknown_command_is_rejected() {
    let profile = format!(
        "{}actions:\n  nope:\n    url: \"http://PBXHOST/raw/?/nope\"\n    response: {{format: text, ok: \"'err: Success' in raw\", message: raw}}\n",
        baresip("")
    );
    let app = spawn(&[("x", &profile)]).await;
    let answer = action(&app, "nope", json!({"branch": "x", "extension": "201"})).await;
    assert_eq!(status(&answer), (502, Some("rejected")), "{}", answer.1);
    assert_eq!(answer.1["message"], "command not found (nope)\nerr: Operation not supported");
}

#[tokio::test]
async fn baresip_hanging_is_a_timeout_and_a_dry_run_sends_nothing() {
    hanging_is_a_timeout(&baresip("pbx.example.com")).await;
    dry_run_sends_nothing(&baresip("pbx.example.com")).await;
}

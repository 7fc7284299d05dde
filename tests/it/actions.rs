//! Actions other than dial, and the ways a request can ask for one: the
//! routes, HEAD, `dry_run` values, unknown actions and paths, `/healthz`.

use serde_json::json;
use webdial::standin::Behaviour;

use crate::helpers::{VOISPEED, read, spawn};

/// A branch with a dial and a hangup (VOIspeed's `call_action`), and a custom action.
const WITH_ACTIONS: &str = r#"
extends: presets/voispeed.yaml
vars: {scheme: http, host: PBXHOST, token: demo-token}
hangup:
  url: "http://PBXHOST/PBX/seri_endpoint.php?service=call_action&token={{ token }}&ext={{ extension }}&call_id={{ call_id }}&action=disconnect"
  response: {format: xml, ok: "outcome == '0'", message: error}
dtmf: "http://PBXHOST/PBX/seri_endpoint.php?service=call_action&ext=^&action=dtmf"
actions:
  dnd_on:
    url: "http://PBXHOST/PBX/seri_endpoint.php?service=set_user_mode&token={{ token }}&ext={{ extension }}&mode=2"
    response: {format: xml, ok: "outcome == '0'", message: error}
"#;

#[tokio::test]
async fn a_hangup_sends_the_call_id_and_needs_one() {
    let app = spawn(&[("m", WITH_ACTIONS)]).await;
    let url = format!("{}/v1/actions/hangup", app.url);
    let resp = app.client.post(&url).json(&json!({"branch": "m", "extension": "35"})).send().await.unwrap();
    let (code, body) = read(resp).await;
    assert_eq!((code, body["status"].as_str()), (400, Some("invalid_request")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("call_id"), "{body}");
    assert!(app.received().is_empty(), "a refused action never reaches the PBX");

    let body = json!({"branch": "m", "extension": "35", "call_id": "3250&action=transfer"});
    let (code, body) = read(app.client.post(&url).json(&body).send().await.unwrap()).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["action"], "hangup");
    let got = app.only_request();
    assert_eq!(got.param("call_id").as_deref(), Some("3250&action=transfer"), "encoded, never a new parameter");
    assert_eq!(got.param("action").as_deref(), Some("disconnect"));
    assert_eq!(got.param("service").as_deref(), Some("call_action"));
}

#[tokio::test]
async fn get_and_post_reach_custom_actions_and_v1_dial_is_the_dial_action() {
    let app = spawn(&[("m", WITH_ACTIONS)]).await;
    let resp = app.client.get(format!("{}/v1/actions/dnd_on?branch=m&ext=35", app.url)).send().await.unwrap();
    let (code, body) = read(resp).await;
    assert_eq!((code, body["action"].as_str()), (200, Some("dnd_on")), "{body}");
    assert_eq!(app.only_request().param("service").as_deref(), Some("set_user_mode"));

    let resp = app.client.get(format!("{}/v1/actions/dial?branch=m&ext=36&number=187", app.url)).send().await.unwrap();
    let (code, body) = read(resp).await;
    assert_eq!((code, body["action"].as_str()), (200, Some("dial")), "{body}");
    let (code, same) = app.get("branch=m&ext=36&number=187").await;
    assert_eq!(code, 200);
    assert_eq!(same["duplicate"], true, "/v1/dial and /v1/actions/dial are one action: {same}");
    assert_eq!(app.received().len(), 2);
}

#[tokio::test]
async fn an_undefined_action_is_unknown_action_and_names_the_ones_there_are() {
    let app = spawn(&[("m", WITH_ACTIONS)]).await;
    let resp = app.client.post(format!("{}/v1/actions/transfer", app.url)).json(&json!({"branch": "m"})).send();
    let (code, body) = read(resp.await.unwrap()).await;
    assert_eq!((code, body["status"].as_str()), (404, Some("unknown_action")), "{body}");
    let msg = body["message"].as_str().unwrap();
    assert!(msg.contains("\"transfer\"") && msg.contains("hangup") && msg.contains("dnd_on"), "{msg}");
    assert!(app.received().is_empty());
}

#[tokio::test]
async fn a_dial_with_and_without_a_hangup_in_the_window_are_different_requests() {
    let app = spawn(&[("m", WITH_ACTIONS)]).await;
    let (code, _) = app.post(json!({"branch": "m", "extension": "35", "number": "187"})).await;
    assert_eq!(code, 200);
    let body = json!({"branch": "m", "extension": "35", "number": "187", "call_id": "1"});
    let (code, hung) =
        read(app.client.post(format!("{}/v1/actions/hangup", app.url)).json(&body).send().await.unwrap()).await;
    assert_eq!(code, 200, "{hung}");
    assert!(hung.get("duplicate").is_none(), "the duplicate key includes the action: {hung}");
    assert_eq!(app.received().len(), 2);
}

#[tokio::test]
async fn digits_are_checked_before_anything_is_sent() {
    let dtmf = "dial: \"http://PBXHOST/x?to=#\"\ndtmf:\n  url: \"http://PBXHOST/PBX/dtmf.php?d={{ digits }}&ext={{ extension }}\"\n";
    let app = spawn(&[("m", dtmf)]).await;
    let url = format!("{}/v1/actions/dtmf", app.url);
    let post =
        |digits: &str| app.client.post(&url).json(&json!({"branch": "m", "extension": "35", "digits": digits})).send();
    let (code, body) = read(post("12x").await.unwrap()).await;
    assert_eq!((code, body["status"].as_str()), (400, Some("invalid_request")), "{body}");
    assert!(app.received().is_empty());
    let _ = read(post("12#").await.unwrap()).await;
    assert_eq!(app.only_request().query.as_deref(), Some("d=12%23&ext=35"));
}

#[tokio::test]
async fn head_never_dials() {
    let app = spawn(&[("m", VOISPEED)]).await;
    for path in ["/v1/dial?branch=m&ext=35&number=187", "/v1/actions/dial?branch=m&ext=35&number=187"] {
        let resp = app.client.head(format!("{}{path}", app.url)).send().await.unwrap();
        assert!(!resp.status().is_success(), "{path}: {}", resp.status());
    }
    assert!(app.received().is_empty(), "HEAD reached the PBX: {:?}", app.received());
}

#[tokio::test]
async fn dry_run_with_no_value_or_empty_is_a_dry_run_and_junk_is_refused() {
    let app = spawn(&[("m", VOISPEED)]).await;
    for q in ["&dry_run", "&dry_run=", "&dry_run=1", "&dry_run=YES", "&dry_run=true"] {
        let (code, body) = app.get(&format!("branch=m&ext=35&number=187{q}")).await;
        assert_eq!((code, body["status"].as_str()), (200, Some("dry_run")), "{q}: {body}");
    }
    let (code, body) = app.get("branch=m&ext=35&number=187&dry_run=maybe").await;
    assert_eq!((code, body["status"].as_str()), (400, Some("invalid_request")), "{body}");
    let (code, body) = app.post(json!({"branch": "m", "extension": "35", "number": "187", "dry_run": "yes"})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("dry_run")), "{body}");
    assert!(app.received().is_empty(), "no dry run reaches the PBX");
    let (code, _) = app.get("branch=m&ext=35&number=187&dry_run=no").await;
    assert_eq!(code, 200);
    assert_eq!(app.received().len(), 1, "dry_run=no is a real dial");
}

#[tokio::test]
async fn a_parameter_given_twice_is_refused_not_guessed() {
    let app = spawn(&[("m", VOISPEED)]).await;
    let (code, body) = app.get("branch=m&ext=35&number=187&number=0909").await;
    assert_eq!((code, body["status"].as_str()), (400, Some("invalid_request")), "{body}");
    assert!(app.received().is_empty());
}

#[tokio::test]
async fn an_unknown_path_is_404_and_names_the_path() {
    let app = spawn(&[("m", VOISPEED)]).await;
    let (code, body) = read(app.client.get(format!("{}/v2/nothing", app.url)).send().await.unwrap()).await;
    assert_eq!(code, 404, "{body}");
    let msg = body["message"].as_str().unwrap();
    assert!(msg.contains("/v2/nothing") && !msg.contains("branch \"\""), "{msg}");
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let app = spawn(&[("m", VOISPEED)]).await;
    app.pbx.set_behaviour(Behaviour::Faithful);
    let resp = app.client.get(format!("{}/healthz", app.url)).send().await.unwrap();
    assert!(resp.headers().get("x-request-id").is_some_and(|v| v.len() == 26), "{:?}", resp.headers());
}

#[tokio::test]
async fn healthz_names_the_branches_that_failed_to_load() {
    let pbx = webdial::standin::StandIn::bind("127.0.0.1:0").await.unwrap();
    let dir = crate::helpers::write_config(&pbx.url(), &[("good", VOISPEED), ("bad", "dial: \"http://h/?to=\"\n")]);
    let env = |_: &str| None;
    let loaded = webdial::app::load(&dir.path().join("webdial.yaml"), true, &env);
    assert_eq!(loaded.diagnostics.len(), 1, "{:?}", loaded.diagnostics);
    let gw = webdial::app::build(loaded.settings.unwrap(), loaded.profiles).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/healthz", listener.local_addr().unwrap());
    tokio::spawn(webdial::app::serve(gw, listener, std::future::pending(), std::time::Duration::from_secs(1)));
    let (code, body) = read(reqwest::get(&url).await.unwrap()).await;
    assert_eq!((code, body["branches"].as_u64()), (200, Some(1)), "{body}");
    let why = body["failed"]["bad"].as_str().unwrap_or_default();
    assert!(why.contains("bad.yaml:1:") && why.contains("no `#`"), "{body}");
}

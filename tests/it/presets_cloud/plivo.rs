//! `presets/plivo.yaml` against the Plivo stand-in.

use serde_json::json;
use webdial::standin::{PLIVO_AUTH_ID as ID, PLIVO_AUTH_TOKEN as TOKEN, plivo_signature_v2};

use super::*;

const ENV: &[(&str, &str)] = &[("PL_TOKEN", TOKEN)];
const ANSWER_URL: &str = "https://xml.example/dial.php";

fn profile(public_url: &str) -> String {
    format!(
        "extends: presets/plivo.yaml\nvars: {{scheme: http, host: PBXHOST, auth_id: {ID}, auth_token: \"${{PL_TOKEN}}\", from_number: \"+442079460000\", answer_url: \"{ANSWER_URL}\", public_url: \"{public_url}\"}}\n"
    )
}

const CALL: &str = "/v1/Account/MADEMOPLIVOAUTHID000/Call/";

#[tokio::test]
async fn plivo_calls_the_extension_with_an_answer_url_that_names_the_number() {
    let app = spawn_with_env(&[("x", &profile("https://gw.example.com"))], ENV).await;
    let (code, answer) = app.post(dial("+442079460201", "+442079460999")).await;
    accepted(code, &answer);
    let got = app.only_request();
    assert_eq!((got.method.as_str(), got.path.as_str(), got.query.as_deref()), ("POST", CALL, None));
    assert_eq!(got.content_type.as_deref(), Some("application/json"));
    assert_eq!(got.authorization, Some(basic(ID, TOKEN)));
    let sent: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(
        sent,
        json!({
            "from": "+442079460000", "to": "+442079460201",
            "answer_url": "https://xml.example/dial.php?number=%2B442079460999", "answer_method": "GET",
            "ring_url": "https://gw.example.com/v1/events/x", "hangup_url": "https://gw.example.com/v1/events/x",
        })
    );
    let token = app.pbx.logins("plivo").issued()[0].clone();
    assert_eq!(answer["call_id"].as_str().map(|c| c.replace('-', "")), Some(token));
    assert_eq!(answer["pbx"]["http_status"], 201);

    // `cancel` takes the dial's request_uuid, while the call is not yet answered.
    let request = answer["call_id"].as_str().unwrap();
    let (code, r) = action(&app, "cancel", json!({"branch": "x", "call_id": request})).await;
    accepted(code, &r);
    let got = app.received().pop().unwrap();
    let path = format!("/v1/Account/{ID}/Request/{request}/");
    assert_eq!((got.method.as_str(), got.path.as_str(), got.body.as_str()), ("DELETE", path.as_str(), ""));
    assert_eq!(got.authorization, Some(basic(ID, TOKEN)));
}

#[tokio::test]
async fn plivo_refusals_are_rejected_with_plivos_words() {
    let app = spawn_with_env(
        &[
            ("x", &profile("https://gw.example.com")),
            ("w", &profile("https://gw.example.com").replace("${PL_TOKEN}", "no")),
        ],
        ENV,
    )
    .await;
    let (code, answer) = app.post(dial("+9123", "+442079460999")).await;
    rejected(code, &answer, 400, "invalid 'to' number: +9123");
    let (code, answer) =
        app.post(json!({"branch": "w", "extension": "+442079460201", "number": "+442079460999"})).await;
    rejected(code, &answer, 401, "Authentication failed");
    let (code, answer) = action(&app, "hangup", json!({"branch": "x", "call_id": "0000-gone"})).await;
    rejected(code, &answer, 404, "not found");
    assert_eq!(app.received().len(), 3);
}

#[tokio::test]
async fn plivo_hanging_is_a_timeout_and_a_dry_run_sends_nothing() {
    hanging_is_a_timeout(&profile("https://gw.example.com"), ENV, "+442079460201").await;
    let shown = dry_run_sends_nothing(&profile("https://gw.example.com"), ENV, "+442079460201").await;
    assert!(!shown.to_string().contains(TOKEN), "{shown}");
}

#[tokio::test]
async fn plivo_callbacks_are_checked_by_the_v2_signature_and_give_the_call_uuid_hangup_uses() {
    let app = spawn_called_back(&profile("GATEWAY").replace("${PL_TOKEN}", TOKEN), ENV).await;
    let mut events = app.events("branch=x", None).await;
    let (code, answer) = app.post(dial("+442079460201", "+442079460999")).await;
    accepted(code, &answer);
    let (id, request) = (answer["id"].as_str().unwrap(), answer["call_id"].as_str().unwrap());
    let call_uuid = {
        let t = &app.pbx.logins("plivo-calls").issued()[0];
        format!("{}-{}-{}-{}-{}", &t[0..8], &t[8..12], &t[12..16], &t[16..20], &t[20..32])
    };
    for want in ["ringing", "ended"] {
        let e = events.next(WAIT).await.expect("a callback, as an event").data;
        assert_eq!((e["type"].as_str(), e["call_id"].as_str()), (Some(want), Some(call_uuid.as_str())), "{e}");
        assert_eq!((e["direction"].as_str(), e["extension"].as_str()), (Some("out"), Some("+442079460201")), "{e}");
        assert_eq!(e["dial_id"], id, "found by its RequestUUID ({request}): {e}");
    }
    // Hanging up the dial: the CallUUID its events gave.
    let (code, r) = on_call(&app, id, "hangup").await;
    accepted(code, &r);
    let got = app.received().pop().unwrap();
    assert_eq!((got.method.as_str(), got.path.as_str()), ("DELETE", format!("{CALL}{call_uuid}/").as_str()));
    assert_eq!(got.authorization, Some(basic(ID, TOKEN)));

    // Signed with another token, or over another nonce: 401.
    let url = format!("{}/v1/events/x", app.url);
    let body = format!("CallUUID={call_uuid}&CallStatus=completed&Direction=outbound");
    let forged = plivo_signature_v2("another-token", &url, "1");
    let other_nonce = plivo_signature_v2(TOKEN, &url, "2");
    for (sig, nonce) in [(forged.as_str(), "1"), (other_nonce.as_str(), "1"), ("", "")] {
        let headers = [("x-plivo-signature-v2", sig), ("x-plivo-signature-v2-nonce", nonce)];
        assert_eq!(app.notify_post("x", "application/x-www-form-urlencoded", &body, &headers).await.0, 401);
    }
    assert!(events.next(Duration::from_millis(300)).await.is_none(), "no subscriber saw those");
}

//! `presets/telnyx.yaml` against the Telnyx stand-in.

use serde_json::json;
use webdial::standin::{TELNYX_API_KEY as KEY, TELNYX_CONNECTION_ID as CONNECTION, telnyx_public_key, telnyx_sign};

use super::*;

const ENV: &[(&str, &str)] = &[("TX_KEY", KEY)];

fn profile(vars: &str) -> String {
    format!(
        "extends: presets/telnyx.yaml\nvars: {{scheme: http, host: PBXHOST, api_key: \"${{TX_KEY}}\", connection_id: \"{CONNECTION}\", from_number: \"+442079460000\"{vars}}}\n"
    )
}

fn body(r: &Received) -> Value {
    serde_json::from_str(&r.body).unwrap()
}

#[tokio::test]
async fn telnyx_dials_the_extension_from_the_application_with_the_number_as_client_state() {
    let app = spawn_with_env(&[("x", &profile(""))], ENV).await;
    let (code, answer) = app.post(dial("+442079460201", "+442079460999")).await;
    accepted(code, &answer);
    let got = app.only_request();
    assert_eq!((got.method.as_str(), got.path.as_str(), got.query.as_deref()), ("POST", "/v2/calls", None));
    assert_eq!(got.content_type.as_deref(), Some("application/json"));
    assert_eq!(got.authorization, Some(format!("Bearer {KEY}")));
    let number = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "+442079460999");
    assert_eq!(
        body(&got),
        json!({"connection_id": CONNECTION, "to": "+442079460201", "from": "+442079460000", "client_state": number})
    );
    let id = format!("v3:{}", app.pbx.logins("telnyx").issued()[0]);
    assert_eq!(answer["call_id"], id.as_str());
    assert!(!answer.to_string().contains(KEY), "{answer}");
}

#[tokio::test]
async fn telnyx_refusals_are_rejected_with_telnyxs_words() {
    let app = spawn_with_env(&[("x", &profile("")), ("w", &profile("").replace("${TX_KEY}", "KEYwrong"))], ENV).await;
    let (code, answer) = app.post(dial("+9123", "+442079460999")).await;
    rejected(code, &answer, 422, "The destination number +9123 is invalid.");
    let (code, answer) =
        app.post(json!({"branch": "w", "extension": "+442079460201", "number": "+442079460999"})).await;
    rejected(code, &answer, 401, "The API key is invalid.");
    let (code, answer) = action(&app, "hangup", json!({"branch": "x", "extension": "201", "call_id": "v3:gone"})).await;
    rejected(code, &answer, 422, "This call is no longer active and can't receive commands.");
    assert_eq!(app.received().len(), 3);
}

#[tokio::test]
async fn telnyx_hanging_is_a_timeout_and_a_dry_run_sends_nothing() {
    hanging_is_a_timeout(&profile(""), ENV, "+442079460201").await;
    let shown = dry_run_sends_nothing(&profile(""), ENV, "+442079460201").await;
    assert_eq!(shown["request"]["headers"]["authorization"], "Bearer ***", "{shown}");
}

#[tokio::test]
async fn telnyx_commands_act_on_the_call_control_id() {
    let app = spawn_with_env(&[("x", &profile(""))], ENV).await;
    let (_, answer) = app.post(dial("+442079460201", "+442079460999")).await;
    let (id, call) = (answer["id"].as_str().unwrap(), answer["call_id"].as_str().unwrap().to_string());
    let (code, r) = on_call(&app, id, "transfer").await;
    assert_eq!(code, 400, "transfer needs a number: {r}");
    for (action, extra, path, sent) in [
        (
            "transfer",
            json!({"number": "+442079460999"}),
            "transfer",
            json!({"to": "+442079460999", "from": "+442079460000"}),
        ),
        ("dtmf", json!({"digits": "12#"}), "send_dtmf", json!({"digits": "12#"})),
        ("hangup", json!({}), "hangup", json!({})),
    ] {
        let mut b = json!({"branch": "x", "extension": "+442079460201", "call_id": call});
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (code, r) = super::action(&app, action, b).await;
        accepted(code, &r);
        let got = app.received().pop().unwrap();
        // The id as one path segment: its `:` percent-encoded.
        assert_eq!(got.path, format!("/v2/calls/{}/actions/{path}", call.replace(':', "%3A")), "{action}");
        assert_eq!((got.method.as_str(), body(&got)), ("POST", sent), "{action}");
        assert_eq!(got.authorization, Some(format!("Bearer {KEY}")));
    }
}

#[tokio::test]
async fn telnyx_webhooks_are_checked_by_their_ed25519_signature_and_move_the_dial() {
    let public = telnyx_public_key();
    let app = spawn_with_env(&[("x", &profile(&format!(", public_key: \"{public}\"")))], ENV).await;
    app.pbx.notify_to(&format!("{}/v1/events/x", app.url), Duration::from_millis(50));
    let mut events = app.events("branch=x", None).await;
    let (code, answer) = app.post(dial("+442079460201", "+442079460999")).await;
    accepted(code, &answer);
    let (id, call) = (answer["id"].as_str().unwrap(), answer["call_id"].as_str().unwrap());
    for want in ["dialling", "answered", "ended"] {
        let e = events.next(WAIT).await.expect("a webhook, as an event").data;
        assert_eq!((e["type"].as_str(), e["call_id"].as_str()), (Some(want), Some(call)), "{e}");
        assert_eq!((e["direction"].as_str(), e["extension"].as_str()), (Some("out"), Some("+442079460201")), "{e}");
        assert_eq!(e["dial_id"], id, "{e}");
    }
    let record = read(app.client.get(format!("{}/v1/calls/{id}", app.url)).send().await.unwrap()).await.1;
    assert_eq!(record["state"], "ended", "{record}");

    // Signed by another key, over another timestamp, too old, or not at all: 401.
    let hook = json!({"data": {"event_type": "call.answered", "payload": {"call_control_id": call}}}).to_string();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
    let fresh = telnyx_sign(&now, &hook);
    let headers = [("telnyx-signature-ed25519", fresh.as_str()), ("telnyx-timestamp", now.as_str())];
    let sent = app.notify_post("x", "application/json", &hook, &headers).await;
    assert_eq!(sent.0, 200, "the same signing, fresh, is taken: {}", sent.1);
    assert_eq!(events.next(WAIT).await.expect("the event").data["type"], "answered");
    let replayed = telnyx_sign("1700000000", &hook);
    let other = webdial::template::ed25519_sign(&[7; 32], &format!("{now}|{hook}")).0;
    let ours = webdial::template::ed25519_sign(&[0; 32], "").0; // not the stand-in's either
    for headers in [
        vec![("telnyx-signature-ed25519", replayed.as_str()), ("telnyx-timestamp", "1700000000")],
        vec![("telnyx-signature-ed25519", other.as_str()), ("telnyx-timestamp", now.as_str())],
        vec![("telnyx-signature-ed25519", ours.as_str()), ("telnyx-timestamp", now.as_str())],
        vec![],
    ] {
        assert_eq!(app.notify_post("x", "application/json", &hook, &headers).await.0, 401, "{headers:?}");
    }
    assert!(events.next(Duration::from_millis(300)).await.is_none(), "no subscriber saw those");
}

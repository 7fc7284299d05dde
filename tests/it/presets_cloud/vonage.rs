//! `presets/vonage.yaml` against the Vonage stand-in: each request carries
//! a fresh RS256 JWT the stand-in checks with the application's key.

use serde_json::json;
use webdial::standin::{VONAGE_APPLICATION_ID as APP, VONAGE_PRIVATE_KEY as KEY};

use super::*;

const ENV: &[(&str, &str)] = &[("VG_KEY", KEY)];

fn profile(rest: &str) -> String {
    format!(
        "extends: presets/vonage.yaml\nvars: {{scheme: http, host: PBXHOST, application_id: {APP}, private_key: \"${{VG_KEY}}\", from_number: \"+442079460000\"}}\n{rest}"
    )
}

fn claims(r: &Received) -> Value {
    let jwt = r.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer ")).expect("a bearer JWT");
    webdial::template::jwt_rs256_claims(jwt, KEY).expect("signed RS256 by the application's key")
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn vonage_calls_the_extension_with_an_ncco_that_connects_the_number_on_a_fresh_jwt() {
    let app = spawn_with_env(&[("x", &profile(""))], ENV).await;
    let (code, answer) = app.post(dial("+442079460201", "+442079460999")).await;
    accepted(code, &answer);
    let (code, second) = app.post(dial("+442079460202", "+442079460999")).await;
    accepted(code, &second);
    let got = app.received();
    assert_eq!(got.len(), 2);
    let first = &got[0];
    assert_eq!((first.method.as_str(), first.path.as_str()), ("POST", "/v1/calls"));
    assert_eq!(first.content_type.as_deref(), Some("application/json"));
    let body: Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(
        body,
        json!({
            "to": [{"type": "phone", "number": "442079460201"}],
            "from": {"type": "phone", "number": "442079460000"},
            "ncco": [{"action": "connect", "from": "442079460000", "endpoint": [{"type": "phone", "number": "442079460999"}]}],
        })
    );
    let (a, b) = (claims(&got[0]), claims(&got[1]));
    assert_eq!(a["application_id"], APP);
    let iat = a["iat"].as_u64().unwrap();
    assert!(iat.abs_diff(now()) < 10, "{a}");
    assert_eq!(a["exp"].as_u64(), Some(iat + webdial::template::JWT_LIFETIME_SECS), "{a}");
    assert_ne!(a["jti"], b["jti"], "each request has its own token");
    let uuid = app.pbx.logins("vonage").issued()[0].clone();
    assert_eq!(answer["call_id"].as_str().map(|c| c.replace('-', "")), Some(uuid));
    assert!(!answer.to_string().contains("eyJ"), "no JWT in the answer: {answer}");
}

#[tokio::test]
async fn vonage_refusals_are_rejected_with_vonages_words() {
    let other_app = profile("").replace(APP, "00000000-0000-0000-0000-000000000000");
    let app = spawn_with_env(&[("x", &profile("")), ("w", &other_app)], ENV).await;
    let (code, answer) = app.post(dial("+9123", "+442079460999")).await;
    rejected(code, &answer, 400, "Invalid number: 9123");
    let (code, answer) =
        app.post(json!({"branch": "w", "extension": "+442079460201", "number": "+442079460999"})).await;
    rejected(code, &answer, 401, "Invalid Token: unknown application_id");
    let (code, answer) = action(&app, "hangup", json!({"branch": "x", "call_id": "gone"})).await;
    rejected(code, &answer, 404, "Call gone was not found");
    assert_eq!(app.received().len(), 3);
}

#[tokio::test]
async fn vonage_a_key_that_cannot_be_read_refuses_the_dial_and_sends_nothing() {
    // It loads (a preset must, with sample values), and says why at once.
    let app = spawn_with_env(&[("x", &profile(""))], &[("VG_KEY", "unreadable-vonage-key-5f3a")]).await;
    for dry_run in [true, false] {
        let (code, answer) = app
            .post(json!({"branch": "x", "extension": "+442079460201", "number": "+442079460999", "dry_run": dry_run}))
            .await;
        assert_eq!((code, answer["status"].as_str()), (400, Some("invalid_request")), "{answer}");
        let message = answer["message"].as_str().unwrap_or("");
        assert!(message.contains("jwt_rs256: the private key is not a PEM block"), "{answer}");
        assert!(!answer.to_string().contains("unreadable-vonage-key-5f3a"), "the key is not shown: {answer}");
    }
    assert!(app.received().is_empty());
}

#[tokio::test]
async fn vonage_hanging_is_a_timeout_and_a_dry_run_sends_nothing() {
    hanging_is_a_timeout(&profile(""), ENV, "+442079460201").await;
    let shown = dry_run_sends_nothing(&profile(""), ENV, "+442079460201").await;
    assert_eq!(shown["request"]["headers"]["authorization"], "Bearer ***", "{shown}");
}

#[tokio::test]
async fn vonage_hangup_transfer_and_dtmf_act_on_the_uuid_and_events_move_the_dial() {
    let app = spawn_with_env(&[("x", &profile("events: {secret: s3cret-vonage}\n"))], ENV).await;
    app.pbx.notify_to(&format!("{}/v1/events/x?secret=s3cret-vonage", app.url), Duration::from_millis(50));
    let mut events = app.events("branch=x", None).await;
    let (code, answer) = app.post(dial("+442079460201", "+442079460999")).await;
    accepted(code, &answer);
    let (id, call) = (answer["id"].as_str().unwrap(), answer["call_id"].as_str().unwrap().to_string());
    for want in ["dialling", "ringing", "answered", "ended"] {
        let e = events.next(WAIT).await.expect("an event").data;
        assert_eq!((e["type"].as_str(), e["call_id"].as_str()), (Some(want), Some(call.as_str())), "{e}");
        assert_eq!((e["direction"].as_str(), e["extension"].as_str()), (Some("out"), Some("442079460201")), "{e}");
        assert_eq!(e["dial_id"], id, "{e}");
    }
    let connect = json!([{"action": "connect", "from": "442079460000", "endpoint": [{"type": "phone", "number": "442079460888"}]}]);
    let cases = [
        (
            "transfer",
            json!({"number": "+442079460888"}),
            "",
            json!({"action": "transfer", "destination": {"type": "ncco", "ncco": connect}}),
        ),
        ("dtmf", json!({"digits": "1#"}), "/dtmf", json!({"digits": "1#"})),
        ("hangup", json!({}), "", json!({"action": "hangup"})),
    ];
    for (name, extra, tail, sent) in cases {
        let mut b = json!({"branch": "x", "extension": "+442079460201", "call_id": call});
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (code, r) = action(&app, name, b).await;
        accepted(code, &r);
        let got = app.received().pop().unwrap();
        assert_eq!((got.method.as_str(), got.path.clone()), ("PUT", format!("/v1/calls/{call}{tail}")), "{name}");
        assert_eq!(serde_json::from_str::<Value>(&got.body).unwrap(), sent, "{name}");
        assert_eq!(claims(&got)["application_id"], APP);
    }
}

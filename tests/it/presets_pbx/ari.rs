//! `presets/asterisk-ari.yaml` against the ARI stand-in.

use serde_json::json;
use webdial::standin::{ARI_PASSWORD, ARI_USER};

use super::{action, basic, dial, dry_run_sends_nothing, hanging_pbx_is_a_timeout, outcome, pairs, param, query};
use crate::helpers::spawn;

fn ari(vars: &str) -> String {
    format!(
        "extends: presets/asterisk-ari.yaml\nvars: {{host: PBXHOST, user: {ARI_USER}, password: {ARI_PASSWORD}{vars}}}\n"
    )
}

#[tokio::test]
async fn ari_originates_into_the_dialplan_with_basic_auth_and_the_channel_id_it_chose() {
    let app = spawn(&[("x", &ari(""))]).await;
    let (code, body) = app
        .post(json!({"branch": "x", "extension": "201", "number": "+44 20 7946 0000", "caller_id": "02079460999"}))
        .await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.only_request();
    assert_eq!((got.method.as_str(), got.path.as_str()), ("POST", "/ari/channels"));
    assert_eq!(got.authorization.as_deref(), Some(basic(ARI_USER, ARI_PASSWORD).as_str()));
    assert_eq!(got.body, "", "every parameter is in the query");
    let mut q = query(&got);
    let channel_id = q.pop().unwrap();
    assert_eq!(
        q,
        pairs(&[
            ("endpoint", "PJSIP/201"),
            ("extension", "+442079460000"),
            ("context", "from-internal"),
            ("priority", "1"),
            ("callerId", "02079460999"),
        ])
    );
    assert_eq!(channel_id.0, "channelId");
    assert!(channel_id.1.starts_with("webdial-") && channel_id.1.len() == 40, "{channel_id:?}");
    assert!(got.query.as_deref().unwrap().contains("extension=%2B442079460000"), "a + is encoded: {:?}", got.query);
    assert_eq!(body["call_id"], channel_id.1, "the channel's id, as ARI answers it: {body}");
}

#[tokio::test]
async fn ari_hangs_up_a_dialled_channel_with_delete_but_dtmf_and_transfer_meet_the_stasis_trap() {
    let app = spawn(&[("x", &ari(""))]).await;
    let (_, body) = app.post(dial("201", "02079460000")).await;
    let id = body["call_id"].as_str().unwrap().to_string();

    let (code, answer) = action(&app, "dtmf", json!({"branch": "x", "call_id": id, "digits": "12#"})).await;
    assert_eq!(outcome(code, &answer), (502, "rejected".into(), "Channel not in Stasis application".into()));
    assert_eq!(answer["pbx"]["http_status"], 409, "{answer}");
    let (code, answer) = action(&app, "transfer", json!({"branch": "x", "call_id": id, "number": "202"})).await;
    assert_eq!(outcome(code, &answer), (502, "rejected".into(), "Channel not in Stasis application".into()));

    let (code, answer) = action(&app, "hangup", json!({"branch": "x", "call_id": id})).await;
    assert_eq!((code, answer["status"].as_str()), (200, Some("accepted")), "{answer}");
    let hangup = app.received().pop().unwrap();
    assert_eq!(
        (hangup.method.as_str(), hangup.path.as_str(), hangup.query.as_deref()),
        ("DELETE", &*format!("/ari/channels/{id}"), None)
    );
    assert_eq!(hangup.authorization.as_deref(), Some(basic(ARI_USER, ARI_PASSWORD).as_str()));
}

#[tokio::test]
async fn ari_with_a_stasis_app_the_channel_takes_dtmf_transfer_hold_and_unhold() {
    let app = spawn(&[("x", &ari(", app: webdial-calls, technology: SIP, context: sales"))]).await;
    let (code, body) = app.post(dial("201", "02079460000")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let originate = app.only_request();
    let keys: Vec<String> = query(&originate).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["endpoint", "app", "appArgs", "callerId", "channelId"], "no extension or context with an app");
    assert_eq!(param(&originate, "endpoint").as_deref(), Some("SIP/201"));
    assert_eq!(param(&originate, "app").as_deref(), Some("webdial-calls"));
    assert_eq!(param(&originate, "appArgs").as_deref(), Some("02079460000"));
    let id = body["call_id"].as_str().unwrap().to_string();

    let each = [
        ("dtmf", json!({"digits": "1*#"}), "POST", "dtmf", Some("dtmf=1*%23")),
        ("transfer", json!({"number": "+442079460001"}), "POST", "redirect", Some("endpoint=SIP/%2B442079460001")),
        ("hold", json!({}), "POST", "hold", None),
        ("unhold", json!({}), "DELETE", "hold", None),
    ];
    for (name, mut extra, method, verb, q) in each {
        extra["branch"] = json!("x");
        extra["call_id"] = json!(id);
        let (code, answer) = action(&app, name, extra).await;
        assert_eq!((code, answer["status"].as_str()), (200, Some("accepted")), "{name}: {answer}");
        let got = app.received().pop().unwrap();
        assert_eq!(
            (got.method.as_str(), got.path.as_str(), got.query.as_deref()),
            (method, &*format!("/ari/channels/{id}/{verb}"), q),
            "{name}"
        );
    }
}

#[tokio::test]
async fn ari_refusals_are_rejected_with_asterisks_words_and_status() {
    let app = spawn(&[("x", &ari(""))]).await;
    let (code, body) = app.post(dial("901", "02079460000")).await;
    assert_eq!(outcome(code, &body), (502, "rejected".into(), "Allocation failed".into()));
    assert_eq!(body["pbx"]["http_status"], 500, "{body}");
    let (code, body) = action(&app, "hangup", json!({"branch": "x", "call_id": "1765000000.99"})).await;
    assert_eq!(outcome(code, &body), (502, "rejected".into(), "Channel not found".into()));
    assert_eq!(body["pbx"]["http_status"], 404, "{body}");
    assert_eq!(app.received().len(), 2, "each refusal sent once");

    let wrong = spawn(&[(
        "x",
        &format!("extends: presets/asterisk-ari.yaml\nvars: {{host: PBXHOST, user: {ARI_USER}, password: nope}}\n"),
    )])
    .await;
    let (code, body) = wrong.post(dial("201", "02079460000")).await;
    assert_eq!(outcome(code, &body), (502, "rejected".into(), "Authentication required".into()));
    assert_eq!(body["pbx"]["http_status"], 401, "{body}");
    assert_eq!(wrong.received().len(), 1, "no session to renew: a 401 is not sent again");
}

#[tokio::test]
async fn ari_a_hanging_asterisk_is_a_timeout() {
    hanging_pbx_is_a_timeout(&format!("{}timeout: 300ms\n", ari(""))).await;
}

#[tokio::test]
async fn ari_a_dry_run_sends_nothing_and_masks_the_password() {
    let body = dry_run_sends_nothing(&ari("")).await;
    let shown = body.to_string();
    assert!(!shown.contains(ARI_PASSWORD), "{shown}");
    assert!(shown.contains("/ari/channels?endpoint=PJSIP/201"), "{shown}");
}

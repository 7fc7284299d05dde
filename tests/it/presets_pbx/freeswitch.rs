//! `presets/freeswitch.yaml` against the mod_xml_rpc stand-in.

use serde_json::json;
use webdial::standin::{FREESWITCH_PASSWORD, FREESWITCH_USER, Received};

use super::{action, basic, dial, dry_run_sends_nothing, hanging_pbx_is_a_timeout, outcome};
use crate::helpers::spawn;

const FS: &str = "extends: presets/freeswitch.yaml\nvars: {host: PBXHOST}\n";

/// The command's argument string as FreeSWITCH reads it: the query, URL-decoded once.
fn args(r: &Received) -> String {
    percent_encoding::percent_decode_str(r.query.as_deref().unwrap_or("")).decode_utf8().unwrap().into_owned()
}

#[tokio::test]
async fn freeswitch_originates_with_the_default_credentials_and_one_argument_string() {
    let app = spawn(&[("x", FS)]).await;
    let (code, body) = app.post(dial("201", "+44 20 7946 0000")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.only_request();
    assert_eq!((got.method.as_str(), got.path.as_str()), ("GET", "/api/originate"));
    assert_eq!(got.authorization.as_deref(), Some(basic("freeswitch", "works").as_str()));
    assert_eq!((FREESWITCH_USER, FREESWITCH_PASSWORD), ("freeswitch", "works"), "FreeSWITCH's shipped defaults");
    assert_eq!(got.query.as_deref(), Some("user/201%20%2B442079460000%20XML%20default"), "spaces as %20, + encoded");
    assert_eq!(args(&got), "user/201 +442079460000 XML default");
    let uuid = body["call_id"].as_str().unwrap();
    assert!(uuid.len() == 36 && uuid.matches('-').count() == 4, "the uuid after +OK: {body}");
}

#[tokio::test]
async fn freeswitch_a_caller_id_becomes_a_channel_variable_and_domain_and_context_reach_the_dial_string() {
    let profile = "extends: presets/freeswitch.yaml\nvars: {host: PBXHOST, user: webdial, password: s3cret, domain: leeds.example.com, context: public}\n";
    let app = spawn(&[("x", profile)]).await;
    let (code, body) = app
        .post(json!({"branch": "x", "extension": "201", "number": "02079460000", "caller_id": "+442079460999"}))
        .await;
    assert_eq!(outcome(code, &body), (502, "rejected".into(), "401 Unauthorized".into()), "wrong credentials: {body}");
    assert_eq!(body["pbx"]["http_status"], 401, "{body}");
    let got = app.only_request();
    assert_eq!(got.authorization.as_deref(), Some(basic("webdial", "s3cret").as_str()));
    assert_eq!(
        args(&got),
        "{origination_caller_id_number=+442079460999}user/201@leeds.example.com 02079460000 XML public",
        "raw query: {:?}",
        got.query
    );
}

#[tokio::test]
async fn freeswitch_err_in_a_200_is_rejected_with_the_cause() {
    let app = spawn(&[("x", FS)]).await;
    for (ext, cause) in [("901", "USER_NOT_REGISTERED"), ("801", "NO_ANSWER")] {
        let (code, body) = app.post(dial(ext, "02079460000")).await;
        assert_eq!(outcome(code, &body), (502, "rejected".into(), cause.into()), "{body}");
        assert_eq!(body["pbx"]["http_status"], 200, "{body}");
    }
    let (code, body) = action(&app, "hangup", json!({"branch": "x", "call_id": "0000-gone"})).await;
    assert_eq!(outcome(code, &body), (502, "rejected".into(), "No Such Channel!".into()), "{body}");
    let (code, body) = action(&app, "dtmf", json!({"branch": "x", "call_id": "0000-gone", "digits": "1"})).await;
    assert_eq!(outcome(code, &body), (502, "rejected".into(), "Cannot locate session!".into()), "{body}");
    assert_eq!(app.received().len(), 4, "each sent once");
}

#[tokio::test]
async fn freeswitch_hangup_transfer_dtmf_and_hold_act_on_the_dialled_uuid() {
    let app = spawn(&[("x", FS)]).await;
    let (_, body) = app.post(dial("201", "02079460000")).await;
    let uuid = body["call_id"].as_str().unwrap().to_string();
    let each = [
        (
            "transfer",
            json!({"number": "+442079460001"}),
            "/api/uuid_transfer",
            format!("{uuid} +442079460001 XML default"),
        ),
        ("dtmf", json!({"digits": "12#*"}), "/api/uuid_send_dtmf", format!("{uuid} 12#*")),
        ("hold", json!({}), "/api/uuid_hold", uuid.clone()),
        ("unhold", json!({}), "/api/uuid_hold", format!("off {uuid}")),
        ("hangup", json!({}), "/api/uuid_kill", uuid.clone()),
    ];
    for (name, mut extra, path, expected) in each {
        extra["branch"] = json!("x");
        extra["call_id"] = json!(uuid);
        let (code, answer) = action(&app, name, extra).await;
        assert_eq!((code, answer["status"].as_str()), (200, Some("accepted")), "{name}: {answer}");
        let got = app.received().pop().unwrap();
        assert_eq!((got.method.as_str(), got.path.as_str(), args(&got)), ("GET", path, expected), "{name}");
    }
}

#[tokio::test]
async fn freeswitch_a_call_id_cannot_add_an_argument() {
    let app = spawn(&[("x", FS)]).await;
    let (code, body) = action(&app, "transfer", json!({"branch": "x", "call_id": "abc -both", "number": "202"})).await;
    assert_eq!(outcome(code, &body), (502, "rejected".into(), "No Such Channel!".into()), "{body}");
    let got = app.only_request();
    assert_eq!(args(&got), "abc-both 202 XML default", "the space is dropped, not sent: {:?}", got.query);
}

#[tokio::test]
async fn freeswitch_a_hanging_originate_is_a_timeout() {
    hanging_pbx_is_a_timeout(&format!("{FS}dial: {{timeout: 300ms}}\n")).await;
}

#[tokio::test]
async fn freeswitch_a_dry_run_sends_nothing() {
    let body = dry_run_sends_nothing(FS).await;
    assert!(body.to_string().contains("/api/originate?user/201%20"), "{body}");
    assert!(!body.to_string().contains("works"), "the password is masked: {body}");
}

#[tokio::test]
async fn freeswitch_json_cdrs_end_the_dialled_call_and_say_how() {
    let profile = format!("{FS}events: {{secret: s3cret-fs}}\n");
    let app = spawn(&[("x", &profile)]).await;
    app.pbx.notify_to(&format!("{}/v1/events/x?secret=s3cret-fs", app.url), std::time::Duration::from_millis(50));
    let mut events = app.events("branch=x", None).await;
    let (_, body) = app.post(dial("201", "02079460000")).await;
    let e = events.next(std::time::Duration::from_secs(10)).await.expect("the leg's CDR").data;
    assert_eq!(e["dial_id"], body["id"], "tied to the dial by its uuid: {e}");
    assert_eq!((e["type"].as_str(), e["direction"].as_str()), (Some("ended"), Some("out")), "{e}");
    assert_eq!((e["call_id"].as_str(), e["remote"].as_str()), (body["call_id"].as_str(), Some("02079460000")));

    for (cause, kind) in [("USER_BUSY", "rejected"), ("NO_ANSWER", "missed")] {
        let cdr = json!({"variables": {"uuid": format!("leg-{cause}"), "direction": "inbound", "hangup_cause": cause}});
        let (code, _) = app.notify_post("x?secret=s3cret-fs", "application/json", &cdr.to_string(), &[]).await;
        assert_eq!(code, 200);
        let e = events.next(std::time::Duration::from_secs(10)).await.expect("event").data;
        assert_eq!((e["type"].as_str(), e["direction"].as_str()), (Some(kind), Some("in")), "{cause}: {e}");
    }
}

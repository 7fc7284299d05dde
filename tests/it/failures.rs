//! A PBX that is down, slow, failing or answering nonsense: each gets its
//! status, and none is retried.

use std::time::{Duration, Instant};

use serde_json::json;
use webdial::standin::Behaviour;

use crate::helpers::{VOISPEED, spawn};

fn fixed(status: u16, content_type: &str, body: &str) -> Behaviour {
    Behaviour::Fixed { status, content_type: content_type.into(), body: body.into() }
}

#[tokio::test]
async fn a_refused_connection_is_unreachable() {
    let port = crate::helpers::closed_port();
    let app = spawn(&[("b", &format!("dial: \"http://127.0.0.1:{port}/api?to=#\""))]).await;
    let (code, body) = app.post(json!({"branch": "b", "extension": "1", "number": "2"})).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("unreachable")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("could not connect"), "{body}");
}

#[tokio::test]
async fn a_pbx_hanging_past_the_timeout_is_a_timeout_and_is_asked_once() {
    let app = spawn(&[("b", "timeout: 300ms\ndial: \"PBX/ivr/PbxAPI.aspx?func=make_call&from=^&to=#\"")]).await;
    app.pbx.set_behaviour(Behaviour::Hang);
    let started = Instant::now();
    let (code, body) = app.post(json!({"branch": "b", "extension": "1", "number": "2"})).await;
    assert_eq!((code, body["status"].as_str()), (504, Some("timeout")), "{body}");
    assert!(started.elapsed() < Duration::from_secs(5), "the timeout must bound the wait");
    // The answer came after the only attempt: a retry would have been sent before it.
    assert_eq!(app.received().len(), 1, "a request that may have reached the PBX is never retried");
}

#[tokio::test]
async fn http_500_is_rejected_with_the_status_in_the_message() {
    let app = spawn(&[("b", "dial: \"PBX/x?to=#\"")]).await;
    app.pbx.set_behaviour(fixed(500, "text/html", "<html><body>Internal error</body></html>"));
    let (code, body) = app.post(json!({"branch": "b", "extension": "1", "number": "2"})).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("rejected")));
    assert_eq!(body["message"], "the PBX answered HTTP 500 Internal Server Error");
    assert_eq!(body["pbx"]["http_status"], 500);
    assert_eq!(app.received().len(), 1);
}

#[tokio::test]
async fn broken_xml_is_a_bad_response() {
    let app = spawn(&[("m", VOISPEED)]).await;
    app.pbx.set_behaviour(fixed(200, "text/html", "<?xml version=\"1.0\"?><result><outcome>0</outc"));
    let (code, body) = app.post(json!({"branch": "m", "extension": "35", "number": "187"})).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("bad_response")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("not valid XML"));
    assert!(body["pbx"]["body"].as_str().unwrap().contains("<outc"), "the raw answer is kept for diagnosis");
}

#[tokio::test]
async fn an_answer_without_the_expected_fields_is_a_bad_response() {
    let app = spawn(&[("m", VOISPEED)]).await;
    app.pbx.set_behaviour(fixed(200, "text/xml", "<result><status>fine</status></result>"));
    let (_, body) = app.post(json!({"branch": "m", "extension": "35", "number": "187"})).await;
    assert_eq!(body["status"], "bad_response", "{body}");
}

#[tokio::test]
async fn an_answer_over_one_mebibyte_is_a_bad_response() {
    let app = spawn(&[("b", "dial: \"PBX/x?to=#\"")]).await;
    app.pbx.set_behaviour(Behaviour::Huge(1024 * 1024 + 1));
    let (code, body) = app.post(json!({"branch": "b", "extension": "1", "number": "2"})).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("bad_response")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("larger than"));
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let app = spawn(&[("b", "dial: \"PBX/x?to=#\"")]).await;
    app.pbx.set_behaviour(Behaviour::Redirect("/elsewhere".into()));
    let (code, body) = app.post(json!({"branch": "b", "extension": "1", "number": "2"})).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("redirects are not followed"));
    assert_eq!(app.received().len(), 1, "the redirect target is never asked");
}

#[tokio::test]
async fn dials_to_one_pbx_reuse_one_connection() {
    let app = spawn(&[("b", "dial: \"PBX/ivr/PbxAPI.aspx?func=make_call&from=^&to=#\"")]).await;
    for n in 0..5 {
        let (code, body) = app.post(json!({"branch": "b", "extension": "1", "number": format!("20{n}")})).await;
        assert_eq!(code, 200, "{body}");
    }
    let peers: std::collections::HashSet<_> = app.received().iter().map(|r| r.peer).collect();
    assert_eq!(app.received().len(), 5);
    assert_eq!(peers.len(), 1, "five sequential dials over one kept-alive connection: {peers:?}");
}

//! How PBX answers are read, end to end: hostile, failing and unexpected
//! answers from the stand-in, and what the caller is told about each.

use serde_json::{Value, json};
use webdial::standin::Behaviour;

use crate::helpers::{App, CLICK2CALL, VOISPEED, spawn};

fn fixed(status: u16, content_type: &str, body: &str) -> Behaviour {
    Behaviour::Fixed { status, content_type: content_type.into(), body: body.into() }
}

/// One dial to `branch`, to a number of its own (so the duplicate window
/// never answers for the PBX); the PBX must have received exactly it.
async fn dial(app: &App, branch: &str) -> (u16, Value) {
    let before = app.received().len();
    let number = format!("18{before}");
    let answer = app.post(json!({"branch": branch, "extension": "35", "number": number})).await;
    let got = app.received();
    assert_eq!(got.len(), before + 1, "one request per dial, got {}: {}", got.len(), answer.1["status"]);
    assert_eq!(got[before].param("number").or(got[before].param("dial2")).or(got[before].param("to")), Some(number));
    answer
}

#[tokio::test]
async fn deeply_nested_answers_are_bad_responses_and_the_gateway_keeps_answering() {
    let app = spawn(&[("xml", VOISPEED), ("json", CLICK2CALL), ("auto", "dial: \"PBX/x?to=#\"")]).await;
    let xml = format!("{}{}", "<a>".repeat(3_000), "</a>".repeat(3_000));
    let json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases = [
        ("xml", "text/html", &xml),
        ("auto", "application/xml", &xml),
        ("json", "application/json", &json),
        ("auto", "application/json", &json),
    ];
    for (branch, content_type, body) in cases {
        app.pbx.set_behaviour(fixed(200, content_type, body));
        let (code, answer) = dial(&app, branch).await;
        assert_eq!((code, answer["status"].as_str()), (502, Some("bad_response")), "{branch}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains("more than 64 levels"), "the message says why: {message}");
        assert_eq!(answer["pbx"]["body"].as_str().map(str::len), Some(body.len()), "the raw answer is kept");
    }

    app.pbx.set_behaviour(Behaviour::Faithful);
    let (code, answer) = dial(&app, "xml").await;
    assert_eq!((code, answer["status"].as_str()), (200, Some("accepted")), "{answer}");
    let health = app.client.get(format!("{}/healthz", app.url)).send().await.expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
}

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
        let message = answer["message"].as_str().unwrap_or_default();
        assert_eq!((code, answer["status"].as_str()), (502, Some("bad_response")), "{branch}: {message}");
        assert!(message.contains("more than 64 levels"), "the message says why: {message}");
        assert_eq!(answer["pbx"]["body"].as_str().map(str::len), Some(body.len()), "the raw answer is kept");
    }

    app.pbx.set_behaviour(Behaviour::Faithful);
    let (code, answer) = dial(&app, "xml").await;
    assert_eq!((code, answer["status"].as_str()), (200, Some("accepted")), "{answer}");
    let health = app.client.get(format!("{}/healthz", app.url)).send().await.expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn a_non_2xx_answer_is_rejected_with_its_status_whatever_the_profile_expects() {
    let app = spawn(&[("voispeed", VOISPEED), ("click2call", CLICK2CALL)]).await;
    let iis = "<!DOCTYPE html>\r\n<html><head><title>Service Unavailable</title></head><body><h2>Service Unavailable</h2><hr><p>HTTP Error 503. The service is unavailable.</p></body></html>";
    let cases = [
        (
            "voispeed",
            Behaviour::Redirect("https://pbx.example.com/login".into()),
            302,
            "the PBX answered HTTP 302 Found to https://pbx.example.com/login; redirects are not followed",
            json!(""),
        ),
        ("voispeed", fixed(503, "text/html", iis), 503, "the PBX answered HTTP 503 Service Unavailable", json!(iis)),
        ("click2call", fixed(401, "text/plain", ""), 401, "the PBX answered HTTP 401 Unauthorized", json!("")),
        ("click2call", fixed(503, "text/html", iis), 503, "the PBX answered HTTP 503 Service Unavailable", json!(iis)),
    ];
    for (branch, behaviour, status, message, body) in cases {
        app.pbx.set_behaviour(behaviour);
        let (code, answer) = dial(&app, branch).await;
        assert_eq!(
            (code, answer["status"].as_str(), answer["ok"].as_bool()),
            (502, Some("rejected"), Some(false)),
            "{branch} {status}: {answer}"
        );
        assert_eq!(answer["message"], message, "{answer}");
        assert_eq!(answer["pbx"]["http_status"], status);
        assert_eq!(
            (&answer["pbx"]["format"], &answer["pbx"]["body"]),
            (&json!("text"), &body),
            "what could be read: {answer}"
        );
        assert_eq!(answer["call_id"], Value::Null);
    }
}

#[tokio::test]
async fn a_non_2xx_answer_in_the_expected_format_gives_the_pbx_s_own_words() {
    let app = spawn(&[("voispeed", VOISPEED)]).await;
    let xml = "<?xml version=\"1.0\"?><result><outcome>1</outcome><error>licence expired</error></result>";
    app.pbx.set_behaviour(fixed(500, "text/xml", xml));
    let (code, answer) = dial(&app, "voispeed").await;
    assert_eq!((code, answer["status"].as_str()), (502, Some("rejected")), "{answer}");
    assert_eq!(answer["message"], "licence expired");
    assert_eq!(answer["pbx"]["format"], "xml");
    assert_eq!(answer["pbx"]["body"], json!({"outcome": "1", "error": "licence expired"}));
}

/// A branch with its own expressions for VOIspeed-style answers; `OK` stands for `ok`.
const OWN_RULES: &str = "dial:
  url: \"PBX/x?ext={{ extension }}&number={{ number }}\"
  response:
    format: xml
    ok: \"OK\"
    call_id: request_id
    message: error
";

#[tokio::test]
async fn without_an_example_a_typo_is_a_bad_response_that_names_the_name_and_the_answer_s_keys() {
    let app = spawn(&[("typo", &OWN_RULES.replace("\"OK\"", "\"outcom == '0'\""))]).await;
    app.pbx.set_behaviour(fixed(200, "text/xml", "<result><outcome>0</outcome><request_id>42</request_id></result>"));
    let (code, answer) = dial(&app, "typo").await;
    assert_eq!((code, answer["status"].as_str()), (502, Some("bad_response")), "{answer}");
    assert_eq!(answer["message"], "`ok: outcom == '0'`: `outcom` is not in the answer (its keys: outcome, request_id)");
    assert_eq!(answer["pbx"]["body"]["outcome"], "0", "the PBX did accept the dial: {answer}");
}

#[test]
fn with_an_example_a_typo_is_a_check_error_at_the_expression_s_place() {
    let example = "    example: \"<result><outcome>0</outcome><request_id>1</request_id></result>\"\n";
    let dir = crate::helpers::write_config(
        "http://127.0.0.1:9",
        &[
            ("own", &(OWN_RULES.replace("\"OK\"", "\"outcom == '0'\"") + example)),
            ("good", &(OWN_RULES.replace("\"OK\"", "\"outcome == '0'\"") + example)),
            // The preset's examples check a branch's own expressions too.
            (
                "extending",
                "extends: presets/voispeed.yaml\nvars: {host: h, token: t}\ndial:\n  response:\n    call_id: requestid\n",
            ),
        ],
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_webdial"))
        .arg("--config")
        .arg(dir.path().join("webdial.yaml"))
        .arg("check")
        .output()
        .expect("run webdial check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let profile = |name: &str| dir.path().join("profiles").join(format!("{name}.yaml")).display().to_string();
    let want = [
        format!(
            "{}:5:14: `call_id: requestid`: `requestid` is not in example 1 (its keys: outcome, request_id)",
            profile("extending")
        ),
        format!(
            "{}:5:9: `ok: outcom == '0'`: `outcom` is not in the example (its keys: outcome, request_id)",
            profile("own")
        ),
    ];
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(".yaml:")).collect();
    assert_eq!(lines, want, "exactly these problems:\n{stderr}");
}

//! `presets/cisco.yaml` against the stand-in playing extension 201's Cisco
//! IP phone.

use serde_json::json;
use webdial::standin::{Behaviour, CISCO_PASSWORD, CISCO_USER};

use super::{basic, dial, phones, refuses_extensions_outside_the_map};
use crate::helpers::spawn;

fn cisco(more: &str) -> String {
    format!(
        "extends: presets/cisco.yaml\nvars: {{user: {CISCO_USER}, password: {CISCO_PASSWORD}, phones: {}}}\n{more}",
        phones()
    )
}

#[tokio::test]
async fn cisco_dials_with_cgi_execute_and_a_response_item_is_accepted() {
    let app = spawn(&[("x", &cisco(""))]).await;
    let (code, body) = app.post(dial("201", "+44 20 7946 0000")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    assert_eq!(body["call_id"], json!(null), "{body}");
    let got = app.only_request();
    assert_eq!((got.method.as_str(), got.path.as_str()), ("POST", "/CGI/Execute"));
    assert_eq!(got.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    assert_eq!(
        got.param("XML").as_deref(),
        Some(r#"<CiscoIPPhoneExecute><ExecuteItem Priority="0" URL="Dial:+442079460000"/></CiscoIPPhoneExecute>"#)
    );
    assert_eq!(got.authorization.as_deref(), Some(basic(CISCO_USER, CISCO_PASSWORD).as_str()));
}

#[tokio::test]
async fn cisco_errors_are_rejected_with_their_meaning() {
    let wrong = spawn(&[("x", &cisco("").replace(CISCO_PASSWORD, "wrong"))]).await;
    let (code, body) = wrong.post(dial("201", "0261616161")).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{body}");
    assert_eq!(
        (body["message"].as_str(), body["pbx"]["http_status"].as_u64()),
        (Some("authentication error"), Some(200))
    );
    let app = spawn(&[("x", &cisco(""))]).await;
    for (i, (answer, words)) in [
        (r#"<CiscoIPPhoneError Number="1"/>"#, "error parsing the CiscoIPPhone object"),
        (r#"<CiscoIPPhoneError Number="7"/>"#, "CiscoIPPhoneError 7"),
        (r#"<CiscoIPPhoneResponse><ResponseItem Status="1" Data="Busy" URL="Dial:1"/></CiscoIPPhoneResponse>"#, "Busy"),
    ]
    .into_iter()
    .enumerate()
    {
        app.pbx.set_behaviour(Behaviour::Fixed { status: 200, content_type: "text/xml".into(), body: answer.into() });
        // A new number each time: a repeat would get the first answer.
        let (_, body) = app.post(dial("201", &format!("026161616{i}"))).await;
        assert_eq!((body["status"].as_str(), body["message"].as_str()), (Some("rejected"), Some(words)), "{answer}");
    }
}

#[tokio::test]
async fn cisco_priority_is_the_branchs_and_a_number_cannot_add_xml() {
    let app = spawn(&[("x", &cisco("").replace("phones:", "priority: '1', phones:"))]).await;
    let (code, _) = app.post(dial("201", "1000\"/><ExecuteItem URL=\"Key:Speaker")).await;
    assert_eq!(code, 400, "not a dial string: refused, nothing sent");
    let (_, body) = app.post(dial("201", "1000")).await;
    assert_eq!(body["status"], "accepted", "{body}");
    let xml = app.only_request().param("XML").unwrap_or_default();
    assert!(xml.contains(r#"Priority="1" URL="Dial:1000""#), "{xml}");
}

#[tokio::test]
async fn cisco_picks_only_phones_of_the_map_times_out_and_a_dry_run_sends_nothing() {
    let app = spawn(&[("x", &cisco("timeout: 300ms\n"))]).await;
    refuses_extensions_outside_the_map(&app).await;
    let (code, body) = app.post(dial("202", "0261616161")).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("unreachable")), "{body}");
    let (_, body) = app.post(json!({"branch": "x", "extension": "201", "number": "0261616161", "dry_run": true})).await;
    assert_eq!(body["status"], "dry_run", "{body}");
    assert!(app.received().is_empty());
    app.pbx.set_behaviour(Behaviour::Hang);
    let (code, body) = app.post(dial("201", "0261616161")).await;
    assert_eq!((code, body["status"].as_str()), (504, Some("timeout")), "{body}");
}

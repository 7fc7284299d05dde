//! Number rules and policy: one number written many ways, extensions left
//! alone, allow/deny refusals that name their rule, the format filters.
//! Every refusal is checked to reach the PBX zero times.

use serde_json::json;

use crate::helpers::{App, spawn};

const GB_RULES: &str = r#"
dial: "PBX/ivr/PbxAPI.aspx?func=make_call&from=^&to=#"
number:
  country: GB
  format: national
  outside_line: "9"
  internal: "^[1-9]\\d{2,3}$"
  allow: ["^\\+44"]
  deny: ["^\\+449", "^\\+4487"]
"#;

async fn dial(app: &App, number: &str) -> (u16, serde_json::Value) {
    app.post(json!({"branch": "b", "extension": "201", "number": number})).await
}

#[tokio::test]
async fn one_number_written_three_ways_reaches_the_pbx_the_same_way() {
    let app = spawn(&[("b", GB_RULES)]).await;
    for input in ["+44 (0)20 7946 0000", "0044 20 7946 0000", "020 7946 0000"] {
        let (code, body) = dial(&app, input).await;
        assert_eq!(code, 200, "{input}: {body}");
        assert_eq!(app.received().last().unwrap().param("to").as_deref(), Some("902079460000"), "{input}");
    }
    // The three are one number: the 2nd and 3rd were duplicates of the 1st.
    assert_eq!(app.received().len(), 1);
}

#[tokio::test]
async fn internal_numbers_are_untouched_and_skip_the_policy() {
    let app = spawn(&[("b", GB_RULES)]).await;
    let (code, body) = dial(&app, "2345").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(app.only_request().param("to").as_deref(), Some("2345"));
}

#[tokio::test]
async fn policy_refusals_are_403_name_the_rule_and_send_nothing() {
    let app = spawn(&[("b", GB_RULES)]).await;
    let (code, body) = dial(&app, "0909 879 0000").await;
    assert_eq!((code, body["status"].as_str()), (403, Some("forbidden")), "{body}");
    assert!(body["message"].as_str().unwrap().contains(r"deny rule ^\+449"), "{body}");
    let (code, body) = dial(&app, "0044 870 000 0000").await;
    assert_eq!(code, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains(r"^\+4487"), "{body}");
    let (code, body) = dial(&app, "+1 212 555 0100").await;
    assert_eq!(code, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("no allow rule"), "{body}");
    let (code, body) = dial(&app, "020 79").await;
    assert_eq!((code, body["status"].as_str()), (400, Some("invalid_request")), "{body}");
    assert!(app.received().is_empty());
}

#[tokio::test]
async fn number_filters_format_in_templates() {
    let profile = "number: {country: GB}\ndial:\n  url: \"PBX/ivr/PbxAPI.aspx?func=make_call&from={{ extension }}&to={{ number | e164 }}&n={{ number | national }}&i={{ number | international }}\"\n";
    let app = spawn(&[("b", profile)]).await;
    let (code, body) = dial(&app, "020 7946 0000").await;
    assert_eq!(code, 200, "{body}");
    let got = app.only_request();
    assert_eq!(got.query.as_deref(), Some("func=make_call&from=201&to=%2B442079460000&n=02079460000&i=00442079460000"));
}

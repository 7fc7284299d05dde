//! Hostile request values never change where a request goes or add a
//! parameter to it.

use serde_json::json;

use crate::helpers::spawn;

#[tokio::test]
async fn hostile_values_never_change_the_target_or_add_parameters() {
    let profile = "dial:\n  url: \"PBX/ivr/PbxAPI.aspx?func=make_call&from={{ extension }}&to={{ number }}&ref={{ external_id }}\"\n";
    let app = spawn(&[("b", profile)]).await;
    for (ext, number) in [
        ("201@evil.example", "1"),
        ("201", "1@evil.example:80/x"),
        ("201", "1?func=transfer"),
        ("201", "http://evil/"),
        ("201", "1%2526"),
        ("201\r\nHost: evil", "1"),
    ] {
        let (code, _) = app.post(json!({"branch": "b", "extension": ext, "number": number})).await;
        assert_eq!(code, 400, "{ext:?} {number:?}");
    }
    let (code, body) =
        app.post(json!({"branch": "b", "extension": "201", "number": "1", "caller_id": "+1&func=x"})).await;
    assert_eq!(code, 400, "{body}");
    assert!(app.received().is_empty());
    // Free text lands encoded, as one parameter.
    let (code, body) = app
        .post(json!({"branch": "b", "extension": "201", "number": "1", "external_id": "x&func=transfer#/../@evil"}))
        .await;
    assert_eq!(code, 200, "{body}");
    let got = app.only_request();
    assert_eq!(got.path, "/ivr/PbxAPI.aspx");
    assert_eq!(got.param("func").as_deref(), Some("make_call"));
    assert_eq!(got.param("ref").as_deref(), Some("x&func=transfer#/../@evil"));
    assert_eq!(got.params().len(), 4);
}

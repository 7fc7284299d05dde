//! Each supported system, end to end: what the PBX received and what the
//! caller was told.

use serde_json::json;

use crate::helpers::{CLICK2CALL, VOISPEED, spawn};

#[tokio::test]
async fn iqx_post_line_sends_url_params_in_the_url_and_post_vars_in_the_form() {
    let app = spawn(&[("london", "dial: \"{POST}PBX/ivr/PbxAPI.aspx?func=make_call<&>from=^<&>to=#\"")]).await;
    let (code, body) = app.post(json!({"branch": "london", "extension": "201", "number": "+44 20 7946 0000"})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.only_request();
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/ivr/PbxAPI.aspx");
    assert_eq!(got.query.as_deref(), Some("func=make_call"));
    assert_eq!(got.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    assert_eq!(got.body, "from=201&to=%2B442079460000");
    assert_eq!(body["pbx"]["body"], "OK");
}

#[tokio::test]
async fn iqx_post_line_without_url_params_has_no_question_mark() {
    let app = spawn(&[("b", "dial: \"{POST}PBX/ivr/PbxAPI.aspx<&>func=make_call<&>from=^<&>to=#\"")]).await;
    let (code, body) = app.post(json!({"branch": "b", "extension": "201", "number": "0207"})).await;
    assert_eq!(code, 200, "{body}");
    let got = app.only_request();
    assert_eq!(got.query, None, "no `?` may be sent");
    assert_eq!(got.body, "func=make_call&from=201&to=0207");
}

#[tokio::test]
async fn iqx_get_line_and_explicit_get_send_everything_in_the_query() {
    for line in
        ["PBX/ivr/PbxAPI.aspx?func=make_call&from=^&to=#", "{GET}PBX/ivr/PbxAPI.aspx?func=make_call&from=^&to=#"]
    {
        let app = spawn(&[("b", &format!("dial: \"{line}\""))]).await;
        let (code, body) = app.get("branch=b&ext=201&number=%2B1%20555%20010").await;
        assert_eq!(code, 200, "{body}");
        let got = app.only_request();
        assert_eq!(got.method, "GET");
        assert_eq!(got.query.as_deref(), Some("func=make_call&from=201&to=%2B1555010"));
        assert_eq!(got.body, "");
    }
}

#[tokio::test]
async fn iqx_placeholders_in_the_path_are_encoded_for_the_path() {
    let app = spawn(&[("b", "dial: \"PBX/api/call/makecall/^/#/9\"")]).await;
    let (_, body) = app.post(json!({"branch": "b", "extension": "201", "number": "*72#"})).await;
    assert_eq!(body["status"], "rejected", "the stand-in has no such path: {body}");
    assert_eq!(app.only_request().path, "/api/call/makecall/201/*72%23/9");
}

#[tokio::test]
async fn iqx_put_line_sends_a_form() {
    let app = spawn(&[("b", "dial: \"{PUT}PBX/ivr/PbxAPI.aspx?func=make_call<&>from=^<&>to=#\"")]).await;
    app.post(json!({"branch": "b", "extension": "201", "number": "0207"})).await;
    let got = app.only_request();
    assert_eq!((got.method.as_str(), got.body.as_str()), ("PUT", "from=201&to=0207"));
}

#[tokio::test]
async fn voispeed_accepted_gives_the_request_id() {
    let app = spawn(&[("milan", VOISPEED)]).await;
    let (code, body) = app.post(json!({"branch": "milan", "extension": "35", "number": "187"})).await;
    assert_eq!(code, 200);
    assert_eq!(body["ok"], true);
    assert_eq!(body["status"], "accepted");
    assert_eq!(body["branch"], "milan");
    assert_eq!(body["call_id"], "15652770917203");
    assert_eq!(body["pbx"]["format"], "xml");
    assert_eq!(body["pbx"]["body"], json!({"outcome": "0", "request_id": "15652770917203"}));
    let got = app.only_request();
    assert_eq!(got.method, "GET");
    assert_eq!(got.path, "/PBX/seri_endpoint.php");
    assert_eq!(got.query.as_deref(), Some("service=call_request&token=demo-token&ext=35&number=187"));
}

#[tokio::test]
async fn voispeed_rejected_carries_the_pbx_words() {
    let app =
        spawn(&[("milan", "extends: presets/voispeed.yaml\nvars: {scheme: http, host: PBXHOST, token: wrong}\n")])
            .await;
    let (code, body) = app.post(json!({"branch": "milan", "extension": "35", "number": "187"})).await;
    assert_eq!(code, 502);
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["ok"], false);
    assert_eq!(body["message"], "invalid token");
    assert_eq!(body["call_id"], serde_json::Value::Null);
    assert_eq!(app.only_request().param("token").as_deref(), Some("wrong"));
}

#[tokio::test]
async fn voispeed_device_is_sent_only_when_set() {
    let app = spawn(&[("m", &VOISPEED.replace("demo-token}", "demo-token, device: mobile}"))]).await;
    app.post(json!({"branch": "m", "extension": "35", "number": "187"})).await;
    assert_eq!(app.only_request().param("device").as_deref(), Some("mobile"));
}

#[tokio::test]
async fn click2call_accepted_posts_dial1_and_dial2_and_reads_json() {
    let app = spawn(&[("tlv", CLICK2CALL)]).await;
    let (code, body) = app
        .post(json!({"branch": "tlv", "extension": "201", "number": "+972 3 555 0000", "caller_id": "+97235550001"}))
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "accepted");
    assert_eq!(body["pbx"]["format"], "json");
    assert_eq!(body["call_id"], body["pbx"]["body"]["dial1_uid"]);
    let got = app.only_request();
    assert_eq!((got.method.as_str(), got.path.as_str()), ("POST", "/API/dialup.php"));
    assert_eq!(
        got.body,
        "user=demo&pass=demo-pass&org=demo-org&dial1=201&dial2=%2B97235550000&SetCID=%2B97235550001&Response=yes&showUID=yes&RFormat=json"
    );
}

#[tokio::test]
async fn click2call_rejected_reports_the_reason() {
    let app = spawn(&[("tlv", CLICK2CALL)]).await;
    // The stand-in fails the first leg of extensions starting with 9 ("No answer").
    let (code, body) = app.post(json!({"branch": "tlv", "extension": "901", "number": "+97235550000"})).await;
    assert_eq!((code, body["status"].as_str(), body["message"].as_str()), (502, Some("rejected"), Some("No answer")));
    assert_eq!(app.only_request().param("dial1").as_deref(), Some("901"));
}

#[tokio::test]
async fn click2call_get_with_text_answer() {
    let profile = "dial:\n  url: \"PBX/API/dialup.php?user=demo&pass=demo-pass&org=demo-org&dial1={{ extension }}&dial2={{ number }}&Response=yes&RFormat=text\"\n  response:\n    format: text\n    ok: \"raw is startingwith('OK')\"\n    message: raw\n";
    let app = spawn(&[("c", profile)]).await;
    let (code, body) = app.get("branch=c&from=201&to=%2B15550100").await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.only_request();
    assert_eq!(got.method, "GET");
    assert_eq!(got.param("dial2").as_deref(), Some("+15550100"));
    let (_, body) = app.get("branch=c&from=901&to=%2B15550100").await;
    assert_eq!((body["status"].as_str(), body["message"].as_str()), (Some("rejected"), Some("FAIL No answer")));
}

#[tokio::test]
async fn click2call_xml_answer() {
    let profile = "extends: presets/click2call.yaml\nvars: {scheme: http, host: PBXHOST, user: demo, pass: demo-pass, org: demo-org}\ndial:\n  form: {RFormat: xml}\n  response: {format: xml}\n";
    let app = spawn(&[("c", profile)]).await;
    let (code, body) = app.post(json!({"branch": "c", "extension": "201", "number": "0207"})).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["pbx"]["format"], "xml");
    assert_eq!(body["pbx"]["body"]["status"], "OK");
    assert_eq!(app.only_request().param("RFormat").as_deref(), Some("xml"));
}

#[tokio::test]
async fn tel_profile_sends_nothing_and_answers_the_uri() {
    let app = spawn(&[("desk", "dial: \"tel:#\"")]).await;
    let (code, body) = app.post(json!({"branch": "desk", "extension": "201", "number": "+44 20 7946 0000"})).await;
    assert_eq!(
        (code, body["status"].as_str(), body["uri"].as_str()),
        (200, Some("open_uri"), Some("tel:+442079460000"))
    );
    assert!(app.received().is_empty());
}

#[tokio::test]
async fn a_browser_is_redirected_to_the_uri() {
    let app = spawn(&[("desk", "dial: \"sip:#@pbx.example.com\"")]).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = client
        .get(format!("{}/v1/dial?branch=desk&ext=201&number=0207", app.url))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "sip:0207@pbx.example.com");
    assert!(app.received().is_empty());
}

/// `webdial standin --system NAME` speaks one system: its paths answer as
/// that system does, another system's path is a 404, as on a real PBX.
#[tokio::test]
async fn a_stand_in_for_one_system_answers_only_that_systems_paths() {
    let system = webdial::standin::find_system("click2call").expect("click2call is a stand-in system");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let pbx = webdial::standin::StandIn::start_system(listener, true, Some(system)).expect("stand-in");
    let client = reqwest::Client::new();
    let own = client
        .get(format!("{}/API/dialup.php?user=demo&pass=demo-pass&org=demo-org&dial1=201&dial2=0207", pbx.url()))
        .send()
        .await
        .expect("dialup");
    assert_eq!(own.status().as_u16(), 200);
    let other =
        client.get(format!("{}/PBX/seri_endpoint.php?service=call_request", pbx.url())).send().await.expect("seri");
    assert_eq!(other.status().as_u16(), 404, "a Click2Call stand-in does not speak VOIspeed SERI");
    assert_eq!(pbx.received().len(), 2, "both requests are recorded");
}

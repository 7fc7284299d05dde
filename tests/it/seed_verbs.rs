//! Every action of the shipped VOIspeed, VOIspeed extended, VOIspeed client
//! and Click2Call presets, against the stand-in PBX: the exact request the
//! PBX receives, the accepted answer, each refusal with the PBX's own words,
//! and a missing input refused before anything is sent.

use serde_json::{Value, json};

use crate::helpers::{App, CLICK2CALL, VOISPEED, read, spawn};

/// The branches the tables below use: each preset on the stand-in, with its
/// optional variables set (`…o`) and with a token the PBX refuses (`…w`).
fn branches() -> Vec<(&'static str, String)> {
    let ext = "extends: presets/voispeed-extended.yaml\nvars: {scheme: http, host: PBXHOST, token: demo-token, user_ids: {\"201\": 17}";
    vec![
        ("v", VOISPEED.to_string()),
        ("vo", VOISPEED.replace("demo-token}", "demo-token, device: mobile, note: mia_nota}")),
        ("vw", VOISPEED.replace("demo-token}", "wrong}")),
        ("x", format!("{ext}}}\n")),
        ("xo", format!("{ext}, gateway_id: \"4\", auto_answer: true}}\n")),
        ("xw", format!("{ext}}}\n").replace("demo-token", "wrong")),
        ("ui", "extends: presets/voispeed-client.yaml\n".to_string()),
        ("c", CLICK2CALL.to_string()),
    ]
}

async fn spawn_all() -> App {
    let owned = branches();
    let profiles: Vec<(&str, &str)> = owned.iter().map(|(n, y)| (*n, y.as_str())).collect();
    spawn(&profiles).await
}

/// Runs `action` with `input` (the `/v1/actions` fields) as a JSON POST.
async fn act(app: &App, action: &str, input: &Value) -> (u16, Value) {
    let url = format!("{}/v1/actions/{action}", app.url);
    read(app.client.post(url).json(input).send().await.expect("post")).await
}

/// One action of a SERI preset: what the caller sends, the exact query the
/// PBX must receive (every SERI service is a GET to the same path), and the
/// inputs it cannot do without.
struct Seri {
    branch: &'static str,
    action: &'static str,
    input: Value,
    query: &'static str,
    required: &'static [&'static str],
}

fn seri_cases() -> Vec<Seri> {
    let case = |branch, action, input, query, required| Seri { branch, action, input, query, required };
    vec![
        // VOIspeed user services.
        case(
            "v",
            "dial",
            json!({"extension": "35", "number": "+44 20 7946 0000"}),
            "service=call_request&token=demo-token&ext=35&number=%2B442079460000",
            &["extension", "number"],
        ),
        case(
            "vo",
            "dial",
            json!({"extension": "35", "number": "187", "external_id": "crm 42"}),
            "service=call_request&token=demo-token&ext=35&number=187&device=mobile&extid=crm%2042",
            &["extension", "number"],
        ),
        case(
            "v",
            "hangup",
            json!({"extension": "35", "call_id": "3250"}),
            "service=call_action&token=demo-token&ext=35&call_id=3250&action=disconnect",
            &["extension", "call_id"],
        ),
        case(
            "v",
            "divert",
            json!({"extension": "35", "call_id": "3250", "number": "39"}),
            "service=call_action&token=demo-token&ext=35&call_id=3250&action=divert&number=39",
            &["extension", "call_id", "number"],
        ),
        case(
            "vo",
            "divert",
            json!({"extension": "35", "call_id": "3251", "number": "39"}),
            "service=call_action&token=demo-token&ext=35&call_id=3251&action=divert&number=39&note=mia_nota",
            &["extension", "call_id", "number"],
        ),
        case(
            "v",
            "mode_normal",
            json!({"extension": "35"}),
            "service=set_user_mode&token=demo-token&ext=35&mode=1",
            &["extension"],
        ),
        case(
            "v",
            "dnd_on",
            json!({"extension": "35"}),
            "service=set_user_mode&token=demo-token&ext=35&mode=2",
            &["extension"],
        ),
        case(
            "v",
            "away_on",
            json!({"extension": "35"}),
            "service=set_user_mode&token=demo-token&ext=35&mode=3",
            &["extension"],
        ),
        case(
            "v",
            "divert_on",
            json!({"extension": "35", "number": "39"}),
            "service=set_user_mode&token=demo-token&ext=35&mode=4&number=39",
            &["extension", "number"],
        ),
        // VOIspeed extended services.
        case(
            "x",
            "dial",
            json!({"extension": "201", "number": "187"}),
            "service=call_request_ext&token=demo-token&calling_id=17&calling_type=0&calling_number=187&called_id=1&called_type=2&called_number=187",
            &["extension", "number"],
        ),
        case(
            "xo",
            "dial",
            json!({"extension": "202", "number": "187", "external_id": "crm-42"}),
            "service=call_request_ext&token=demo-token&calling_id=202&calling_type=0&calling_number=187&called_id=4&called_type=2&called_number=187&extid=crm-42&auto_answer=1",
            &["extension", "number"],
        ),
        case(
            "x",
            "transfer",
            json!({"extension": "201", "call_id": "3250", "options": {
                "replace_type": "3", "replace_id": "5", "replace_local_id": "11",
                "recipient_com_id": "3251", "recipient_call_id": "12",
            }}),
            "service=call_transfer_ext&token=demo-token&replace_com_id=3250&replace_type=3&replace_id=5&replace_local_id=11&recipient_com_id=3251&recipient_type=0&recipient_id=17&recipient_call_id=12",
            &["extension", "call_id"],
        ),
        case(
            "x",
            "divert",
            json!({"extension": "201", "call_id": "3250", "number": "39"}),
            "service=call_divert_ext&token=demo-token&call_id=3250&replace_type=0&replace_id=17&recipient_type=2&recipient_id=1&recipient_number=39",
            &["extension", "call_id", "number"],
        ),
        case(
            "x",
            "record",
            json!({"call_id": "3250"}),
            "service=call_recording_ext&token=demo-token&call_id=3250",
            &["call_id"],
        ),
        case(
            "x",
            "hangup",
            json!({"call_id": "3250"}),
            "service=call_terminate&token=demo-token&call_id=3250",
            &["call_id"],
        ),
        case("x", "current_calls", json!({}), "service=get_current_calls&token=demo-token", &[]),
    ]
}

fn with_branch(input: &Value, branch: &str) -> Value {
    let mut input = input.clone();
    input["branch"] = json!(branch);
    input
}

#[tokio::test]
async fn every_seri_action_sends_exactly_its_service_request_and_is_accepted() {
    let app = spawn_all().await;
    for (i, c) in seri_cases().iter().enumerate() {
        let what = format!("{} {}", c.branch, c.action);
        let (code, body) = act(&app, c.action, &with_branch(&c.input, c.branch)).await;
        assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{what}: {body}");
        assert_eq!(body["action"], c.action, "{what}");
        let got = app.received();
        assert_eq!(got.len(), i + 1, "{what}: one request per action: {got:#?}");
        let got = &got[i];
        assert_eq!((got.method.as_str(), got.path.as_str()), ("GET", "/PBX/seri_endpoint.php"), "{what}");
        assert_eq!(got.query.as_deref(), Some(c.query), "{what}");
        // The PBX's request id is the `call_id` (what ties a later
        // cmd_failed event to this request); the call list has none.
        match c.action {
            "current_calls" => assert_eq!(body["call_id"], Value::Null, "{what}: {body}"),
            _ => {
                assert!(body["call_id"].is_string(), "{what}: {body}");
                assert_eq!(body["call_id"], body["pbx"]["body"]["request_id"], "{what}: {body}");
            }
        }
    }
}

#[tokio::test]
async fn a_seri_action_missing_an_input_it_needs_is_refused_and_nothing_is_sent() {
    let app = spawn_all().await;
    for c in seri_cases() {
        for field in c.required {
            let mut input = with_branch(&c.input, c.branch);
            input.as_object_mut().expect("an object").remove(*field);
            let (code, body) = act(&app, c.action, &input).await;
            let what = format!("{} {} without {field}", c.branch, c.action);
            assert_eq!((code, body["status"].as_str()), (400, Some("invalid_request")), "{what}: {body}");
            assert!(body["message"].as_str().unwrap_or_default().contains(field), "{what}: {body}");
        }
    }
    assert!(app.received().is_empty(), "a refused action never reaches the PBX: {:#?}", app.received());
}

#[tokio::test]
async fn every_seri_action_with_a_token_the_pbx_refuses_is_rejected_with_its_words() {
    let app = spawn_all().await;
    for c in seri_cases() {
        let branch = if c.branch.starts_with('v') { "vw" } else { "xw" };
        let (code, body) = act(&app, c.action, &with_branch(&c.input, branch)).await;
        let what = format!("{branch} {}", c.action);
        assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{what}: {body}");
        assert_eq!(body["message"], "invalid token", "{what}: {body}");
        assert_eq!(body["call_id"], Value::Null, "{what}: {body}");
    }
}

#[tokio::test]
async fn a_call_or_extension_the_pbx_does_not_know_is_rejected_with_the_guides_words() {
    let app = spawn_all().await;
    // The stand-in knows no extension, user or call id starting with 9.
    let unknown = [
        ("v", "dial", json!({"extension": "901", "number": "187"})),
        ("v", "hangup", json!({"extension": "35", "call_id": "9250"})),
        ("v", "divert", json!({"extension": "35", "call_id": "9250", "number": "39"})),
        ("v", "dnd_on", json!({"extension": "901"})),
        ("v", "divert_on", json!({"extension": "901", "number": "39"})),
        ("x", "dial", json!({"extension": "901", "number": "187"})),
        ("x", "divert", json!({"extension": "201", "call_id": "9250", "number": "39"})),
        ("x", "record", json!({"call_id": "9250"})),
        (
            "x",
            "transfer",
            json!({"extension": "201", "call_id": "3250", "options": {
                "replace_type": "3", "replace_id": "5", "replace_local_id": "11",
                "recipient_com_id": "9251", "recipient_call_id": "12",
            }}),
        ),
        ("x", "hangup", json!({"call_id": "9250"})),
    ];
    for (branch, action, input) in unknown {
        let (code, body) = act(&app, action, &with_branch(&input, branch)).await;
        let what = format!("{branch} {action} {input}");
        assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{what}: {body}");
        assert_eq!(body["message"], "connection not found", "{what}: {body}");
        assert_eq!(body["pbx"]["body"]["outcome"], "1", "{what}: {body}");
    }
    assert_eq!(app.received().len(), 10, "each was sent once");
}

#[tokio::test]
async fn an_action_runs_from_a_url_too() {
    let app = spawn_all().await;
    let url = format!("{}/v1/actions/hangup?branch=v&ext=35&call_id=3250", app.url);
    let (code, body) = read(app.client.get(url).send().await.expect("get")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let query = app.only_request().query;
    assert_eq!(query.as_deref(), Some("service=call_action&token=demo-token&ext=35&call_id=3250&action=disconnect"));
}

#[tokio::test]
async fn current_calls_hands_back_the_pbx_list() {
    let app = spawn_all().await;
    let (code, body) = act(&app, "current_calls", &json!({"branch": "x"})).await;
    assert_eq!(code, 200, "{body}");
    let call = &body["pbx"]["body"]["call"];
    assert_eq!((call["id"].as_str(), call["called_number"].as_str()), (Some("3250"), Some("187")), "{body}");
}

#[tokio::test]
async fn the_voispeed_client_answers_its_uris_and_sends_nothing() {
    let app = spawn_all().await;
    let (code, body) =
        act(&app, "dial", &json!({"branch": "ui", "extension": "201", "number": "+44 20 7946 0000"})).await;
    assert_eq!(
        (code, body["status"].as_str(), body["uri"].as_str()),
        (200, Some("open_uri"), Some("voispeed:+442079460000")),
        "{body}"
    );
    let (code, body) = act(&app, "hangup", &json!({"branch": "ui"})).await;
    assert_eq!((code, body["status"].as_str(), body["uri"].as_str()), (200, Some("open_uri"), Some("voispeed:D")));
    let (code, body) = act(&app, "dial", &json!({"branch": "ui", "extension": "201"})).await;
    assert_eq!((code, body["status"].as_str()), (400, Some("invalid_request")), "{body}");
    let uri = |body: &serde_json::Value| body["uri"].as_str().map(str::to_string);
    let with_id = json!({"branch": "ui", "extension": "201", "number": "187", "external_id": "crm 42&x"});
    let (_, body) = act(&app, "dial", &with_id).await;
    assert_eq!(uri(&body).as_deref(), Some("voispeed:187,crm%2042%26x"), "{body}");
    let (_, body) = act(&app, "hangup_call", &json!({"branch": "ui", "call_id": "3250"})).await;
    assert_eq!(uri(&body).as_deref(), Some("voispeed:D%203250"), "{body}");
    let (_, body) = act(&app, "forward", &json!({"branch": "ui", "call_id": "3250"})).await;
    assert_eq!(uri(&body).as_deref(), Some("voispeed:F%203250"), "{body}");
    let (code, body) = act(&app, "forward", &json!({"branch": "ui"})).await;
    assert_eq!((code, body["status"].as_str()), (400, Some("invalid_request")), "a forward needs its call id: {body}");
    assert!(app.received().is_empty());
}

#[tokio::test]
async fn a_client_side_uri_in_the_full_form_takes_no_request_parts() {
    let pbx = webdial::standin::StandIn::bind("127.0.0.1:0").await.unwrap();
    let dir =
        crate::helpers::write_config(&pbx.url(), &[("u", "dial:\n  url: \"tel:{{ number }}\"\n  method: POST\n")]);
    let env = |_: &str| None;
    let loaded = webdial::app::load(&dir.path().join("webdial.yaml"), true, &env);
    let d = loaded.diagnostics.first().map(ToString::to_string).unwrap_or_default();
    assert!(d.contains("u.yaml:2:8: a client-side URI is opened by the caller's softphone"), "{d}");
}

/// Click2Call's dial: the form as sent, both legs' ids, and the refusals.
#[tokio::test]
async fn click2call_dial_posts_its_form_and_gives_both_legs_ids() {
    let app = spawn_all().await;
    let (code, body) =
        act(&app, "dial", &json!({"branch": "c", "extension": "201", "number": "+972 3 555 0000"})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let legs = &body["pbx"]["body"];
    assert!(legs["dial1_uid"].is_string() && legs["dial2_uid"].is_string(), "{body}");
    assert_eq!(body["call_id"], legs["dial1_uid"], "the first leg's id is the call's");
    let got = app.only_request();
    assert_eq!((got.method.as_str(), got.path.as_str()), ("POST", "/API/dialup.php"));
    assert_eq!(got.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    assert_eq!(
        got.body,
        "user=demo&pass=demo-pass&org=demo-org&dial1=201&dial2=%2B97235550000&Response=yes&showUID=yes&RFormat=json"
    );
}

#[tokio::test]
async fn click2call_sends_caller_id_and_ring_timeout_only_when_given() {
    let profile = CLICK2CALL.replace("demo-org}", "demo-org, ring_timeout: 45}");
    let app = spawn(&[("c", &profile)]).await;
    let input = json!({"branch": "c", "extension": "201", "number": "0207", "caller_id": "+44 20 7946 0001"});
    let (code, body) = act(&app, "dial", &input).await;
    assert_eq!(code, 200, "{body}");
    let got = app.only_request();
    assert_eq!((got.param("SetCID").as_deref(), got.param("Timeout").as_deref()), (Some("+442079460001"), Some("45")));
}

#[tokio::test]
async fn click2call_refusals_carry_the_pbx_words() {
    let wrong_pass = CLICK2CALL.replace("demo-pass", "nope");
    let long_ring = CLICK2CALL.replace("demo-org}", "demo-org, ring_timeout: 301}");
    let app = spawn(&[("c", CLICK2CALL), ("cw", &wrong_pass), ("ct", &long_ring)]).await;
    for (branch, ext, words) in
        [("c", "901", "No answer"), ("cw", "201", "Authentication failed"), ("ct", "201", "Invalid Timeout")]
    {
        let (code, body) = act(&app, "dial", &json!({"branch": branch, "extension": ext, "number": "0207"})).await;
        assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{branch}: {body}");
        assert_eq!(body["message"], words, "{branch}: {body}");
    }
    for missing in ["extension", "number"] {
        let mut input = json!({"branch": "c", "extension": "201", "number": "0207"});
        input.as_object_mut().expect("object").remove(missing);
        let (code, body) = act(&app, "dial", &input).await;
        assert_eq!((code, body["status"].as_str()), (400, Some("invalid_request")), "{missing}: {body}");
    }
    assert_eq!(app.received().len(), 3, "only the three dials that could be sent were");
}

/// What the presets cannot send but the stand-in must still answer as the
/// guide says: each service's parameters, its action and mode values, its
/// entity types, and `call_transfer_ext`, which no preset uses yet.
#[tokio::test]
async fn the_stand_in_checks_each_seri_service_as_the_guide_spells_it() {
    let pbx = webdial::standin::StandIn::bind("127.0.0.1:0").await.expect("stand-in");
    let transfer = "service=call_transfer_ext&token=demo-token&replace_com_id=3250&replace_type=3&replace_id=9&replace_local_id=11&recipient_com_id=3251&recipient_type=0&recipient_id=17&recipient_call_id=12";
    let cases = [
        (transfer.replace("replace_id=9", "replace_id=5"), None),
        (transfer.replace("&replace_local_id=11", ""), Some("missing parameter replace_local_id")),
        (transfer.replace("recipient_com_id=3251", "recipient_com_id=9251"), Some("connection not found")),
        (transfer.replace("recipient_type=0", "recipient_type=5"), Some("invalid entity type")),
        ("service=call_action&token=demo-token&ext=35&call_id=3250&action=hold".into(), Some("invalid action")),
        (
            "service=call_action&token=demo-token&ext=35&call_id=3250&action=divert".into(),
            Some("missing parameter number"),
        ),
        ("service=set_user_mode&token=demo-token&ext=35&mode=7".into(), Some("invalid mode")),
        ("service=set_user_mode&token=demo-token&ext=35&mode=4".into(), Some("missing parameter number")),
        ("service=call_request&token=demo-token&ext=35".into(), Some("missing parameter number")),
        ("service=get_user_call_report&token=demo-token".into(), Some("unknown service")),
    ];
    for (query, refusal) in cases {
        let resp = reqwest::get(format!("{}/PBX/seri_endpoint.php?{query}", pbx.url())).await.expect("get");
        let text = resp.text().await.expect("body");
        match refusal {
            None => assert!(text.contains("<outcome>0</outcome>") && text.contains("<request_id>"), "{query}: {text}"),
            Some(words) => {
                assert!(text.contains("<outcome>1</outcome>"), "{query}: {text}");
                assert!(text.contains(&format!("<error>{words}</error>")), "{query}: {text}");
            }
        }
    }
    let post = reqwest::Client::new().post(format!("{}/PBX/seri_endpoint.php?service=call_request", pbx.url()));
    let text = post.send().await.expect("post").text().await.expect("body");
    assert!(text.contains("<error>service requests are HTTP GETs</error>"), "{text}");
}

/// Options a preset declares are checked before anything is sent; options
/// it does not declare are refused.
#[tokio::test]
async fn options_out_of_their_pattern_or_undeclared_are_refused_and_nothing_is_sent() {
    let app = spawn_all().await;
    let transfer = json!({"branch": "x", "extension": "201", "call_id": "3250", "options": {"replace_type": "5"}});
    let future = json!({"branch": "c", "extension": "201", "number": "0207", "options": {"at": "2026-12-01 18:30"}});
    let undeclared = json!({"branch": "c", "extension": "201", "number": "0207", "options": {"device": "mobile"}});
    for (action, input) in [("transfer", transfer), ("dial", future), ("dial", undeclared)] {
        let (code, body) = act(&app, action, &input).await;
        assert_eq!((code, body["status"].as_str()), (400, Some("invalid_request")), "{input}: {body}");
    }
    assert!(app.received().is_empty(), "{:#?}", app.received());
}

#[tokio::test]
async fn a_transfer_missing_an_option_is_refused_by_the_pbx_with_its_words() {
    let app = spawn_all().await;
    let input = json!({"branch": "x", "extension": "201", "call_id": "3250", "options": {"replace_type": "3"}});
    let (code, body) = act(&app, "transfer", &input).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{body}");
    assert_eq!(body["message"], "missing parameter replace_id", "{body}");
}

#[tokio::test]
async fn a_click2call_future_call_sends_date_retries_and_ident() {
    let app = spawn_all().await;
    let options = json!({"at": "202612011830", "retry_every": "5", "ident": "org-7"});
    let input = json!({"branch": "c", "extension": "201", "number": "0207", "options": options});
    let (code, body) = act(&app, "dial", &input).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    assert_eq!(body["call_id"], Value::Null, "a scheduled call has no legs yet: {body}");
    assert_eq!(
        app.only_request().body,
        "user=demo&pass=demo-pass&org=demo-org&dial1=201&dial2=0207&Response=yes&showUID=yes&RFormat=json&Date=202612011830&Maxretry=3&Retrytime=5&ident=org-7"
    );
    // voiptech wants all four for a future call.
    let input = json!({"branch": "c", "extension": "202", "number": "0207", "options": {"at": "202612011830"}});
    let (code, body) = act(&app, "dial", &input).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{body}");
    assert_eq!(body["message"], "Missing parameter Retrytime", "{body}");
}

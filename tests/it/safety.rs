//! Safety: number rules, policy, keys, one call per click, limits (TLS and
//! digest auth are in `tls_auth`). Every refusal is checked to reach the PBX
//! zero times.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use webdial::settings::{KeySpec, Settings};
use webdial::standin::Behaviour;

use crate::helpers::{App, VOISPEED, spawn, spawn_with};

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

fn key(name: &str, secret: &str, branches: &[&str], rate: Option<&str>) -> KeySpec {
    KeySpec::new(name.into(), secret.into(), branches.iter().map(|s| s.to_string()).collect(), rate).unwrap()
}

fn keyed(s: &mut Settings) {
    s.keys = vec![
        key("erp", "erp-0123456789abcdef", &["*"], None),
        key("intranet", "web-0123456789abcdef", &["london"], Some("2/min")),
    ];
}

#[tokio::test]
async fn keys_are_required_checked_scoped_and_rate_limited() {
    let iqx = "dial: \"PBX/ivr/PbxAPI.aspx?func=make_call&from=^&to=#\"";
    let app = spawn_with(&[("london", iqx), ("leeds", iqx)], &[], keyed).await;
    let url = format!("{}/v1/dial", app.url);
    let body = |branch: &str, n: u32| json!({"branch": branch, "extension": "201", "number": format!("0207946000{n}")});
    let post = |b: serde_json::Value| app.client.post(&url).json(&b);

    let (code, r) = crate::helpers::read(post(body("london", 1)).send().await.unwrap()).await;
    assert_eq!((code, r["status"].as_str()), (401, Some("unauthorized")));
    let (code, _) =
        crate::helpers::read(post(body("london", 1)).bearer_auth("wrong-0123456789abcdef").send().await.unwrap()).await;
    assert_eq!(code, 401);
    let (code, r) =
        crate::helpers::read(post(body("leeds", 1)).header("x-api-key", "web-0123456789abcdef").send().await.unwrap())
            .await;
    assert_eq!((code, r["status"].as_str()), (403, Some("forbidden")), "{r}");
    assert!(app.received().is_empty(), "refused keys reach no PBX");

    // The three ways to present a key.
    let (code, r) =
        crate::helpers::read(post(body("leeds", 2)).bearer_auth("erp-0123456789abcdef").send().await.unwrap()).await;
    assert_eq!(code, 200, "{r}");
    let (code, r) =
        crate::helpers::read(post(body("leeds", 3)).header("x-api-key", "erp-0123456789abcdef").send().await.unwrap())
            .await;
    assert_eq!(code, 200, "{r}");
    let (code, r) = app.get("branch=leeds&ext=201&number=02079460004&key=erp-0123456789abcdef").await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(app.received().len(), 3);

    // intranet: 2/min (its refused leeds attempt above was stopped by scope, before the rate).
    for n in 5..=6 {
        let (code, r) = app.get(&format!("branch=london&ext=201&number=0207946000{n}&key=web-0123456789abcdef")).await;
        assert_eq!(code, 200, "{r}");
    }
    let (code, r) = app.get("branch=london&ext=201&number=02079460007&key=web-0123456789abcdef").await;
    assert_eq!((code, r["status"].as_str()), (429, Some("rate_limited")), "{r}");
    assert_eq!(app.received().len(), 5, "the rate-limited dial reached no PBX");
}

#[tokio::test]
async fn the_same_dial_again_gets_the_first_answer_and_rings_once() {
    let app = spawn(&[("m", VOISPEED)]).await;
    let body = json!({"branch": "m", "extension": "35", "number": "187"});
    let (_, first) = app.post(body.clone()).await;
    let (code, second) = app.post(body).await;
    assert_eq!(code, 200);
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["call_id"], first["call_id"]);
    assert!(first.get("duplicate").is_none(), "{first}");
    assert_eq!(app.received().len(), 1);
    // Another extension or number is another dial.
    app.post(json!({"branch": "m", "extension": "36", "number": "187"})).await;
    assert_eq!(app.received().len(), 2);
}

#[tokio::test]
async fn twenty_identical_dials_at_once_reach_the_pbx_once() {
    let app = spawn(&[("m", VOISPEED)]).await;
    app.pbx.set_behaviour(Behaviour::Delay(Duration::from_millis(300)));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let req = app
            .client
            .post(format!("{}/v1/dial", app.url))
            .json(&json!({"branch": "m", "extension": "35", "number": "187"}));
        tasks.push(tokio::spawn(async move { crate::helpers::read(req.send().await.unwrap()).await }));
    }
    let mut duplicates = 0;
    let mut call_ids = std::collections::HashSet::new();
    for t in tasks {
        let (code, body) = t.await.unwrap();
        assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
        duplicates += usize::from(body["duplicate"] == true);
        call_ids.insert(body["call_id"].to_string());
    }
    assert_eq!(app.received().len(), 1, "exactly one call per click");
    assert_eq!(duplicates, 19);
    assert_eq!(call_ids.len(), 1, "all twenty got the first answer");
}

#[tokio::test]
async fn after_the_window_the_same_dial_rings_again() {
    let app = spawn_with(&[("m", VOISPEED)], &[], |s| s.dedupe_window = Duration::from_millis(150)).await;
    let body = json!({"branch": "m", "extension": "35", "number": "187"});
    app.post(body.clone()).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (_, again) = app.post(body).await;
    assert!(again.get("duplicate").is_none(), "{again}");
    assert_eq!(app.received().len(), 2);
}

#[tokio::test]
async fn an_unreachable_pbx_may_be_dialled_again_at_once() {
    let port = crate::helpers::closed_port();
    let app = spawn(&[("b", &format!("dial: \"http://127.0.0.1:{port}/x?to=#\""))]).await;
    let body = json!({"branch": "b", "extension": "1", "number": "2"});
    let (_, first) = app.post(body.clone()).await;
    let (_, second) = app.post(body).await;
    assert_eq!(first["status"], "unreachable");
    assert!(second.get("duplicate").is_none(), "nothing was sent, so nothing is repeated: {second}");
}

#[tokio::test]
async fn idempotency_key_returns_the_first_answer() {
    let app = spawn(&[("m", VOISPEED)]).await;
    let url = format!("{}/v1/dial", app.url);
    let send = |number: &str| {
        app.client
            .post(&url)
            .header("idempotency-key", "order-42")
            .json(&json!({"branch": "m", "extension": "35", "number": number}))
            .send()
    };
    let (_, first) = crate::helpers::read(send("187").await.unwrap()).await;
    let (_, second) = crate::helpers::read(send("188").await.unwrap()).await;
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["call_id"], first["call_id"]);
    assert_eq!(app.received().len(), 1);
}

#[tokio::test]
async fn max_in_flight_turns_excess_dials_away_with_429() {
    let profile = format!("{VOISPEED}max_in_flight: 1\n");
    let app = Arc::new(spawn(&[("m", &profile)]).await);
    // The first dial holds the only slot for 3 s; the second waits its 1 s and is turned away.
    app.pbx.set_behaviour(Behaviour::Delay(Duration::from_millis(3000)));
    let first = {
        let app = app.clone();
        tokio::spawn(async move { app.post(json!({"branch": "m", "extension": "35", "number": "187"})).await })
    };
    assert!(app.pbx.wait_for_requests(1, Duration::from_secs(5)).await, "the first dial reached the PBX");
    let (code, body) = app.post(json!({"branch": "m", "extension": "36", "number": "188"})).await;
    assert_eq!((code, body["status"].as_str()), (429, Some("rate_limited")), "{body}");
    assert_eq!(first.await.unwrap().0, 200);
    assert_eq!(app.received().len(), 1);
}

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

#[tokio::test]
async fn a_caller_who_hangs_up_does_not_cancel_the_dial_or_its_answer() {
    let app = spawn(&[("m", VOISPEED)]).await;
    app.pbx.set_behaviour(Behaviour::Delay(Duration::from_millis(600)));
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(100)).build().unwrap();
    let body = json!({"branch": "m", "extension": "35", "number": "187"});
    let gave_up = impatient.post(format!("{}/v1/dial", app.url)).json(&body).send().await;
    assert!(gave_up.is_err(), "the first caller hangs up before the PBX answers");
    // The repeat arrives while the first is still in flight: it gets the
    // first one's answer only if hanging up did not cancel that dial.
    let (code, again) = app.post(body).await;
    assert_eq!(
        (code, again["status"].as_str(), again["duplicate"].as_bool()),
        (200, Some("accepted"), Some(true)),
        "{again}"
    );
    assert_eq!(app.received().len(), 1, "the click rang once, and its answer was kept for the repeat");
}

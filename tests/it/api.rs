//! The HTTP API's contract: input rules, every refusal, dry runs, secrets,
//! and one PBX request per dial under load.

use std::collections::HashMap;

use serde_json::{Value, json};
use webdial::standin::Behaviour;

use crate::helpers::{VOISPEED, read, spawn, spawn_with_env};

const IQX_GET: &str = "dial: \"PBX/ivr/PbxAPI.aspx?func=make_call&from=^&to=#\"";

fn assert_shape(body: &Value) {
    for key in ["ok", "status", "branch", "action", "call_id", "message", "uri", "id", "pbx"] {
        assert!(body.get(key).is_some(), "answer lacks {key}: {body}");
    }
}

#[tokio::test]
async fn every_refusal_has_its_status_and_reaches_no_pbx() {
    let app = spawn(&[("b", IQX_GET)]).await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"branch": "b", "extension": "201", "number": "0207 ABC"}), 400, "invalid_request"),
        (json!({"branch": "b", "extension": "201", "number": "0207&to=0900"}), 400, "invalid_request"),
        (json!({"branch": "b", "extension": "201&from=999", "number": "0207"}), 400, "invalid_request"),
        (json!({"branch": "b", "extension": "201", "number": "02=07"}), 400, "invalid_request"),
        (json!({"branch": "b", "extension": "201", "number": "0207", "caller_id": "x@evil"}), 400, "invalid_request"),
        (json!({"branch": "b", "number": "0207"}), 400, "invalid_request"),
        (json!({"branch": "b", "extension": "201"}), 400, "invalid_request"),
        (json!({"extension": "201", "number": "0207"}), 400, "invalid_request"),
        (json!({"branch": "b", "extension": "201", "number": "0207", "colour": "red"}), 400, "invalid_request"),
        (json!({"branch": "b", "extension": 201, "number": "0207"}), 400, "invalid_request"),
        (json!({"branch": "nowhere", "extension": "201", "number": "0207"}), 404, "unknown_branch"),
    ];
    for (input, code, status) in cases {
        let (got_code, body) = app.post(input.clone()).await;
        assert_eq!((got_code, body["status"].as_str()), (code, Some(status)), "{input} -> {body}");
        assert_eq!(body["ok"], false);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "a refusal says why: {body}");
        assert_shape(&body);
    }
    assert!(app.received().is_empty(), "refused requests never reach the PBX");
}

#[tokio::test]
async fn malformed_bodies_get_the_same_json_shape() {
    let app = spawn(&[("b", IQX_GET)]).await;
    let url = format!("{}/v1/dial", app.url);
    let send = |body: String, ct: &'static str| app.client.post(&url).header("content-type", ct).body(body).send();
    let cases = [
        (send("{\"branch\": ".into(), "application/json").await.unwrap(), 400),
        (send("branch=b".into(), "application/x-www-form-urlencoded").await.unwrap(), 400),
        (send(format!("{{\"branch\": \"{}\"}}", "x".repeat(70 * 1024)), "application/json").await.unwrap(), 400),
        (app.client.delete(&url).send().await.unwrap(), 400),
        (app.client.get(format!("{}/v2/nothing", app.url)).send().await.unwrap(), 404),
    ];
    for (resp, code) in cases {
        let (got, body) = read(resp).await;
        assert_eq!(got, code, "{body}");
        assert_shape(&body);
    }
    assert!(app.received().is_empty());
}

#[tokio::test]
async fn get_accepts_aliases_and_restores_an_unencoded_plus() {
    let app = spawn(&[("b", IQX_GET)]).await;
    for (query, from, to) in [
        ("branch=b&ext=201&number=+442079460000", "201", "+442079460000"),
        ("branch=b&from=202&to=%2B44%2020", "202", "+4420"),
        ("branch=b&extension=203&number=020%207946", "203", "0207946"),
    ] {
        let (code, body) = app.get(query).await;
        assert_eq!(code, 200, "{query}: {body}");
        let got = app.received().pop().unwrap();
        assert_eq!(
            (got.param("from").unwrap(), got.param("to").unwrap()),
            (from.to_string(), to.to_string()),
            "{query}"
        );
    }
    let (code, _) = app.get("branch=b&ext=201&extension=202&number=1").await;
    assert_eq!(code, 400, "the same field twice is ambiguous");
}

#[tokio::test]
async fn dry_run_shows_the_exact_request_and_sends_nothing() {
    let app = spawn(&[("b", "dial: \"{POST}PBX/ivr/PbxAPI.aspx?func=make_call<&>from=^<&>to=#\"")]).await;
    let (code, body) = app.post(json!({"branch": "b", "extension": "201", "number": "+44 20", "dry_run": true})).await;
    assert_eq!((code, body["status"].as_str(), body["ok"].as_bool()), (200, Some("dry_run"), Some(true)));
    let req = &body["request"];
    assert_eq!(req["method"], "POST");
    assert_eq!(req["url"], format!("{}/ivr/PbxAPI.aspx?func=make_call", app.pbx.url()));
    assert_eq!(req["headers"]["content-type"], "application/x-www-form-urlencoded");
    assert_eq!(req["body"], "from=201&to=%2B4420");
    let (_, body) = app.get("branch=b&ext=201&number=1&dry_run=true").await;
    assert_eq!(body["status"], "dry_run");
    assert!(app.received().is_empty());
}

#[tokio::test]
async fn secrets_never_appear_in_answers_or_dry_runs() {
    let secret = "s3cr3t-T0ken+x";
    let profile = "extends: presets/voispeed.yaml\nvars: {scheme: http, host: PBXHOST, token: \"${SERI_TOKEN}\"}\n";
    let app = spawn_with_env(&[("m", profile)], &[("SERI_TOKEN", secret)]).await;

    let (_, body) = app.post(json!({"branch": "m", "extension": "35", "number": "187", "dry_run": true})).await;
    let text = body.to_string();
    assert!(text.contains("token=***"), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");

    // A PBX that echoes the token back in its error.
    app.pbx.set_behaviour(Behaviour::Fixed {
        status: 200,
        content_type: "text/xml".into(),
        body: format!("<result><outcome>1</outcome><error>bad token {secret}</error></result>"),
    });
    let (code, body) = app.post(json!({"branch": "m", "extension": "35", "number": "187"})).await;
    assert_eq!(code, 502);
    assert_eq!(body["message"], "bad token ***");
    assert!(!body.to_string().contains("s3cr3t"), "{body}");
    assert_eq!(app.only_request().param("token").as_deref(), Some(secret), "the PBX itself gets the real token");
}

#[tokio::test]
async fn two_hundred_concurrent_dials_each_reach_the_pbx_exactly_once() {
    // A generous timeout: this is about exactly once, not speed, and a
    // loaded test machine must not turn a slow answer into a failure.
    let app = spawn(&[("m", &format!("timeout: 60s\n{VOISPEED}"))]).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let client = app.client.clone();
        let url = format!("{}/v1/dial", app.url);
        tasks.push(tokio::spawn(async move {
            let body = json!({"branch": "m", "extension": "35", "number": format!("0207946{i:04}")});
            let resp = client.post(url).json(&body).send().await.expect("send");
            read(resp).await
        }));
    }
    let mut call_ids = std::collections::HashSet::new();
    for t in tasks {
        let (code, body) = t.await.expect("task");
        assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
        call_ids.insert(body["call_id"].as_str().unwrap().to_string());
    }
    assert_eq!(call_ids.len(), 200, "every dial got its own PBX request id");
    let mut per_number: HashMap<String, usize> = HashMap::new();
    for r in app.received() {
        *per_number.entry(r.param("number").unwrap()).or_default() += 1;
    }
    assert_eq!(per_number.len(), 200);
    assert!(per_number.values().all(|n| *n == 1), "each number exactly once");
}

#[tokio::test]
async fn healthz_answers() {
    let app = spawn(&[("b", IQX_GET)]).await;
    let resp = app.client.get(format!("{}/healthz", app.url)).send().await.unwrap();
    let (code, body) = read(resp).await;
    assert_eq!((code, body["ok"].as_bool(), body["branches"].as_u64()), (200, Some(true), Some(1)));
}

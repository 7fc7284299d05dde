//! One call per click: the duplicate window, `Idempotency-Key`, and a caller
//! who hangs up. Every repeat is checked to reach the PBX zero times.

use std::time::Duration;

use serde_json::json;
use webdial::standin::Behaviour;

use crate::helpers::{VOISPEED, spawn, spawn_with};

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

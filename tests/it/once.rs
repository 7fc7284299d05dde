//! One call per click: the duplicate window, `Idempotency-Key`, and a caller
//! who hangs up. Every repeat is checked to reach the PBX zero times, and
//! every request that must dial is checked to reach it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use webdial::standin::Behaviour;

use crate::helpers::{App, VOISPEED, read, spawn, spawn_with};

/// A dial as JSON, with an `Idempotency-Key` of exactly these bytes.
async fn with_key(app: &App, key: &[u8], body: Value) -> (u16, Value) {
    let header = reqwest::header::HeaderValue::from_bytes(key).expect("a header value");
    read(
        app.client
            .post(format!("{}/v1/dial", app.url))
            .header("idempotency-key", header)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn dial(number: &str) -> Value {
    json!({"branch": "m", "extension": "35", "number": number})
}

#[tokio::test]
async fn the_same_dial_again_gets_the_first_answer_and_rings_once() {
    let app = spawn(&[("m", VOISPEED)]).await;
    let (_, first) = app.post(dial("187")).await;
    let (code, second) = app.post(dial("187")).await;
    assert_eq!(code, 200);
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["call_id"], first["call_id"]);
    assert_eq!(second["pbx"], first["pbx"], "the first answer, body included");
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
        let req = app.client.post(format!("{}/v1/dial", app.url)).json(&dial("187"));
        tasks.push(tokio::spawn(async move { read(req.send().await.unwrap()).await }));
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
async fn the_same_input_to_another_action_is_another_request() {
    let line = "\"PBX/ivr/PbxAPI.aspx?func=make_call&from=^&to=#\"";
    let app = spawn(&[("m", &format!("dial: {line}\nactions:\n  ring_back: {line}\n"))]).await;
    let (code, _) = app.post(dial("187")).await;
    assert_eq!(code, 200);
    let resp = app.client.post(format!("{}/v1/actions/ring_back", app.url)).json(&dial("187")).send().await.unwrap();
    let (code, other) = read(resp).await;
    assert_eq!(code, 200, "{other}");
    assert!(other.get("duplicate").is_none(), "the window's key includes the action: {other}");
    assert_eq!(app.received().len(), 2);
}

#[tokio::test]
async fn after_the_window_the_same_dial_rings_again() {
    let window = Duration::from_millis(300);
    let app = spawn_with(&[("m", VOISPEED)], &[], |s| s.dedupe_window = window).await;
    let start = Instant::now();
    let (_, first) = app.post(dial("187")).await;
    // Wait for the event (the window's end), not for a time: repeat until
    // a repeat is no longer a duplicate. Every repeat before then is one.
    let deadline = start + Duration::from_secs(20);
    let again = loop {
        let (_, r) = app.post(dial("187")).await;
        if r.get("duplicate").is_none() || Instant::now() > deadline {
            break r;
        }
        assert_eq!(r["id"], first["id"], "a repeat in the window gets the first answer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(again.get("duplicate").is_none(), "the window ended: {again}");
    assert!(start.elapsed() >= window, "not before the window ended");
    assert_ne!(again["id"], first["id"]);
    assert_eq!(app.received().len(), 2);
}

#[tokio::test]
async fn an_unreachable_pbx_may_be_dialled_again_at_once() {
    let port = crate::helpers::closed_port();
    let app = spawn(&[("m", &format!("dial: \"http://127.0.0.1:{port}/x?to=#\""))]).await;
    let (_, first) = app.post(dial("187")).await;
    let (_, second) = app.post(dial("187")).await;
    assert_eq!(first["status"], "unreachable");
    assert_eq!(second["status"], "unreachable", "it tried again: {second}");
    assert!(second.get("duplicate").is_none(), "nothing was sent, so nothing is repeated: {second}");
    assert_ne!(second["id"], first["id"]);
    // The same with an Idempotency-Key: an unreachable first is forgotten.
    let (_, first) = with_key(&app, b"order-1", dial("187")).await;
    let (_, second) = with_key(&app, b"order-1", dial("187")).await;
    assert!(second.get("duplicate").is_none() && second["id"] != first["id"], "{second}");
}

#[tokio::test]
async fn the_same_idempotency_key_for_the_same_request_gets_the_first_answer() {
    // With the window off, only the key can make a request a repeat.
    let app = spawn_with(&[("m", VOISPEED)], &[], |s| s.dedupe_window = Duration::ZERO).await;
    let (code, first) = with_key(&app, b"order-42", dial("187")).await;
    assert_eq!(code, 200, "{first}");
    let (code, again) = with_key(&app, b"order-42", dial("187")).await;
    assert_eq!(code, 200, "{again}");
    assert_eq!((again["duplicate"].as_bool(), &again["id"]), (Some(true), &first["id"]), "{again}");
    assert_eq!(app.received().len(), 1);
    // Without the key the same dial is a new one (the window is off).
    let (_, plain) = app.post(dial("187")).await;
    assert!(plain.get("duplicate").is_none(), "{plain}");
    assert_eq!(app.received().len(), 2);
}

#[tokio::test]
async fn an_idempotency_key_reused_for_another_request_is_a_conflict_and_sends_nothing() {
    let app = spawn(&[("m", VOISPEED)]).await;
    let (code, first) = with_key(&app, b"order-42", dial("187")).await;
    assert_eq!(code, 200, "{first}");
    for other in [dial("188"), json!({"branch": "m", "extension": "36", "number": "187"})] {
        let (code, r) = with_key(&app, b"order-42", other).await;
        assert_eq!((code, r["status"].as_str(), r["ok"].as_bool()), (422, Some("conflict"), Some(false)), "{r}");
        assert!(r["message"].as_str().unwrap_or("").contains("Idempotency-Key"), "{r}");
    }
    assert_eq!(app.received().len(), 1, "a conflict sends nothing");
    // The first request is still remembered as it was.
    let (_, again) = with_key(&app, b"order-42", dial("187")).await;
    assert_eq!(again["duplicate"], true);
}

#[tokio::test]
async fn idempotency_keys_are_compared_as_exact_bytes() {
    // Two keys that differ only in a non-UTF-8 byte: read as text (with
    // replacement characters) they would be one key, and the second caller
    // would be told "accepted" for a number never dialled.
    let app = spawn(&[("m", VOISPEED)]).await;
    let (code, a) = with_key(&app, b"order-\xe9", dial("187")).await;
    assert_eq!(code, 200, "{a}");
    let (code, b) = with_key(&app, b"order-\xe8", dial("188")).await;
    assert_eq!(code, 200, "{b}");
    assert!(b.get("duplicate").is_none(), "{b}");
    assert_eq!(app.received().len(), 2, "both dialled");
    let (_, again) = with_key(&app, b"order-\xe9", dial("187")).await;
    assert_eq!((again["duplicate"].as_bool(), &again["id"]), (Some(true), &a["id"]));
    assert_eq!(app.received().len(), 2);
}

#[tokio::test]
async fn a_large_answer_is_remembered_without_its_body() {
    let app = spawn(&[("m", "dial: \"PBX/ivr/PbxAPI.aspx?func=make_call&from=^&to=#\"")]).await;
    app.pbx.set_behaviour(Behaviour::Huge(200 * 1024));
    let (code, first) = app.post(dial("187")).await;
    assert_eq!((code, first["status"].as_str()), (200, Some("accepted")));
    assert!(first["pbx"]["body"].to_string().len() > 200_000, "the first caller gets the whole answer");
    let (code, again) = app.post(dial("187")).await;
    assert_eq!((code, again["status"].as_str(), again["duplicate"].as_bool()), (200, Some("accepted"), Some(true)));
    assert_eq!(again["pbx"]["body"], Value::Null, "a repeat gets no body over 4 KiB");
    assert_eq!(again["pbx"]["http_status"], first["pbx"]["http_status"]);
    assert_eq!(app.received().len(), 1);
}

#[tokio::test]
async fn a_caller_who_hangs_up_does_not_cancel_the_dial_or_its_answer() {
    let app = spawn(&[("m", VOISPEED)]).await;
    app.pbx.set_behaviour(Behaviour::Delay(Duration::from_millis(600)));
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(100)).build().unwrap();
    let gave_up = impatient.post(format!("{}/v1/dial", app.url)).json(&dial("187")).send().await;
    assert!(gave_up.is_err(), "the first caller hangs up before the PBX answers");
    // The repeat arrives while the first is still in flight: it gets the
    // first one's answer only if hanging up did not cancel that dial.
    let (code, again) = app.post(dial("187")).await;
    assert_eq!(
        (code, again["status"].as_str(), again["duplicate"].as_bool()),
        (200, Some("accepted"), Some(true)),
        "{again}"
    );
    assert_eq!(app.received().len(), 1, "the click rang once, and its answer was kept for the repeat");
}

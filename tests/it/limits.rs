//! `max_in_flight`: a branch's PBX gets at most that many requests at once.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use webdial::standin::Behaviour;

use crate::helpers::{VOISPEED, spawn};

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

//! Events out: the server-sent event stream (resuming with Last-Event-ID,
//! key scope, filters, a stalled client), a dial's whole life from the
//! stand-in PBX's events to its call record, acting on the call by the id
//! its events gave, and `webdial watch`. No test sleeps against a window:
//! each waits for what it expects, with a bound.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webdial::settings::{KeySpec, Settings};

use crate::helpers::{App, read, spawn, spawn_with};

const WAIT: Duration = Duration::from_secs(10);

const MILAN: &str = "extends: presets/voispeed.yaml\nvars: {scheme: http, host: PBXHOST, token: demo-token}\nevents: {secret: s3cret-milan}\n";

/// A VOIspeed incoming_call for extension `ext`, numbered `n` so each is a different notification.
async fn incoming(app: &App, branch: &str, ext: &str, n: usize) -> String {
    let path = format!(
        "{branch}?secret=s3cret-milan&event_type=2&event=8&event_name=incoming_call&ext={ext}&number=187&call_id={n}"
    );
    let (status, body) = app.notify_get(&path).await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_str().expect("the event id").to_string()
}

#[tokio::test]
async fn last_event_id_resumes_after_that_event_in_order_with_nothing_twice() {
    let app = spawn(&[("milan", MILAN)]).await;
    let mut first = app.events("", None).await;
    let mut sent = Vec::new();
    for n in 0..10 {
        sent.push(incoming(&app, "milan", "35", n).await);
    }
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(first.next(WAIT).await.expect("event").id);
    }
    assert_eq!(seen, sent[..4], "in the order received");
    drop(first);

    // Reconnect after the fourth: the other six, then live ones, each once.
    let mut again = app.events("", Some(&seen[3])).await;
    for n in 10..12 {
        sent.push(incoming(&app, "milan", "35", n).await);
    }
    let mut rest = Vec::new();
    for _ in 0..8 {
        rest.push(again.next(WAIT).await.expect("event").id);
    }
    assert_eq!(rest, sent[4..], "replayed from the ring, then live, in order, nothing twice");
    assert!(again.next(Duration::from_millis(200)).await.is_none(), "and nothing more");

    // An id from before the ring's memory (a ULID older than every event): all of it.
    let mut all = app.events("", Some("00000000000000000000000000")).await;
    for id in &sent {
        assert_eq!(&all.next(WAIT).await.expect("event").id, id);
    }
    // An id that is no event's: only what comes next.
    let mut fresh = app.events("", Some("not-an-event-id")).await;
    let next = incoming(&app, "milan", "35", 99).await;
    assert_eq!(fresh.next(WAIT).await.expect("event").id, next);
}

fn keyed(s: &mut Settings) {
    let key = |name: &str, secret: &str, branches: &[&str]| {
        KeySpec::new(name.into(), secret.into(), branches.iter().map(|b| b.to_string()).collect(), None).unwrap()
    };
    s.keys = vec![key("erp", "erp-0123456789abcdef", &["*"]), key("milan-desk", "web-0123456789abcdef", &["milan"])];
}

#[tokio::test]
async fn streams_are_key_scoped_and_filtered_by_branch_and_extension() {
    let app = spawn_with(&[("milan", MILAN), ("rome", MILAN)], &[], keyed).await;
    let open = |query: &str| app.client.get(format!("{}/v1/events?{query}", app.url)).send();
    for (query, code) in [
        ("", 401),
        ("key=wrong-0123456789abcdef", 401),
        ("key=web-0123456789abcdef&branch=rome", 403),
        ("key=erp-0123456789abcdef&colour=red", 400),
    ] {
        let (got, body) = read(open(query).await.unwrap()).await;
        assert_eq!(got, code, "{query}: {body}");
    }
    // Notifications need no API key: the PBX authenticates with the branch's secret.
    let milan_desk = app.events("key=web-0123456789abcdef", None).await;
    let ext_36 = app.events("key=erp-0123456789abcdef&extension=36", None).await;
    let rome = app.events("key=erp-0123456789abcdef&branch=rome", None).await;
    let sent = [
        incoming(&app, "rome", "35", 1).await,
        incoming(&app, "milan", "35", 2).await,
        incoming(&app, "rome", "36", 3).await,
        incoming(&app, "milan", "36", 4).await,
    ];
    let ids = |n: usize, mut e: crate::helpers::Events| async move {
        let mut got = Vec::new();
        for _ in 0..n {
            got.push(e.next(WAIT).await.expect("event").id);
        }
        assert!(e.next(Duration::from_millis(200)).await.is_none(), "nothing else");
        got
    };
    assert_eq!(ids(2, milan_desk).await, [sent[1].clone(), sent[3].clone()], "a key sees its branches only");
    assert_eq!(ids(2, ext_36).await, [sent[2].clone(), sent[3].clone()]);
    assert_eq!(ids(2, rome).await, [sent[0].clone(), sent[2].clone()]);
    // A browser's EventSource sends `?key=`; a script may send a header.
    let resp =
        app.client.get(format!("{}/v1/events", app.url)).bearer_auth("web-0123456789abcdef").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut by_query = app.events("key=web-0123456789abcdef", None).await;
    let mut by_branch = app.events("key=web-0123456789abcdef&branch=milan", None).await;
    let one = incoming(&app, "milan", "37", 5).await;
    assert_eq!(by_query.next(WAIT).await.unwrap().id, one);
    assert_eq!(by_branch.next(WAIT).await.unwrap().id, one);
}

/// Opens a stream and does not read it: a client stalled (a tab in the
/// background, a slow link). Its socket buffers fill, then the gateway's
/// stream falls behind. (A tiny receive buffer would stall it sooner, but
/// then TCP's zero-window probes, backing off, delay it for seconds more
/// once it reads again.)
async fn stalled_client(app: &App) -> tokio::net::TcpStream {
    let addr: std::net::SocketAddr = app.url.trim_start_matches("http://").parse().unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET /v1/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

#[tokio::test]
async fn a_stalled_client_does_not_delay_receiving_or_the_others_and_is_cut_off() {
    let app = spawn(&[("milan", MILAN)]).await;
    let mut stalled = stalled_client(&app).await;
    let mut live = app.events("", None).await;
    // Large events (near the bound on their fields), enough to fill any
    // socket buffer many times over: the stalled stream must fall behind.
    const N: usize = 4_000;
    let pad = "p".repeat(1_800);
    let reader = tokio::spawn(async move {
        let mut ids = Vec::new();
        while ids.len() < N {
            match live.next(WAIT).await {
                Some(e) => ids.push(e.id),
                None => break,
            }
        }
        ids
    });
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut sent = Vec::new();
    for n in 0..N {
        let path = format!("milan?secret=s3cret-milan&event=8&ext=35&number=187&call_id={n}&pad={pad}");
        let t = Instant::now();
        let (status, body) = app.notify_get(&path).await;
        slowest = slowest.max(t.elapsed());
        assert_eq!(status, 200, "{body}");
        sent.push(body["id"].as_str().unwrap().to_string());
    }
    let took = started.elapsed();
    assert!(slowest < Duration::from_secs(2), "each notification is answered at once: slowest {slowest:?}");
    assert!(took < Duration::from_secs(60), "{N} notifications took {took:?}");
    let ids = reader.await.unwrap();
    assert_eq!(ids, sent, "the subscriber that reads got every event, in order");

    // The stalled one, read at last: what its buffers held, then the cut-off.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + WAIT;
    while !String::from_utf8_lossy(&got).contains(": cut off") {
        match tokio::time::timeout_at(deadline, stalled.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&got);
    let tail: String = text.chars().rev().take(300).collect::<Vec<_>>().into_iter().rev().collect();
    assert!(text.contains(": cut off"), "the stalled client is cut off (got {} bytes, ending {tail:?})", text.len());
    assert!(text.matches("event: call").count() < N, "before it had everything");
}

/// A branch on the stand-in whose PBX reports its calls to the gateway.
async fn app_with_events() -> App {
    let app = spawn(&[("milan", MILAN)]).await;
    app.pbx.notify_to(&format!("{}/v1/events/milan?secret=s3cret-milan", app.url), Duration::from_millis(100));
    app
}

async fn call(app: &App, id: &str) -> Value {
    let resp = app.client.get(format!("{}/v1/calls/{id}", app.url)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn a_dial_lives_its_whole_life_from_the_pbxs_events_to_its_call_record() {
    let app = app_with_events().await;
    let mut events = app.events("branch=milan", None).await;
    let (status, dial) =
        app.post(json!({"branch": "milan", "extension": "201", "number": "187", "external_id": "crm-42"})).await;
    assert_eq!((status, dial["status"].as_str()), (200, Some("accepted")), "{dial}");
    let id = dial["id"].as_str().unwrap();
    assert_eq!(call(&app, id).await["state"], "requested");
    let mut types = Vec::new();
    for _ in 0..3 {
        let e = events.next(WAIT).await.expect("the PBX's event").data;
        assert_eq!(e["dial_id"], id, "tied to the dial: {e}");
        assert_eq!((e["extension"].as_str(), e["remote"].as_str()), (Some("201"), Some("187")));
        assert_eq!((e["direction"].as_str(), e["external_id"].as_str()), (Some("out"), Some("crm-42")));
        types.push(e["type"].as_str().unwrap().to_string());
    }
    assert_eq!(types, ["dialling", "answered", "ended"]);
    let record = call(&app, id).await;
    assert_eq!(record["state"], "ended", "{record}");
    let kinds: Vec<&str> = record["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, types, "the record holds its events, in order");
    assert_eq!(record["call_id"], dial["call_id"], "the dial's answer's id (VOIspeed's request id)");
    let event_call_id = &record["events"][0]["call_id"];
    assert!(event_call_id.is_string() && *event_call_id != record["call_id"], "and the call's own, from the events");
    assert_eq!(record["events"][0]["external_id"], "crm-42");
}

#[tokio::test]
async fn a_hangup_by_the_dials_id_sends_the_call_id_its_events_gave() {
    let app = app_with_events().await;
    let mut events = app.events("branch=milan", None).await;
    let (_, dial) = app.post(json!({"branch": "milan", "extension": "201", "number": "187"})).await;
    let id = dial["id"].as_str().unwrap();
    let first = events.next(WAIT).await.expect("outgoing_call").data;
    assert_eq!((first["type"].as_str(), first["dial_id"].as_str()), (Some("dialling"), Some(id)));
    let call_id = first["call_id"].as_str().unwrap().to_string();
    assert_ne!(Some(call_id.as_str()), dial["call_id"].as_str(), "the call's id is not the request's");

    let resp = app.client.post(format!("{}/v1/calls/{id}/hangup", app.url)).send().await.unwrap();
    let (status, hung) = read(resp).await;
    assert_eq!((status, hung["status"].as_str()), (200, Some("accepted")), "{hung}");
    let hangup = app.received().into_iter().find(|r| r.param("service").as_deref() == Some("call_action")).unwrap();
    assert_eq!(hangup.param("call_id"), Some(call_id), "the event's call id, not the dial's request id");
    assert_eq!((hangup.param("ext").as_deref(), hangup.param("action").as_deref()), (Some("201"), Some("disconnect")));
}

#[tokio::test]
async fn a_cmd_failed_with_the_request_id_fails_its_dial() {
    let app = app_with_events().await;
    let mut events = app.events("branch=milan", None).await;
    // The stand-in accepts a number starting with 8, then cannot make the call.
    let (status, dial) = app.post(json!({"branch": "milan", "extension": "201", "number": "8001"})).await;
    assert_eq!(status, 200, "{dial}");
    let id = dial["id"].as_str().unwrap();
    let e = events.next(WAIT).await.expect("cmd_failed").data;
    assert_eq!((e["type"].as_str(), e["dial_id"].as_str()), (Some("failed"), Some(id)));
    assert_eq!(e["pbx"]["request_id"], dial["call_id"], "found by the request id its answer gave");
    assert_eq!(call(&app, id).await["state"], "failed");
}

#[tokio::test]
async fn webdial_watch_prints_one_line_per_event() {
    let app = spawn(&[("milan", MILAN)]).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_webdial"))
        .args(["watch", "--url", &app.url, "--branch", "milan"])
        .env_remove("WEBDIAL_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("webdial watch");
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap());
    // It may take a moment to connect: send until a line shows (each is a new event).
    let mut line = String::new();
    let deadline = Instant::now() + WAIT;
    let mut n = 0;
    while line.is_empty() && Instant::now() < deadline {
        n += 1;
        incoming(&app, "milan", "35", n).await;
        let mut read_line = String::new();
        if let Ok(Ok(_)) = tokio::time::timeout(
            Duration::from_millis(500),
            tokio::io::AsyncBufReadExt::read_line(&mut out, &mut read_line),
        )
        .await
        {
            line = read_line;
        }
    }
    assert!(line.contains(" milan 35 ringing ← 187 call="), "{line:?}");
    assert!(line.trim_end().ends_with(" dial=-"), "{line:?}");
    child.kill().await.ok();
}

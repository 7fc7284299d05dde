//! Hooks: events published on the gateway's bus, asserted on what a
//! receiving stand-in (a small axum app on port 0) actually got.
//!
//! Retries use a short schedule given to the gateway (the default is 1 s,
//! 5 s, 30 s, 2 min, 10 min, checked in the unit tests); nothing here
//! sleeps and hopes: every wait is for an arrival or a count, bounded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use tokio::sync::{Notify, Semaphore};
use webdial::call::Gateway;
use webdial::events::{CallEvent, Direction, EventType};
use webdial::hooks::{Counts, Deliveries, Policy};
use webdial::state::{Runtime, Snapshot};

use crate::helpers::closed_port;

/// How long any wait here may take before the test fails.
const BOUND: Duration = Duration::from_secs(15);

// ---- the receiving stand-in -------------------------------------------------

/// One request as the receiver got it.
#[derive(Debug, Clone)]
struct Got {
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: String,
}

impl Got {
    fn event_id(&self) -> String {
        self.headers.get("webdial-event-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
    }
    fn params(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_deref().unwrap_or("").as_bytes()).into_owned().collect()
    }
    fn param(&self, name: &str) -> String {
        self.params().into_iter().find(|(k, _)| k == name).map(|(_, v)| v).unwrap_or_default()
    }
}

/// What the receiver answers its n-th request (from 0).
#[derive(Clone)]
enum Reply {
    Status(u16),
    /// Never answers.
    Hang,
    /// Waits for a permit, then answers 200.
    Gate(Arc<Semaphore>),
}

#[derive(Clone)]
struct Shared {
    got: Arc<Mutex<Vec<Got>>>,
    arrived: Arc<Notify>,
    reply: Arc<dyn Fn(usize) -> Reply + Send + Sync>,
}

struct Receiver {
    url: String,
    shared: Shared,
}

async fn record(State(s): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let n = {
        let mut got = s.got.lock().unwrap();
        got.push(Got {
            method: method.to_string(),
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        got.len() - 1
    };
    s.arrived.notify_waiters();
    match (s.reply)(n) {
        Reply::Status(code) => StatusCode::from_u16(code).unwrap(),
        Reply::Hang => std::future::pending().await,
        Reply::Gate(gate) => {
            let _permit = gate.acquire().await.unwrap();
            StatusCode::OK
        }
    }
}

impl Receiver {
    async fn start(reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Receiver::on(listener, reply)
    }

    fn on(listener: tokio::net::TcpListener, reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Receiver {
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Shared { got: Arc::default(), arrived: Arc::new(Notify::new()), reply: Arc::new(reply) };
        let app = axum::Router::new().fallback(record).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, shared }
    }

    async fn ok() -> Receiver {
        Receiver::start(|_| Reply::Status(200)).await
    }

    fn got(&self) -> Vec<Got> {
        self.shared.got.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived; returns them all.
    async fn wait_for(&self, n: usize) -> Vec<Got> {
        let deadline = Instant::now() + BOUND;
        loop {
            let arrived = self.shared.arrived.notified();
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                tokio::time::timeout(left, arrived).await.is_ok(),
                "waited {BOUND:?} for {n} request(s), got {}: {got:#?}",
                got.len()
            );
        }
    }
}

// ---- the gateway ------------------------------------------------------------

struct Hooked {
    gw: Arc<Gateway>,
    _dir: tempfile::TempDir,
}

/// A schedule short enough for tests; the default one is unit-tested.
fn quick() -> Policy {
    Policy { backoff: vec![Duration::from_millis(5); 5], ..Policy::default() }
}

/// A minimal dial so a profile loads; hooks are what these tests are about.
const DIAL: &str = "dial: \"http://127.0.0.1:9/never?to=#\"\n";

/// A gateway over `profiles` (`RECV` replaced by the receiver's URL) and
/// `settings` (more of `webdial.yaml`), delivering hooks under `policy`.
async fn gateway(profiles: &[(&str, &str)], settings: &str, recv: &str, policy: Policy) -> Hooked {
    let dir = tempfile::tempdir().unwrap();
    let pdir = dir.path().join("profiles");
    std::fs::create_dir_all(&pdir).unwrap();
    for (name, text) in profiles {
        std::fs::write(pdir.join(format!("{name}.yaml")), text.replace("RECV", recv)).unwrap();
    }
    let config = dir.path().join("webdial.yaml");
    std::fs::write(&config, format!("listen: 127.0.0.1:0\nprofiles: profiles\n{}", settings.replace("RECV", recv)))
        .unwrap();
    let loaded = webdial::app::load(&config, true, &|_| None);
    assert!(loaded.diagnostics.is_empty(), "must load: {:?}", loaded.diagnostics);
    let snapshot = Snapshot { settings: loaded.settings.unwrap(), profiles: loaded.profiles };
    let mut runtime = Runtime::new(&snapshot).unwrap();
    runtime.hooks = Deliveries::new(runtime.clients.clone(), policy);
    let gw = Arc::new(Gateway::new(snapshot, runtime));
    webdial::app::start_hooks(&gw);
    Hooked { gw, _dir: dir }
}

impl Hooked {
    fn publish(&self, event: CallEvent) {
        self.gw.runtime().events.publish(event);
    }
    fn counts(&self) -> Counts {
        self.gw.runtime().hooks.counts()
    }
    /// Waits until `cond` holds of the counts.
    async fn until(&self, what: &str, cond: impl Fn(&Counts) -> bool) {
        let deadline = Instant::now() + BOUND;
        while !cond(&self.counts()) {
            assert!(Instant::now() < deadline, "waited {BOUND:?} for {what}: {:?}", self.counts());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn event(kind: EventType, direction: Option<Direction>, extension: &str, remote: Option<&str>) -> CallEvent {
    CallEvent {
        id: ulid::Ulid::generate().to_string(),
        branch: "milan".into(),
        kind,
        direction,
        extension: Some(extension.into()),
        remote: remote.map(str::to_string),
        call_id: Some("3250".into()),
        dial_id: None,
        external_id: None,
        at: "2026-11-23T14:05:09Z".into(),
        pbx: serde_json::json!({"event": "8", "event_name": "incoming_call"}),
    }
}

fn ringing(remote: &str) -> CallEvent {
    event(EventType::Ringing, Some(Direction::In), "35", Some(remote))
}

// ---- the Integra line ---------------------------------------------------------

#[tokio::test]
async fn an_integra_line_fills_every_placeholder_as_integra_does() {
    let recv = Receiver::ok().await;
    let profile = format!(
        "{DIAL}hooks:\n  - on: [ringing, answered]\n    url: \"RECV/popup.php?ext=!00&caller=!01&action=!02&did=!03&time=!04&id=!05&orig=!06&called=!07\"\n"
    );
    let app = gateway(&[("milan", &profile)], "", &recv.url, quick()).await;

    let mut incoming = ringing("+390261616161");
    incoming.pbx = serde_json::json!({"direct_number": "0261610035", "original_called": "0261616100"});
    let mut answered = event(EventType::Answered, Some(Direction::Out), "35", Some("+390261616161"));
    answered.at = "2026-01-02T03:04:05Z".into();
    let ids = [incoming.id.clone(), answered.id.clone()];
    app.publish(incoming);
    app.publish(answered);

    let got = recv.wait_for(2).await;
    let pairs = |g: &Got| g.params();
    let p = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!((got[0].method.as_str(), got[0].path.as_str()), ("GET", "/popup.php"));
    assert_eq!(
        pairs(&got[0]),
        [
            p("ext", "35"),
            p("caller", "+390261616161"),
            p("action", "CALL_IN"),
            p("did", "0261610035"),
            p("time", "23/11/2026_14.05.09"),
            p("id", "3250"),
            p("orig", "+390261616161"),
            p("called", "0261616100"),
        ]
    );
    assert!(
        got[0].query.as_deref().unwrap().contains("caller=%2B390261616161"),
        "the + is encoded: {:?}",
        got[0].query
    );
    assert_eq!(got[1].param("action"), "CALL_ACCEPT");
    assert_eq!(got[1].param("time"), "02/01/2026_03.04.05");
    assert_eq!(
        (got[1].param("orig"), got[1].param("called")),
        (String::new(), String::new()),
        "outgoing: no original caller/called"
    );
    assert_eq!([got[0].event_id(), got[1].event_id()], ids, "each delivery names its event");
}

#[tokio::test]
async fn event_values_cannot_add_a_parameter_or_a_path_segment() {
    let recv = Receiver::ok().await;
    let profile = format!("{DIAL}hooks:\n  - on: [ringing]\n    url: \"RECV/crm/!00/popup.php?caller=!01&id=!05\"\n");
    let app = gateway(&[("milan", &profile)], "", &recv.url, quick()).await;

    let mut hostile = event(EventType::Ringing, Some(Direction::In), "/../admin", Some("026&admin=1"));
    hostile.call_id = Some("1?x=2#frag".into());
    app.publish(hostile);
    // A value that would be a whole `..` segment (which URL parsers resolve,
    // encoded or not) is not sent at all.
    app.publish(event(EventType::Ringing, Some(Direction::In), "..", Some("1")));
    app.publish(ringing("marker"));

    let got = recv.wait_for(2).await;
    assert_eq!(got[0].path, "/crm/%2F..%2Fadmin/popup.php");
    let p = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(
        got[0].params(),
        [p("caller", "026&admin=1"), p("id", "1?x=2#frag")],
        "no added parameter: {:?}",
        got[0].query
    );
    assert_eq!(got[1].param("caller"), "marker", "the `..` one was never sent");
    assert_eq!(got.len(), 2);
    assert_eq!(app.counts().dropped, 1, "and it is counted");
}

// ---- which events ---------------------------------------------------------------

#[tokio::test]
async fn on_and_only_external_choose_the_events() {
    let recv = Receiver::ok().await;
    let profile = format!(
        "{DIAL}number: {{internal: '^[1-9][0-9]{{1,3}}$'}}\nhooks:\n  \
         - {{on: [ringing], only_external: true, url: \"RECV/external?r=!01\"}}\n  \
         - {{on: [ended], url: \"RECV/ended?r=!01\"}}\n"
    );
    let app = gateway(&[("milan", &profile)], "", &recv.url, quick()).await;

    app.publish(ringing("201")); // internal: skipped by only_external
    app.publish(ringing("+39 02 6161 6161")); // external
    app.publish(event(EventType::Answered, Some(Direction::In), "35", Some("+390261616161"))); // no hook is on answered
    app.publish(event(EventType::Ended, Some(Direction::In), "35", Some("201"))); // not only_external: sent
    app.publish(event(EventType::Ringing, Some(Direction::In), "35", None)); // no remote: not known internal
    // Each hook sends in order: once its marker is in, nothing earlier can still come.
    app.publish(ringing("marker"));
    app.publish(event(EventType::Ended, None, "35", Some("marker")));

    let got = loop {
        let got = recv.wait_for(1).await;
        if got.iter().filter(|g| g.param("r") == "marker").count() == 2 {
            break got;
        }
        recv.wait_for(got.len() + 1).await;
    };
    let seen = |path: &str| got.iter().filter(|g| g.path == path).map(|g| g.param("r")).collect::<Vec<_>>();
    assert_eq!(seen("/external"), ["+39 02 6161 6161", "", "marker"]);
    assert_eq!(seen("/ended"), ["201", "marker"]);
}

#[tokio::test]
async fn a_hook_in_webdial_yaml_gets_every_branchs_events_and_a_branch_hook_only_its_own() {
    let recv = Receiver::ok().await;
    let milan = format!("{DIAL}hooks:\n  - {{on: [ended], url: \"RECV/milan?ext=!00\"}}\n");
    let settings = "hooks:\n  - {on: [ended], url: \"RECV/every?ext=!00\"}\n";
    let app = gateway(&[("milan", &milan), ("london", DIAL)], settings, &recv.url, quick()).await;

    let mut london = event(EventType::Ended, None, "201", Some("0207"));
    london.branch = "london".into();
    app.publish(london);
    app.publish(event(EventType::Ended, None, "35", Some("02")));

    let got = recv.wait_for(3).await;
    let mut seen: Vec<(String, String)> = got.iter().map(|g| (g.path.clone(), g.param("ext"))).collect();
    seen.sort();
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(seen, [s("/every", "201"), s("/every", "35"), s("/milan", "35")]);
}

// ---- the full form ----------------------------------------------------------------

#[tokio::test]
async fn the_full_form_renders_the_event_with_minijinja() {
    let recv = Receiver::ok().await;
    let profile = format!(
        r#"{DIAL}vars: {{crm_token: "t0k&n"}}
hooks:
  - on: [answered]
    method: POST
    url: "RECV/api/calls/{{{{ event.call_id }}}}?ext={{{{ event.extension }}}}"
    headers: {{X-Crm-Token: "{{{{ crm_token }}}}"}}
    json:
      id: "{{{{ event.id }}}}"
      type: "{{{{ event.type }}}}"
      direction: "{{{{ event.direction }}}}"
      remote: "{{{{ event.remote | e164 }}}}"
      dial: "{{{{ event.dial_id or '' }}}}"
      name: "{{{{ event.pbx.event_name }}}}"
      absent: "{{{{ event.pbx.not_sent }}}}"
      branch: "{{{{ branch }}}}"
      fixed: 3
"#
    );
    let app = gateway(&[("milan", &profile)], "", &recv.url, quick()).await;
    let mut answered = event(EventType::Answered, Some(Direction::Out), "3&5", Some("+39 02 6161 6161"));
    answered.call_id = Some("32/50".into());
    let id = answered.id.clone();
    app.publish(answered);

    let got = recv.wait_for(1).await;
    let g = &got[0];
    assert_eq!((g.method.as_str(), g.path.as_str()), ("POST", "/api/calls/32%2F50"));
    assert_eq!(g.query.as_deref(), Some("ext=3%265"));
    assert_eq!(g.headers["x-crm-token"], "t0k&n");
    assert_eq!(g.headers["content-type"], "application/json");
    assert_eq!(g.event_id(), id);
    let body: serde_json::Value = serde_json::from_str(&g.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "id": id, "type": "answered", "direction": "out", "remote": "+390261616161",
            "dial": "", "name": "incoming_call", "absent": "", "branch": "milan", "fixed": 3
        })
    );
}

// ---- retries ------------------------------------------------------------------------

const ONE_HOOK: &str = "hooks:\n  - {on: [ringing], url: \"RECV/h?c=!01\"}\n";

#[tokio::test]
async fn a_503_is_retried_with_the_same_event_id_until_it_is_delivered() {
    let recv = Receiver::start(|n| Reply::Status(if n == 0 { 503 } else { 200 })).await;
    let app = gateway(&[("milan", &format!("{DIAL}{ONE_HOOK}"))], "", &recv.url, quick()).await;
    let e = ringing("0261");
    let id = e.id.clone();
    app.publish(e);

    app.until("one delivered", |c| c.delivered == 1).await;
    let got = recv.got();
    assert_eq!(got.iter().map(Got::event_id).collect::<Vec<_>>(), [id.clone(), id], "the same id on the retry");
    assert_eq!((app.counts().retried, app.counts().dropped), (1, 0));
}

#[tokio::test]
async fn a_refused_connection_is_retried_with_the_same_event_id_until_the_receiver_is_up() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}");
    // Enough retries to outlast starting the receiver, however slow the machine.
    let policy = Policy {
        backoff: [10, 50, 100, 250, 500, 1000, 2000, 4000].map(Duration::from_millis).to_vec(),
        ..Policy::default()
    };
    let app = gateway(&[("milan", &format!("{DIAL}{ONE_HOOK}"))], "", &url, policy).await;
    let e = ringing("0261");
    let id = e.id.clone();
    app.publish(e);

    app.until("a refused attempt", |c| c.retried >= 1).await;
    assert_eq!(app.counts().delivered, 0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let recv = Receiver::on(listener, |_| Reply::Status(200));

    let got = recv.wait_for(1).await;
    app.until("delivered", |c| c.delivered == 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event_id(), id);
    assert_eq!(app.counts().dropped, 0);
}

#[tokio::test]
async fn after_the_last_retry_a_delivery_is_dropped_and_counted() {
    let recv = Receiver::start(|_| Reply::Status(503)).await;
    let policy = Policy { backoff: vec![Duration::from_millis(1); 3], ..Policy::default() };
    let app = gateway(&[("milan", &format!("{DIAL}{ONE_HOOK}"))], "", &recv.url, policy).await;
    let e = ringing("0261");
    let id = e.id.clone();
    app.publish(e);

    app.until("dropped", |c| c.dropped == 1).await;
    let got = recv.got();
    assert_eq!(got.len(), 4, "the first attempt and three retries");
    assert!(got.iter().all(|g| g.event_id() == id));
    let c = app.counts();
    assert_eq!((c.retried, c.delivered, c.rejected), (3, 0, 0));
}

#[tokio::test]
async fn a_4xx_is_final_and_not_retried() {
    let recv = Receiver::start(|n| Reply::Status(if n == 0 { 404 } else { 200 })).await;
    let app = gateway(&[("milan", &format!("{DIAL}{ONE_HOOK}"))], "", &recv.url, quick()).await;
    app.publish(ringing("first"));
    app.publish(ringing("second"));

    app.until("one rejected, one delivered", |c| c.rejected == 1 && c.delivered == 1).await;
    assert_eq!(recv.got().iter().map(|g| g.param("c")).collect::<Vec<_>>(), ["first", "second"]);
    assert_eq!(app.counts().retried, 0);
}

// ---- isolation and bounds -------------------------------------------------------------

#[tokio::test]
async fn a_dead_or_stalled_hook_delays_neither_publishing_nor_the_other_hooks() {
    let stalled = Receiver::start(|_| Reply::Hang).await;
    let healthy = Receiver::ok().await;
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let profile = format!(
        "{DIAL}hooks:\n  \
         - {{on: [ringing], url: \"{}/stalled?c=!01\", timeout: 60s}}\n  \
         - {{on: [ringing], url: \"{dead}/dead?c=!01\"}}\n  \
         - {{on: [ringing], url: \"RECV/healthy?c=!01\"}}\n",
        stalled.url
    );
    // The dead hook's first retry waits a minute: it holds its own queue only.
    let policy = Policy { backoff: vec![Duration::from_secs(60)], ..Policy::default() };
    let app = gateway(&[("milan", &profile)], "", &healthy.url, policy).await;

    let started = Instant::now();
    for i in 0..100 {
        app.publish(ringing(&i.to_string()));
    }
    let publishing = started.elapsed();
    assert!(publishing < Duration::from_millis(500), "publishing 100 events took {publishing:?}");

    let got = healthy.wait_for(100).await;
    assert_eq!(
        got.iter().map(|g| g.param("c")).collect::<Vec<_>>(),
        (0..100).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    assert!(started.elapsed() < BOUND);
    assert!(stalled.got().len() <= 1, "the stalled receiver holds its first delivery");
    app.until("the healthy hook's 100 counted", |c| c.delivered == 100).await;
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_counts_it() {
    let gate = Arc::new(Semaphore::new(0));
    let held = gate.clone();
    let recv = Receiver::start(move |n| if n == 0 { Reply::Gate(held.clone()) } else { Reply::Status(200) }).await;
    let policy = Policy { queue: 3, ..quick() };
    let app = gateway(&[("milan", &format!("{DIAL}{ONE_HOOK}"))], "", &recv.url, policy).await;

    app.publish(ringing("1"));
    recv.wait_for(1).await; // the worker is busy with it: the rest queue up
    for i in 2..=10 {
        app.publish(ringing(&i.to_string()));
    }
    app.until("six dropped from the full queue", |c| c.overflowed == 6).await;
    assert_eq!(app.gw.runtime().hooks.waiting(), 3);
    gate.add_permits(1);

    let got = recv.wait_for(4).await;
    app.until("four delivered", |c| c.delivered == 4).await;
    assert_eq!(got.iter().map(|g| g.param("c")).collect::<Vec<_>>(), ["1", "8", "9", "10"], "the oldest went first");
    assert_eq!(recv.got().len(), 4);
}

// ---- load errors ------------------------------------------------------------------------

#[test]
fn hook_problems_are_reported_at_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = dir.path().join("profiles");
    std::fs::create_dir_all(&pdir).unwrap();
    let milan = format!(
        "{DIAL}hooks:\n  - on: [ringing, ringin]\n    url: \"http://crm/?x=!01\"\n  - on: [ended]\n    url: \"http://crm!00.local/p\"\n  - on: [ended]\n    url: \"http://crm/c\"\n    json: {{a: \"{{{{ event.nope }}}}\"}}\n"
    );
    std::fs::write(pdir.join("milan.yaml"), milan).unwrap();
    let config = dir.path().join("webdial.yaml");
    std::fs::write(&config, "profiles: profiles\nhooks:\n  - on: [ended]\n    url: \"iexplore http://crm/?x=!01\"\n")
        .unwrap();

    let loaded = webdial::app::load(&config, true, &|_| None);
    let lines: BTreeMap<String, String> = loaded
        .diagnostics
        .iter()
        .map(|d| {
            let text = d.to_string();
            let file = d.file.file_name().unwrap().to_string_lossy().to_string();
            (format!("{file}:{}:{}", d.line, d.column), text)
        })
        .collect();
    let says = |at: &str, what: &str| {
        assert!(lines.get(at).is_some_and(|l| l.contains(what)), "{at}: {what}\n{lines:#?}");
    };
    says("webdial.yaml:4:10", "webdial sends the URL itself");
    says("milan.yaml:3:19", "\"ringin\" is not an event type");
    says("milan.yaml:6:10", "never choose where a hook is sent");
    says("milan.yaml:9:15", "`event.nope` is undefined");
    assert_eq!(lines.len(), 4, "{lines:#?}");
}

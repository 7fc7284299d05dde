//! The dial log: every dial and action recorded before its answer is sent
//! (so a `kill -9` loses none), read back by id after a restart, listed by
//! `GET /v1/calls` (filters, pages, key scope) and `webdial log`; retention;
//! migrations; and a file that is not a dial log refused at start.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use webdial::calls::{Call, CallState, CallStore, EventRecord, Log, Query};
use webdial::outcome::Status;
use webdial::settings::{Data, KeySpec, Settings};
use webdial::standin::StandIn;

use crate::helpers::{App, CLICK2CALL, VOISPEED, read, spawn, spawn_with, write_config};
use crate::process::Server;

const DAY: Duration = Duration::from_secs(86_400);

/// `webdial --config CONFIG log ARGS…`: exit code, stdout, stderr.
fn webdial_log(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_webdial")).arg("--config").arg(config).arg("log").args(args).output();
    let out = out.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    read(client.get(url).send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_loses_no_answered_dial_and_a_restart_reads_every_one_back() {
    let pbx = StandIn::bind("127.0.0.1:0").await.unwrap();
    let dir = write_config(&pbx.url(), &[("m", VOISPEED), ("c", CLICK2CALL)]);
    let config = dir.path().join("webdial.yaml");
    let server = Server::start(&config);

    // Eight callers dial without pause; the process is killed while their
    // requests are in flight. Only an answer read whole counts as answered.
    const ENOUGH: usize = 300;
    let answered = Arc::new(Mutex::new(Vec::<Value>::new()));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut callers = Vec::new();
    for t in 0..8u32 {
        let (answered, client, url) = (answered.clone(), client.clone(), server.url.clone());
        callers.push(tokio::spawn(async move {
            for i in 0..10_000u32 {
                // Distinct numbers (no duplicate window); some refused by the PBX (ext 9xx).
                let ext = if i % 10 == 9 { "901" } else { "201" };
                let branch = if t % 2 == 0 { "m" } else { "c" };
                let body = json!({"branch": branch, "extension": ext, "number": format!("0207{t}{i:05}")});
                let Ok(resp) = client.post(format!("{url}/v1/dial")).json(&body).send().await else { return };
                let Ok(answer) = resp.json::<Value>().await else { return };
                answered.lock().unwrap().push(answer);
            }
        }));
    }
    while answered.lock().unwrap().len() < ENOUGH {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill_9();
    for c in callers {
        c.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() >= ENOUGH);
    assert!(answered.iter().any(|a| a["status"] == "rejected"), "failed dials are recorded too");

    let server = Server::start(&config);
    for a in &answered {
        let id = a["id"].as_str().unwrap();
        let (code, call) = get(&client, &format!("{}/v1/calls/{id}", server.url)).await;
        assert_eq!(code, 200, "answered before the kill, so recorded: {a} → {call}");
        assert_eq!((&call["branch"], &call["status"], &call["call_id"]), (&a["branch"], &a["status"], &a["call_id"]));
    }
    let (code, out, err) = webdial_log(&config, &["--json", "--limit", "100000"]);
    assert_eq!(code, 0, "{err}");
    let listed: std::collections::HashSet<String> =
        json_lines(&out).iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
    for a in &answered {
        assert!(listed.contains(a["id"].as_str().unwrap()), "webdial log lists {a}");
    }

    // The restarted gateway acts on a dial it made before the kill.
    let dial = answered.iter().find(|a| a["branch"] == "m" && a["status"] == "accepted").unwrap();
    let before = pbx.received().len();
    let resp = client.post(format!("{}/v1/calls/{}/hangup", server.url, dial["id"].as_str().unwrap())).send().await;
    let (code, hung) = read(resp.unwrap()).await;
    assert_eq!(code, 200, "{hung}");
    let got = pbx.received();
    assert_eq!(got.len(), before + 1);
    assert_eq!(got.last().unwrap().param("call_id").as_deref(), dial["call_id"].as_str());

    // And the log command's filters.
    let (_, out, _) = webdial_log(&config, &["--json", "--branch", "c", "--limit", "100000"]);
    let c = json_lines(&out);
    assert!(!c.is_empty() && c.iter().all(|e| e["branch"] == "c"), "{out}");
    let (_, out, _) = webdial_log(&config, &["--json", "--action", "hangup"]);
    assert_eq!(json_lines(&out).len(), 1, "{out}");
    assert_eq!(json_lines(&out)[0]["dial_id"], dial["id"]);
    let (code, out, _) = webdial_log(&config, &["--since", "2999-01-01T00:00:00Z"]);
    assert_eq!((code, out.as_str()), (0, ""), "nothing that new");
    let (_, out, _) = webdial_log(&config, &["--since", "1h", "--limit", "3"]);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.lines().all(|l| l.contains("  m  ") || l.contains("  c  ")), "one entry a line, for people:\n{out}");
    let (code, _, err) = webdial_log(&config, &["--since", "soon"]);
    assert_eq!(code, 1);
    assert!(err.contains("--since") && err.contains("neither a time"), "{err}");
}

impl App {
    async fn log_page(&self, query: &str) -> (u16, Value) {
        read(self.client.get(format!("{}/v1/calls?{query}", self.url)).send().await.unwrap()).await
    }

    async fn dial_ok(&self, branch: &str, ext: &str, number: &str) -> Value {
        let (code, r) = self.post(json!({"branch": branch, "extension": ext, "number": number})).await;
        assert_eq!(code, 200, "{r}");
        r
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["calls"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn the_list_filters_and_pages_newest_first() {
    let app = spawn(&[("m", VOISPEED), ("c", CLICK2CALL)]).await;
    let mut made = Vec::new();
    for (branch, ext, number) in [
        ("m", "201", "0207 946 0001"),
        ("m", "201", "0207 946 0002"),
        ("m", "202", "0207 946 0003"),
        ("c", "201", "0207 946 0004"),
        ("m", "201", "0207 946 0005"),
    ] {
        made.push(app.dial_ok(branch, ext, number).await["id"].as_str().unwrap().to_string());
    }
    let resp = app.client.post(format!("{}/v1/calls/{}/hangup", app.url, made[0])).send().await.unwrap();
    let (code, hangup) = read(resp).await;
    assert_eq!(code, 200, "{hangup}");
    made.push(hangup["id"].as_str().unwrap().to_string());
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();

    let (code, all) = app.log_page("").await;
    assert_eq!(code, 200, "{all}");
    assert_eq!(ids(&all), newest_first, "{all}");
    assert_eq!(all["next"], Value::Null);
    let first = &all["calls"][5];
    assert_eq!(
        (first["branch"].as_str(), first["action"].as_str(), first["extension"].as_str()),
        (Some("m"), Some("dial"), Some("201"))
    );
    assert_eq!((first["number"].as_str(), first["dialled"].as_str()), (Some("0207 946 0001"), Some("02079460001")));
    assert!(first.get("events").is_none(), "a list does not carry each call's events: {first}");
    let h = &all["calls"][0];
    assert_eq!((h["action"].as_str(), h["dial_id"].as_str()), (Some("hangup"), Some(made[0].as_str())), "{h}");
    assert_eq!(h["call_id"], all["calls"][5]["call_id"], "the call it hung up");

    for (query, want) in [
        ("branch=m", vec![5, 4, 2, 1, 0]),
        ("branch=m&action=dial", vec![4, 2, 1, 0]),
        ("branch=c", vec![3]),
        ("extension=2-02", vec![2]),
        ("ext=201&branch=m&action=dial", vec![4, 1, 0]),
        ("number=02079460002", vec![1]),
        ("number=0207%20946%200002", vec![1]),
        ("number=0207", vec![]),
        ("action=hangup", vec![5]),
        ("branch=nowhere", vec![]),
        ("since=2999-01-01T00:00:00Z", vec![]),
        ("since=1h", vec![5, 4, 3, 2, 1, 0]),
        ("since=2000-01-01T00:00:00Z&branch=c", vec![3]),
    ] {
        let (code, page) = app.log_page(query).await;
        assert_eq!(code, 200, "{query}: {page}");
        let want: Vec<String> = want.into_iter().map(|i| made[i].clone()).collect();
        assert_eq!(ids(&page), want, "{query}");
    }

    // Pages of two, following `next`, are the whole list, in order.
    let (mut seen, mut next, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let query = match &next {
            None => "limit=2".to_string(),
            Some(n) => format!("limit=2&before={n}"),
        };
        let (code, page) = app.log_page(&query).await;
        assert_eq!(code, 200, "{page}");
        assert!(ids(&page).len() <= 2);
        seen.extend(ids(&page));
        pages += 1;
        match page["next"].as_str() {
            Some(n) => next = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!((seen, pages), (newest_first, 3));

    let (code, page) = app.log_page("limit=100000").await;
    assert_eq!((code, ids(&page).len()), (200, 6), "a limit over the most is the most: {page}");
    for bad in ["limit=0", "limit=-1", "limit=many", "since=soon", "brnch=m", "branch=m&branch=c"] {
        let (code, r) = app.log_page(bad).await;
        assert_eq!((code, r["status"].as_str()), (400, Some("invalid_request")), "{bad}: {r}");
    }
    let resp = app.client.post(format!("{}/v1/calls", app.url)).json(&json!({})).send().await.unwrap();
    assert_eq!(resp.status(), 400, "listing is GET only");

    // One entry by id: an action is shown as the action it was, with its dial.
    let (code, one) = read(app.client.get(format!("{}/v1/calls/{}", app.url, made[5])).send().await.unwrap()).await;
    assert_eq!((code, one["action"].as_str(), one["dial_id"].as_str()), (200, Some("hangup"), Some(made[0].as_str())));
    // …but only a dial can be acted on by id.
    let resp = app.client.post(format!("{}/v1/calls/{}/hangup", app.url, made[5])).send().await.unwrap();
    let (code, r) = read(resp).await;
    assert_eq!((code, r["status"].as_str()), (400, Some("invalid_request")), "{r}");
    assert!(r["message"].as_str().unwrap().contains("is the id of a hangup, not of a dial"), "{r}");
}

fn key(name: &str, secret: &str, branches: &[&str]) -> KeySpec {
    KeySpec::new(name.into(), secret.into(), branches.iter().map(|s| s.to_string()).collect(), None).unwrap()
}

const ERP: &str = "erp-0123456789abcdef";
const WEB: &str = "web-0123456789abcdef";

#[tokio::test]
async fn a_key_lists_only_its_own_branches() {
    let app = spawn_with(&[("leeds", VOISPEED), ("london", VOISPEED), ("york", VOISPEED)], &[], |s: &mut Settings| {
        s.keys = vec![key("erp", ERP, &["*"]), key("intranet", WEB, &["london", "york"])];
    })
    .await;
    let mut by_branch = std::collections::HashMap::new();
    for (i, branch) in ["leeds", "london", "york", "leeds"].into_iter().enumerate() {
        let resp = app
            .client
            .post(format!("{}/v1/dial", app.url))
            .bearer_auth(ERP)
            .json(&json!({"branch": branch, "extension": "201", "number": format!("0207 946 000{i}")}))
            .send()
            .await
            .unwrap();
        let (code, r) = read(resp).await;
        assert_eq!(code, 200, "{r}");
        by_branch.entry(branch).or_insert_with(Vec::new).push(r["id"].as_str().unwrap().to_string());
    }
    let list = |key: Option<&'static str>, query: &'static str| {
        let mut req = app.client.get(format!("{}/v1/calls?{query}", app.url));
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        async move { read(req.send().await.unwrap()).await }
    };

    let (code, page) = list(Some(WEB), "").await;
    assert_eq!(code, 200, "{page}");
    let branches: Vec<&str> = page["calls"].as_array().unwrap().iter().map(|c| c["branch"].as_str().unwrap()).collect();
    assert_eq!(branches, ["york", "london"], "the intranet key sees london and york, never leeds: {page}");
    let (code, page) = list(Some(WEB), "branch=york").await;
    assert_eq!((code, ids(&page)), (200, by_branch["york"].clone()));
    let (code, r) = list(Some(WEB), "branch=leeds").await;
    assert_eq!((code, r["status"].as_str()), (403, Some("forbidden")), "naming a branch outside the key: {r}");
    let (code, r) = list(None, "").await;
    assert_eq!((code, r["status"].as_str()), (401, Some("unauthorized")), "{r}");
    let (code, r) = list(Some("not-a-key-0123456789"), "").await;
    assert_eq!(code, 401, "{r}");
    let (code, page) = list(Some(ERP), "").await;
    assert_eq!((code, ids(&page).len()), (200, 4), "the erp key sees every branch: {page}");
    let resp = app.client.get(format!("{}/v1/calls?branch=leeds&key={ERP}", app.url)).send().await.unwrap();
    let (code, page) = read(resp).await;
    let mut leeds = by_branch["leeds"].clone();
    leeds.reverse();
    assert_eq!((code, ids(&page)), (200, leeds), "?key= works too");
}

fn entry(id: String, created: SystemTime) -> Call {
    Call {
        id,
        branch: "b".into(),
        action: "dial".into(),
        extension: "201".into(),
        number: "187".into(),
        dialled: Some("187".into()),
        call_id: Some("3250".into()),
        dial_id: None,
        key: "-".into(),
        created,
        state: CallState::Requested,
        status: Status::Accepted,
        message: None,
    }
}

/// A gateway id made at `at`, as the gateway makes them.
fn id_at(at: SystemTime) -> String {
    ulid::Ulid::from_datetime(at).to_string()
}

fn event(dial: &str, at: SystemTime, state: Option<CallState>) -> EventRecord {
    EventRecord {
        id: id_at(at),
        branch: "b".into(),
        kind: "ended".into(),
        dial_id: Some(dial.into()),
        call_id: Some("3250".into()),
        at,
        json: json!({"type": "ended", "dial_id": dial}).to_string(),
        state,
    }
}

#[tokio::test]
async fn retention_deletes_what_is_older_on_a_sweep_with_the_clock_given() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(&Data::File(dir.path().join("dials.db")), 30 * DAY).unwrap();
    let now = SystemTime::now();
    // The sweep every log starts with, out of the way (nothing to delete yet).
    assert_eq!(log.sweep(now).wait().await.unwrap(), 0);
    let (old, recent) = (id_at(now - 40 * DAY), id_at(now - DAY));
    for id in [&old, &recent] {
        let created = if *id == old { now - 40 * DAY } else { now - DAY };
        log.remember(entry(id.clone(), created)).wait().await.unwrap();
    }
    log.record_event(event(&old, now - 40 * DAY, None)).wait().await.unwrap();
    log.record_event(event(&recent, now - DAY, Some(CallState::Failed))).wait().await.unwrap();
    assert_eq!(log.find(&recent).unwrap().map(|c| c.state), Some(CallState::Failed), "the event moved the dial");

    assert_eq!(log.sweep(now).wait().await.unwrap(), 2, "the 40-day-old dial and its event");
    assert!(log.find(&old).unwrap().is_none());
    assert!(log.find(&recent).unwrap().is_some());
    assert_eq!(log.events(&recent).unwrap().len(), 1);
    assert_eq!(log.sweep(now).wait().await.unwrap(), 0, "nothing more to delete");

    // Thirty days on, the other one goes too.
    assert_eq!(log.sweep(now + 30 * DAY).wait().await.unwrap(), 2);
    assert!(log.list(&Query::default()).unwrap().is_empty());

    // A large backlog goes in chunks, with dials committed in between.
    for i in 0..5_000u32 {
        let _ = log.remember(entry(format!("{}{i:05}", id_at(now - 60 * DAY)), now - 60 * DAY));
    }
    let sweep = log.sweep(now);
    let fresh = log.remember(entry(id_at(now), now));
    assert_eq!(sweep.wait().await.unwrap(), 5_000);
    fresh.wait().await.unwrap();
    assert_eq!(log.list(&Query::default()).unwrap().len(), 1);
}

#[tokio::test]
async fn a_dials_events_are_shown_with_it() {
    let pbx = StandIn::bind("127.0.0.1:0").await.unwrap();
    let dir = write_config(&pbx.url(), &[("m", VOISPEED)]);
    let loaded = webdial::app::load(&dir.path().join("webdial.yaml"), true, &|_| None);
    let gw = webdial::app::build(loaded.settings.unwrap(), loaded.profiles).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(webdial::app::serve(gw.clone(), listener, std::future::pending(), Duration::from_secs(1)));
    let client = reqwest::Client::new();
    let resp = client.post(format!("{url}/v1/dial")).json(&json!({"branch": "m", "extension": "201", "number": "187"}));
    let (_, dial) = read(resp.send().await.unwrap()).await;
    let id = dial["id"].as_str().unwrap();

    // What the events engineer's code will do when a PBX says the call ended.
    let ended = event(id, SystemTime::now(), Some(CallState::Failed));
    gw.runtime().calls.record_event(ended).wait().await.unwrap();
    let (code, call) = get(&client, &format!("{url}/v1/calls/{id}")).await;
    assert_eq!(code, 200, "{call}");
    assert_eq!(call["events"], json!([{"type": "ended", "dial_id": id}]));
    assert_eq!(call["state"], "failed");
}

/// The tables and the migrations recorded in a log file, read directly.
fn schema_of(file: &Path) -> (Vec<String>, Vec<(i64, String)>, i64) {
    let conn = rusqlite::Connection::open(file).unwrap();
    let tables = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap();
    let applied = conn
        .prepare("SELECT version, name FROM schema_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let app_id = conn.pragma_query_value(None, "application_id", |r| r.get(0)).unwrap();
    (tables, applied, app_id)
}

#[tokio::test]
async fn migrations_apply_to_an_empty_file_and_are_idempotent_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    for file in [dir.path().join("new.db"), dir.path().join("empty.db")] {
        if file.ends_with("empty.db") {
            std::fs::write(&file, b"").unwrap(); // an existing, empty file (touch)
        }
        let log = Log::open(&Data::File(file.clone()), 30 * DAY).unwrap();
        let kept = id_at(SystemTime::now());
        log.remember(entry(kept.clone(), SystemTime::now())).wait().await.unwrap();
        drop(log);
        let want = (
            vec!["calls".to_string(), "events".into(), "schema_migrations".into()],
            vec![(1, "0001_init.sql".to_string())],
            webdial::calls::sqlite::APPLICATION_ID,
        );
        assert_eq!(schema_of(&file), want, "{}", file.display());
        for _ in 0..2 {
            let log = Log::open(&Data::File(file.clone()), 30 * DAY).unwrap();
            assert!(log.find(&kept).unwrap().is_some(), "a restart keeps the entries");
            drop(log);
            assert_eq!(schema_of(&file), want, "nothing applied twice");
        }
    }
}

fn refused(file: &Path) -> String {
    match Log::open(&Data::File(file.to_path_buf()), 30 * DAY) {
        Ok(_) => panic!("{} must be refused", file.display()),
        Err(e) => {
            assert!(e.starts_with(&format!("{}: ", file.display())), "FILE: message: {e}");
            e
        }
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_webdial_dial_log_is_refused_at_start_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| -> PathBuf { dir.path().join(name) };

    let garbage = at("garbage.db");
    std::fs::write(&garbage, "this is not a database, just text that fills a page. ".repeat(200)).unwrap();
    assert!(refused(&garbage).contains("file is not a database"));

    let other = at("other.db");
    rusqlite::Connection::open(&other).unwrap().execute_batch("CREATE TABLE invoices (n INTEGER)").unwrap();
    let e = refused(&other);
    assert!(e.contains("not a webdial dial log") && e.contains("invoices"), "{e}");
    assert_eq!(schema_of_tables(&other), ["invoices"], "and it is left untouched");

    let foreign = at("foreign.db");
    rusqlite::Connection::open(&foreign).unwrap().execute_batch("PRAGMA application_id = 42").unwrap();
    assert!(refused(&foreign).contains("belongs to another program"));

    let newer = at("newer.db");
    drop(Log::open(&Data::File(newer.clone()), 30 * DAY).unwrap());
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute("INSERT INTO schema_migrations VALUES (99, '0099_future.sql', 0)", [])
        .unwrap();
    let e = refused(&newer);
    assert!(e.contains("written by a newer webdial") && e.contains("version 99"), "{e}");

    let altered = at("altered.db");
    drop(Log::open(&Data::File(altered.clone()), 30 * DAY).unwrap());
    rusqlite::Connection::open(&altered)
        .unwrap()
        .execute_batch("DROP TABLE calls; CREATE TABLE calls (id TEXT PRIMARY KEY)")
        .unwrap();
    assert!(refused(&altered).contains("the dial log's tables are not webdial's"));

    let truncated = at("truncated.db");
    {
        let log = Log::open(&Data::File(truncated.clone()), 30 * DAY).unwrap();
        for i in 0..2_000u32 {
            let _ = log.remember(entry(format!("{}{i:05}", id_at(SystemTime::now())), SystemTime::now()));
        }
        log.remember(entry(id_at(SystemTime::now()), SystemTime::now())).wait().await.unwrap();
    }
    // Fold the WAL into the file (once the dropped log's writer has let go:
    // leaving WAL mode needs the file to itself), then cut it.
    let conn = rusqlite::Connection::open(&truncated).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get::<_, String>(0)) {
            Ok(mode) if mode == "delete" => break,
            other => assert!(std::time::Instant::now() < deadline, "{other:?}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(conn);
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let _ = std::fs::remove_file(at("truncated.db-wal"));
    let _ = std::fs::remove_file(at("truncated.db-shm"));
    match Log::open(&Data::File(truncated.clone()), 30 * DAY) {
        // Cut past the schema: found at once.
        Err(e) => assert!(e.starts_with(&format!("{}: ", truncated.display())), "{e}"),
        // Cut in the data: reads of the missing pages say so, naming the file.
        Ok(log) => {
            let e = log.list(&Query { limit: 10_000, ..Query::default() }).unwrap_err().to_string();
            assert!(e.contains(&truncated.display().to_string()) && e.contains("malformed"), "{e}");
        }
    }

    std::fs::create_dir(at("folder.db")).unwrap();
    assert!(refused(&at("folder.db")).contains("cannot open the dial log"));
    assert!(refused(&at("no/such/folder/x.db")).contains("no folder"));
}

fn schema_of_tables(file: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(file).unwrap();
    let mut stmt = conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<Vec<String>, _>>().unwrap()
}

#[test]
fn serve_and_log_refuse_a_corrupt_file_with_its_name_and_no_panic() {
    let dir = write_config("http://127.0.0.1:9", &[("b", "dial: \"tel:#\"\n")]);
    let config = dir.path().join("webdial.yaml");
    let db = dir.path().join("webdial.db");
    std::fs::write(&db, vec![0xA5u8; 8192]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_webdial")).arg("--config").arg(&config).arg("serve").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{}: cannot use the dial log: file is not a database", db.display())), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let (code, _, err) = webdial_log(&config, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("{}: ", db.display())) && !err.contains("panicked"), "{err}");
}

#[tokio::test]
async fn in_memory_nothing_is_written_and_webdial_log_says_where_to_look() {
    let pbx = StandIn::bind("127.0.0.1:0").await.unwrap();
    let dir = write_config(&pbx.url(), &[("m", VOISPEED)]);
    let config = dir.path().join("webdial.yaml");
    std::fs::write(&config, "listen: 127.0.0.1:0\nprofiles: profiles\ndata: \":memory:\"\n").unwrap();
    let server = Server::start(&config);
    let client = reqwest::Client::new();
    let resp =
        client.post(format!("{}/v1/dial", server.url)).json(&json!({"branch": "m", "extension": "2", "number": "187"}));
    let (code, dial) = read(resp.send().await.unwrap()).await;
    assert_eq!(code, 200, "{dial}");
    let (code, page) = get(&client, &format!("{}/v1/calls", server.url)).await;
    assert_eq!((code, ids(&page)), (200, vec![dial["id"].as_str().unwrap().to_string()]));
    let files: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert!(!files.iter().any(|f| f.contains(".db")), "{files:?}");

    let (code, _, err) = webdial_log(&config, &[]);
    assert_eq!(code, 1);
    assert!(err.contains("GET /v1/calls"), "{err}");

    // With a file that does not exist yet, `log` says so and creates nothing.
    std::fs::write(&config, "listen: 127.0.0.1:0\nprofiles: profiles\ndata: later.db\n").unwrap();
    let (code, out, err) = webdial_log(&config, &[]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(err.contains("no dial log yet"), "{err}");
    assert!(!dir.path().join("later.db").exists());
}

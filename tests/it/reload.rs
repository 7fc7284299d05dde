//! Reloading the profiles while serving: through `POST /v1/admin/reload`,
//! SIGHUP on the binary and the file watcher. Asserted on what the stand-in
//! PBX received, on the reload answer and on `/healthz`.

use std::time::Duration;

use serde_json::{Value, json};
use webdial::settings::KeySpec;
use webdial::standin::Behaviour;

use crate::helpers::{App, VOISPEED, read, spawn_with, write_config};
use crate::process::Server;

/// How long anything here may take before the test fails.
const BOUND: Duration = Duration::from_secs(20);

/// An IQX line on the stand-in whose `v=` parameter tells the versions apart.
fn iqx(app_or_url: &str, v: &str) -> String {
    format!("dial: \"{{GET}}{app_or_url}/ivr/PbxAPI.aspx?func=make_call&from=^&to=#&v={v}\"\n")
}

/// A gateway whose only reloads are the ones a test asks for.
async fn spawn_unwatched(profiles: &[(&str, &str)], keys: Vec<KeySpec>) -> App {
    spawn_with(profiles, &[], |s| {
        s.watch_profiles = false;
        s.keys = keys;
    })
    .await
}

fn write(app: &App, branch: &str, text: &str) {
    std::fs::write(app.dir().join("profiles").join(format!("{branch}.yaml")), text).unwrap();
}

async fn reload(app: &App, key: Option<&str>) -> (u16, Value) {
    let mut req = app.client.post(format!("{}/v1/admin/reload", app.url));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    read(req.send().await.unwrap()).await
}

async fn healthz(app: &App) -> Value {
    read(app.client.get(format!("{}/healthz", app.url)).send().await.unwrap()).await.1
}

async fn dial(app: &App, branch: &str, number: &str) -> (u16, Value) {
    app.post(json!({"branch": branch, "extension": "201", "number": number})).await
}

/// The `v=` of the last request the stand-in received.
fn last_version(app: &App) -> Option<String> {
    app.received().last().and_then(|r| r.param("v"))
}

/// `FILE:LINE:COL: message`, with the file ending in `file`.
fn assert_located(text: &str, file: &str) {
    let re = regex::Regex::new(&format!(r"^\S*{}:\d+:\d+: \S", regex::escape(file))).unwrap();
    assert!(re.is_match(text), "not FILE:LINE:COL: message for {file}: {text}");
}

#[tokio::test]
async fn an_edit_is_used_a_broken_file_keeps_its_last_good_version_and_a_removed_one_is_gone() {
    let app = spawn_unwatched(&[("m", &iqx("PBX", "1")), ("other", VOISPEED)], vec![]).await;
    let pbx = app.pbx.url();
    assert_eq!(dial(&app, "m", "101").await.0, 200);
    assert_eq!(last_version(&app).as_deref(), Some("1"));

    // Edited: the next dial uses the new URL.
    write(&app, "m", &iqx(&pbx, "2"));
    let (code, report) = reload(&app, None).await;
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["changed"], json!(["m"]), "{report}");
    assert_eq!((report["added"].clone(), report["removed"].clone()), (json!([]), json!([])), "{report}");
    assert_eq!(report["branches"], 2);
    assert_eq!(report["trigger"], "api");
    assert_eq!(dial(&app, "m", "102").await.0, 200);
    assert_eq!(last_version(&app).as_deref(), Some("2"), "the next dial uses the new URL");

    // Broken: the last good version stays, the problem is reported at its place.
    write(&app, "m", &format!("dial: \"{{GET}}{pbx}/ivr/PbxAPI.aspx?func=make_call&v=3<&>from=^<&>to=#\"\n"));
    let (code, report) = reload(&app, None).await;
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["ok"], false, "{report}");
    assert_located(report["failed"]["m"].as_str().unwrap_or(""), "m.yaml");
    assert_eq!(report["kept"], json!(["m"]), "{report}");
    assert_eq!(report["changed"], json!([]), "a kept branch did not change: {report}");
    assert!(!report["problems"].as_array().unwrap().is_empty(), "{report}");
    let (code, result) = dial(&app, "m", "103").await;
    assert_eq!(code, 200, "the last good version still dials: {result}");
    assert_eq!(last_version(&app).as_deref(), Some("2"));
    let health = healthz(&app).await;
    assert_located(health["failed"]["m"].as_str().unwrap_or(""), "m.yaml");
    assert_eq!(health["reload"]["failed"], report["failed"], "{health}");
    assert_eq!(health["reload"]["ok"], false);
    assert!(health["reload"]["at"].as_str().is_some_and(|t| t.ends_with('Z')), "{health}");

    // Fixed again, then removed: the branch is gone.
    write(&app, "m", &iqx(&pbx, "4"));
    let (_, report) = reload(&app, None).await;
    assert_eq!((report["ok"].clone(), report["changed"].clone()), (json!(true), json!(["m"])), "{report}");
    std::fs::remove_file(app.dir().join("profiles/m.yaml")).unwrap();
    write(&app, "new", &iqx(&pbx, "5"));
    let (_, report) = reload(&app, None).await;
    assert_eq!(report["removed"], json!(["m"]), "{report}");
    assert_eq!(report["added"], json!(["new"]), "{report}");
    let before = app.received().len();
    let (code, result) = dial(&app, "m", "104").await;
    assert_eq!((code, result["status"].as_str()), (404, Some("unknown_branch")), "{result}");
    assert_eq!(app.received().len(), before, "nothing sent for a removed branch");
    assert_eq!(dial(&app, "new", "105").await.0, 200);
    assert_eq!(last_version(&app).as_deref(), Some("5"));
    assert_eq!(healthz(&app).await["failed"], json!({}));
}

#[tokio::test]
async fn a_broken_preset_keeps_every_branch_on_it_and_a_never_loaded_branch_is_reported() {
    let app = spawn_unwatched(&[("a", VOISPEED), ("b", VOISPEED)], vec![]).await;
    let preset = app.dir().join("profiles/presets/voispeed.yaml");
    let good = std::fs::read_to_string(&preset).unwrap();
    std::fs::write(&preset, format!("{good}\nnot_a_key: [\n")).unwrap();
    write(&app, "c", "dial: {url: \"http://x/{{ nope }}\"}\n");
    let (_, report) = reload(&app, None).await;
    assert_eq!(report["kept"], json!(["a", "b"]), "{report}");
    for b in ["a", "b"] {
        assert_located(report["failed"][b].as_str().unwrap_or(""), "voispeed.yaml");
        assert_eq!(dial(&app, b, "0207").await.0, 200, "{b} dials with its last good version");
    }
    assert_located(report["failed"]["c"].as_str().unwrap_or(""), "c.yaml");
    let (code, result) = dial(&app, "c", "0207").await;
    assert_eq!(code, 404, "{result}");
    assert!(result["message"].as_str().unwrap_or("").contains("did not load"), "{result}");
    // Fixed: both load from the file again.
    std::fs::write(&preset, good).unwrap();
    std::fs::remove_file(app.dir().join("profiles/c.yaml")).unwrap();
    let (_, report) = reload(&app, None).await;
    assert_eq!((report["ok"].clone(), report["kept"].clone()), (json!(true), json!([])), "{report}");
}

#[tokio::test]
async fn reloading_needs_an_admin_key_when_keys_are_configured() {
    let key = |name: &str, secret: &str, admin: bool| KeySpec {
        admin,
        ..KeySpec::new(name.into(), secret.into(), vec!["*".into()], None).unwrap()
    };
    let app = spawn_unwatched(
        &[("m", VOISPEED)],
        vec![key("erp", "erp-key-0123456789abcdef", false), key("ops", "ops-key-0123456789abcdef", true)],
    )
    .await;
    let (code, body) = reload(&app, None).await;
    assert_eq!((code, body["status"].as_str()), (401, Some("unauthorized")), "{body}");
    let (code, body) = reload(&app, Some("wrong-key-0123456789abcdef")).await;
    assert_eq!((code, body["status"].as_str()), (401, Some("unauthorized")), "{body}");
    let (code, body) = reload(&app, Some("erp-key-0123456789abcdef")).await;
    assert_eq!((code, body["status"].as_str()), (403, Some("forbidden")), "{body}");
    assert!(body["message"].as_str().unwrap_or("").contains("admin: true"), "{body}");
    let (code, body) = reload(&app, Some("ops-key-0123456789abcdef")).await;
    assert_eq!((code, body["ok"].as_bool()), (200, Some(true)), "{body}");
    // The last reload, read back: also admin only.
    let get = |k: &'static str| app.client.get(format!("{}/v1/admin/reload", app.url)).header("x-api-key", k);
    let (code, _) = read(get("erp-key-0123456789abcdef").send().await.unwrap()).await;
    assert_eq!(code, 403);
    let (code, last) = read(get("ops-key-0123456789abcdef").send().await.unwrap()).await;
    assert_eq!((code, last["trigger"].as_str()), (200, Some("api")), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dial_in_flight_during_a_reload_finishes_with_the_version_it_started_with() {
    let app = spawn_unwatched(&[("m", VOISPEED)], vec![]).await;
    // Version 2 reads the call id from another field of the same answer.
    let v2 =
        format!("{VOISPEED}dial:\n  response:\n    call_id: outcome\n").replace("PBXHOST", &app.pbx.addr.to_string());
    app.pbx.set_behaviour(Behaviour::Delay(Duration::from_secs(3)));
    let first = {
        let (client, url) = (app.client.clone(), format!("{}/v1/dial", app.url));
        tokio::spawn(async move {
            read(
                client
                    .post(url)
                    .json(&json!({"branch": "m", "extension": "201", "number": "101"}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        })
    };
    assert!(app.pbx.wait_for_requests(1, BOUND).await, "the first dial reaches the PBX");
    write(&app, "m", &v2);
    let (_, report) = reload(&app, None).await;
    assert_eq!(report["changed"], json!(["m"]), "{report}");
    assert!(!first.is_finished(), "the reload was done while the first dial was in flight");
    app.pbx.set_behaviour(Behaviour::Faithful);
    let (code, second) = dial(&app, "m", "102").await;
    assert_eq!((code, second["call_id"].as_str()), (200, Some("0")), "the new version reads `outcome`: {second}");
    let (code, first) = first.await.unwrap();
    assert_eq!(code, 200, "{first}");
    let call_id = first["call_id"].as_str().unwrap_or("");
    assert!(
        call_id.len() > 5 && call_id.chars().all(|c| c.is_ascii_digit()),
        "the old version reads request_id: {first}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_budgets_and_in_flight_counts_survive_a_reload() {
    let secret = "erp-key-0123456789abcdef";
    let key =
        KeySpec { admin: true, ..KeySpec::new("erp".into(), secret.into(), vec!["*".into()], Some("3/hour")).unwrap() };
    let limited = format!("{VOISPEED}max_in_flight: 1\n");
    let app = spawn_unwatched(&[("m", &limited)], vec![key]).await;
    let send = |number: &'static str| {
        let (client, url) = (app.client.clone(), format!("{}/v1/dial", app.url));
        async move {
            read(
                client
                    .post(url)
                    .bearer_auth(secret)
                    .json(&json!({"branch": "m", "extension": "201", "number": number}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    assert_eq!(send("101").await.0, 200, "budget: 1 of 3");
    app.pbx.set_behaviour(Behaviour::Delay(Duration::from_secs(3)));
    let slow = tokio::spawn(send("102")); // budget: 2 of 3, holds the one slot
    assert!(app.pbx.wait_for_requests(2, BOUND).await);
    write(&app, "m", &format!("{limited}timeout: 20s\n").replace("PBXHOST", &app.pbx.addr.to_string()));
    let (_, report) = reload(&app, Some(secret)).await; // does not spend the budget
    assert_eq!(report["changed"], json!(["m"]), "{report}");
    let (code, third) = send("103").await; // budget: 3 of 3
    assert_eq!((code, third["status"].as_str()), (429, Some("rate_limited")), "the slot is still taken: {third}");
    assert!(third["message"].as_str().unwrap_or("").contains("in flight"), "{third}");
    assert_eq!(slow.await.unwrap().0, 200);
    app.pbx.set_behaviour(Behaviour::Faithful);
    let (code, fourth) = send("104").await;
    assert_eq!((code, fourth["status"].as_str()), (429, Some("rate_limited")), "the budget was kept: {fourth}");
    assert!(fourth["message"].as_str().unwrap_or("").contains("rate"), "{fourth}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_reloads_after_an_editors_atomic_save() {
    let app = spawn_with(&[("m", &iqx("PBX", "1"))], &[], |_| {}).await;
    let mut reloads = app.gw.reloads();
    reloads.borrow_and_update();
    // An editor's atomic save: a temporary file renamed over the profile.
    let tmp = app.dir().join("profiles/.m.yaml.tmp~");
    std::fs::write(&tmp, iqx(&app.pbx.url(), "2")).unwrap();
    std::fs::rename(&tmp, app.dir().join("profiles/m.yaml")).unwrap();
    let report = loop {
        tokio::time::timeout(BOUND, reloads.changed()).await.expect("a reload by the watcher").unwrap();
        let report = reloads.borrow_and_update().clone();
        if !report.changed.is_empty() {
            break report;
        }
    };
    assert_eq!(report.trigger, "files");
    assert_eq!(report.changed, ["m"]);
    assert_eq!(dial(&app, "m", "101").await.0, 200);
    assert_eq!(last_version(&app).as_deref(), Some("2"));

    // A new preset folder file and a branch using it are picked up too.
    let sub = app.dir().join("profiles/presets/mine.yaml");
    std::fs::write(&sub, iqx(&app.pbx.url(), "3")).unwrap();
    write(&app, "n", "extends: presets/mine.yaml\n");
    let report = loop {
        tokio::time::timeout(BOUND, reloads.changed()).await.expect("a reload by the watcher").unwrap();
        let report = reloads.borrow_and_update().clone();
        if report.added.iter().any(|b| b == "n") {
            break report;
        }
    };
    assert!(report.ok, "{report:?}");
    assert_eq!(dial(&app, "n", "102").await.0, 200);
    assert_eq!(last_version(&app).as_deref(), Some("3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_binary_and_says_which_settings_need_a_restart() {
    let pbx = webdial::standin::StandIn::bind("127.0.0.1:0").await.unwrap();
    let dir = write_config(&pbx.url(), &[("m", &iqx("PBX", "1"))]);
    let config = dir.path().join("webdial.yaml");
    std::fs::write(&config, "listen: 127.0.0.1:0\nprofiles: profiles\nwatch_profiles: false\n").unwrap();
    let mut server = Server::start(&config);
    let addr = server.url.trim_start_matches("http://").to_string();
    let client = reqwest::Client::new();
    let dial = |n: &'static str| client.get(format!("http://{addr}/v1/dial?branch=m&ext=201&number={n}")).send();
    assert_eq!(dial("101").await.unwrap().status(), 200);

    std::fs::write(dir.path().join("profiles/m.yaml"), iqx(&pbx.url(), "2")).unwrap();
    std::fs::write(&config, "listen: 127.0.0.1:0\nprofiles: profiles\nwatch_profiles: false\ndedupe_window: 9s\n")
        .unwrap();
    server.signal(libc::SIGHUP);
    server.line("SIGHUP: reloading the profiles").await;
    let restart = server.line("webdial.yaml changed").await;
    assert!(restart.contains("dedupe_window") && restart.contains("restart"), "{restart}");
    let done = server.line("profiles reloaded (SIGHUP)").await;
    assert!(done.contains("changed: m"), "{done}");
    assert_eq!(dial("102").await.unwrap().status(), 200);
    assert_eq!(pbx.received().last().and_then(|r| r.param("v")).as_deref(), Some("2"));
    let health: Value = client.get(format!("http://{addr}/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["reload"]["trigger"], "SIGHUP", "{health}");
    assert_eq!(health["reload"]["restart_needed"], json!(["dedupe_window"]), "{health}");
    assert!(server.child.try_wait().unwrap().is_none(), "SIGHUP does not stop the gateway");
}

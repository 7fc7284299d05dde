//! The pages webdial serves (`/`, `/call`, `/pop`, `/webdial.js`, their
//! assets) and the JSON they use (`/v1/whoami`, `/v1/admin/branches`,
//! `/v1/admin/dial`, `/v1/pop`): content types, security headers, the DOM
//! contract's anchors, key scope, a broken profile's place, the pop link
//! built from a hostile caller id, the stand-in ringing an extension, and
//! the preflight `webdial.js` needs. What a browser does with them is
//! tested elsewhere, in a real browser.

use std::time::Duration;

use serde_json::Value;
use webdial::settings::{Cors, KeySpec, PopLink};

use crate::helpers::{App, Events, VOISPEED, read, spawn, spawn_with};

const WAIT: Duration = Duration::from_secs(10);
const ADMIN: &str = "admin-key-0123456789";
const DESK: &str = "desk-key-0123456789";
const SCOPED_ADMIN: &str = "scoped-admin-0123456789";
const MILAN: &str = "extends: presets/voispeed.yaml\nvars: {scheme: http, host: PBXHOST, token: demo-token}\nevents: {secret: s3cret-milan}\n";

fn keys() -> Vec<KeySpec> {
    let key = |name: &str, secret: &str, branches: &[&str], admin: bool| KeySpec {
        admin,
        ..KeySpec::new(name.into(), secret.into(), branches.iter().map(|b| b.to_string()).collect(), None).unwrap()
    };
    vec![
        key("admin", ADMIN, &["*"], true),
        key("desk", DESK, &["m"], false),
        key("m-admin", SCOPED_ADMIN, &["m"], true),
    ]
}

async fn spawn_keyed(profiles: &[(&str, &str)]) -> App {
    spawn_with(profiles, &[], |s| {
        s.keys = keys();
        s.watch_profiles = false;
    })
    .await
}

async fn get(app: &App, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(format!("{}{path}", app.url));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

async fn get_json(app: &App, path: &str, key: Option<&str>) -> (u16, Value) {
    read(get(app, path, key).await).await
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn pages_are_served_with_their_types_security_headers_and_anchors() {
    let app = spawn(&[("m", VOISPEED)]).await;
    let pages: [(&str, &[&str]); 3] = [
        ("/", &["id=\"branches\"", "id=\"recent\"", "id=\"events\"", "id=\"reload\"", "/assets/admin.js"]),
        (
            "/call?branch=m&ext=201&number=%2B44",
            &["id=\"dial\"", "id=\"state\"", "id=\"message\"", "id=\"tel-handler\""],
        ),
        ("/pop?extension=201", &["id=\"calls\"", "/assets/pop.js"]),
    ];
    for (path, anchors) in pages {
        let resp = get(&app, path, None).await;
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(header(&resp, "content-type"), "text/html; charset=utf-8", "{path}");
        let csp = header(&resp, "content-security-policy").to_string();
        for part in ["default-src 'self'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
        assert_eq!(header(&resp, "x-content-type-options"), "nosniff");
        assert_eq!(header(&resp, "referrer-policy"), "no-referrer");
        assert_eq!(header(&resp, "cache-control"), "no-cache");
        let html = resp.text().await.unwrap();
        for part in ["id=\"key-form\"", "id=\"key\"", "type=\"password\"", "id=\"key-save\"", "id=\"key-error\""]
            .iter()
            .chain(anchors)
        {
            assert!(html.contains(part), "{path} lacks {part}");
        }
        assert!(!html.contains("<script>") && !html.contains("style="), "{path}: no inline script or style");
        assert!(!html.contains("http://") && !html.contains("https://"), "{path}: nothing from elsewhere");
    }
    for (file, ct) in [
        ("common.js", "text/javascript; charset=utf-8"),
        ("admin.js", "text/javascript; charset=utf-8"),
        ("call.js", "text/javascript; charset=utf-8"),
        ("pop.js", "text/javascript; charset=utf-8"),
        ("pages.css", "text/css; charset=utf-8"),
    ] {
        let resp = get(&app, &format!("/assets/{file}"), None).await;
        assert_eq!((resp.status().as_u16(), header(&resp, "content-type")), (200, ct), "{file}");
        assert_eq!(header(&resp, "x-content-type-options"), "nosniff");
        let text = resp.text().await.unwrap();
        assert!(!text.contains("innerHTML") && !text.contains("eval("), "{file} places text, never markup");
    }
    let (status, body) = get_json(&app, "/assets/../webdial.yaml", None).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = get_json(&app, "/assets/nope.js", None).await;
    assert_eq!(status, 404);
    for (method, path) in [("POST", "/"), ("PUT", "/call"), ("POST", "/v1/pop"), ("GET", "/v1/admin/dial")] {
        let resp = app.client.request(method.parse().unwrap(), format!("{}{path}", app.url)).send().await.unwrap();
        let (status, body) = read(resp).await;
        assert_eq!((status, body["status"].as_str()), (400, Some("invalid_request")), "{method} {path}: {body}");
    }
    assert!(app.received().is_empty());

    let resp = get(&app, "/webdial.js", None).await;
    assert_eq!(header(&resp, "content-type"), "text/javascript; charset=utf-8");
    assert_eq!(header(&resp, "cross-origin-resource-policy"), "cross-origin", "other origins include it");
    assert_eq!(header(&resp, "x-content-type-options"), "nosniff");
    let js = resp.text().await.unwrap();
    assert!(js.contains("document.currentScript") && js.contains("window.webdial ="), "finds its own tag");
    assert!(!js.contains("innerHTML") && !js.contains("eval("), "no markup, no eval");
    assert!(js.contains("origin + '/v1/dial'"), "it calls its own gateway only");
}

#[tokio::test]
async fn whoami_names_the_key_and_refuses_a_wrong_one() {
    let open = spawn(&[("m", VOISPEED)]).await;
    let (status, who) = get_json(&open, "/v1/whoami", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (who["key"].clone(), who["keys_required"].clone(), who["admin"].clone()),
        (Value::Null, false.into(), true.into())
    );

    let app = spawn_keyed(&[("m", VOISPEED)]).await;
    let (status, body) = get_json(&app, "/v1/whoami", None).await;
    assert_eq!((status, body["status"].as_str()), (401, Some("unauthorized")), "{body}");
    let (status, body) = get_json(&app, "/v1/whoami", Some("wrong-key-0123456789")).await;
    assert_eq!(status, 401, "{body}");
    let (status, who) = get_json(&app, "/v1/whoami", Some(DESK)).await;
    assert_eq!(status, 200);
    assert_eq!(who["key"], "desk");
    assert_eq!((who["admin"].clone(), who["branches"].clone()), (false.into(), serde_json::json!(["m"])));
    let (_, who) = get_json(&app, &format!("/v1/whoami?key={ADMIN}"), None).await;
    assert_eq!((who["admin"].clone(), who["branches"].clone()), (true.into(), Value::Null), "?key= works too");
    assert!(!who.to_string().contains(ADMIN), "the key itself is never shown");
}

#[tokio::test]
async fn branches_list_a_broken_profile_at_its_place_for_admin_keys_only_within_their_scope() {
    let app = spawn_keyed(&[("m", VOISPEED), ("l", VOISPEED)]).await;
    std::fs::write(app.dir().join("profiles/c.yaml"), "dial: {url: \"http://x/{{ nope }}\"}\n").unwrap();
    std::fs::write(app.dir().join("profiles/l.yaml"), "extends: presets/voispeed.yaml\nvars: [\n").unwrap();
    let report = app.gw.reload(webdial::call::Trigger::Api).await;
    assert!(!report.ok);

    let (status, body) = get_json(&app, "/v1/admin/branches", None).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = get_json(&app, "/v1/admin/branches", Some(DESK)).await;
    assert_eq!((status, body["status"].as_str()), (403, Some("forbidden")), "not an admin key: {body}");

    let (status, body) = get_json(&app, "/v1/admin/branches", Some(ADMIN)).await;
    assert_eq!(status, 200, "{body}");
    let list = body["branches"].as_array().unwrap();
    let names: Vec<&str> = list.iter().filter_map(|b| b["branch"].as_str()).collect();
    assert_eq!(names, ["c", "l", "m"], "by name, the never-loaded one too");
    let c = &list[0];
    assert_eq!((c["state"].as_str(), c["served"].as_bool()), (Some("failed"), Some(false)), "{c}");
    let error = c["error"].as_str().unwrap_or("");
    let place = regex::Regex::new(r"c\.yaml:\d+:\d+: ").unwrap();
    assert!(place.is_match(error), "FILE:LINE:COL: message: {error}");
    let l = &list[1];
    assert_eq!((l["state"].as_str(), l["served"].as_bool()), (Some("failed"), Some(true)), "kept: {l}");
    let l_place = regex::Regex::new(r"l\.yaml:\d+:\d+: ").unwrap();
    assert!(l_place.is_match(l["error"].as_str().unwrap_or("")), "{l}");
    let m = &list[2];
    assert_eq!((m["state"].as_str(), m["error"].clone()), (Some("loaded"), Value::Null), "{m}");
    assert!(m["actions"].as_array().unwrap().iter().any(|a| a == "dial"), "{m}");

    let (_, body) = get_json(&app, "/v1/admin/branches", Some(SCOPED_ADMIN)).await;
    let names: Vec<&str> = body["branches"].as_array().unwrap().iter().filter_map(|b| b["branch"].as_str()).collect();
    assert_eq!(names, ["m"], "a key only sees its branches");
}

async fn test_dial(app: &App, key: Option<&str>, branch: &str, dry_run: bool) -> (u16, Value) {
    let mut req = app.client.post(format!("{}/v1/admin/dial", app.url)).json(&serde_json::json!({
        "branch": branch, "extension": "201", "number": "+390612345678", "dry_run": dry_run
    }));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    read(req.send().await.unwrap()).await
}

#[tokio::test]
async fn the_admin_test_form_needs_an_admin_key_and_a_refused_one_reaches_no_pbx() {
    let app = spawn_keyed(&[("m", VOISPEED), ("l", VOISPEED)]).await;
    for (key, want) in [(None, 401), (Some(DESK), 403)] {
        for dry in [true, false] {
            let (status, body) = test_dial(&app, key, "m", dry).await;
            assert_eq!(status, want, "{key:?} {dry}: {body}");
        }
    }
    let (status, body) = test_dial(&app, Some(SCOPED_ADMIN), "l", false).await;
    assert_eq!(status, 403, "an admin key keeps to its branches: {body}");
    assert!(app.received().is_empty(), "nothing refused reached the PBX");

    let (status, body) = test_dial(&app, Some(ADMIN), "m", true).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("dry_run")), "{body}");
    assert!(body["request"]["url"].as_str().unwrap_or("").contains("call_request"), "{body}");
    assert!(app.received().is_empty(), "a dry run sends nothing");

    let (status, body) = test_dial(&app, Some(ADMIN), "m", false).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.only_request();
    assert_eq!((got.param("service").as_deref(), got.param("ext").as_deref()), (Some("call_request"), Some("201")));
}

async fn pop_stream(app: &App, query: &str) -> Events {
    let resp = app.client.get(format!("{}/v1/pop?{query}", app.url)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "the pop stream opens");
    assert!(header(&resp, "content-type").starts_with("text/event-stream"));
    Events::from(resp)
}

async fn notify(app: &App, event: &str, ext: &str, number: &str, call_id: u32) {
    let number: String = form_urlencoded::byte_serialize(number.as_bytes()).collect();
    let path =
        format!("milan?secret=s3cret-milan&event_type=2&event={event}&ext={ext}&number={number}&call_id={call_id}");
    let (status, body) = app.notify_get(&path).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_pop_link_is_built_on_the_server_and_a_hostile_caller_cannot_change_it() {
    let link = PopLink::parse("https://crm.example.com/search?q={{ event.remote }}&from=pbx").unwrap();
    let app = spawn_with(&[("milan", MILAN)], &[], |s| s.pop_link = Some(link)).await;
    let mut pops = pop_stream(&app, "extension=201").await;
    notify(&app, "9", "201", "+390299999999", 1).await; // outgoing: not a pop
    notify(&app, "8", "202", "+390288888888", 2).await; // another extension
    let hostile = "1&admin=1#@evil.example/x?y=\"><script>";
    notify(&app, "8", "201", hostile, 3).await;
    let pop = pops.next(WAIT).await.expect("the incoming call");
    assert_eq!(pop.name, "pop");
    assert_eq!((pop.data["remote"].as_str(), pop.data["extension"].as_str()), (Some(hostile), Some("201")));
    let shown = pop.data["link"].as_str().expect("a link");
    let url = url::Url::parse(shown).unwrap();
    assert_eq!((url.scheme(), url.host_str()), ("https", Some("crm.example.com")), "{shown}");
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(pairs, [("q".to_string(), hostile.to_string()), ("from".into(), "pbx".into())], "{shown}");
    assert!(url.fragment().is_none() && !shown.contains('<') && !shown.contains('"'), "{shown}");

    // Reconnecting with Last-Event-ID: the calls since, and only incoming ones to 201.
    notify(&app, "8", "201", "+390277777777", 5).await;
    let missed = pops.next(WAIT).await.expect("the next call");
    drop(pops);
    let resp = app.client.get(format!("{}/v1/pop?extension=201", app.url)).header("last-event-id", &pop.id);
    let mut again = Events::from(resp.send().await.unwrap());
    let replayed = again.next(WAIT).await.expect("replayed");
    assert_eq!((replayed.id.as_str(), replayed.data["remote"].as_str()), (missed.id.as_str(), Some("+390277777777")));
    assert!(again.next(Duration::from_millis(200)).await.is_none(), "nothing else since");

    // A call on a branch without a link: the pop, with no link.
    let plain = spawn(&[("milan", MILAN)]).await;
    let mut pops = pop_stream(&plain, "extension=201&branch=milan").await;
    notify(&plain, "8", "201", "+390261616161", 4).await;
    let pop = pops.next(WAIT).await.expect("the pop");
    assert_eq!((pop.data["remote"].as_str(), pop.data["link"].clone()), (Some("+390261616161"), Value::Null));
}

#[tokio::test]
async fn the_pop_stream_needs_an_extension_and_a_key_for_its_branches() {
    let app = spawn_keyed(&[("m", MILAN), ("l", MILAN)]).await;
    let (status, body) = get_json(&app, "/v1/pop?extension=201", None).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = get_json(&app, &format!("/v1/pop?key={DESK}"), None).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = get_json(&app, &format!("/v1/pop?extension=201&branch=l&key={DESK}"), None).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = get_json(&app, &format!("/v1/pop?extension=201&nope=1&key={DESK}"), None).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn the_stand_in_rings_an_extension_and_its_pop_shows_the_caller() {
    let app = spawn(&[("milan", MILAN)]).await;
    let ring = format!("{}/_standin/ring?ext=201&from=%2B390261616161", app.pbx.url());
    let resp = app.client.post(&ring).send().await.unwrap();
    assert_eq!(resp.status(), 409, "told nowhere to send events, it says so");
    app.pbx.notify_to(&format!("{}/v1/events/milan?secret=s3cret-milan", app.url), Duration::from_millis(10));
    let mut pops = pop_stream(&app, "extension=201").await;
    let resp = app.client.post(&ring).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let pop = pops.next(WAIT).await.expect("the ring's pop");
    assert_eq!(pop.data["remote"], "+390261616161");
    assert!(pop.data["call_id"].as_str().is_some_and(|c| !c.is_empty()), "{}", pop.data);
    assert!(app.received().is_empty(), "being told to ring is not a request to the PBX");
    let resp = app.client.post(format!("{}/_standin/ring", app.pbx.url())).send().await.unwrap();
    assert_eq!(resp.status(), 400, "no extension");
}

#[tokio::test]
async fn webdial_js_preflight_passes_for_listed_origins_only() {
    const INTRANET: &str = "https://intranet.example.com";
    let app = spawn_with(&[("m", VOISPEED)], &[], |s| s.cors = Cors { origins: vec![INTRANET.into()] }).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/v1/dial", app.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type,idempotency-key")
            .send()
    };
    let resp = preflight(INTRANET).await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(header(&resp, "access-control-allow-origin"), INTRANET);
    let allowed = header(&resp, "access-control-allow-headers").to_ascii_lowercase();
    for h in ["authorization", "content-type", "idempotency-key"] {
        assert!(allowed.contains(h), "{allowed}");
    }
    let resp = preflight("https://evil.example.com").await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none(), "another origin gets no CORS");
    let resp = app
        .client
        .post(format!("{}/v1/dial", app.url))
        .header("origin", INTRANET)
        .header("idempotency-key", "click-1")
        .json(&serde_json::json!({"branch": "m", "extension": "201", "number": "+390612345678"}))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "access-control-allow-origin"), INTRANET);
    assert_eq!(resp.status(), 200);
    assert_eq!(app.received().len(), 1);
}

//! Login steps: what the PBX receives when a branch must log in first. One
//! login for many dials; an expired token renewed once and the action sent
//! exactly once more; no second attempt after a timeout or any other
//! answer; a failed login sends nothing else; dry runs never log in; no
//! token in answers or in logs; what load refuses.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use webdial::standin::{Behaviour, Received, THREECX_CLIENT_ID, THREECX_SECRET};

use crate::helpers::{action, dial, read, spawn, write_config};

/// A 3CX branch on the stand-in.
fn threecx(secret: &str) -> String {
    format!(
        "extends: presets/3cx.yaml\nvars: {{scheme: http, host: PBXHOST, client_id: \"{THREECX_CLIENT_ID}\", client_secret: {secret}}}\n"
    )
}

const TOKEN_PATH: &str = "/connect/token";

fn logins(got: &[Received]) -> usize {
    got.iter().filter(|r| r.path == TOKEN_PATH).count()
}

fn makecalls(got: &[Received]) -> Vec<&Received> {
    got.iter().filter(|r| r.path.ends_with("/makecall")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_dials_without_a_session_cause_one_login() {
    let app = spawn(&[("x", &threecx(THREECX_SECRET))]).await;
    let mut all = tokio::task::JoinSet::new();
    for i in 0..100 {
        let (client, url) = (app.client.clone(), format!("{}/v1/dial", app.url));
        all.spawn(async move {
            let body = json!({"branch": "x", "extension": "201", "number": format!("+44207946{i:04}")});
            read(client.post(url).json(&body).send().await.unwrap()).await
        });
    }
    for (code, body) in all.join_all().await {
        assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
        assert!(body["call_id"].as_str().is_some_and(|c| !c.is_empty()), "result.id is the call id: {body}");
    }
    let got = app.received();
    assert_eq!(logins(&got), 1, "one login for the hundred dials");
    assert_eq!(makecalls(&got).len(), 100);
    let login = got.iter().find(|r| r.path == TOKEN_PATH).unwrap();
    assert_eq!(login.param("grant_type").as_deref(), Some("client_credentials"));
    assert_eq!(login.param("client_id").as_deref(), Some(THREECX_CLIENT_ID));
    let token = &app.pbx.threecx().issued()[0];
    assert!(makecalls(&got).iter().all(|r| r.authorization.as_deref() == Some(&format!("Bearer {token}"))));
    let call = makecalls(&got)[0];
    assert_eq!(call.path, "/callcontrol/201/makecall");
    assert_eq!(call.content_type.as_deref(), Some("application/json"));
    assert!(call.body.starts_with("{\"destination\":\"+44207946"), "{}", call.body);
}

#[tokio::test]
async fn an_expired_token_is_renewed_once_and_the_action_sent_exactly_once_more() {
    let app = spawn(&[("x", &threecx(THREECX_SECRET))]).await;
    let (code, _) = app.post(dial("201", "+442079460000")).await;
    assert_eq!(code, 200);
    app.pbx.threecx().expire_all();
    let before = app.received().len();
    let (code, body) = app.post(dial("201", "+442079460001")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.received().split_off(before);
    let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/callcontrol/201/makecall", TOKEN_PATH, "/callcontrol/201/makecall"]);
    assert_ne!(got[0].authorization, got[2].authorization, "sent again with the new token");
    assert_eq!(got[0].body, got[2].body, "the same action");
}

#[tokio::test]
async fn refused_again_after_the_new_login_the_answer_stands() {
    let (url, seen) = challenge_pbx().await;
    let profile = format!(
        "vars: {{pbx: \"{url}\"}}\nlogin:\n  - {{url: \"{{{{ pbx }}}}/challenge\", save: {{nonce: \"headers['x-nonce']\"}}}}\ndial: {{url: \"{{{{ pbx }}}}/refused?to={{{{ number }}}}\"}}\n"
    );
    let app = spawn(&[("x", &profile)]).await;
    let (code, body) = app.post(dial("201", "+442079460000")).await;
    assert_eq!(
        (code, body["status"].as_str(), body["pbx"]["http_status"].as_u64()),
        (502, Some("rejected"), Some(401))
    );
    let got = seen.lock().unwrap().clone();
    let paths: Vec<&str> = got.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        ["/challenge", "/refused", "/challenge", "/refused"],
        "one new login, one more attempt, no third"
    );
}

#[tokio::test]
async fn a_timeout_or_any_other_answer_is_never_followed_by_a_login_or_a_second_attempt() {
    let app = spawn(&[("x", &format!("{}timeout: 300ms\n", threecx(THREECX_SECRET)))]).await;
    assert_eq!(app.post(dial("201", "+442079460000")).await.0, 200);
    let before = app.received().len();
    app.pbx.set_behaviour(Behaviour::Hang);
    let (code, body) = app.post(dial("201", "+442079460001")).await;
    assert_eq!((code, body["status"].as_str()), (504, Some("timeout")), "{body}");
    let got = app.received().split_off(before);
    assert_eq!((makecalls(&got).len(), logins(&got)), (1, 0), "{got:#?}");

    for (status, body) in [(500, ""), (403, ""), (200, "{\"finalstatus\": \"Failed\", \"reasontext\": \"busy\"}")] {
        let before = app.received().len();
        app.pbx.set_behaviour(Behaviour::Fixed { status, content_type: "application/json".into(), body: body.into() });
        let (code, answer) = app.post(dial("201", &format!("+44207946{status:04}"))).await;
        assert_eq!((code, answer["status"].as_str()), (502, Some("rejected")), "{answer}");
        let got = app.received().split_off(before);
        assert_eq!((makecalls(&got).len(), logins(&got)), (1, 0), "HTTP {status}: {got:#?}");
    }
}

#[tokio::test]
async fn a_failed_login_is_rejected_and_nothing_else_is_sent() {
    let app = spawn(&[("x", &threecx("wrong-secret"))]).await;
    let (code, body) = app.post(dial("201", "+442079460000")).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{body}");
    assert_eq!(body["message"], "login: invalid_client", "{body}");
    assert!(body["pbx"].is_null(), "the login's answer is not the action's: {body}");
    let got = app.received();
    assert_eq!(got.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), [TOKEN_PATH]);
    // Nothing reached the PBX's call control: the same click again logs in again.
    let (code, again) = app.post(dial("201", "+442079460000")).await;
    assert_eq!(code, 502);
    assert!(again.get("duplicate").is_none(), "{again}");
    assert_eq!(logins(&app.received()), 2);
    assert!(makecalls(&app.received()).is_empty());
    // A PBX that cannot be reached for the login is a failed login too.
    let port = crate::helpers::closed_port();
    let down = threecx(THREECX_SECRET).replace("PBXHOST", &format!("127.0.0.1:{port}"));
    let app = spawn(&[("x", &down)]).await;
    let (code, body) = app.post(dial("201", "+442079460000")).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{body}");
    assert!(body["message"].as_str().unwrap().starts_with("login: could not connect to the PBX"), "{body}");
}

#[tokio::test]
async fn a_dry_run_does_not_log_in_and_shows_the_session_masked() {
    let query_token = concat!(
        "extends: presets/3cx.yaml\n",
        "vars: {scheme: http, host: PBXHOST, client_id: \"900\", client_secret: demo-3cx-secret}\n",
        "actions:\n",
        "  presence:\n",
        "    url: \"http://PBXHOST/openapi/presence?ext={{ extension }}&access_token={{ session.token }}\"\n",
    );
    let app = spawn(&[("x", &threecx(THREECX_SECRET)), ("q", query_token)]).await;
    let (code, body) =
        app.post(json!({"branch": "x", "extension": "201", "number": "+442079460000", "dry_run": true})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("dry_run")), "{body}");
    let request = &body["request"];
    assert_eq!(request["headers"]["authorization"], "Bearer ***", "{body}");
    assert!(request["url"].as_str().unwrap().ends_with("/callcontrol/201/makecall"), "{body}");
    let (_, body) = action(&app, "presence", json!({"branch": "q", "extension": "201", "dry_run": true})).await;
    assert!(body["request"]["url"].as_str().unwrap().ends_with("?ext=201&access_token=***"), "{body}");
    assert!(app.received().is_empty(), "a dry run sends nothing, not even a login: {:#?}", app.received());
}

#[tokio::test(flavor = "multi_thread")]
async fn render_prints_the_request_with_the_session_masked_and_logs_in_nowhere() {
    let pbx = webdial::standin::StandIn::bind("127.0.0.1:0").await.unwrap();
    let dir = write_config(&pbx.url(), &[("x", &threecx(THREECX_SECRET))]);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_webdial"))
            .arg("--config")
            .arg(dir.path().join("webdial.yaml"))
            .args(["render", "--branch", "x", "--ext", "201", "--number", "+44 20 7946 0000"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with(&format!("POST {}/callcontrol/201/makecall\n", pbx.url())), "{stdout}");
    assert!(stdout.contains("authorization: Bearer ***\n"), "{stdout}");
    assert!(stdout.ends_with("{\"destination\":\"+442079460000\"}\n"), "{stdout}");
    assert!(pbx.received().is_empty(), "render does not log in: {:#?}", pbx.received());
}

#[tokio::test]
async fn hangup_divert_and_transfer_act_on_the_dialled_participant() {
    let app = spawn(&[("x", &threecx(THREECX_SECRET))]).await;
    let (_, dialled) = app.post(dial("201", "+442079460000")).await;
    let participant = dialled["call_id"].as_str().unwrap().to_string();
    for (name, verb, number) in
        [("divert", "divert", Some("202")), ("transfer", "transferto", Some("203")), ("hangup", "drop", None)]
    {
        let mut body = json!({"branch": "x", "extension": "201", "call_id": participant});
        if let Some(n) = number {
            body["number"] = json!(n);
        }
        let (code, answer) = action(&app, name, body).await;
        assert_eq!((code, answer["status"].as_str()), (200, Some("accepted")), "{name}: {answer}");
        let last = app.received().pop().unwrap();
        assert_eq!(last.path, format!("/callcontrol/201/participants/{participant}/{verb}"));
        let sent: Value = serde_json::from_str(&last.body).unwrap();
        assert_eq!(sent, number.map_or(json!({}), |n| json!({"destination": n})), "{name}");
    }
    assert_eq!(logins(&app.received()), 1, "all the branch's actions share its session");
    let (code, refused) = app.post(dial("901", "+442079460000")).await;
    assert_eq!((code, refused["message"].as_str()), (502, Some("no device registered for this DN")), "{refused}");
}

#[tokio::test]
async fn the_ttl_is_read_from_the_login_answer() {
    let app = spawn(&[("x", &threecx(THREECX_SECRET))]).await;
    // expires_in 0: the session is over as soon as it is got.
    app.pbx.threecx().announce(Duration::ZERO);
    for i in 0..3 {
        assert_eq!(app.post(dial("201", &format!("+44207946000{i}"))).await.0, 200);
    }
    assert_eq!(logins(&app.received()), 3, "each dial found its session expired");
    app.pbx.threecx().announce(Duration::from_secs(3600));
    for i in 3..6 {
        assert_eq!(app.post(dial("201", &format!("+44207946000{i}"))).await.0, 200);
    }
    assert_eq!(logins(&app.received()), 4, "one more login, kept for the next dials");
}

#[tokio::test]
async fn no_token_reaches_an_answer_even_when_the_pbx_echoes_it() {
    let app = spawn(&[("x", &threecx(THREECX_SECRET))]).await;
    let (_, first) = app.post(dial("201", "+442079460000")).await;
    let token = app.pbx.threecx().issued().pop().unwrap();
    let echo = format!(
        "{{\"finalstatus\": \"Failed\", \"reasontext\": \"token {token} may not dial\", \"token\": \"{token}\"}}"
    );
    app.pbx.set_behaviour(Behaviour::Fixed { status: 200, content_type: "application/json".into(), body: echo });
    let (code, echoed) = app.post(dial("201", "+442079460001")).await;
    assert_eq!((code, echoed["message"].as_str()), (502, Some("token *** may not dial")), "{echoed}");
    assert_eq!(echoed["pbx"]["body"]["token"], "***");
    for answer in [first, echoed] {
        assert!(!answer.to_string().contains(&token), "{answer}");
    }
}

/// A PBX of another kind: a challenge (nonce in a header, a cookie), then a
/// login with md5(nonce:password) that hands back a token; actions want the
/// cookie and the token. Records what it receives.
async fn challenge_pbx() -> (String, Arc<Mutex<Vec<(String, String, String)>>>) {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
        let record = record.clone();
        async move {
            let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            record.lock().unwrap().push((uri.path().to_string(), h("cookie"), body.clone()));
            // md5("n0nce-42:pw"), worked out apart from the filter under test.
            let want_hash = "12773e2504325a53e0d9b4e7b10da762";
            match uri.path() {
                "/challenge" => {
                    ([("x-nonce", "n0nce-42"), ("set-cookie", "sid=s3ss10n-cookie-1; Path=/; HttpOnly")], "{}")
                        .into_response()
                }
                "/login" if h("cookie") == "sid=s3ss10n-cookie-1" && body == format!("user=admin&hash={want_hash}") => {
                    ([("content-type", "application/json")], "{\"status\": 0, \"token\": \"tok-9f8e7d6c\"}")
                        .into_response()
                }
                "/login" => ([("content-type", "application/json")], "{\"status\": -37}").into_response(),
                "/dial" if h("cookie") == "sid=s3ss10n-cookie-1" && h("x-token") == "tok-9f8e7d6c" => {
                    ([("content-type", "application/json")], "{\"status\": 0}").into_response()
                }
                _ => StatusCode::UNAUTHORIZED.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn steps_see_earlier_steps_headers_cookies_and_saved_values() {
    let (url, seen) = challenge_pbx().await;
    let profile = format!(
        r#"
vars: {{pbx: "{url}", password: pw}}
login:
  - url: "{{{{ pbx }}}}/challenge"
    save: {{nonce: "headers['x-nonce']"}}
  - method: POST
    url: "{{{{ pbx }}}}/login"
    headers: {{Cookie: "{{{{ session.cookie }}}}"}}
    form: {{user: admin, hash: "{{{{ (session.nonce ~ ':' ~ password) | md5 }}}}"}}
    response: {{format: json, ok: "status == 0", message: "'status ' ~ status"}}
    save: {{token: token}}
session: {{ttl: 10m}}
dial:
  method: POST
  url: "{{{{ pbx }}}}/dial"
  headers: {{Cookie: "{{{{ session.cookie }}}}", X-Token: "{{{{ session.token }}}}"}}
  json: {{to: "{{{{ number }}}}"}}
  response: {{format: json, ok: "status == 0"}}
"#
    );
    let app = spawn(&[("x", &profile)]).await;
    let (code, body) = app.post(dial("201", "+442079460000")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = seen.lock().unwrap().clone();
    let paths: Vec<&str> = got.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(paths, ["/challenge", "/login", "/dial"]);
    assert_eq!(got[1].1, "sid=s3ss10n-cookie-1", "the first step's Set-Cookie, as a Cookie header");
    assert_eq!(app.post(dial("201", "+442079460001")).await.0, 200);
    assert_eq!(seen.lock().unwrap().len(), 4, "ttl 10m: the session is kept");
    let (_, dry) =
        app.post(json!({"branch": "x", "extension": "201", "number": "+442079460002", "dry_run": true})).await;
    assert_eq!(
        (dry["request"]["headers"]["cookie"].as_str(), dry["request"]["headers"]["x-token"].as_str()),
        (Some("***"), Some("***")),
        "{dry}"
    );
    // While the session lives, its values are masked wherever they appear.
    for value in ["s3ss10n-cookie-1", "sid=s3ss10n-cookie-1", "tok-9f8e7d6c", "n0nce-42"] {
        assert_eq!(webdial::secrets::redact(&format!("x {value} y")), "x *** y", "{value}");
    }
}

#[tokio::test]
async fn a_login_step_refused_says_which_step_and_the_pbxs_words() {
    let (url, seen) = challenge_pbx().await;
    let profile = format!(
        r#"
vars: {{pbx: "{url}"}}
login:
  - url: "{{{{ pbx }}}}/challenge"
    save: {{nonce: "headers['x-nonce']"}}
  - method: POST
    url: "{{{{ pbx }}}}/login"
    form: {{user: admin, hash: "{{{{ session.nonce | md5 }}}}"}}
    response: {{format: json, ok: "status == 0", message: "'status ' ~ status"}}
    save: {{token: token}}
dial:
  url: "{{{{ pbx }}}}/dial?to={{{{ number }}}}&t={{{{ session.token }}}}"
"#
    );
    let app = spawn(&[("x", &profile)]).await;
    let (code, body) = app.post(dial("201", "+442079460000")).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{body}");
    assert_eq!(body["message"], "login: step 2 of 2: status -37");
    assert_eq!(seen.lock().unwrap().len(), 2, "no dial after a failed login");
}

#[test]
fn a_session_value_nothing_saves_and_other_mistakes_are_load_errors() {
    let profiles = [
        (
            "unsaved",
            "login:\n  - {url: \"http://h/token\", save: {token: access_token}}\ndial:\n  url: \"http://h/d?to={{ number }}\"\n  auth: {bearer: \"{{ session.tokn }}\"}\n",
        ),
        ("no_login", "dial:\n  url: \"http://h/d?to={{ number }}&t={{ session.token }}\"\n"),
        (
            "order",
            "login:\n  - {url: \"http://h/a?t={{ session.token }}\"}\n  - {url: \"http://h/b\", save: {token: t}}\ndial: \"http://h/d?to=#\"\n",
        ),
        ("caller_value", "login:\n  - {url: \"http://h/a?ext={{ extension }}\"}\ndial: \"http://h/d?to=#\"\n"),
        ("save_on_action", "dial:\n  url: \"http://h/d?to={{ number }}\"\n  save: {x: y}\n"),
        ("session_alone", "session: {ttl: 5m}\ndial: \"http://h/d?to=#\"\n"),
        ("bad_ttl", "login:\n  - {url: \"http://h/a\"}\nsession: {ttl: \"expires_in +\"}\ndial: \"http://h/d?to=#\"\n"),
        ("cookie_name", "login:\n  - {url: \"http://h/a\", save: {cookie: c}}\ndial: \"http://h/d?to=#\"\n"),
        (
            "fine",
            "login:\n  - {url: \"http://h/a\", save: {token: t}}\nsession: {ttl: 50m}\ndial:\n  url: \"http://h/d?to={{ number }}\"\n  headers: {Cookie: \"{{ session.cookie }}\", X-T: \"{{ session.token }}\"}\n",
        ),
    ];
    let dir = write_config("http://127.0.0.1:9", &profiles);
    let no_env = |_: &str| None;
    let (loaded, diags) = webdial::profile::Loader::new(&no_env).load_dir(&dir.path().join("profiles"));
    let shown: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    let find = |file: &str| {
        shown
            .iter()
            .find(|d| d.contains(&format!("/{file}.yaml:")))
            .cloned()
            .unwrap_or_else(|| panic!("{file}: {shown:#?}"))
    };
    assert!(
        find("unsaved")
            .contains("unsaved.yaml:4:3: `session.tokn` is not saved by any login step (saved: cookie, token)"),
        "{shown:#?}"
    );
    assert!(find("no_login").contains("uses `session.token`, but the profile has no `login:` steps"), "{shown:#?}");
    assert!(find("order").contains("order.yaml:2:5: `session.token` is not saved by an earlier step"), "{shown:#?}");
    assert!(find("caller_value").contains("`extension` is a request value: login steps are shared"), "{shown:#?}");
    assert!(find("save_on_action").contains("save_on_action.yaml:3:9: `save` belongs to login steps"), "{shown:#?}");
    assert!(find("session_alone").contains("`session:` belongs to `login:` steps"), "{shown:#?}");
    assert!(find("bad_ttl").contains("bad_ttl.yaml:3:16: "), "{shown:#?}");
    assert!(find("cookie_name").contains("`cookie` is the session's cookies"), "{shown:#?}");
    assert_eq!(shown.len(), 8, "{shown:#?}");
    assert!(loaded.get("fine").is_some_and(|p| p.login.is_some()));
    let shipped = loaded.get("fine").unwrap().login.as_ref().unwrap();
    assert!(matches!(shipped.ttl, webdial::profile::Ttl::Fixed(d) if d == Duration::from_secs(3000)));
}

// ---- logs, with the binary ----------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn no_token_reaches_a_log_line_at_trace_level() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let pbx = webdial::standin::StandIn::bind("127.0.0.1:0").await.unwrap();
    let dir = write_config(&pbx.url(), &[("x", &threecx("\"${THREECX_SECRET}\""))]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_webdial"))
        .arg("--config")
        .arg(dir.path().join("webdial.yaml"))
        .arg("serve")
        .env("RUST_LOG", "trace")
        .env("THREECX_SECRET", THREECX_SECRET)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok).take(200_000) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut logs = Vec::new();
    let addr = loop {
        let line = tokio::time::timeout_at(deadline.into(), rx.recv()).await.expect("start");
        let line = line.unwrap_or_else(|| panic!("the gateway stopped:\n{}", logs.join("\n")));
        logs.push(line.clone());
        if let Some(rest) = line.split("webdial listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    let url = format!("http://{addr}/v1/dial");
    for (i, expire) in [(0, false), (1, true), (2, false)] {
        if expire {
            pbx.threecx().expire_all();
        }
        let body = json!({"branch": "x", "extension": "201", "number": format!("+4420794600{i:02}")});
        let (code, answer) = read(client.post(&url).json(&body).send().await.unwrap()).await;
        assert_eq!(code, 200, "{answer}");
        answers.push(answer.to_string());
    }
    // The audit line of the last dial is the last thing it logs.
    while let Ok(Some(line)) = tokio::time::timeout_at(deadline.into(), rx.recv()).await {
        let done = line.contains("webdial::audit") && line.contains("+442079460002");
        logs.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let tokens = pbx.threecx().issued();
    assert_eq!(tokens.len(), 2, "a login, and one after the expiry");
    let all = logs.join("\n");
    assert!(logs.len() > 50, "trace logging of dependencies was on:\n{all}");
    assert!(all.contains("logged in"), "{all}");
    for token in &tokens {
        assert!(!all.contains(token.as_str()), "a token reached a log line:\n{all}");
        assert!(!answers.iter().any(|a| a.contains(token.as_str())), "a token reached an answer: {answers:?}");
    }
    assert!(!all.contains(THREECX_SECRET), "the client secret reached a log line");
}

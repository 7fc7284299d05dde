//! Presets for baresip, Yeastar S-Series and Vodia, each against its
//! stand-in: the exact request the system received, accepted with its call
//! id where it gives one, each documented refusal `rejected` in the
//! system's words, a hanging system `timeout`, login and token expiry where
//! the system has them; a dry run sends nothing. (baresip against the real
//! program: `real_baresip`.)

use serde_json::{Value, json};
use webdial::standin::{
    Behaviour, Received, VODIA_ADMIN, VODIA_ADMIN_PASSWORD, VODIA_DOMAIN, VODIA_WEB_PASSWORD, YEASTAR_S_PASSWORD,
    YEASTAR_S_USER,
};

use crate::helpers::{App, read, spawn, spawn_with_env};

pub(crate) async fn action(app: &App, action: &str, body: Value) -> (u16, Value) {
    read(app.client.post(format!("{}/v1/actions/{action}", app.url)).json(&body).send().await.expect("action")).await
}

fn status(answer: &(u16, Value)) -> (u16, Option<&str>) {
    (answer.0, answer.1["status"].as_str())
}

async fn dry_run_sends_nothing(profile: &str) {
    let app = spawn(&[("x", profile)]).await;
    let answer = app.post(json!({"branch": "x", "extension": "201", "number": "02079460000", "dry_run": true})).await;
    assert_eq!(status(&answer), (200, Some("dry_run")), "{}", answer.1);
    assert!(app.received().is_empty(), "a dry run sends nothing, not even a login: {:#?}", app.received());
}

/// A PBX that stops answering: `timeout`. With `logged_in`, a first dial
/// makes the session, so the hang meets the action, not the login (a login
/// that gets no answer is a failed login: `rejected`, `login: …`).
async fn hanging_is_a_timeout(profile: &str, logged_in: bool) {
    let app = spawn(&[("x", &format!("{profile}timeout: 300ms\n"))]).await;
    if logged_in {
        let first = app.post(json!({"branch": "x", "extension": "201", "number": "02079460001"})).await;
        assert_eq!(status(&first), (200, Some("accepted")), "{}", first.1);
    }
    app.pbx.set_behaviour(Behaviour::Hang);
    let answer = app.post(json!({"branch": "x", "extension": "201", "number": "02079460000"})).await;
    assert_eq!(status(&answer), (504, Some("timeout")), "{}", answer.1);
}

// ---- baresip ------------------------------------------------------------------

fn baresip(domain: &str) -> String {
    format!("extends: presets/baresip.yaml\nvars: {{scheme: http, host: PBXHOST, domain: \"{domain}\"}}\n")
}

fn path_and_query(r: &Received) -> String {
    format!("{} {}?{}", r.method, r.path, r.query.as_deref().unwrap_or(""))
}

#[tokio::test]
async fn baresip_dials_the_number_at_the_domain_with_at_sign_and_space_escaped() {
    let app = spawn(&[("x", &baresip("pbx.example.com:5060"))]).await;
    let answer = app.post(json!({"branch": "x", "extension": "201", "number": "+44 20 7946 0000"})).await;
    assert_eq!(status(&answer), (200, Some("accepted")), "{}", answer.1);
    let got = app.only_request();
    assert_eq!(path_and_query(&got), "GET /raw/?/dial%20sip%3A%2B442079460000%40pbx.example.com%3A5060");
    assert_eq!(got.authorization, None);
    // The call id baresip printed.
    let id = answer.1["call_id"].as_str().unwrap_or_default().to_string();
    assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{}", answer.1);
}

#[tokio::test]
async fn baresip_without_a_domain_sends_the_number_alone() {
    let app = spawn(&[("x", &baresip(""))]).await;
    let answer = app.post(json!({"branch": "x", "extension": "201", "number": "02079460000"})).await;
    assert_eq!(status(&answer), (200, Some("accepted")), "{}", answer.1);
    assert_eq!(path_and_query(&app.only_request()), "GET /raw/?/dial%2002079460000");
}

#[tokio::test]
async fn baresip_refusals_are_rejected_with_its_output() {
    let app = spawn(&[("x", &baresip("pbx.example.com"))]).await;
    let answer = app.post(json!({"branch": "x", "extension": "201", "number": "9001"})).await;
    assert_eq!(status(&answer), (502, Some("rejected")), "{}", answer.1);
    assert_eq!(
        answer.1["message"],
        "call uri: sip:9001@pbx.example.com; ua_connect failed: Connection refused; err: Connection refused"
    );
    assert_eq!(answer.1["call_id"], Value::Null);
}

#[tokio::test]
async fn baresip_a_page_without_an_err_line_is_accepted_as_baresip_1_0_answers() {
    let app = spawn(&[("x", &baresip("pbx.example.com"))]).await;
    app.pbx.set_behaviour(Behaviour::Fixed { status: 200, content_type: "text/plain".into(), body: String::new() });
    let answer = app.post(json!({"branch": "x", "extension": "201", "number": "02079460000"})).await;
    assert_eq!(status(&answer), (200, Some("accepted")), "{}", answer.1);
    assert_eq!(answer.1["call_id"], Value::Null);
}

#[tokio::test]
async fn baresip_hangup_hold_unhold_dtmf_and_transfer_send_the_menu_commands() {
    let app = spawn(&[("x", &baresip("pbx.example.com"))]).await;
    let cases = [
        ("hangup", json!({"branch": "x", "extension": "201"}), "GET /raw/?/hangup"),
        ("hold", json!({"branch": "x", "extension": "201"}), "GET /raw/?/hold"),
        ("unhold", json!({"branch": "x", "extension": "201"}), "GET /raw/?/resume"),
        ("dtmf", json!({"branch": "x", "extension": "201", "digits": "12#"}), "GET /raw/?/sndcode%2012%23"),
        (
            "transfer",
            json!({"branch": "x", "extension": "201", "number": "202"}),
            "GET /raw/?/transfer%20sip%3A202%40pbx.example.com",
        ),
    ];
    for (i, (name, body, sent)) in cases.into_iter().enumerate() {
        let answer = action(&app, name, body).await;
        assert_eq!(status(&answer), (200, Some("accepted")), "{name}: {}", answer.1);
        let got = app.received();
        assert_eq!(got.len(), i + 1, "{name}: one request each");
        assert_eq!(path_and_query(&got[i]), sent, "{name}");
    }
}

#[tokio::test]
async fn baresip_an_unknown_command_is_rejected() {
    let profile = format!(
        "{}actions:\n  nope:\n    url: \"http://PBXHOST/raw/?/nope\"\n    response: {{format: text, ok: \"'err: Success' in raw\", message: raw}}\n",
        baresip("")
    );
    let app = spawn(&[("x", &profile)]).await;
    let answer = action(&app, "nope", json!({"branch": "x", "extension": "201"})).await;
    assert_eq!(status(&answer), (502, Some("rejected")), "{}", answer.1);
    assert_eq!(answer.1["message"], "command not found (nope)\nerr: Operation not supported");
}

#[tokio::test]
async fn baresip_hanging_is_a_timeout_and_a_dry_run_sends_nothing() {
    hanging_is_a_timeout(&baresip("pbx.example.com"), false).await;
    dry_run_sends_nothing(&baresip("pbx.example.com")).await;
}

// ---- Yeastar S-Series -------------------------------------------------------------

fn yeastar_s(password: &str) -> String {
    format!(
        "extends: presets/yeastar-s.yaml\nvars: {{scheme: http, host: PBXHOST, user: {YEASTAR_S_USER}, password: {password}}}\n"
    )
}

fn json_body(r: &Received) -> Value {
    serde_json::from_str(&r.body).expect("a JSON body")
}

fn md5_hex(text: &str) -> String {
    use md5::Digest as _;
    md5::Md5::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn yeastar_s_logs_in_with_the_md5_password_then_dials_with_the_token() {
    let app = spawn(&[("x", &yeastar_s(YEASTAR_S_PASSWORD))]).await;
    let answer = app.post(json!({"branch": "x", "extension": "1000", "number": "02079460000"})).await;
    assert_eq!(status(&answer), (200, Some("accepted")), "{}", answer.1);
    let got = app.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    let (login, dial) = (&got[0], &got[1]);
    assert_eq!(
        (login.method.as_str(), login.path.as_str(), login.query.as_deref()),
        ("POST", "/api/v2.0.0/login", None)
    );
    assert_eq!(login.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        json_body(login),
        json!({"username": YEASTAR_S_USER, "password": md5_hex(YEASTAR_S_PASSWORD), "port": "8260"})
    );
    let token = &app.pbx.logins("yeastar-s").issued()[0];
    assert_eq!((dial.method.as_str(), dial.path.as_str()), ("POST", "/api/v2.0.0/call/dial"));
    assert_eq!(dial.query.as_deref(), Some(format!("token={token}").as_str()));
    assert_eq!(json_body(dial), json!({"caller": "1000", "callee": "02079460000", "autoanswer": "no"}));
    let call_id = answer.1["call_id"].as_str().unwrap_or_default().to_string();
    assert!(call_id.ends_with(".333"), "Yeastar's callid: {}", answer.1);
    assert!(!answer.1.to_string().contains(token.as_str()), "the token is a secret: {}", answer.1);

    // Hangup on the same session.
    let answer = action(&app, "hangup", json!({"branch": "x", "call_id": "1495710387.333-ch"})).await;
    assert_eq!(status(&answer), (200, Some("accepted")), "{}", answer.1);
    let hangup = app.received().pop().expect("hangup");
    assert_eq!(
        (hangup.path.as_str(), hangup.query.as_deref()),
        ("/api/v2.0.0/call/hangup", Some(format!("token={token}").as_str()))
    );
    assert_eq!(json_body(&hangup), json!({"channelid": "1495710387.333-ch"}));
    assert_eq!(app.received().iter().filter(|r| r.path.ends_with("/login")).count(), 1, "one session for both");
}

#[tokio::test]
async fn yeastar_s_refusals_are_rejected_with_the_errno_and_yeastars_words() {
    let app = spawn(&[("x", &yeastar_s(YEASTAR_S_PASSWORD))]).await;
    let cases = [
        (
            json!({"branch": "x", "extension": "9000", "number": "02079460000"}),
            "errno 10006: The extension does not exist.",
        ),
        (
            json!({"branch": "x", "extension": "1000", "number": "9002079460000"}),
            "errno 10024: The extension does not have outbound call permission.",
        ),
    ];
    for (request, words) in cases {
        let answer = app.post(request).await;
        assert_eq!(status(&answer), (502, Some("rejected")), "{}", answer.1);
        assert_eq!(answer.1["message"], words);
    }
    let answer = action(&app, "hangup", json!({"branch": "x", "call_id": "9.1"})).await;
    assert_eq!(
        (status(&answer), answer.1["message"].as_str()),
        ((502, Some("rejected")), Some("errno 10007: The call does not exist."))
    );
    // No refusal was a lost token: one login, each request sent once.
    let paths: Vec<String> = app.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        ["/api/v2.0.0/login", "/api/v2.0.0/call/dial", "/api/v2.0.0/call/dial", "/api/v2.0.0/call/hangup"]
    );
}

#[tokio::test]
async fn yeastar_s_a_failed_login_is_rejected_and_nothing_else_is_sent() {
    let app = spawn(&[("x", &yeastar_s("wrong"))]).await;
    let answer = app.post(json!({"branch": "x", "extension": "1000", "number": "02079460000"})).await;
    assert_eq!(status(&answer), (502, Some("rejected")), "{}", answer.1);
    assert_eq!(answer.1["message"], "login: errno 20003: User login failure (invalid username or password).");
    assert_eq!(app.received().len(), 1, "only the login: {:#?}", app.received());
}

#[tokio::test]
async fn yeastar_s_an_erased_token_logs_in_once_more_and_dials_exactly_twice() {
    let app = spawn(&[("x", &yeastar_s(YEASTAR_S_PASSWORD))]).await;
    assert_eq!(app.post(json!({"branch": "x", "extension": "1000", "number": "02079460000"})).await.0, 200);
    app.pbx.logins("yeastar-s").expire_all();
    let before = app.received().len();
    let answer = app.post(json!({"branch": "x", "extension": "1000", "number": "02079460001"})).await;
    assert_eq!(status(&answer), (200, Some("accepted")), "{}", answer.1);
    let got = app.received().split_off(before);
    let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/api/v2.0.0/call/dial", "/api/v2.0.0/login", "/api/v2.0.0/call/dial"], "{got:#?}");
    let tokens = app.pbx.logins("yeastar-s").issued();
    assert_eq!(tokens.len(), 2, "exactly one new login");
    assert_eq!(got[2].query.as_deref(), Some(format!("token={}", tokens[1]).as_str()));
    assert_eq!(got[0].body, got[2].body, "the same dial, sent once more");
}

#[tokio::test]
async fn yeastar_s_hanging_is_a_timeout_and_a_dry_run_sends_nothing() {
    hanging_is_a_timeout(&yeastar_s(YEASTAR_S_PASSWORD), true).await;
    dry_run_sends_nothing(&yeastar_s(YEASTAR_S_PASSWORD)).await;
}

// ---- Vodia --------------------------------------------------------------------------

fn vodia(extra: &str) -> String {
    format!(
        "extends: presets/vodia.yaml\nvars: {{scheme: http, host: PBXHOST, domain: {VODIA_DOMAIN}, password: \"${{VODIA_PASS}}\"{extra}}}\n"
    )
}

#[tokio::test]
async fn vodia_dials_with_the_extension_at_the_domain_and_its_web_password_in_the_query() {
    let app = spawn_with_env(&[("x", &vodia(""))], &[("VODIA_PASS", VODIA_WEB_PASSWORD)]).await;
    let answer = app.post(json!({"branch": "x", "extension": "201", "number": "+44 20 7946 0000"})).await;
    assert_eq!(status(&answer), (200, Some("accepted")), "{}", answer.1);
    assert_eq!(answer.1["call_id"], Value::Null, "Vodia gives no call id");
    let got = app.only_request();
    assert_eq!(
        path_and_query(&got),
        format!(
            "GET /remote_call.htm?user=201%40pbx.example.com&dest=%2B442079460000&auth=201%40pbx.example.com%3A{VODIA_WEB_PASSWORD}&connect=true"
        )
    );
    assert!(!answer.1.to_string().contains(VODIA_WEB_PASSWORD), "{}", answer.1);
}

#[tokio::test]
async fn vodia_an_admin_dials_for_any_extension() {
    let app = spawn_with_env(
        &[("x", &vodia(&format!(", auth_user: {VODIA_ADMIN}")))],
        &[("VODIA_PASS", VODIA_ADMIN_PASSWORD)],
    )
    .await;
    let answer = app.post(json!({"branch": "x", "extension": "202", "number": "02079460000"})).await;
    assert_eq!(status(&answer), (200, Some("accepted")), "{}", answer.1);
    assert_eq!(app.only_request().param("auth"), Some(format!("{VODIA_ADMIN}:{VODIA_ADMIN_PASSWORD}")));
}

#[tokio::test]
async fn vodia_refusals_are_rejected_with_the_http_status() {
    let app = spawn_with_env(&[("x", &vodia(""))], &[("VODIA_PASS", "wrong")]).await;
    let answer = app.post(json!({"branch": "x", "extension": "201", "number": "02079460000"})).await;
    assert_eq!(status(&answer), (502, Some("rejected")), "{}", answer.1);
    assert_eq!(answer.1["pbx"]["http_status"], 401, "{}", answer.1);
    assert_eq!(app.received().len(), 1, "a challenge to credentials in the URL is not answered again");

    let app = spawn_with_env(&[("x", &vodia(""))], &[("VODIA_PASS", VODIA_WEB_PASSWORD)]).await;
    let answer = app.post(json!({"branch": "x", "extension": "901", "number": "02079460000"})).await;
    assert_eq!(status(&answer), (502, Some("rejected")), "{}", answer.1);
    assert_eq!(answer.1["pbx"]["http_status"], 404, "{}", answer.1);
}

#[tokio::test]
async fn vodia_basic_auth_instead_of_the_password_in_the_url() {
    let profile = format!(
        "{}dial:\n  url: \"http://PBXHOST/remote_call.htm?user={{{{ extension ~ '@' ~ domain }}}}&dest={{{{ number }}}}&connect=true\"\n  auth: {{basic: {{user: \"{{{{ auth_user or (extension ~ '@' ~ domain) }}}}\", password: \"{{{{ password }}}}\"}}}}\n",
        vodia("")
    );
    let app = spawn_with_env(&[("x", &profile)], &[("VODIA_PASS", VODIA_WEB_PASSWORD)]).await;
    let answer = app.post(json!({"branch": "x", "extension": "201", "number": "02079460000"})).await;
    assert_eq!(status(&answer), (200, Some("accepted")), "{}", answer.1);
    let got = app.only_request();
    assert_eq!(got.param("auth"), None);
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("201@{VODIA_DOMAIN}:{VODIA_WEB_PASSWORD}"));
    assert_eq!(got.authorization, Some(format!("Basic {basic}")));
}

#[tokio::test]
async fn vodia_hanging_is_a_timeout_and_a_dry_run_masks_the_password() {
    let profile = vodia("");
    let app =
        spawn_with_env(&[("x", &format!("{profile}timeout: 300ms\n"))], &[("VODIA_PASS", VODIA_WEB_PASSWORD)]).await;
    app.pbx.set_behaviour(Behaviour::Hang);
    let answer = app.post(json!({"branch": "x", "extension": "201", "number": "02079460000"})).await;
    assert_eq!(status(&answer), (504, Some("timeout")), "{}", answer.1);

    let app = spawn_with_env(&[("x", &profile)], &[("VODIA_PASS", VODIA_WEB_PASSWORD)]).await;
    let answer = app.post(json!({"branch": "x", "extension": "201", "number": "02079460000", "dry_run": true})).await;
    assert_eq!(status(&answer), (200, Some("dry_run")), "{}", answer.1);
    assert!(!answer.1.to_string().contains(VODIA_WEB_PASSWORD), "{}", answer.1);
    assert!(app.received().is_empty());
}

/// A Yeastar S-Series API report, as the PBX POSTs it.
fn report(action: &str, callid: &str, call: Value) -> String {
    json!({"action": action, "callid": callid, "call": call, "sn": "369351034049"}).to_string()
}

#[tokio::test]
async fn yeastar_s_reports_become_events_tied_to_the_dial_by_its_callid() {
    let profile = format!(
        "extends: presets/yeastar-s.yaml\nvars: {{scheme: http, host: PBXHOST, user: {YEASTAR_S_USER}, password: {YEASTAR_S_PASSWORD}}}\nevents: {{secret: reports-s3cret}}\n"
    );
    let app = spawn(&[("ys", &profile)]).await;
    let mut events = app.events("branch=ys", None).await;
    let (code, dial) = app.post(json!({"branch": "ys", "extension": "1001", "number": "0283883883"})).await;
    assert_eq!(code, 200, "{dial}");
    let callid = dial["call_id"].as_str().unwrap_or_default().to_string();
    let ext = json!({"ext": {"extid": "1001"}});
    let outbound =
        json!({"outbound": {"outboundid": "1550711018.210", "from": "1001", "to": "0283883883", "trunk": "SIP-142"}});
    let inbound =
        json!({"inbound": {"inboundid": "1550711018.211", "from": "0261616161", "to": "5503301", "trunk": "SIP-142"}});
    let cases = [
        (report("ALERT", &callid, json!([ext])), json!(["dialling", "out", "1001", null, callid])),
        (report("RING", &callid, json!([outbound, ext])), json!(["ringing", "out", "1001", "0283883883", callid])),
        (report("ANSWER", &callid, json!([outbound, ext])), json!(["answered", "out", "1001", "0283883883", callid])),
        (report("BYE", &callid, json!([outbound, ext])), json!(["ended", "out", "1001", "0283883883", callid])),
        (report("RING", "1550711018.211", json!([ext, inbound])), json!(["ringing", "in", "1001", "0261616161", "1550711018.211"])),
        (
            json!({"action": "NewCdr", "callid": "1550711018.211", "callfrom": "0261616161", "callto": "1001", "status": "NO ANSWER", "type": "Inbound"}).to_string(),
            json!(["missed", null, null, null, "1550711018.211"]),
        ),
        (report("HOLD", &callid, json!([ext])), json!(["other", "out", "1001", null, callid])),
    ];
    for (body, want) in &cases {
        let (code, sent) =
            app.notify_post("ys?secret=reports-s3cret", "application/json", body, &[("user-agent", "WebAPI")]).await;
        assert_eq!(code, 200, "{sent}");
        let got = events.next(std::time::Duration::from_secs(10)).await.expect("an event");
        let e = &got.data;
        assert_eq!(json!([e["type"], e["direction"], e["extension"], e["remote"], e["call_id"]]), *want, "{body}");
    }
    // The dial's own reports are tied to it.
    let (_, call) = read(
        app.client
            .get(format!("{}/v1/calls/{}", app.url, dial["id"].as_str().unwrap_or_default()))
            .send()
            .await
            .expect("call"),
    )
    .await;
    assert_eq!(call["state"], "ended", "{call}");
    // Without the secret: refused, nothing passed on.
    let (code, _) = app.notify_post("ys", "application/json", &cases[0].0, &[]).await;
    assert_eq!(code, 401);
}

//! The shipped presets whose PBX wants a session first (Asterisk AMI over
//! HTTP, Yeastar P-Series, Grandstream UCM), each against its stand-in:
//! the exact login and action requests the PBX received; accepted; each
//! refusal the system documents is `rejected` with the system's own words;
//! a failed login is `login: …` and sends nothing else; the session expiring
//! the way that system shows it causes one new login and exactly two
//! attempts of the action; a dry run sends nothing.

use serde_json::{Value, json};
use webdial::standin::{AMI_PASSWORD, AMI_USER, Received, UCM_PASSWORD, UCM_USER, YEASTAR_CLIENT_ID, YEASTAR_SECRET};

use crate::helpers::{action, dial, param, query, spawn};

async fn dry_run_sends_nothing(profile: &str, ext: &str) -> Value {
    let app = spawn(&[("x", profile)]).await;
    let (code, body) =
        app.post(json!({"branch": "x", "extension": ext, "number": "+442079460000", "dry_run": true})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("dry_run")), "{body}");
    assert!(app.received().is_empty(), "a dry run sends nothing, not even a login: {:#?}", app.received());
    body
}

// ---- Asterisk AMI over HTTP ------------------------------------------------

fn ami(password: &str) -> String {
    format!("extends: presets/asterisk-ami.yaml\nvars: {{host: PBXHOST, user: {AMI_USER}, password: {password}}}\n")
}

fn ami_action(r: &Received) -> String {
    param(r, "action").unwrap_or_default()
}

#[tokio::test]
async fn ami_logs_in_then_originates_async_with_its_own_channel_id_on_the_session_cookie() {
    let app = spawn(&[("x", &ami(AMI_PASSWORD))]).await;
    let (code, body) = app.post(dial("201", "02079460000")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    let (login, originate) = (&got[0], &got[1]);
    assert_eq!((login.method.as_str(), login.path.as_str()), ("GET", "/rawman"));
    let login_query: Vec<(String, String)> = query(login);
    assert_eq!(
        login_query,
        [("action", "login"), ("username", AMI_USER), ("secret", AMI_PASSWORD)]
            .map(|(k, v)| (k.to_string(), v.to_string()))
    );
    assert_eq!(login.cookie, None);
    let session = &app.pbx.ami().issued()[0];
    assert_eq!((originate.method.as_str(), originate.path.as_str()), ("GET", "/rawman"));
    assert_eq!(originate.cookie.as_deref(), Some(format!("mansession_id=\"{session}\"").as_str()));
    let q = query(originate);
    let keys: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["action", "channel", "exten", "context", "priority", "callerid", "async", "actionid", "channelid"]
    );
    assert_eq!(ami_action(originate), "originate");
    assert_eq!(param(originate, "channel").as_deref(), Some("PJSIP/201"));
    assert_eq!(param(originate, "exten").as_deref(), Some("02079460000"));
    assert_eq!(param(originate, "context").as_deref(), Some("from-internal"));
    assert_eq!(param(originate, "priority").as_deref(), Some("1"));
    assert_eq!(param(originate, "callerid").as_deref(), Some(""));
    assert_eq!(param(originate, "async").as_deref(), Some("true"));
    let channel_id = param(originate, "channelid").unwrap();
    assert!(channel_id.starts_with("webdial-") && channel_id.len() == 40, "{channel_id}");
    assert_eq!(param(originate, "actionid"), Some(channel_id.clone()), "Asterisk echoes the ActionID");
    assert_eq!(body["call_id"], channel_id, "the call id is the channel id the gateway chose: {body}");
    assert!(!body.to_string().contains(session.as_str()), "{body}");

    // Hangup on the same session, naming that channel.
    let (code, answer) = action(&app, "hangup", json!({"branch": "x", "call_id": channel_id})).await;
    assert_eq!((code, answer["status"].as_str()), (200, Some("accepted")), "{answer}");
    let hangup = app.received().pop().unwrap();
    assert_eq!(
        query(&hangup),
        [("action", "hangup"), ("channel", channel_id.as_str())].map(|(k, v)| (k.to_string(), v.to_string()))
    );
    assert_eq!(hangup.cookie, originate.cookie);
    assert_eq!(app.received().iter().filter(|r| ami_action(r) == "login").count(), 1, "one session for both");
}

#[tokio::test]
async fn ami_caller_id_context_technology_and_prefix_reach_the_originate() {
    let profile = format!(
        "extends: presets/asterisk-ami.yaml\nvars: {{host: PBXHOST, user: {AMI_USER}, password: {AMI_PASSWORD}, context: sales, technology: SIP, prefix: asterisk}}\n"
    );
    let app = spawn(&[("x", &profile)]).await;
    let (code, body) =
        app.post(json!({"branch": "x", "extension": "201", "number": "02079460000", "caller_id": "02079460999"})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.received();
    assert!(got.iter().all(|r| r.path == "/asterisk/rawman"), "{got:#?}");
    let originate = &got[1];
    assert_eq!(param(originate, "channel").as_deref(), Some("SIP/201"));
    assert_eq!(param(originate, "context").as_deref(), Some("sales"));
    assert_eq!(param(originate, "callerid").as_deref(), Some("02079460999"));
}

#[tokio::test]
async fn ami_refusals_are_rejected_with_asterisks_words() {
    let app = spawn(&[("x", &ami(AMI_PASSWORD))]).await;
    let (code, body) = app.post(dial("901", "02079460000")).await;
    assert_eq!(
        (code, body["status"].as_str(), body["message"].as_str()),
        (502, Some("rejected"), Some("Originate failed")),
        "{body}"
    );
    let (code, body) = action(&app, "hangup", json!({"branch": "x", "call_id": "webdial-gone"})).await;
    assert_eq!(
        (code, body["status"].as_str(), body["message"].as_str()),
        (502, Some("rejected"), Some("No such channel")),
        "{body}"
    );
    // Neither refusal is "Permission denied": no new login, each sent once.
    let actions: Vec<String> = app.received().iter().map(ami_action).collect();
    assert_eq!(actions, ["login", "originate", "hangup"]);
}

#[tokio::test]
async fn ami_a_failed_login_is_rejected_in_asterisks_words_and_nothing_else_is_sent() {
    let app = spawn(&[("x", &ami("wrong-secret"))]).await;
    let (code, body) = app.post(dial("201", "02079460000")).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{body}");
    assert_eq!(body["message"], "login: Authentication failed", "{body}");
    let got = app.received();
    assert_eq!(got.iter().map(ami_action).collect::<Vec<_>>(), ["login"], "no originate: {got:#?}");
}

#[tokio::test]
async fn ami_permission_denied_in_a_200_logs_in_once_more_and_originates_exactly_twice() {
    let app = spawn(&[("x", &ami(AMI_PASSWORD))]).await;
    assert_eq!(app.post(dial("201", "02079460000")).await.0, 200);
    app.pbx.ami().kill_all();
    let before = app.received().len();
    let (code, body) = app.post(dial("201", "02079460001")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.received().split_off(before);
    assert_eq!(got.iter().map(ami_action).collect::<Vec<_>>(), ["originate", "login", "originate"], "{got:#?}");
    assert_ne!(got[0].cookie, got[2].cookie, "sent again on the new session");
    let sessions = app.pbx.ami().issued();
    assert_eq!(got[2].cookie.as_deref(), Some(format!("mansession_id=\"{}\"", sessions[1]).as_str()));
    assert_eq!(param(&got[0], "exten"), param(&got[2], "exten"), "the same action");
}

#[tokio::test]
async fn ami_a_dry_run_sends_nothing() {
    let body = dry_run_sends_nothing(&ami(AMI_PASSWORD), "201").await;
    assert_eq!(body["request"]["headers"]["cookie"], "***", "{body}");
}

// ---- Yeastar P-Series --------------------------------------------------------

fn yeastar(secret: &str) -> String {
    format!(
        "extends: presets/yeastar-p.yaml\nvars: {{scheme: http, host: PBXHOST, client_id: {YEASTAR_CLIENT_ID}, client_secret: {secret}}}\n"
    )
}

const GET_TOKEN: &str = "/openapi/v1.0/get_token";

fn json_body(r: &Received) -> Value {
    serde_json::from_str(&r.body).unwrap()
}

#[tokio::test]
async fn yeastar_gets_a_token_then_dials_with_it_in_the_query() {
    let app = spawn(&[("x", &yeastar(YEASTAR_SECRET))]).await;
    let (code, body) = app.post(dial("1000", "02079460000")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    assert!(body["call_id"].as_str().is_some_and(|c| !c.is_empty()), "{body}");
    let got = app.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    let (login, call) = (&got[0], &got[1]);
    assert_eq!((login.method.as_str(), login.path.as_str(), login.query.as_deref()), ("POST", GET_TOKEN, None));
    assert_eq!(login.content_type.as_deref(), Some("application/json"));
    assert_eq!(json_body(login), json!({"username": YEASTAR_CLIENT_ID, "password": YEASTAR_SECRET}));
    assert_eq!(login.user_agent.as_deref(), Some("OpenAPI"));
    let token = &app.pbx.yeastar().issued()[0];
    assert_eq!((call.method.as_str(), call.path.as_str()), ("POST", "/openapi/v1.0/call/dial"));
    assert_eq!(call.query.as_deref(), Some(format!("access_token={token}").as_str()));
    assert_eq!(call.user_agent.as_deref(), Some("OpenAPI"));
    assert_eq!(call.authorization, None);
    assert_eq!(json_body(call), json!({"caller": "1000", "callee": "02079460000"}));
    assert!(!body.to_string().contains(token.as_str()), "{body}");
}

#[tokio::test]
async fn yeastar_hangup_and_transfer_act_on_a_channel_on_the_same_token() {
    let app = spawn(&[("x", &yeastar(YEASTAR_SECRET))]).await;
    let (code, answer) =
        action(&app, "transfer", json!({"branch": "x", "call_id": "PJSIP/1000-00000012", "number": "1001"})).await;
    assert_eq!((code, answer["status"].as_str()), (200, Some("accepted")), "{answer}");
    let (code, answer) = action(&app, "hangup", json!({"branch": "x", "call_id": "PJSIP/1000-00000012"})).await;
    assert_eq!((code, answer["status"].as_str()), (200, Some("accepted")), "{answer}");
    let got = app.received();
    let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, [GET_TOKEN, "/openapi/v1.0/call/transfer", "/openapi/v1.0/call/hangup"]);
    assert_eq!(json_body(&got[1]), json!({"type": "blind", "channel_id": "PJSIP/1000-00000012", "number": "1001"}));
    assert_eq!(json_body(&got[2]), json!({"channel_id": "PJSIP/1000-00000012"}));
    assert_eq!(got[1].query, got[2].query, "one token for both");
}

#[tokio::test]
async fn yeastar_a_refusal_in_a_200_is_rejected_with_its_errmsg() {
    let app = spawn(&[("x", &yeastar(YEASTAR_SECRET))]).await;
    let (code, body) = app.post(dial("9000", "02079460000")).await;
    assert_eq!(
        (code, body["status"].as_str(), body["message"].as_str()),
        (502, Some("rejected"), Some("FAILURE")),
        "{body}"
    );
    assert_eq!(body["pbx"]["http_status"], 200, "{body}");
    let paths: Vec<String> = app.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, [GET_TOKEN, "/openapi/v1.0/call/dial"], "another errcode is not an expired token");
}

#[tokio::test]
async fn yeastar_a_failed_login_is_rejected_and_nothing_else_is_sent() {
    let app = spawn(&[("x", &yeastar("wrong-secret"))]).await;
    let (code, body) = app.post(dial("1000", "02079460000")).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{body}");
    assert_eq!(body["message"], "login: FAILURE", "{body}");
    assert_eq!(app.received().iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), [GET_TOKEN]);
}

#[tokio::test]
async fn yeastar_an_expired_token_errcode_10004_in_a_200_logs_in_once_more_and_dials_exactly_twice() {
    let app = spawn(&[("x", &yeastar(YEASTAR_SECRET))]).await;
    assert_eq!(app.post(dial("1000", "02079460000")).await.0, 200);
    app.pbx.yeastar().expire_all();
    let before = app.received().len();
    let (code, body) = app.post(dial("1000", "02079460001")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.received().split_off(before);
    let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/openapi/v1.0/call/dial", GET_TOKEN, "/openapi/v1.0/call/dial"]);
    let tokens = app.pbx.yeastar().issued();
    assert_eq!(got[2].query.as_deref(), Some(format!("access_token={}", tokens[1]).as_str()));
    assert_eq!(got[0].body, got[2].body, "the same action");
}

#[tokio::test]
async fn yeastar_a_dry_run_sends_nothing() {
    let body = dry_run_sends_nothing(&yeastar(YEASTAR_SECRET), "1000").await;
    assert!(body["request"]["url"].as_str().unwrap().ends_with("/call/dial?access_token=***"), "{body}");
}

// ---- Grandstream UCM ----------------------------------------------------------

fn ucm(password: &str) -> String {
    format!(
        "extends: presets/grandstream-ucm.yaml\nvars: {{scheme: http, host: PBXHOST, user: {UCM_USER}, password: {password}}}\n"
    )
}

fn ucm_action(r: &Received) -> String {
    json_body(r)["request"]["action"].as_str().unwrap_or_default().to_string()
}

fn md5_hex(s: &str) -> String {
    use md5::Digest as _;
    md5::Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn ucm_answers_the_challenge_with_md5_then_dials_with_the_cookie_in_the_json() {
    let app = spawn(&[("x", &ucm(UCM_PASSWORD))]).await;
    let (code, body) = app.post(dial("1000", "02079460000")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    assert!(body["call_id"].is_null(), "dialOutbound gives no call id: {body}");
    let got = app.received();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(got.iter().all(|r| r.method == "POST" && r.path == "/api" && r.query.is_none()), "{got:#?}");
    assert!(got.iter().all(|r| r.content_type.as_deref() == Some("application/json") && r.cookie.is_none()));
    assert_eq!(json_body(&got[0]), json!({"request": {"action": "challenge", "user": UCM_USER, "version": "1.0"}}));
    // The challenge the UCM answered is the one the login answers.
    let login = json_body(&got[1]);
    let token = login["request"]["token"].as_str().unwrap();
    assert_eq!(login, json!({"request": {"action": "login", "user": UCM_USER, "token": token}}));
    // The stand-in accepts only md5(its last challenge + the password).
    assert!(token.len() == 32 && token != md5_hex(UCM_PASSWORD), "md5(challenge + password): {token}");
    let cookie = &app.pbx.ucm().issued()[0];
    assert!(!body.to_string().contains(cookie.as_str()), "{body}");
    assert_eq!(
        json_body(&got[2]),
        json!({"request": {"action": "dialOutbound", "cookie": cookie, "caller": "1000", "outbound": "02079460000"}})
    );

    let (code, answer) = action(&app, "hangup", json!({"branch": "x", "call_id": "PJSIP/1000-0000002a"})).await;
    assert_eq!((code, answer["status"].as_str()), (200, Some("accepted")), "{answer}");
    let hangup = app.received().pop().unwrap();
    assert_eq!(
        json_body(&hangup),
        json!({"request": {"action": "Hangup", "cookie": cookie, "channel": "PJSIP/1000-0000002a"}})
    );
    assert_eq!(app.received().iter().filter(|r| ucm_action(r) == "login").count(), 1, "one session for both");
}

#[tokio::test]
async fn ucm_a_negative_status_is_rejected_with_its_error_msg() {
    let app = spawn(&[("x", &ucm(UCM_PASSWORD))]).await;
    let (code, body) = app.post(dial("9000", "02079460000")).await;
    assert_eq!(
        (code, body["status"].as_str(), body["message"].as_str()),
        (502, Some("rejected"), Some("Invalid parameters!")),
        "{body}"
    );
    let actions: Vec<String> = app.received().iter().map(ucm_action).collect();
    assert_eq!(actions, ["challenge", "login", "dialOutbound"], "-1 is not an expired cookie");
}

#[tokio::test]
async fn ucm_a_failed_login_is_rejected_and_nothing_else_is_sent() {
    let app = spawn(&[("x", &ucm("wrong-password"))]).await;
    let (code, body) = app.post(dial("1000", "02079460000")).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{body}");
    assert_eq!(body["message"], "login: step 2 of 2: status -37", "{body}");
    assert_eq!(app.received().iter().map(ucm_action).collect::<Vec<_>>(), ["challenge", "login"]);
}

#[tokio::test]
async fn ucm_an_expired_cookie_status_minus_6_logs_in_once_more_and_dials_exactly_twice() {
    let app = spawn(&[("x", &ucm(UCM_PASSWORD))]).await;
    assert_eq!(app.post(dial("1000", "02079460000")).await.0, 200);
    app.pbx.ucm().expire_all();
    let before = app.received().len();
    let (code, body) = app.post(dial("1000", "02079460001")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.received().split_off(before);
    assert_eq!(got.iter().map(ucm_action).collect::<Vec<_>>(), ["dialOutbound", "challenge", "login", "dialOutbound"]);
    let cookies = app.pbx.ucm().issued();
    assert_eq!(json_body(&got[3])["request"]["cookie"], cookies[1], "sent again with the new cookie");
    assert_eq!(json_body(&got[0])["request"]["outbound"], json_body(&got[3])["request"]["outbound"]);
}

#[tokio::test]
async fn ucm_a_dry_run_sends_nothing() {
    let body = dry_run_sends_nothing(&ucm(UCM_PASSWORD), "1000").await;
    let sent: Value = serde_json::from_str(body["request"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent["request"]["cookie"], "***", "{body}");
}

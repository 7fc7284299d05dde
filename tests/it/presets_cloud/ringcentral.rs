//! `presets/ringcentral.yaml` against the RingCentral stand-in.

use serde_json::json;
use webdial::standin::{RINGCENTRAL_CLIENT_ID as CLIENT, RINGCENTRAL_JWT as JWT, RINGCENTRAL_SECRET as SECRET};

use super::*;

const ENV: &[(&str, &str)] = &[("RC_SECRET", SECRET), ("RC_JWT", JWT)];
const RING_OUT: &str = "/restapi/v1.0/account/~/extension/~/ring-out";

fn profile() -> String {
    format!(
        "extends: presets/ringcentral.yaml\nvars: {{scheme: http, host: PBXHOST, client_id: {CLIENT}, client_secret: \"${{RC_SECRET}}\", jwt: \"${{RC_JWT}}\"}}\n"
    )
}

fn is_login(r: &Received) -> bool {
    r.path == "/restapi/oauth/token"
}

#[tokio::test]
async fn ringcentral_logs_in_with_the_jwt_grant_then_rings_out_on_the_bearer_token() {
    let app = spawn_with_env(&[("x", &profile())], ENV).await;
    let (code, answer) = app.post(dial("+442079460201", "+442079460999")).await;
    accepted(code, &answer);
    let got = app.received();
    assert_eq!(got.len(), 2, "{got:#?}");
    let (login, ring) = (&got[0], &got[1]);
    assert_eq!((login.method.as_str(), login.path.as_str()), ("POST", "/restapi/oauth/token"));
    assert_eq!(login.authorization, Some(basic(CLIENT, SECRET)));
    assert_eq!(
        form(login),
        pairs(&[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", JWT)])
    );
    let token = &app.pbx.logins("ringcentral").issued()[0];
    assert_eq!((ring.method.as_str(), ring.path.as_str()), ("POST", RING_OUT));
    assert_eq!(ring.authorization, Some(format!("Bearer {token}")));
    let body: Value = serde_json::from_str(&ring.body).unwrap();
    assert_eq!(
        body,
        json!({"from": {"phoneNumber": "+442079460201"}, "to": {"phoneNumber": "+442079460999"}, "playPrompt": false})
    );
    let id = &app.pbx.logins("ringcentral-ringout").issued()[0];
    assert_eq!(answer["call_id"], id.as_str());
    assert!(!answer.to_string().contains(token.as_str()), "{answer}");

    // A second dial uses the same session; hangup cancels the RingOut.
    let (code, answer) = app.post(dial("+442079460202", "+442079460999")).await;
    accepted(code, &answer);
    let (code, r) = on_call(&app, answer["id"].as_str().unwrap(), "hangup").await;
    accepted(code, &r);
    let got = app.received();
    assert_eq!(got.iter().filter(|r| is_login(r)).count(), 1, "one login for all: {got:#?}");
    let cancel = got.last().unwrap();
    let second = &app.pbx.logins("ringcentral-ringout").issued()[1];
    assert_eq!((cancel.method.as_str(), cancel.path.clone()), ("DELETE", format!("{RING_OUT}/{second}")));
    assert_eq!(cancel.authorization, Some(format!("Bearer {token}")));
}

#[tokio::test]
async fn ringcentral_an_expired_token_means_one_new_login_and_exactly_two_attempts() {
    let app = spawn_with_env(&[("x", &profile())], ENV).await;
    accepted_dial(&app, "+442079460201").await;
    app.pbx.logins("ringcentral").expire_all();
    accepted_dial(&app, "+442079460202").await;
    let got = app.received();
    let kinds: Vec<bool> = got.iter().map(is_login).collect();
    assert_eq!(kinds, [true, false, false, true, false], "login, dial, refused dial, login, dial: {got:#?}");
    let issued = app.pbx.logins("ringcentral").issued();
    assert_eq!(got[4].authorization, Some(format!("Bearer {}", issued[1])));
}

async fn accepted_dial(app: &App, ext: &str) {
    let (code, answer) = app.post(dial(ext, "+442079460999")).await;
    accepted(code, &answer);
}

#[tokio::test]
async fn ringcentral_refusals_and_a_failed_login_are_rejected_with_ringcentrals_words() {
    let wrong_jwt = [("RC_SECRET", SECRET), ("RC_JWT", "eyJ.wrong.jwt")];
    let app = spawn_with_env(&[("x", &profile())], ENV).await;
    let (code, answer) = app.post(dial("+9123", "+442079460999")).await;
    rejected(code, &answer, 400, "Parameter [from.phoneNumber] value is invalid");
    let (code, answer) = action(&app, "hangup", json!({"branch": "x", "call_id": "404"})).await;
    rejected(code, &answer, 404, "Resource for parameter [ringoutId] is not found");

    let app = spawn_with_env(&[("x", &profile())], &wrong_jwt).await;
    let (code, answer) = app.post(dial("+442079460201", "+442079460999")).await;
    assert_eq!((code, answer["status"].as_str()), (502, Some("rejected")), "{answer}");
    assert_eq!(answer["message"], "login: Invalid token", "{answer}");
    assert!(app.received().iter().all(is_login), "nothing but the login is sent: {:#?}", app.received());
}

#[tokio::test]
async fn ringcentral_hanging_is_a_timeout_and_a_dry_run_sends_nothing() {
    // Logged in first: a hanging login is a failed login, not a timeout.
    let app = spawn_with_env(&[("x", &format!("{}timeout: 300ms\n", profile()))], ENV).await;
    accepted_dial(&app, "+442079460201").await;
    app.pbx.set_behaviour(webdial::standin::Behaviour::Hang);
    let (code, answer) = app.post(dial("+442079460202", "+442079460999")).await;
    assert_eq!((code, answer["status"].as_str()), (504, Some("timeout")), "{answer}");
    assert_eq!(app.received().len(), 3, "the dial is not sent again after a timeout");
    let shown = dry_run_sends_nothing(&profile(), ENV, "+442079460201").await;
    assert_eq!(shown["request"]["headers"]["authorization"], "Bearer ***", "{shown}");
}

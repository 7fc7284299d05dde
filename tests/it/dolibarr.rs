//! Dolibarr, both ways: its click-to-dial mask pasted into a profile as the
//! line webdial sends (checked on what the PBX received), and Dolibarr
//! pointed at webdial (the exact URL Dolibarr opens, after its own
//! substitution, dials).

use serde_json::json;
use webdial::settings::{KeySpec, Settings};

use crate::helpers::{VOISPEED, read, spawn, spawn_with, spawn_with_env, write_config};

const MASK: &str = "dial: \"http://PBXHOST/ivr/PbxAPI.aspx?func=make_call&from=__PHONEFROM__&to=__PHONETO__&user=__LOGIN__&pw=__PASS__\"\n";

#[tokio::test]
async fn a_pasted_dolibarr_line_dials_with_each_mask_filled_and_encoded() {
    let profile = format!("vars: {{login: crm agent, pass: \"p&ss\"}}\n{MASK}");
    let app = spawn(&[("d", &profile)]).await;
    let (code, body) = app.post(json!({"branch": "d", "extension": "201", "number": "+44 20 7946 0000"})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.only_request();
    assert_eq!((got.method.as_str(), got.path.as_str()), ("GET", "/ivr/PbxAPI.aspx"));
    assert_eq!(
        got.query.as_deref(),
        Some("func=make_call&from=201&to=%2B442079460000&user=crm%20agent&pw=p%26ss"),
        "every value encoded for its place"
    );
}

#[tokio::test]
async fn the_legacy_sprintf_positions_work_the_same() {
    let profile = "vars: {login: crm, pass: secret}\ndial: \"http://PBXHOST/ivr/PbxAPI.aspx?func=make_call&to=%1$s&from=%2$s&u=%3$s&p=%4$s\"\n";
    let app = spawn(&[("d", profile)]).await;
    let (code, body) = app.post(json!({"branch": "d", "extension": "201", "number": "02079460000"})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    assert_eq!(app.only_request().query.as_deref(), Some("func=make_call&to=02079460000&from=201&u=crm&p=secret"));
}

#[tokio::test]
async fn the_password_from_the_environment_is_masked_in_a_dry_run() {
    let profile = format!("vars: {{login: crm, pass: \"${{DOLI_PASS}}\"}}\n{MASK}");
    let app = spawn_with_env(&[("d", &profile)], &[("DOLI_PASS", "s3cr3t-pass")]).await;
    let (code, body) =
        app.post(json!({"branch": "d", "extension": "201", "number": "02079460000", "dry_run": true})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("dry_run")), "{body}");
    assert!(!body.to_string().contains("s3cr3t-pass"), "{body}");
    assert!(body["request"]["url"].as_str().is_some_and(|u| u.ends_with("pw=***")), "{body}");
    assert!(app.received().is_empty());
}

#[tokio::test]
async fn bad_dolibarr_lines_are_load_errors_at_their_place() {
    let cases = [
        (format!("vars: {{pass: x}}\n{MASK}"), "__LOGIN__ (%3$s) is the profile's `vars.login`"),
        ("dial: \"http://h/c?from=__PHONEFROM__\"\n".to_string(), "no __PHONETO__"),
        ("dial: \"http://h/c?from=^&to=__PHONETO__\"\n".to_string(), "cannot also use IQX's ^ or #"),
        ("dial: \"http://__PHONETO__.example/c\"\n".to_string(), "host"),
    ];
    for (profile, want) in cases {
        let dir = write_config("http://127.0.0.1:9", &[("d", &profile)]);
        let env = |_: &str| None;
        let loaded = webdial::app::load(&dir.path().join("webdial.yaml"), true, &env);
        let problems: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
        assert_eq!(problems.len(), 1, "{profile}: {problems:?}");
        assert!(problems[0].contains("d.yaml:") && problems[0].contains(want), "{profile}: {problems:?}");
    }
}

#[tokio::test]
async fn a_dolibarr_sip_mask_is_a_client_side_uri() {
    let app = spawn(&[("d", "dial: \"sip:__PHONETO__@my.sip.server\"\n")]).await;
    let (code, body) = app.post(json!({"branch": "d", "extension": "201", "number": "02079460000"})).await;
    assert_eq!(
        (code, body["status"].as_str(), body["uri"].as_str()),
        (200, Some("open_uri"), Some("sip:02079460000@my.sip.server")),
        "{body}"
    );
    assert!(app.received().is_empty());
}

// ---- Dolibarr → webdial -------------------------------------------------------------

const USER_KEY: &str = "doli-user-0123456789abcdef";

fn keyed(s: &mut Settings) {
    s.keys = vec![KeySpec::new("dolibarr-201".into(), USER_KEY.into(), vec!["m".into()], None).expect("key")];
}

/// What Dolibarr's `dol_print_phone` does to the mask: each value PHP
/// `urlencode`d (space as `+`), substituted; then its AJAX call adds the
/// page's anti-CSRF `token`.
fn dolibarr_opens(base: &str, poste: &str, phone: &str, pass: &str) -> String {
    let urlencode = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let mask = format!("{base}/v1/dial?branch=m&ext=__PHONEFROM__&number=__PHONETO__&key=__PASS__");
    let url = mask
        .replace("__PHONEFROM__", &urlencode(poste))
        .replace("__PHONETO__", &urlencode(phone))
        .replace("__PASS__", &urlencode(pass));
    format!("{url}&token=8f2a6b0c1d3e4f5a")
}

#[tokio::test]
async fn the_url_dolibarr_opens_dials_with_the_users_key() {
    let app = spawn_with(&[("m", VOISPEED)], &[], keyed).await;
    let url = dolibarr_opens(&app.url, "35", "+44 20 7946 0000", USER_KEY);
    assert!(url.contains("number=%2B44+20+7946+0000&"), "PHP's urlencode: {url}");
    let (code, body) = read(app.client.get(&url).send().await.expect("get")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let got = app.only_request();
    assert_eq!(got.param("ext").as_deref(), Some("35"));
    assert_eq!(got.param("number").as_deref(), Some("+442079460000"));

    // Another user's password that is no key: nothing is sent.
    let url = dolibarr_opens(&app.url, "35", "+44 20 7946 0001", "not-a-key");
    let (code, _) = read(app.client.get(&url).send().await.expect("get")).await;
    assert_eq!(code, 401);
    assert_eq!(app.received().len(), 1, "a refused request never reaches the PBX");
}

#[tokio::test]
async fn the_token_dolibarr_adds_is_never_read_as_a_key() {
    let app = spawn_with(&[("m", VOISPEED)], &[], keyed).await;
    let url = format!("{}/v1/dial?branch=m&ext=35&number=187&token={USER_KEY}", app.url);
    let (code, body) = read(app.client.get(&url).send().await.expect("get")).await;
    assert_eq!((code, body["status"].as_str()), (401, Some("unauthorized")), "{body}");
    assert!(app.received().is_empty());
}

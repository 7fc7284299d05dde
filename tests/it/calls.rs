//! Options (declared, checked, filled in) and calls by gateway id: a dial
//! read back with `GET /v1/calls/ID` and acted on with
//! `POST /v1/calls/ID/ACTION`, asserting on what the stand-in received.

use serde_json::{Value, json};
use webdial::settings::{KeySpec, Settings};

use crate::helpers::{App, load_each, problem_in, read, spawn, spawn_with};

/// A VOIspeed branch (the shipped preset's hangup, divert and dnd_on) whose
/// dial places three options (one of them never declared), with number
/// rules for a divert's target.
const WITH_OPTIONS: &str = r#"
extends: presets/voispeed.yaml
vars: {scheme: http, host: PBXHOST, token: demo-token}
options:
  device: {pattern: "mobile|desk"}
  retries: {pattern: "[1-9]", default: 3}
  at: {pattern: "\\d{12}"}
dial:
  url: "http://PBXHOST/PBX/seri_endpoint.php?service=call_request&token={{ token }}&ext={{ extension }}&number={{ number }}&device={{ options.device }}&retries={{ options.retries }}&at={{ options.at }}&x={{ options.undeclared }}{% if options.at %}&later=1{% endif %}"
number:
  country: GB
  internal: "^[1-9]\\d{2,3}$"
  deny: ["^\\+449"]
"#;

/// An IQX dial (its answer is "OK": no call id) with a hang-up that needs one.
const NO_CALL_ID: &str = r#"
dial: "PBX/ivr/PbxAPI.aspx?func=make_call&from=^&to=#"
hangup:
  url: "http://PBXHOST/PBX/seri_endpoint.php?service=call_action&token=demo-token&ext={{ extension }}&call_id={{ call_id }}&action=disconnect"
  response: {format: xml, ok: "outcome == '0'", message: error}
actions:
  dnd_on: "http://PBXHOST/PBX/seri_endpoint.php?service=set_user_mode&token=demo-token&ext=^&mode=2"
"#;

impl App {
    async fn post_to(&self, path: &str, body: Value) -> (u16, Value) {
        read(self.client.post(format!("{}{path}", self.url)).json(&body).send().await.unwrap()).await
    }

    async fn get_path(&self, path: &str) -> (u16, Value) {
        read(self.client.get(format!("{}{path}", self.url)).send().await.unwrap()).await
    }

    /// Dials and returns the answer's gateway id.
    async fn dial_id(&self, body: Value) -> String {
        let (code, r) = self.post(body).await;
        assert_eq!(code, 200, "{r}");
        r["id"].as_str().unwrap().to_string()
    }
}

// ---- options -------------------------------------------------------------------

#[tokio::test]
async fn options_are_filled_in_checked_and_undeclared_ones_render_empty() {
    let app = spawn(&[("m", WITH_OPTIONS)]).await;
    let (code, r) =
        app.post(json!({"branch": "m", "extension": "35", "number": "187", "options": {"device": "mobile"}})).await;
    assert_eq!(code, 200, "{r}");
    let got = app.only_request();
    assert_eq!(got.param("device").as_deref(), Some("mobile"), "the value sent");
    assert_eq!(got.param("retries").as_deref(), Some("3"), "the default, for an option not sent");
    assert_eq!(got.param("at").as_deref(), Some(""), "empty, for an option not sent without a default");
    assert_eq!(got.param("x").as_deref(), Some(""), "empty, for a name the branch never declared");
    assert_eq!(got.param("later"), None, "an absent option is false in {{% if %}}");

    // In a query, as `opt.NAME`; a number is text.
    let (code, r) = app.get("branch=m&ext=36&number=187&opt.at=202611231830&opt.retries=5").await;
    assert_eq!(code, 200, "{r}");
    let got = app.received().pop().unwrap();
    assert_eq!((got.param("at").as_deref(), got.param("retries").as_deref()), (Some("202611231830"), Some("5")));
    assert_eq!(got.param("later").as_deref(), Some("1"));
    assert_eq!(app.received().len(), 2);
}

#[tokio::test]
async fn an_undeclared_option_or_a_value_off_its_pattern_is_refused_and_nothing_is_sent() {
    let app = spawn(&[("m", WITH_OPTIONS)]).await;
    let dial = |options: Value| json!({"branch": "m", "extension": "35", "number": "187", "options": options});
    for (options, words) in [
        (json!({"colour": "red"}), "`colour` is not one branch \"m\" declares (it declares: at, device, retries)"),
        (json!({"device": "mobilephone"}), "`device` must match \"mobile|desk\""),
        (json!({"device": "desk&x=1"}), "`device` must match"),
        (json!({"at": "2026112318301"}), "`at` must match"),
        (json!({"retries": 0}), "`retries` must match"),
    ] {
        let (code, r) = app.post(dial(options.clone())).await;
        assert_eq!((code, r["status"].as_str()), (400, Some("invalid_request")), "{options}: {r}");
        assert!(r["message"].as_str().unwrap().contains(words), "{options}: {r}");
    }
    for q in ["opt.nope=1", "opt.device=tablet", "opt.device=desk&opt.device=desk"] {
        let (code, r) = app.get(&format!("branch=m&ext=35&number=187&{q}")).await;
        assert_eq!((code, r["status"].as_str()), (400, Some("invalid_request")), "{q}: {r}");
    }
    // A dry run checks them too.
    let (code, _) = app.get("branch=m&ext=35&number=187&opt.nope=1&dry_run").await;
    assert_eq!(code, 400);
    assert!(app.received().is_empty(), "a refused option never reaches the PBX: {:?}", app.received());
}

#[tokio::test]
async fn options_are_part_of_what_makes_two_dials_the_same() {
    let app = spawn(&[("m", WITH_OPTIONS)]).await;
    let dial = |options: Value| json!({"branch": "m", "extension": "35", "number": "187", "options": options});
    let (_, first) = app.post(dial(json!({"device": "desk"}))).await;
    let (_, other) = app.post(dial(json!({"device": "mobile"}))).await;
    assert!(other.get("duplicate").is_none(), "another option value is another dial: {other}");
    assert_ne!(first["id"], other["id"]);
    let (_, same) = app.post(dial(json!({"device": "desk", "retries": "3"}))).await;
    assert_eq!(same["duplicate"], true, "the default sent explicitly is the same dial: {same}");
    assert_eq!(same["id"], first["id"]);
    assert_eq!(app.received().len(), 2);
}

#[tokio::test]
async fn option_declarations_are_checked_at_load_with_their_place() {
    let dial = "dial:\n  url: \"http://h/x?to={{ number }}&d={{ options.d }}\"\n";
    let mut files: Vec<(&str, String)> = [
        ("bad_regex", "options:\n  d: {pattern: \"(\"}\n"),
        ("bad_default", "options:\n  d: {pattern: \"[0-9]+\", default: \"soon\"}\n"),
        ("bad_name", "options:\n  \"no-dash\": {pattern: \"x\"}\n"),
        ("no_pattern", "options:\n  d: {default: \"1\"}\n"),
        ("unknown_key", "options:\n  d: {pattern: \"x\", colour: red}\n"),
    ]
    .into_iter()
    .map(|(name, options)| (name, format!("{dial}{options}")))
    .collect();
    files.push(("good", format!("{dial}options:\n  d: {{pattern: \"[0-9]+\", default: 7}}\n")));
    let (loaded, shown) = load_each(&files);
    assert_eq!(loaded, 1, "{shown:#?}");
    let find = |file: &str| problem_in(&shown, file);
    let bad_regex = find("bad_regex");
    assert!(bad_regex.contains("bad_regex.yaml:4:16: not a valid regex") && !bad_regex.contains("(?:"), "{bad_regex}");
    assert!(find("bad_default").contains("bad_default.yaml:4:35: the default \"soon\" does not match its pattern"));
    assert!(find("bad_name").contains("bad_name.yaml:4:14: \"no-dash\" is not a usable option name"));
    assert!(find("no_pattern").contains("no_pattern.yaml:4:6: options.d: missing field `pattern`"));
    assert!(find("unknown_key").contains("unknown_key.yaml:4:21: options.d: unknown field `colour`"));
    assert_eq!(shown.len(), 5, "{shown:#?}");
}

// ---- calls by gateway id ------------------------------------------------------

#[tokio::test]
async fn a_dial_is_remembered_under_its_id_and_read_back() {
    let app = spawn(&[("m", WITH_OPTIONS)]).await;
    let (code, dial) = app.post(json!({"branch": "m", "extension": "35", "number": "0207 946 0000"})).await;
    assert_eq!(code, 200, "{dial}");
    let id = dial["id"].as_str().unwrap();
    let (code, call) = app.get_path(&format!("/v1/calls/{id}")).await;
    assert_eq!(code, 200, "{call}");
    let created = call["created"].as_str().unwrap_or_default().to_string();
    assert!(created.len() == 20 && created.ends_with('Z'), "RFC 3339, seconds, UTC: {call}");
    assert_eq!(
        call,
        json!({
            "id": id, "branch": "m", "action": "dial", "extension": "35", "number": "0207 946 0000",
            "dialled": "02079460000", "call_id": dial["call_id"], "dial_id": null, "state": "requested",
            "status": "accepted", "message": null, "created": created, "events": [],
        })
    );
    assert!(call["call_id"].as_str().is_some_and(|c| !c.is_empty()), "the PBX's request_id: {call}");

    // A dial the PBX refused is remembered as failed.
    let (code, refused) = app.post(json!({"branch": "m", "extension": "901", "number": "187"})).await;
    assert_eq!(code, 502, "{refused}");
    let (_, call) = app.get_path(&format!("/v1/calls/{}", refused["id"].as_str().unwrap())).await;
    assert_eq!((call["state"].as_str(), call["status"].as_str()), (Some("failed"), Some("rejected")), "{call}");
    assert_eq!(call["call_id"], Value::Null);

    // What was never sent is not a call.
    let (_, dry) = app.post(json!({"branch": "m", "extension": "35", "number": "188", "dry_run": true})).await;
    let (_, bad) = app.post(json!({"branch": "m", "extension": "35", "number": "09098790000"})).await;
    assert_eq!(bad["status"], "forbidden");
    for r in [dry, bad] {
        let (code, body) = app.get_path(&format!("/v1/calls/{}", r["id"].as_str().unwrap())).await;
        assert_eq!((code, body["status"].as_str()), (404, Some("unknown_call")), "{body}");
    }
}

#[tokio::test]
async fn a_hangup_by_gateway_id_sends_the_remembered_call_id_and_extension() {
    let app = spawn(&[("m", WITH_OPTIONS)]).await;
    let (_, dial) = app.post(json!({"branch": "m", "extension": "35", "number": "187"})).await;
    let (id, pbx_call) = (dial["id"].as_str().unwrap(), dial["call_id"].as_str().unwrap());

    // No body at all: everything comes from the dial.
    let resp = app.client.post(format!("{}/v1/calls/{id}/hangup", app.url)).send().await.unwrap();
    let (code, hung) = read(resp).await;
    assert_eq!((code, hung["action"].as_str(), hung["branch"].as_str()), (200, Some("hangup"), Some("m")), "{hung}");
    assert_ne!(hung["id"], dial["id"], "the hang-up is a request of its own");
    let got = app.received().pop().unwrap();
    assert_eq!(got.param("service").as_deref(), Some("call_action"));
    assert_eq!(got.param("call_id").as_deref(), Some(pbx_call), "the PBX's id from the dial's answer");
    assert_eq!(got.param("ext").as_deref(), Some("35"), "the dial's extension");
    assert_eq!(got.param("action").as_deref(), Some("disconnect"));

    // Once per click, with the action in the key: the same hang-up again is the first one's answer.
    let (code, again) = app.post_to(&format!("/v1/calls/{id}/hangup"), json!({})).await;
    assert_eq!((code, again["duplicate"].as_bool()), (200, Some(true)), "{again}");
    assert_eq!(again["id"], hung["id"]);
    assert_eq!(app.received().len(), 2, "dial and one hang-up");

    // A dry run shows the request and sends nothing.
    let (code, dry) = app.post_to(&format!("/v1/calls/{id}/hangup"), json!({"dry_run": true})).await;
    assert_eq!((code, dry["status"].as_str()), (200, Some("dry_run")), "{dry}");
    assert!(dry["request"]["url"].as_str().unwrap().contains(&format!("call_id={pbx_call}")), "{dry}");
    assert_eq!(app.received().len(), 2);
}

#[tokio::test]
async fn an_action_by_gateway_id_takes_only_what_the_dial_does_not_say_and_applies_the_number_rules() {
    let app = spawn(&[("m", WITH_OPTIONS)]).await;
    let id = app.dial_id(json!({"branch": "m", "extension": "35", "number": "187"})).await;
    let path = format!("/v1/calls/{id}/divert");

    let (code, r) = app.post_to(&path, json!({"number": "09098790000"})).await;
    assert_eq!((code, r["status"].as_str()), (403, Some("forbidden")), "the branch's deny rule: {r}");
    let (code, r) = app.post_to(&path, json!({})).await;
    assert_eq!((code, r["status"].as_str()), (400, Some("invalid_request")), "a divert needs a target: {r}");
    for body in [json!({"number": "0207", "branch": "other"}), json!({"number": "0207", "call_id": "1"})] {
        let (code, r) = app.post_to(&path, body.clone()).await;
        assert_eq!(code, 400, "{body}: branch and call id are the dial's: {r}");
    }
    let (code, r) = app.post_to(&path, json!({"number": "020 7946 0001", "options": {"nope": "1"}})).await;
    assert_eq!(code, 400, "options are checked as for any action: {r}");
    assert_eq!(app.received().len(), 1, "only the dial reached the PBX");

    let (code, r) = app.post_to(&path, json!({"to": "020 7946 0001"})).await;
    assert_eq!((code, r["action"].as_str()), (200, Some("divert")), "{r}");
    let got = app.received().pop().unwrap();
    assert_eq!((got.param("action").as_deref(), got.param("number").as_deref()), (Some("divert"), Some("02079460001")));
    assert_eq!(got.param("ext").as_deref(), Some("35"));

    // An unknown action on a known call is unknown_action, as on /v1/actions.
    let (code, r) = app.post_to(&format!("/v1/calls/{id}/record"), json!({})).await;
    assert_eq!((code, r["status"].as_str()), (404, Some("unknown_action")), "{r}");
}

#[tokio::test]
async fn a_dial_the_pbx_gave_no_call_id_cannot_be_hung_up_by_id() {
    let app = spawn(&[("london", NO_CALL_ID)]).await;
    let (_, dial) = app.post(json!({"branch": "london", "extension": "201", "number": "0207"})).await;
    assert_eq!((dial["status"].as_str(), &dial["call_id"]), (Some("accepted"), &Value::Null), "{dial}");
    let id = dial["id"].as_str().unwrap();
    let (_, call) = app.get_path(&format!("/v1/calls/{id}")).await;
    assert_eq!(call["call_id"], Value::Null, "{call}");

    let (code, r) = app.post_to(&format!("/v1/calls/{id}/hangup"), json!({})).await;
    assert_eq!((code, r["status"].as_str()), (400, Some("invalid_request")), "{r}");
    assert!(r["message"].as_str().unwrap().contains("the PBX gave no call id for this dial"), "{r}");
    assert_eq!(app.received().len(), 1, "only the dial reached the PBX");

    // An action that needs no call id still runs on the dial's extension.
    let (code, r) = app.post_to(&format!("/v1/calls/{id}/dnd_on"), json!({})).await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(app.received().pop().unwrap().param("ext").as_deref(), Some("201"));
}

#[tokio::test]
async fn an_unknown_id_is_404_unknown_call_and_wrong_methods_are_refused() {
    let app = spawn(&[("m", WITH_OPTIONS)]).await;
    let (code, r) = app.get_path("/v1/calls/01M80WQFYNHJCS3QBW9XDDKMVP").await;
    assert_eq!((code, r["status"].as_str(), r["ok"].as_bool()), (404, Some("unknown_call"), Some(false)), "{r}");
    assert!(r["message"].as_str().unwrap().contains("01M80WQFYNHJCS3QBW9XDDKMVP"), "{r}");
    let (code, r) = app.post_to("/v1/calls/01M80WQFYNHJCS3QBW9XDDKMVP/hangup", json!({})).await;
    assert_eq!((code, r["status"].as_str()), (404, Some("unknown_call")), "{r}");

    let id = app.dial_id(json!({"branch": "m", "extension": "35", "number": "187"})).await;
    let (code, r) = app.get_path(&format!("/v1/calls/{id}/hangup")).await;
    assert_eq!(code, 400, "acting on a call is POST only: {r}");
    let resp = app.client.head(format!("{}/v1/calls/{id}/hangup", app.url)).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let (code, r) = app.post_to(&format!("/v1/calls/{id}"), json!({})).await;
    assert_eq!(code, 400, "{r}");
    let resp = app.client.post(format!("{}/v1/calls/{id}/hangup", app.url)).body("call_id=1").send().await.unwrap();
    let (code, r) = read(resp).await;
    assert_eq!(code, 400, "a body that is not JSON: {r}");
    assert_eq!(app.received().len(), 1, "only the dial reached the PBX");
}

fn key(name: &str, secret: &str, branches: &[&str]) -> KeySpec {
    KeySpec::new(name.into(), secret.into(), branches.iter().map(|s| s.to_string()).collect(), None).unwrap()
}

fn keyed(s: &mut Settings) {
    s.keys = vec![key("erp", "erp-0123456789abcdef", &["*"]), key("intranet", "web-0123456789abcdef", &["london"])];
}

#[tokio::test]
async fn calls_have_the_key_scope_of_their_branch() {
    let app = spawn_with(&[("leeds", WITH_OPTIONS), ("london", WITH_OPTIONS)], &[], keyed).await;
    let resp = app
        .client
        .post(format!("{}/v1/dial", app.url))
        .bearer_auth("erp-0123456789abcdef")
        .json(&json!({"branch": "leeds", "extension": "35", "number": "187"}))
        .send()
        .await
        .unwrap();
    let (code, dial) = read(resp).await;
    assert_eq!(code, 200, "{dial}");
    let id = dial["id"].as_str().unwrap();
    let (read_url, hang_url) = (format!("{}/v1/calls/{id}", app.url), format!("{}/v1/calls/{id}/hangup", app.url));

    let (code, r) = read(app.client.get(&read_url).send().await.unwrap()).await;
    assert_eq!((code, r["status"].as_str()), (401, Some("unauthorized")), "{r}");
    let (code, r) =
        read(app.client.get(&read_url).header("x-api-key", "web-0123456789abcdef").send().await.unwrap()).await;
    assert_eq!((code, r["status"].as_str()), (403, Some("forbidden")), "a london key, a leeds call: {r}");
    assert_eq!(r["branch"], Value::Null, "{r}");
    let (code, r) =
        read(app.client.post(&hang_url).header("x-api-key", "web-0123456789abcdef").send().await.unwrap()).await;
    assert_eq!((code, r["status"].as_str()), (403, Some("forbidden")), "{r}");
    let (code, r) = read(app.client.post(&hang_url).send().await.unwrap()).await;
    assert_eq!((code, r["status"].as_str()), (401, Some("unauthorized")), "{r}");
    let (code, r) = read(app.client.post(format!("{}/v1/calls/nope/hangup", app.url)).send().await.unwrap()).await;
    assert_eq!(code, 401, "without a key, not even whether an id exists: {r}");
    assert_eq!(app.received().len(), 1, "refused requests reach no PBX");

    let (code, r) = read(app.client.get(format!("{read_url}?key=erp-0123456789abcdef")).send().await.unwrap()).await;
    assert_eq!((code, r["branch"].as_str()), (200, Some("leeds")), "{r}");
    let (code, r) = read(app.client.post(&hang_url).bearer_auth("erp-0123456789abcdef").send().await.unwrap()).await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(app.received().len(), 2);
}

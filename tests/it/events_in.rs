//! Notifications in, normalized events out: each shipped preset with the
//! shapes its system sends, its authentication (a wrong secret or signature
//! is 401 and reaches no subscriber), and what is refused as unreadable.
//! Every check reads the event a subscriber receives, never the gateway's
//! insides.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use crate::helpers::{Events, load_each, problem_in, spawn, spawn_with_env};

const WAIT: Duration = Duration::from_secs(10);

/// A dial line, for branches whose preset has only events.
const DIAL: &str = "dial: \"{GET}PBX/ivr/PbxAPI.aspx?func=make_call&from=^&to=#\"\n";

fn branch(preset: &str, rest: &str) -> String {
    format!("extends: presets/{preset}.yaml\n{DIAL}{rest}")
}

/// Sends `notify` and returns the event the subscriber got for it.
async fn event_for(events: &mut Events, sent: (u16, Value)) -> Value {
    assert_eq!(sent.0, 200, "the notification is taken: {}", sent.1);
    assert_eq!(sent.1["status"], "accepted");
    let got = events.next(WAIT).await.expect("an event");
    assert_eq!(got.name, "call");
    assert_eq!(got.data["id"], sent.1["id"], "the event's id is the one the PBX was answered with");
    assert_eq!(got.id, got.data["id"].as_str().unwrap_or_default(), "id: is the event id");
    got.data
}

/// The normalized fields worth comparing: type, direction, extension, remote, call_id, external_id.
fn summary(e: &Value) -> Value {
    json!([e["type"], e["direction"], e["extension"], e["remote"], e["call_id"], e["external_id"]])
}

#[tokio::test]
async fn voispeed_user_events_as_the_guide_shows_them_become_normalized_events() {
    let app = spawn(&[(
        "milan",
        "extends: presets/voispeed.yaml\nvars: {scheme: http, host: PBXHOST, token: demo-token}\nevents: {secret: s3cret-milan}\n",
    )])
    .await;
    let mut events = app.events("", None).await;
    let q = "milan?secret=s3cret-milan&event_type=2";
    let cases = [
        (
            "event=9&event_name=outgoing_call&ext=35&number=187&call_id=3250",
            json!(["dialling", "out", "35", "187", "3250", null]),
        ),
        (
            "event=8&event_name=incoming_call&ext=35&number=%2B390261616161&call_id=3251",
            json!(["ringing", "in", "35", "+390261616161", "3251", null]),
        ),
        (
            "event=14&event_name=call_answered&ext=35&number=187&call_id=3250",
            json!(["answered", null, "35", "187", "3250", null]),
        ),
        (
            "event=15&event_name=call_rejected&ext=35&number=187&call_id=3252",
            json!(["rejected", null, "35", "187", "3252", null]),
        ),
        (
            "event=16&event_name=call_disconnect_out&ext=35&number=187&call_id=3250",
            json!(["ended", null, "35", "187", "3250", null]),
        ),
        (
            "event=17&event_name=call_disconnect_in&ext=35&number=187&call_id=3251",
            json!(["ended", null, "35", "187", "3251", null]),
        ),
        (
            "event=12&event_name=lost_call&ext=35&number=0261616161",
            json!(["missed", null, "35", "0261616161", null, null]),
        ),
        ("event=10&event_name=new_voicemail&ext=35", json!(["voicemail", null, "35", null, null, null])),
        ("event=1&event_name=cmd_failed&ext=35&request_id=77", json!(["failed", null, "35", null, null, null])),
        ("event=18&event_name=call_transfer&ext=35&extid=crm-1", json!(["other", null, "35", null, null, "crm-1"])),
    ];
    for (fields, want) in cases {
        let e = event_for(&mut events, app.notify_get(&format!("{q}&{fields}")).await).await;
        assert_eq!(summary(&e), want, "{fields}");
        assert_eq!(e["branch"], "milan");
        assert_eq!(e["dial_id"], Value::Null, "no dial of ours");
        assert_eq!(e["pbx"]["event_type"], "2", "the notification's own fields are kept");
        assert!(e["pbx"].get("secret").is_none(), "but never the secret: {}", e["pbx"]);
        assert!(e["at"].as_str().is_some_and(|t| t.ends_with('Z')), "{}", e["at"]);
    }
    let metrics = app.client.get(format!("{}/metrics", app.url)).send().await.unwrap().text().await.unwrap();
    for line in [
        "webdial_events_total{branch=\"milan\",type=\"ended\"} 2",
        "webdial_events_total{branch=\"milan\",type=\"ringing\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
}

#[tokio::test]
async fn voispeed_extended_events_are_read_from_the_pbxs_point_of_view() {
    let app = spawn(&[(
        "ext",
        "extends: presets/voispeed-extended.yaml\nvars: {scheme: http, host: PBXHOST, token: demo-token}\nevents: {secret: s3cret-ext}\n",
    )])
    .await;
    let mut events = app.events("branch=ext", None).await;
    let q = "ext?secret=s3cret-ext&event_type=3";
    let user_calls = "calling_type=0&calling_number=35&called_type=2&called_number=187&call_id=900&extid=crm-2";
    let someone_calls = "calling_type=2&calling_number=0261616161&called_type=0&called_number=35&call_id=901";
    let cases = [
        (format!("event=3&event_name=call_out&{user_calls}"), json!(["ringing", "out", "35", "187", "900", "crm-2"])),
        (
            format!("event=4&event_name=call_response&outcome=1&{user_calls}"),
            json!(["answered", "out", "35", "187", "900", "crm-2"]),
        ),
        (
            format!("event=4&event_name=call_response&outcome=2&{user_calls}"),
            json!(["rejected", "out", "35", "187", "900", "crm-2"]),
        ),
        (
            format!("event=4&event_name=call_response&outcome=5&{user_calls}"),
            json!(["missed", "out", "35", "187", "900", "crm-2"]),
        ),
        (
            format!("event=4&event_name=call_response&outcome=6&{user_calls}"),
            json!(["failed", "out", "35", "187", "900", "crm-2"]),
        ),
        (
            format!("event=10&event_name=call_terminated&outcome=1&{user_calls}"),
            json!(["ended", "out", "35", "187", "900", "crm-2"]),
        ),
        (
            format!("event=1&event_name=call_in&{someone_calls}"),
            json!(["ringing", "in", "35", "0261616161", "901", null]),
        ),
        (
            format!("event=6&event_name=disconnect_out&{someone_calls}"),
            json!(["ended", "in", "35", "0261616161", "901", null]),
        ),
        (
            format!("event=11&event_name=call_held&{someone_calls}"),
            json!(["other", "in", "35", "0261616161", "901", null]),
        ),
    ];
    for (fields, want) in cases {
        let e = event_for(&mut events, app.notify_get(&format!("{q}&{fields}")).await).await;
        assert_eq!(summary(&e), want, "{fields}");
    }
}

#[tokio::test]
async fn desk_phone_action_urls_become_events_grandstream_with_its_values_in_the_path() {
    let app = spawn(&[
        ("yealink", &branch("yealink-events", "events: {secret: s3cret-phones}\n")),
        ("snom", &branch("snom-events", "events: {secret: s3cret-phones}\n")),
        ("fanvil", &branch("fanvil-events", "events: {secret: s3cret-phones}\n")),
        ("gs", &branch("grandstream-events", "events: {from: [\"127.0.0.0/8\"]}\n")),
        ("gs-elsewhere", &branch("grandstream-events", "events: {from: [\"10.0.0.0/8\"]}\n")),
    ])
    .await;
    let mut events = app.events("", None).await;
    let s = "secret=s3cret-phones";
    let cases = [
        // Yealink: the URL the preset says to set, with the phone's $variables filled in.
        (
            format!(
                "yealink?{s}&event=incoming_call&local=201@10.0.0.2&remote=sip:0261616161@pbx.example&call_id=a1b2"
            ),
            json!(["ringing", "in", "201", "0261616161", "a1b2", null]),
        ),
        (
            format!("yealink?{s}&event=outgoing_call&local=201@10.0.0.2&remote=187@pbx.example&call_id=c3"),
            json!(["dialling", "out", "201", "187", "c3", null]),
        ),
        (
            format!("yealink?{s}&event=call_established&local=201@10.0.0.2&remote=187@pbx.example&call_id=c3"),
            json!(["answered", null, "201", "187", "c3", null]),
        ),
        (
            format!("yealink?{s}&event=call_terminate&local=201@10.0.0.2&remote=187@pbx.example&call_id=c3"),
            json!(["ended", null, "201", "187", "c3", null]),
        ),
        (
            format!("yealink?{s}&event=missed_call&local=201@10.0.0.2&remote=0261616161@pbx&call_id=a1b2"),
            json!(["missed", null, "201", "0261616161", "a1b2", null]),
        ),
        (
            format!("yealink?{s}&event=off_hook&local=201@10.0.0.2&remote=&call_id="),
            json!(["other", null, "201", null, null, null]),
        ),
        (
            format!("snom?{s}&event=incoming&local=sip:202@pbx&remote=sip:0261616161@pbx&call_id=x9@10.0.0.3"),
            json!(["ringing", "in", "202", "0261616161", "x9@10.0.0.3", null]),
        ),
        (
            format!("snom?{s}&event=connected&local=sip:202@pbx&remote=sip:0261616161@pbx&call_id=x9@10.0.0.3"),
            json!(["answered", null, "202", "0261616161", "x9@10.0.0.3", null]),
        ),
        (
            format!("snom?{s}&event=disconnected&local=sip:202@pbx&remote=sip:0261616161@pbx&call_id=x9@10.0.0.3"),
            json!(["ended", null, "202", "0261616161", "x9@10.0.0.3", null]),
        ),
        (
            format!("fanvil?{s}&event=outgoing&local=203@pbx&remote=187@pbx&call_id=f1"),
            json!(["dialling", "out", "203", "187", "f1", null]),
        ),
        (
            format!("fanvil?{s}&event=busy&local=203@pbx&remote=187@pbx&call_id=f1"),
            json!(["rejected", null, "203", "187", "f1", null]),
        ),
        ("gs/incoming/204/0261616161/77".to_string(), json!(["ringing", "in", "204", "0261616161", "77", null])),
        ("gs/established/204/0261616161/77".to_string(), json!(["answered", null, "204", "0261616161", "77", null])),
        ("gs/terminated/204//".to_string(), json!(["ended", null, "204", null, null, null])),
        ("gs/outgoing/sip%3A204%40pbx/187".to_string(), json!(["dialling", "out", "204", "187", null, null])),
    ];
    for (path, want) in cases {
        let e = event_for(&mut events, app.notify_get(&path).await).await;
        assert_eq!(summary(&e), want, "{path}");
    }
    // The test client is on 127.0.0.1: outside that branch's range.
    let (status, body) = app.notify_get("gs-elsewhere/incoming/204/0261616161/78").await;
    assert_eq!((status, body["status"].as_str()), (401, Some("unauthorized")), "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("127.0.0.1"), "{body}");
    let (status, _) = app.notify_get("yealink?event=incoming_call&local=201@x").await;
    assert_eq!(status, 401, "no secret");
    let e = event_for(&mut events, app.notify_get("gs/missed/204/0261616161/79").await).await;
    assert_eq!(e["type"], "missed", "the refused ones reached no subscriber: the next event is this one");
}

/// Yeastar P's signature: base64 HMAC-SHA256 of the raw body, keyed with the webhook's secret.
fn yeastar_signature(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Yeastar's webhook body: `msg` is JSON inside a string.
fn yeastar(kind: u32, msg: Value) -> String {
    json!({"type": kind, "sn": "3631A2123456", "msg": msg.to_string()}).to_string()
}

#[tokio::test]
async fn yeastar_webhooks_are_checked_by_their_signature_and_read_through_json_in_a_string() {
    let app = spawn_with_env(
        &[("ys", &branch("yeastar-p-events", "vars:\n  webhook_secret: ${YS_HOOK}\n"))],
        &[("YS_HOOK", "hook-s3cret-yeastar")],
    )
    .await;
    let mut events = app.events("branch=ys", None).await;
    let member = |status: &str| json!({"extension": {"number": "1000", "channel_id": "PJSIP/1000-0001", "member_status": status}});
    let inbound = json!({"inbound": {"from": "0261616161", "to": "5503301", "trunk_name": "sip", "channel_id": "PJSIP/t-0002", "member_status": "ANSWERED"}});
    let outbound = json!({"outbound": {"from": "1000", "to": "187", "trunk_name": "sip", "channel_id": "PJSIP/t-0003", "member_status": "ALERT"}});
    let cases = [
        (
            yeastar(30011, json!({"call_id": "1700000000.11", "members": [member("RING"), inbound]})),
            json!(["ringing", "in", "1000", "0261616161", "1700000000.11", null]),
        ),
        (
            yeastar(30011, json!({"call_id": "1700000000.11", "members": [member("ANSWERED"), inbound]})),
            json!(["answered", "in", "1000", "0261616161", "1700000000.11", null]),
        ),
        (
            yeastar(30011, json!({"call_id": "1700000000.12", "members": [member("ALERT"), outbound]})),
            json!(["dialling", "out", "1000", "187", "1700000000.12", null]),
        ),
        (
            yeastar(30011, json!({"call_id": "1700000000.12", "members": [member("BYE"), outbound]})),
            json!(["ended", "out", "1000", "187", "1700000000.12", null]),
        ),
        (
            yeastar(30011, json!({"call_id": "1700000000.12", "members": [member("HOLD"), outbound]})),
            json!(["other", "out", "1000", "187", "1700000000.12", null]),
        ),
        (
            yeastar(30015, json!({"call_id": "1700000000.13", "reason": "486 Busy here"})),
            json!(["failed", null, null, null, "1700000000.13", null]),
        ),
        (
            yeastar(30008, json!({"call_id": "1700000000.14"})),
            json!(["other", null, null, null, "1700000000.14", null]),
        ),
    ];
    for (body, want) in &cases {
        let sig = yeastar_signature("hook-s3cret-yeastar", body);
        let sent = app.notify_post("ys", "application/json", body, &[("x-signature", &sig)]).await;
        let e = event_for(&mut events, sent).await;
        assert_eq!(summary(&e), *want, "{body}");
    }
    let body = &cases[0].0;
    let forged = yeastar_signature("another-secret", body);
    for headers in [vec![("x-signature", forged.as_str())], vec![]] {
        let (status, answer) = app.notify_post("ys", "application/json", body, &headers).await;
        assert_eq!((status, answer["status"].as_str()), (401, Some("unauthorized")), "{answer}");
    }
    // The signature covers the body as sent: one changed byte fails it.
    let sig = yeastar_signature("hook-s3cret-yeastar", body);
    let changed = body.replace("1000", "1001");
    assert_eq!(app.notify_post("ys", "application/json", &changed, &[("x-signature", &sig)]).await.0, 401);
    assert!(events.next(Duration::from_millis(300)).await.is_none(), "no subscriber saw the refused ones");
}

/// Twilio's signature, by its documented algorithm: the full URL, then each
/// POST parameter's name and value sorted by name, HMAC-SHA1 with the auth
/// token, base64.
fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let text: String = sorted.iter().fold(url.to_string(), |acc, (k, v)| acc + k + v);
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[test]
fn the_tests_twilio_signature_is_twilios_own_example() {
    // Twilio's security documentation: auth token 12345, this URL and these parameters.
    let params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ];
    let sig = twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &params);
    assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
}

#[tokio::test]
async fn twilio_status_callbacks_are_checked_by_twilios_signature_and_read() {
    let token = "tw1l10-auth-token";
    let app = spawn_with_env(
        &[("tw", &branch("twilio-events", "vars:\n  token: ${TW_TOKEN}\n  public_url: https://gw.example.com\n"))],
        &[("TW_TOKEN", token)],
    )
    .await;
    let mut events = app.events("branch=tw", None).await;
    let callback = |status: &'static str, direction: &'static str, seq: &'static str| {
        vec![
            ("AccountSid", "AC0000000000000000000000000000000"),
            ("ApiVersion", "2010-04-01"),
            ("CallSid", "CA1111111111111111111111111111111"),
            ("CallStatus", status),
            ("Direction", direction),
            ("From", "+442079460000"),
            ("To", "+442079460201"),
            ("SequenceNumber", seq),
            ("Timestamp", "Mon, 23 Nov 2026 14:05:09 +0000"),
            ("callbackSource", "call-progress-events"),
        ]
    };
    let cases = [
        (
            callback("initiated", "outbound-api", "0"),
            json!(["dialling", "out", "+442079460201", null, "CA1111111111111111111111111111111", null]),
        ),
        (
            callback("ringing", "outbound-api", "1"),
            json!(["ringing", "out", "+442079460201", null, "CA1111111111111111111111111111111", null]),
        ),
        (
            callback("in-progress", "outbound-api", "2"),
            json!(["answered", "out", "+442079460201", null, "CA1111111111111111111111111111111", null]),
        ),
        (
            callback("completed", "outbound-api", "3"),
            json!(["ended", "out", "+442079460201", null, "CA1111111111111111111111111111111", null]),
        ),
        (
            callback("no-answer", "outbound-api", "4"),
            json!(["missed", "out", "+442079460201", null, "CA1111111111111111111111111111111", null]),
        ),
        (
            callback("busy", "inbound", "5"),
            json!(["rejected", "in", "+442079460201", "+442079460000", "CA1111111111111111111111111111111", null]),
        ),
    ];
    let path = "tw?route=a";
    for (params, want) in &cases {
        let sig = twilio_signature(token, &format!("https://gw.example.com/v1/events/{path}"), params);
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish();
        let sent =
            app.notify_post(path, "application/x-www-form-urlencoded", &body, &[("x-twilio-signature", &sig)]).await;
        let e = event_for(&mut events, sent).await;
        assert_eq!(summary(&e), *want, "{params:?}");
    }
    let params = &cases[0].0;
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish();
    let wrong_url = twilio_signature(token, "https://gw.example.com/v1/events/tw", params);
    let wrong_token = twilio_signature("another-token", &format!("https://gw.example.com/v1/events/{path}"), params);
    for sig in [wrong_url.as_str(), wrong_token.as_str(), ""] {
        let (status, _) =
            app.notify_post(path, "application/x-www-form-urlencoded", &body, &[("x-twilio-signature", sig)]).await;
        assert_eq!(status, 401, "{sig:?}");
    }
    assert!(events.next(Duration::from_millis(300)).await.is_none(), "no subscriber saw the refused ones");
}

const MILAN: &str = "extends: presets/voispeed.yaml\nvars: {scheme: http, host: PBXHOST, token: demo-token}\nevents: {secret: s3cret-milan}\n";

#[tokio::test]
async fn refused_notifications_are_answered_in_the_one_shape_and_reach_no_subscriber() {
    let app =
        spawn(&[("milan", MILAN), ("quiet", "extends: presets/voispeed.yaml\nvars: {host: PBXHOST, token: t}\n")])
            .await;
    let mut events = app.events("", None).await;
    let fields = "event_type=2&event=8&event_name=incoming_call&ext=35&number=187&call_id=1";
    let refusals = [
        (format!("milan?{fields}"), 401, "unauthorized"),
        (format!("milan?secret=s3cret-mila&{fields}"), 401, "unauthorized"),
        (format!("milan?secret=s3cret-milan-and-more&{fields}"), 401, "unauthorized"),
        (format!("nowhere?secret=s3cret-milan&{fields}"), 404, "unknown_branch"),
        // A branch whose profile reads events but says no one may send them.
        (format!("quiet?secret=anything&{fields}"), 404, "unknown_branch"),
    ];
    for (path, code, status) in &refusals {
        let (got, body) = app.notify_get(path).await;
        assert_eq!((got, body["status"].as_str()), (*code, Some(*status)), "{path}: {body}");
        assert_eq!(body["ok"], false);
        assert_eq!(body["action"], "event");
    }
    let json = "application/json";
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let unreadable = [(json, "{\"event\": "), ("text/xml", "<event><ext>35</event>"), (json, deep.as_str())];
    for (ct, body) in unreadable {
        let (got, answer) = app.notify_post("milan?secret=s3cret-milan", ct, body, &[]).await;
        assert_eq!((got, answer["status"].as_str()), (400, Some("invalid_request")), "{answer}");
    }
    let huge = "x".repeat(200 * 1024);
    let (got, answer) = app.notify_post("milan?secret=s3cret-milan", "text/plain", &huge, &[]).await;
    assert_eq!(got, 400, "over the body bound: {answer}");
    let head = app.client.head(format!("{}/v1/events/milan?secret=s3cret-milan&{fields}", app.url)).send().await;
    assert_eq!(head.unwrap().status().as_u16(), 400, "HEAD is not a notification");
    let put = app.client.put(format!("{}/v1/events/milan?secret=s3cret-milan&{fields}", app.url)).send().await;
    assert_eq!(crate::helpers::read(put.unwrap()).await.0, 400);

    // Only now a good one: it is the first thing the subscriber gets.
    let sent = app.notify_get(&format!("milan?secret=s3cret-milan&{fields}")).await;
    let e = event_for(&mut events, sent).await;
    assert_eq!((e["type"].as_str(), e["call_id"].as_str()), (Some("ringing"), Some("1")));
    // The same notification again (a PBX retrying) is taken but passed on once.
    let (got, again) = app.notify_get(&format!("milan?secret=s3cret-milan&{fields}")).await;
    assert_eq!((got, again["duplicate"].as_bool()), (200, Some(true)), "{again}");
    let next = app.notify_get(&format!("milan?secret=s3cret-milan&{fields}&x=1")).await;
    let e = event_for(&mut events, next).await;
    assert_eq!(e["pbx"]["x"], "1", "the repeat was not passed on: the next event is the one after it");
}

#[tokio::test]
async fn a_hostile_notification_makes_a_small_event() {
    let app = spawn(&[("milan", MILAN)]).await;
    let mut events = app.events("", None).await;
    let long = "9".repeat(10_000);
    let many: String = (0..2_000).map(|i| format!("&f{i}=v{i}")).collect();
    let path = format!("milan?secret=s3cret-milan&event=8&ext={long}&number={long}{many}");
    let body = format!("{{\"call_id\": \"{long}\"}}");
    let sent = app.notify_post(&path, "application/json", &body, &[]).await;
    let e = event_for(&mut events, sent).await;
    for field in ["extension", "remote", "call_id"] {
        assert_eq!(e[field].as_str().map(str::len), Some(256), "{field} is cut to 256 characters");
    }
    assert_eq!(e["pbx"]["truncated"], true, "the fields are cut too");
    assert!(e.to_string().len() < 4 * 1024, "{} bytes", e.to_string().len());
}

#[test]
fn events_rules_are_checked_at_load_with_their_place() {
    let dial = "dial: \"http://h/x?to=#\"\n";
    let mut files: Vec<(&str, String)> = [
        ("bad_type", "events:\n  secret: s\n  read:\n    type: \"event ==\"\n"),
        ("bad_from", "events:\n  from: [\"10.0.0.0/8\", \"10.0.0.0/99\"]\n  read: {type: \"'x'\"}\n"),
        ("no_type", "events:\n  secret: s\n  read:\n    extension: ext\n"),
        ("unknown_key", "events:\n  secret: s\n  colour: red\n"),
        ("bad_verify", "events:\n  verify: \"raw | hmac_sha256(\"\n  read: {type: \"'x'\"}\n"),
    ]
    .into_iter()
    .map(|(name, events)| (name, format!("{dial}{events}")))
    .collect();
    files.push(("good", format!("{dial}events:\n  secret: s\n  read: {{type: \"'x'\"}}\n")));
    let (loaded, shown) = load_each(&files);
    assert_eq!(loaded, 1, "{shown:#?}");
    let find = |file: &str| problem_in(&shown, file);
    assert!(find("bad_type").contains("bad_type.yaml:5:11: syntax error"), "{shown:#?}");
    assert!(find("bad_from").contains("bad_from.yaml:3:24: \"10.0.0.0/99\" is not an address range"), "{shown:#?}");
    assert!(find("no_type").contains("no_type.yaml:5:5: no `type`"), "{shown:#?}");
    assert!(find("unknown_key").contains("unknown_key.yaml:4:3: events: unknown field `colour`"), "{shown:#?}");
    assert!(find("bad_verify").contains("bad_verify.yaml:3:11: syntax error"), "{shown:#?}");
    assert_eq!(shown.len(), 5, "{shown:#?}");
}

//! `presets/twilio.yaml` against the Twilio stand-in.

use serde_json::json;
use webdial::standin::{TWILIO_ACCOUNT_SID as SID, TWILIO_AUTH_TOKEN as TOKEN, twilio_signature};

use super::*;

const ENV: &[(&str, &str)] = &[("TW_TOKEN", TOKEN)];

fn profile(vars: &str) -> String {
    with_from("\"+442079460000\"", vars)
}

fn with_from(from: &str, vars: &str) -> String {
    format!(
        "extends: presets/twilio.yaml\nvars: {{scheme: http, host: PBXHOST, account: {SID}, token: \"${{TW_TOKEN}}\", from_number: {from}{vars}}}\n"
    )
}

const CALLS: &str = "/2010-04-01/Accounts/AC00000000000000000000000000000001/Calls.json";

#[tokio::test]
async fn twilio_calls_the_extension_with_twiml_that_dials_the_number() {
    let app = spawn_with_env(&[("x", &profile(""))], ENV).await;
    let (code, body) = app.post(dial("+442079460201", "+442079460999")).await;
    accepted(code, &body);
    let got = app.only_request();
    assert_eq!((got.method.as_str(), got.path.as_str(), got.query.as_deref()), ("POST", CALLS, None));
    assert_eq!(got.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    assert_eq!(got.authorization, Some(basic(SID, TOKEN)));
    let twiml = r#"<Response><Dial callerId="+442079460000"><Number>+442079460999</Number></Dial></Response>"#;
    // No public_url: no StatusCallback (the empty field is left out).
    assert_eq!(
        form(&got),
        pairs(&[
            ("To", "+442079460201"),
            ("From", "+442079460000"),
            ("Twiml", twiml),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
        ])
    );
    let sid = format!("CA{}", app.pbx.logins("twilio").issued()[0]);
    assert_eq!(body["call_id"], sid.as_str());
    assert_eq!(body["pbx"]["http_status"], 201);
    assert!(!body.to_string().contains(TOKEN), "the token never reaches an answer: {body}");
}

#[tokio::test]
async fn twilio_twiml_escapes_every_value_so_none_adds_a_verb() {
    // A from_number (admin's) and a caller id (the caller's) that would
    // break out of the attribute if pasted as they are.
    let app = spawn_with_env(&[("x", &with_from("'+1\"/><Hangup/><Dial x=\"&'", ""))], ENV).await;
    let (code, body) = app.post(dial("+442079460201", "+442079460999")).await;
    accepted(code, &body);
    let got = app.only_request();
    let twiml = form(&got).into_iter().find(|(k, _)| k == "Twiml").map(|(_, v)| v).unwrap();
    let doc = roxmltree::Document::parse(&twiml).expect("TwiML is XML");
    let root = doc.root_element();
    let verbs: Vec<&str> = root.children().filter(|n| n.is_element()).map(|n| n.tag_name().name()).collect();
    assert_eq!(verbs, ["Dial"], "{twiml}");
    let dial_verb = root.first_element_child().unwrap();
    assert_eq!(dial_verb.attribute("callerId"), Some("+1\"/><Hangup/><Dial x=\"&"), "{twiml}");
    let nouns: Vec<(&str, Option<&str>)> =
        dial_verb.children().filter(|n| n.is_element()).map(|n| (n.tag_name().name(), n.text())).collect();
    assert_eq!(nouns, [("Number", Some("+442079460999"))], "{twiml}");
}

#[tokio::test]
async fn twilio_refusals_are_rejected_with_twilios_words() {
    let app =
        spawn_with_env(&[("x", &profile("")), ("w", &profile("").replace("${TW_TOKEN}", "not-the-token"))], ENV).await;
    let (code, body) = app.post(dial("+9123", "+442079460999")).await;
    rejected(code, &body, 400, "The 'To' number +9123 is not a valid phone number.");
    assert_eq!(body["pbx"]["body"]["code"], 21211, "{body}");
    let (code, body) = app.post(json!({"branch": "w", "extension": "+442079460201", "number": "+442079460999"})).await;
    rejected(code, &body, 401, "Authenticate");
    // Hanging up a call Twilio does not know.
    let (code, body) =
        action(&app, "hangup", json!({"branch": "x", "extension": "+442079460201", "call_id": "CA404"})).await;
    assert_eq!((code, body["status"].as_str(), &body["pbx"]["http_status"]), (502, Some("rejected"), &json!(404)));
    assert!(body["message"].as_str().unwrap_or("").starts_with("The requested resource"), "{body}");
    assert_eq!(app.received().len(), 3, "one request each, none repeated");
}

#[tokio::test]
async fn twilio_hanging_is_a_timeout_and_a_dry_run_sends_nothing() {
    hanging_is_a_timeout(&profile(""), ENV, "+442079460201").await;
    let body = dry_run_sends_nothing(&profile(""), ENV, "+442079460201").await;
    assert_eq!(body["request"]["method"], "POST", "{body}");
    assert!(!body.to_string().contains(TOKEN), "{body}");
}

#[tokio::test]
async fn twilio_status_callbacks_come_signed_to_the_gateway_and_move_the_dial() {
    let app = spawn_called_back(&profile(", public_url: GATEWAY").replace("${TW_TOKEN}", TOKEN), ENV).await;
    let mut events = app.events("branch=x", None).await;
    let (code, body) = app.post(dial("+442079460201", "+442079460999")).await;
    accepted(code, &body);
    let got = app.only_request();
    let callback = format!("{}/v1/events/x", app.url);
    assert_eq!(got.param("StatusCallback").as_deref(), Some(callback.as_str()));
    let sid = body["call_id"].as_str().unwrap().to_string();
    let id = body["id"].as_str().unwrap().to_string();
    for want in ["dialling", "ringing", "answered", "ended"] {
        let e = events.next(WAIT).await.expect("a status callback, as an event").data;
        assert_eq!((e["type"].as_str(), e["call_id"].as_str()), (Some(want), Some(sid.as_str())), "{e}");
        assert_eq!((e["direction"].as_str(), e["extension"].as_str()), (Some("out"), Some("+442079460201")), "{e}");
        assert_eq!(e["dial_id"], id.as_str(), "the event found its dial: {e}");
        assert_eq!(e["pbx"]["AccountSid"], SID, "{e}");
    }
    let call = read(app.client.get(format!("{}/v1/calls/{id}", app.url)).send().await.unwrap()).await.1;
    assert_eq!(call["state"], "ended", "{call}");

    // A callback signed with another token, or over another URL, is refused.
    let params = [("CallSid", sid.as_str()), ("CallStatus", "completed"), ("Direction", "outbound-api")];
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish();
    for sig in [twilio_signature("another-token", &callback, &params), twilio_signature(TOKEN, &app.url, &params)] {
        let headers = [("x-twilio-signature", sig.as_str())];
        assert_eq!(app.notify_post("x", "application/x-www-form-urlencoded", &body, &headers).await.0, 401);
    }
    assert!(events.next(std::time::Duration::from_millis(300)).await.is_none(), "no subscriber saw those");

    // Hanging up "the call I started": Twilio's sid, from the dial.
    let (code, body) = on_call(&app, &id, "hangup").await;
    accepted(code, &body);
    let got = app.received();
    let hangup = got.last().unwrap();
    assert_eq!(hangup.path, format!("/2010-04-01/Accounts/{SID}/Calls/{sid}.json"));
    assert_eq!((hangup.method.as_str(), form(hangup)), ("POST", pairs(&[("Status", "completed")])));
    assert_eq!(hangup.authorization, Some(basic(SID, TOKEN)));
}

//! Desk phones: one host per user. The branch's `phones` map (extension →
//! the phone's host[:port]) is the only way a request value picks where a
//! request goes; here, against one stand-in playing one phone (extension
//! 201) and a closed port standing for another (202): the extension picks
//! its own phone, one missing from the map is `invalid_request` with
//! nothing sent, hostile extensions pick nothing, and any other request
//! value in the host part is still refused at load. Then, per preset
//! (one module each), the exact requests each phone received.

use serde_json::json;
use webdial::standin::Received;

use crate::helpers::{App, action, basic, closed_port, dial, spawn, write_config};

mod cisco;
mod fanvil;
mod grandstream_gxp;
mod poly;
mod snom;
mod yealink;

/// `phones:` with 201 on the stand-in and 202 on a closed port.
pub fn phones() -> String {
    format!("{{201: \"PBXHOST\", 202: \"127.0.0.1:{}\"}}", closed_port())
}

/// Method, path and raw query of what the phone received.
pub fn line(r: &Received) -> (String, String, String) {
    (r.method.clone(), r.path.clone(), r.query.clone().unwrap_or_default())
}

/// An extension the map lacks, and hostile ones, are refused before
/// anything is sent (dry runs too), and nothing reaches any phone.
pub async fn refuses_extensions_outside_the_map(app: &App) {
    for (ext, why) in [
        ("207", "extension 207 is not in this branch's `phones` map"),
        ("201#", "extension 201# is not in this branch's `phones` map"),
        ("2010", "extension 2010 is not in this branch's `phones` map"),
        ("../x", "extension"),
        ("201@evil", "extension"),
        ("evil.example", "extension"),
    ] {
        for dry_run in [false, true] {
            let mut body = dial(ext, "+442079460000");
            body["dry_run"] = json!(dry_run);
            let (code, answer) = app.post(body).await;
            assert_eq!((code, answer["status"].as_str()), (400, Some("invalid_request")), "{ext}: {answer}");
            let message = answer["message"].as_str().unwrap_or_default();
            assert!(message.contains(why), "{ext}: {message}");
        }
    }
    assert!(app.received().is_empty(), "nothing reached the phone: {:#?}", app.received());
}

const PLAIN: &str =
    "vars: {phones: PHONES}\ndial: {url: \"http://{{ phones[extension] }}/command.htm?number={{ number }}\"}\n";

#[tokio::test]
async fn the_extension_picks_its_own_phone_from_the_map_and_nothing_else() {
    let app = spawn(&[("x", &PLAIN.replace("PHONES", &phones()))]).await;
    let (code, body) = app.post(dial("201", "+442079460000")).await;
    // Whatever the phone answered (this plain profile sends no
    // credentials), it was 201's phone that answered.
    assert!(body["pbx"]["http_status"].is_u64(), "{body}");
    let got = app.only_request();
    assert_eq!(line(&got), ("GET".into(), "/command.htm".into(), "number=%2B442079460000".into()), "{code}");
    // 202's phone is another host: the closed port.
    let (code, body) = app.post(dial("202", "+442079460000")).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("unreachable")), "{body}");
    assert_eq!(app.received().len(), 1, "the other phone's request did not reach 201's");
}

#[tokio::test]
async fn an_extension_missing_from_the_map_or_hostile_is_invalid_request_and_nothing_is_sent() {
    let app = spawn(&[("x", &PLAIN.replace("PHONES", &phones()))]).await;
    refuses_extensions_outside_the_map(&app).await;
}

/// Loads `profile` as branch `x`; the diagnostics' text.
fn load_errors(profile: &str) -> String {
    let dir = write_config("http://127.0.0.1:9", &[("x", profile)]);
    let loaded = webdial::app::load(&dir.path().join("webdial.yaml"), true, &|_| None);
    loaded.diagnostics.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")
}

#[test]
fn any_other_request_value_in_the_host_is_still_refused_at_load() {
    for url in [
        "http://{{ number }}/command.htm",
        "http://{{ phones[number] }}/command.htm",
        "http://{{ phones[extension] }}.{{ caller_id }}/command.htm",
        "http://{{ phones[extension] | default(extension) }}/command.htm",
    ] {
        let profile = format!("vars: {{phones: {{201: 192.0.2.11}}}}\ndial: {{url: \"{url}\"}}\n");
        let errors = load_errors(&profile);
        assert!(errors.contains("never choose where a dial is sent"), "{url}: {errors}");
    }
    let errors =
        load_errors("vars: {phones: {201: 'evil.example/x'}}\ndial: {url: \"http://{{ phones[extension] }}/c\"}\n");
    assert!(errors.contains("not a host[:port]"), "{errors}");
    assert!(load_errors(&PLAIN.replace("PHONES", "{201: 192.0.2.11}")).is_empty());
}

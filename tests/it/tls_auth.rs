//! TLS and HTTP digest against the stand-in: which certificates each `tls:`
//! setting accepts (and that a refused one carries no request), clients for
//! TLS settings the gateway first meets after start-up, and a digest
//! challenge answered once.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use serde_json::{Value, json};
use sha2::Digest;
use webdial::pbx::client::Dispatcher;
use webdial::standin::{Behaviour, DIGEST_NONCE, DIGEST_REALM, StandIn};
use webdial::state::{Runtime, Snapshot};

use crate::helpers::{read, spawn_with_env, write_config};

/// A gateway serving `profiles` (`PBX` = the stand-in's URL), read from disk
/// by a fresh loader. With `clients`, it shares that client pool, as a
/// reloaded configuration shares the running gateway's runtime state.
struct Gateway {
    url: String,
    client: reqwest::Client,
    gw: Arc<webdial::call::Gateway>,
    _dir: tempfile::TempDir,
}

async fn gateway(pbx: &StandIn, profiles: &[(&str, &str)], clients: Option<&Dispatcher>) -> Gateway {
    let dir = write_config(&pbx.url(), profiles);
    let no_env = |_: &str| None;
    let loaded = webdial::app::load(&dir.path().join("webdial.yaml"), true, &no_env);
    assert!(loaded.diagnostics.is_empty(), "profiles must load: {:?}", loaded.diagnostics);
    let snapshot = Snapshot { settings: loaded.settings.unwrap(), profiles: loaded.profiles };
    let mut runtime = Runtime::new(&snapshot).unwrap();
    if let Some(shared) = clients {
        runtime.clients = shared.clone();
    }
    let gw = Arc::new(webdial::call::Gateway::new(snapshot, runtime));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(webdial::app::serve(gw.clone(), listener, std::future::pending(), Duration::from_secs(1)));
    Gateway { url, client: reqwest::Client::new(), gw, _dir: dir }
}

impl Gateway {
    fn clients(&self) -> &Dispatcher {
        &self.gw.runtime().clients
    }

    async fn dial(&self, branch: &str) -> (u16, Value) {
        let body = json!({"branch": branch, "extension": "201", "number": "02079460000"});
        read(self.client.post(format!("{}/v1/dial", self.url)).json(&body).send().await.unwrap()).await
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost marked CA:TRUE, as
/// `openssl req -x509` makes them: (certificate PEM, key PEM, DER).
fn pbx_certificate() -> (String, String, Vec<u8>) {
    let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

/// What `openssl x509 -noout -fingerprint -sha256` prints for `der`.
fn openssl_fingerprint(der: &[u8]) -> String {
    let hex: Vec<String> = sha2::Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect();
    format!("sha256 Fingerprint={}", hex.join(":"))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const LINE: &str = "dial: \"PBX/ivr/PbxAPI.aspx?func=make_call&from=^&to=#\"\n";

fn with_tls(tls: &str) -> String {
    format!("{LINE}tls: {tls}\n")
}

fn assert_unreachable(r: &(u16, Value), why: &str) {
    assert_eq!((r.0, r.1["status"].as_str()), (502, Some("unreachable")), "{why}: {}", r.1);
}

fn assert_accepted(r: &(u16, Value), why: &str) {
    assert_eq!((r.0, r.1["status"].as_str()), (200, Some("accepted")), "{why}: {}", r.1);
}

#[tokio::test]
async fn a_self_signed_ca_certificate_is_refused_by_default_and_trusted_by_ca_or_pin() {
    let (cert_pem, key_pem, der) = pbx_certificate();
    let (other_pem, _, other_der) = pbx_certificate();
    let pbx = StandIn::bind_tls("127.0.0.1:0", &cert_pem, &key_pem).await.unwrap();
    let files = tempfile::tempdir().unwrap();
    let own = write(files.path(), "pbx.crt", &cert_pem);
    let other = write(files.path(), "other.crt", &other_pem);
    let openssl_line = openssl_fingerprint(&der);
    let after_equals = openssl_line.split_once('=').unwrap().1.to_string();
    let bare = after_equals.replace(':', "").to_lowercase();
    let profiles = [
        ("strict", LINE.to_string()),
        ("wrong_pin", with_tls(&format!("{{pin: \"{}\"}}", openssl_fingerprint(&other_der)))),
        ("other_ca", with_tls(&format!("{{ca: \"{other}\"}}"))),
        ("own_ca", with_tls(&format!("{{ca: \"{own}\"}}"))),
        ("pin_openssl", with_tls(&format!("{{pin: \"{openssl_line}\"}}"))),
        ("pin_after_equals", with_tls(&format!("{{pin: \"{after_equals}\"}}"))),
        ("pin_bare", with_tls(&format!("{{pin: \"sha256:{bare}\"}}"))),
        ("relaxed", with_tls("{verify: false}")),
    ];
    let profiles: Vec<(&str, &str)> = profiles.iter().map(|(n, p)| (*n, p.as_str())).collect();
    let gw = gateway(&pbx, &profiles, None).await;

    let r = gw.dial("strict").await;
    assert_unreachable(&r, "the system's roots do not know a self-signed certificate");
    let r = gw.dial("wrong_pin").await;
    assert_unreachable(&r, "another certificate's pin");
    let expected = format!("the PBX's certificate has SHA-256 fingerprint {after_equals}, the profile pins");
    assert!(r.1["message"].as_str().unwrap().contains(&expected), "the refusal names what was presented: {}", r.1);
    let r = gw.dial("other_ca").await;
    assert_unreachable(&r, "ca: another self-signed certificate");
    assert!(pbx.received().is_empty(), "nothing is sent over a refused connection: {:?}", pbx.received());

    assert_accepted(&gw.dial("own_ca").await, "ca: the PBX's own certificate, marked CA:TRUE");
    assert_eq!(pbx.received().len(), 1, "exactly one request");
    assert_accepted(&gw.dial("pin_openssl").await, "pin: as openssl prints it");
    assert_accepted(&gw.dial("pin_after_equals").await, "pin: the part after =");
    assert_accepted(&gw.dial("pin_bare").await, "pin: sha256: and lower-case hex without colons");
    assert_accepted(&gw.dial("relaxed").await, "verify: false");
    assert_eq!(pbx.received().len(), 5);
}

#[tokio::test]
async fn a_certificate_made_by_openssl_req_x509_works_as_ca_and_as_pin() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("note: no openssl binary on this machine; the openssl-made certificate is not tested");
        return;
    }
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = (files.path().join("pbx.crt"), files.path().join("pbx.key"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let fingerprint =
        Command::new("openssl").args(["x509", "-noout", "-fingerprint", "-sha256", "-in"]).arg(&cert).output().unwrap();
    let fingerprint = String::from_utf8(fingerprint.stdout).unwrap().trim().to_string();
    assert!(fingerprint.to_lowercase().starts_with("sha256 fingerprint="), "{fingerprint}");
    let text = Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(&cert).output().unwrap();
    if !String::from_utf8_lossy(&text.stdout).contains("CA:TRUE") {
        eprintln!("note: this openssl's req -x509 did not mark the certificate CA:TRUE; testing it all the same");
    }

    let pem = |p: &Path| std::fs::read_to_string(p).unwrap();
    let pbx = StandIn::bind_tls("127.0.0.1:0", &pem(&cert), &pem(&key)).await.unwrap();
    let own_ca = with_tls(&format!("{{ca: \"{}\"}}", cert.display()));
    let pinned = with_tls(&format!("{{pin: \"{fingerprint}\"}}"));
    let gw = gateway(&pbx, &[("strict", LINE), ("own_ca", &own_ca), ("pinned", &pinned)], None).await;
    assert_unreachable(&gw.dial("strict").await, "verified by default");
    assert!(pbx.received().is_empty());
    assert_accepted(&gw.dial("own_ca").await, "ca: the openssl certificate itself");
    assert_accepted(&gw.dial("pinned").await, "pin: openssl's own fingerprint line");
    assert_eq!(pbx.received().len(), 2);
}

#[tokio::test]
async fn profiles_loaded_after_start_up_get_a_client_for_their_own_tls_setting() {
    let (cert_pem, key_pem, _) = pbx_certificate();
    let pbx = StandIn::bind_tls("127.0.0.1:0", &cert_pem, &key_pem).await.unwrap();
    let first = gateway(&pbx, &[("b", LINE)], None).await;
    assert_unreachable(&first.dial("b").await, "the first profile set verifies against the system's roots");

    // Later, a fresh loader reads a new profile set (a reload) whose ca: the
    // running gateway's clients have never seen; the runtime state carries over.
    let files = tempfile::tempdir().unwrap();
    let own = write(files.path(), "pbx.crt", &cert_pem);
    let shared = first.clients();
    let reloaded = gateway(&pbx, &[("b", &with_tls(&format!("{{ca: \"{own}\"}}")))], Some(shared)).await;
    assert_accepted(&reloaded.dial("b").await, "the new ca: gets its own client, not the default one");
    assert_eq!(pbx.received().len(), 1);
    assert_eq!(shared.client_count(), 2, "the default client and the new ca:'s, in the one pool");
}

#[test]
fn a_bad_or_contradictory_tls_setting_is_a_load_error_at_its_place() {
    const DIAL: &str = "dial: \"http://127.0.0.1:9/ivr/PbxAPI.aspx?func=make_call&from=^&to=#\"\n";
    let (cert_pem, _, der) = pbx_certificate();
    let good_pin = openssl_fingerprint(&der);
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "pbx.crt", &cert_pem);
    let profiles = dir.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    for (name, text) in [
        ("short", format!("{DIAL}tls:\n  pin: \"sha256:AB:CD\"\n")),
        ("sha1", format!("{DIAL}tls:\n  pin: \"{}\"\n", "ab:".repeat(19) + "ab")),
        ("not_hex", format!("{DIAL}tls: {{pin: \"{}\"}}\n", good_pin.replace("Fingerprint=", "Fingerprint=ZZ"))),
        ("pin_and_no_verify", format!("{DIAL}tls: {{pin: \"{good_pin}\", verify: false}}\n")),
        ("pin_and_ca", format!("{DIAL}tls: {{pin: \"{good_pin}\", ca: \"{ca}\"}}\n")),
        ("ca_not_pem", format!("{DIAL}tls: {{ca: \"{}\"}}\n", write(dir.path(), "x.crt", "nothing here"))),
    ] {
        std::fs::write(profiles.join(format!("{name}.yaml")), text).unwrap();
    }
    let no_env = |_: &str| None;
    let (loaded, diags) = webdial::profile::Loader::new(&no_env).load_dir(&profiles);
    assert!(loaded.is_empty());
    let shown: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    let find = |file: &str| {
        shown.iter().find(|d| d.contains(&format!("/{file}.yaml:"))).cloned().unwrap_or_else(|| panic!("{shown:#?}"))
    };
    assert!(find("short").contains("short.yaml:3:8: pin \"sha256:AB:CD\": a SHA-256 fingerprint has 64 hex digits"));
    assert!(find("sha1").contains("sha1.yaml:3:8: ") && find("sha1").contains("SHA-1"), "{shown:#?}");
    assert!(find("not_hex").contains("not_hex.yaml:2:12: ") && find("not_hex").contains("'Z' is not a hex digit"));
    assert!(find("pin_and_no_verify").contains("pin_and_no_verify.yaml:2:6: `verify: false` and `pin` contradict"));
    assert!(find("pin_and_ca").contains("pin_and_ca.yaml:2:6: `ca` and `pin` contradict"));
    assert!(find("ca_not_pem").contains("ca_not_pem.yaml:2:11: ") && find("ca_not_pem").contains("no PEM certificate"));
    assert_eq!(shown.len(), 6, "{shown:#?}");
}

// ---- digest auth -------------------------------------------------------------

const DESK: &str = concat!(
    "dial:\n",
    "  url: \"PBX/ivr/PbxAPI.aspx?func=make_call&from={{ extension }}&to={{ number }}\"\n",
    "  auth: {digest: {user: admin, password: \"${PHONE_PASS}\"}}\n",
);

fn desk_phone(password: &str) -> Behaviour {
    Behaviour::Digest { user: "admin".into(), password: password.into() }
}

#[tokio::test]
async fn digest_auth_answers_the_challenge_once() {
    let app = spawn_with_env(&[("desk", DESK)], &[("PHONE_PASS", "desk-s3cret")]).await;
    app.pbx.set_behaviour(desk_phone("desk-s3cret"));
    let (code, body) = app.post(json!({"branch": "desk", "extension": "1", "number": "2"})).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "the stand-in checked the answer: {body}");
    let seen = app.received();
    assert_eq!(seen.len(), 2, "the challenge and its answer, nothing more: {seen:#?}");
    assert_eq!(seen[0].authorization, None);
    let answer = seen[1].authorization.clone().unwrap();
    for part in [
        r#"username="admin""#.to_string(),
        format!(r#"realm="{DIGEST_REALM}""#),
        format!(r#"nonce="{DIGEST_NONCE}""#),
        r#"uri="/ivr/PbxAPI.aspx?func=make_call&from=1&to=2""#.to_string(),
    ] {
        assert!(answer.contains(&part), "{part} missing in {answer}");
    }
    assert!(!answer.contains("desk-s3cret"));
}

#[tokio::test]
async fn a_wrong_digest_password_is_rejected_after_one_answer() {
    let app = spawn_with_env(&[("desk", DESK)], &[("PHONE_PASS", "not-the-password")]).await;
    app.pbx.set_behaviour(desk_phone("desk-s3cret"));
    let (code, body) = app.post(json!({"branch": "desk", "extension": "1", "number": "2"})).await;
    assert_eq!((code, body["status"].as_str()), (502, Some("rejected")), "{body}");
    assert_eq!(body["pbx"]["http_status"], 401, "{body}");
    assert_eq!(app.received().len(), 2, "a second challenge is not answered again");
}

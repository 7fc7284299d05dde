//! The `baresip` preset against real software: a real baresip (its httpd
//! module) places the calls, a real sipp UAS is the called party, and the
//! test counts the INVITEs and BYEs that sipp really received (its message
//! trace, by Call-ID, so a SIP retransmission is not a second call).
//!
//! Needs `baresip` and `sipp` on the PATH (Debian: `apt-get install
//! baresip-core sip-tester`); without them the test fails with that hint,
//! unless `WEBDIAL_SKIP_REAL_SIP=1`. Ports come from the OS; every wait is
//! bounded; both programs are killed when the test ends, pass or fail.

use std::collections::HashSet;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{App, read, spawn};

/// A child process killed (and reaped) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Whether the real programs are there; panics with the install hint when
/// they are not, unless skipping was asked for.
fn real_sip_available() -> bool {
    let missing: Vec<&str> = ["baresip", "sipp"].into_iter().filter(|p| !on_path(p)).collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("WEBDIAL_SKIP_REAL_SIP").as_deref() == Ok("1") {
        eprintln!("skipped: {} not installed (WEBDIAL_SKIP_REAL_SIP=1)", missing.join(", "));
        return false;
    }
    panic!(
        "{} not installed: `apt-get install baresip-core sip-tester` (Debian), or set WEBDIAL_SKIP_REAL_SIP=1 to skip",
        missing.join(" and ")
    );
}

/// A loopback port free for both UDP and TCP (SIP listens on both).
fn free_sip_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port for both UDP and TCP");
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Waits until `ready` holds, at most `within`.
fn wait_until(within: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The Call-IDs of the requests named `method` in sipp's message trace.
fn received(trace: &Path, method: &str) -> HashSet<String> {
    let text = std::fs::read_to_string(trace).unwrap_or_default();
    let mut ids = HashSet::new();
    for message in text.split("message received") {
        let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty()).skip(1);
        let Some(request) = lines.next() else { continue };
        if !request.starts_with(&format!("{method} sip:")) {
            continue;
        }
        if let Some(id) = lines.find_map(|l| l.strip_prefix("Call-ID:")) {
            ids.insert(id.trim().to_string());
        }
    }
    ids
}

/// sipp as the called party: the built-in UAS answers every INVITE 200 and
/// every BYE 200, and traces each message it receives to `trace`.
fn start_sipp(dir: &Path, port: u16, trace: &Path) -> Killed {
    let child = Command::new("sipp")
        .args(["-sn", "uas", "-i", "127.0.0.1", "-p", &port.to_string(), "-nostdin", "-trace_msg", "-message_file"])
        .arg(trace)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sipp");
    let sipp = Killed(child);
    // sipp is listening once its UDP port is taken.
    wait_until(Duration::from_secs(5), "sipp listens", || UdpSocket::bind(("127.0.0.1", port)).is_err());
    sipp
}

/// baresip with a config of its own: httpd and the menu's commands, a local
/// account that registers nowhere, G.711, a sine tone as the microphone.
fn start_baresip(dir: &Path, http: u16, sip: u16) -> Killed {
    let modules =
        ["/usr/lib/baresip/modules", "/usr/lib/x86_64-linux-gnu/baresip/modules", "/usr/local/lib/baresip/modules"]
            .into_iter()
            .find(|d| Path::new(d).join("httpd.so").is_file())
            .unwrap_or("/usr/lib/baresip/modules");
    let config = format!(
        "module_path {modules}\npoll_method epoll\nsip_listen 127.0.0.1:{sip}\ncall_local_timeout 10\n\
         audio_player aufile,/dev/null\naudio_source ausine,440\nausrc_srate 48000\nauplay_srate 48000\n\
         ausrc_channels 2\nmodule g711.so\nmodule ausine.so\nmodule httpd.so\nmodule_tmp account.so\n\
         module_app menu.so\nhttp_listen 127.0.0.1:{http}\n"
    );
    std::fs::write(dir.join("config"), config).expect("write config");
    std::fs::write(dir.join("accounts"), "<sip:webdial@127.0.0.1>;regint=0\n").expect("write accounts");
    let log = std::fs::File::create(dir.join("baresip.log")).expect("log");
    let child = Command::new("baresip")
        .arg("-f")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start baresip");
    let baresip = Killed(child);
    wait_until(Duration::from_secs(5), "baresip's httpd listens", || {
        TcpStream::connect_timeout(&([127, 0, 0, 1], http).into(), Duration::from_millis(200)).is_ok()
    });
    baresip
}

async fn dial(app: &App, number: &str) -> (u16, Value) {
    app.post(json!({"branch": "desk", "extension": "201", "number": number})).await
}

/// Waits (bounded) until sipp has received `n` distinct `method`s, then a
/// little longer, so a second one that should not come has time to.
async fn settled(trace: &Path, method: &str, n: usize) -> HashSet<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    while received(trace, method).len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    received(trace, method)
}

#[tokio::test]
async fn a_real_baresip_sends_exactly_one_invite_per_click_and_a_bye_on_hangup() {
    if !real_sip_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let trace: PathBuf = dir.path().join("sipp-messages.log");
    let (http, sip, far) = (free_tcp_port(), free_sip_port(), free_sip_port());
    let _sipp = start_sipp(dir.path(), far, &trace);
    let _baresip = start_baresip(dir.path(), http, sip);
    let profile =
        format!("extends: presets/baresip.yaml\nvars: {{host: \"127.0.0.1:{http}\", domain: \"127.0.0.1:{far}\"}}\n");
    let app = spawn(&[("desk", &profile)]).await;
    let log = || std::fs::read_to_string(dir.path().join("baresip.log")).unwrap_or_default();

    // One click: one INVITE, to the number at the far end.
    let (code, body) = dial(&app, "02079460000").await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}\n{}", log());
    let invites = settled(&trace, "INVITE", 1).await;
    assert_eq!(invites.len(), 1, "one click, one INVITE: {invites:?}\n{}", log());
    let text = std::fs::read_to_string(&trace).unwrap_or_default();
    assert!(text.contains(&format!("INVITE sip:02079460000@127.0.0.1:{far} SIP/2.0")), "{text}");

    // A double click within the duplicate window: one more INVITE, not two.
    let second = dial(&app, "02079460001");
    let third = dial(&app, "02079460001");
    let ((c2, b2), (c3, b3)) = tokio::join!(second, third);
    assert_eq!((c2, c3), (200, 200), "{b2}\n{b3}");
    assert_eq!(
        [&b2, &b3].iter().filter(|b| b["duplicate"] == true).count(),
        1,
        "the repeat is answered as a duplicate: {b2}\n{b3}"
    );
    let invites = settled(&trace, "INVITE", 2).await;
    assert_eq!(invites.len(), 2, "two clicks on one number within the window ring once: {invites:?}\n{}", log());

    // Hang up: baresip ends its current call with a BYE.
    assert!(received(&trace, "BYE").is_empty(), "no BYE before the hangup\n{}", log());
    let resp = app
        .client
        .post(format!("{}/v1/actions/hangup", app.url))
        .json(&json!({"branch": "desk", "extension": "201"}))
        .send()
        .await
        .expect("hangup");
    let (code, body) = read(resp).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("accepted")), "{body}");
    let byes = settled(&trace, "BYE", 1).await;
    assert_eq!(byes.len(), 1, "one BYE: {byes:?}\n{}", log());
    assert!(invites.is_superset(&byes), "the BYE ends one of the calls placed");
}

//! `webdial serve` as a process: the audit line, key names but never keys,
//! and the refusal to serve an open non-loopback address.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;

use crate::helpers::write_config;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `webdial --config CONFIG ARGS…` and hands its stderr over line by line.
fn start(config: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (Server, UnboundedReceiver<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_webdial"));
    cmd.arg("--config").arg(config).args(args).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().take(100_000) {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Server(child), rx)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_line_names_the_key_and_no_log_line_holds_it() {
    let pbx = webdial::standin::StandIn::bind("127.0.0.1:0").await.unwrap();
    let dir = write_config(
        &pbx.url(),
        &[("m", "extends: presets/voispeed.yaml\nvars: {scheme: http, host: PBXHOST, token: demo-token}\n")],
    );
    let key = "erp-key-9f8e7d6c5b4a3210";
    std::fs::write(
        dir.path().join("webdial.yaml"),
        "listen: 127.0.0.1:0\nprofiles: profiles\nkeys:\n  - name: erp\n    key: ${ERP_KEY}\n    branches: [\"*\"]\n",
    )
    .unwrap();
    let (server, mut rx) =
        start(&dir.path().join("webdial.yaml"), &["serve"], &[("ERP_KEY", key), ("RUST_LOG", "trace")]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut logs = Vec::new();
    let addr = loop {
        let line =
            tokio::time::timeout_at(deadline.into(), rx.recv()).await.expect("server start").expect("server output");
        logs.push(line.clone());
        if let Some(rest) = line.split("webdial listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let client = reqwest::Client::new();
    let resp = client.get(format!("http://{addr}/v1/dial?branch=m&ext=35&number=187&key={key}")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let resp = client
        .post(format!("http://{addr}/v1/dial"))
        .bearer_auth(key)
        .json(&serde_json::json!({"branch": "m", "extension": "36", "number": "188"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Collect what follows for a moment.
    let until = Instant::now() + Duration::from_millis(500);
    while let Ok(Some(line)) = tokio::time::timeout_at(until.into(), rx.recv()).await {
        logs.push(line);
    }
    drop(server);
    let audits: Vec<&String> = logs.iter().filter(|l| l.contains("webdial::audit")).collect();
    assert_eq!(audits.len(), 2, "one audit line per dial:\n{}", logs.join("\n"));
    for a in &audits {
        for field in [
            "id=",
            "key=\"erp\"",
            "branch=\"m\"",
            "extension=",
            "number=",
            "status=\"accepted\"",
            "pbx_status=200",
            "elapsed_ms=",
        ] {
            assert!(a.contains(field), "{field} missing in {a}");
        }
    }
    assert!(logs.len() > 10, "trace logging of dependencies was on");
    let all = logs.join("\n");
    assert!(!all.contains(key), "the key reached a log line:\n{all}");
}

#[test]
fn serve_refuses_an_open_non_loopback_address_without_keys() {
    let dir = write_config("http://127.0.0.1:9", &[("b", "dial: \"tel:#\"\n")]);
    let out = Command::new(env!("CARGO_BIN_EXE_webdial"))
        .arg("--config")
        .arg(dir.path().join("webdial.yaml"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to serve") && err.contains("--no-auth"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_auth_serves_an_open_address_and_says_so_loudly() {
    let dir = write_config("http://127.0.0.1:9", &[("b", "dial: \"tel:#\"\n")]);
    let (_server, mut rx) =
        start(&dir.path().join("webdial.yaml"), &["serve", "--listen", "0.0.0.0:0", "--no-auth"], &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut warned = false;
    loop {
        let line =
            tokio::time::timeout_at(deadline.into(), rx.recv()).await.expect("server start").expect("server output");
        warned |= line.contains("WARN") && line.contains("WITHOUT API keys");
        if line.contains("webdial listening on") {
            break;
        }
    }
    assert!(warned, "--no-auth must be announced before serving");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_a_dial_whose_caller_hung_up_and_audits_it() {
    let pbx = webdial::standin::StandIn::bind("127.0.0.1:0").await.unwrap();
    pbx.set_behaviour(webdial::standin::Behaviour::Delay(Duration::from_millis(1500)));
    let dir = write_config(&pbx.url(), &[("m", "dial: \"PBX/ivr/PbxAPI.aspx?func=make_call&from=^&to=#\"\n")]);
    let (mut server, mut rx) = start(&dir.path().join("webdial.yaml"), &["serve"], &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        let line =
            tokio::time::timeout_at(deadline.into(), rx.recv()).await.expect("server start").expect("server output");
        if let Some(rest) = line.split("webdial listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // The caller gives up long before the PBX answers.
    let hung_up = reqwest::Client::new()
        .get(format!("http://{addr}/v1/dial?branch=m&ext=35&number=187"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(hung_up.is_err(), "the caller hung up");
    assert_eq!(pbx.received().len(), 1, "the PBX has the dial");
    let pid = i32::try_from(server.0.id()).unwrap();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let mut audited = false;
    while let Ok(Some(line)) = tokio::time::timeout_at(deadline.into(), rx.recv()).await {
        audited |= line.contains("webdial::audit") && line.contains("status=\"accepted\"");
    }
    let status = server.0.wait().unwrap();
    assert!(audited, "the dial in flight was finished and audited before exit");
    assert!(status.success(), "{status:?}");
    assert!(Instant::now() < deadline, "shutdown is bounded");
}

//! The command line, run as a user runs it: the real binary.

use std::path::Path;
use std::process::{Command, Output};

use crate::helpers::write_config;

pub(crate) fn webdial(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_webdial"));
    cmd.arg("--config").arg(config).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run webdial")
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The profiles the repository ships: the files git tracks under `profiles/`
/// (a branch an admin added to their checkout is theirs, not ours), or every
/// file when this is not a git checkout.
pub(crate) fn shipped_profiles() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tracked = Command::new("git").arg("-C").arg(root).args(["ls-files", "profiles"]).output();
    match tracked {
        Ok(out) if out.status.success() && !out.stdout.is_empty() => {
            text(&out.stdout).lines().map(|l| root.join(l)).collect()
        }
        _ => walk(&root.join("profiles")),
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn check_passes_on_the_shipped_profiles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let files = shipped_profiles();
    assert!(files.len() >= 5, "{files:?}");
    for f in &files {
        let to = dir.path().join(f.strip_prefix(root).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(f, &to).unwrap();
    }
    std::fs::copy(root.join("webdial.yaml"), dir.path().join("webdial.yaml")).unwrap();
    let out = webdial(&dir.path().join("webdial.yaml"), &["check"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("ok: "), "{}", text(&out.stdout));
}

#[test]
fn a_variable_a_preset_needs_is_reported_at_the_branch_by_name() {
    let dir = write_config(
        "http://127.0.0.1:9",
        &[(
            "milan",
            "name: Milan
extends: presets/voispeed.yaml
vars:
  host: pbx.example.com
",
        )],
    );
    let out = webdial(&dir.path().join("webdial.yaml"), &["check"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let branch = dir.path().join("profiles/milan.yaml").display().to_string();
    let line = err
        .lines()
        .find(|l| l.starts_with(&format!("{branch}:4:3: `token` is not set")))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("presets/voispeed.yaml:") && line.contains("add `token:` under `vars:`"), "{line}");
    assert!(err.contains("1 problem(s); 0 branch(es) loaded, 1 failed"), "{err}");
}

#[test]
fn a_dial_line_without_a_number_is_refused_by_check() {
    let dir = write_config(
        "http://127.0.0.1:9",
        &[
            ("iqx", "dial: \"http://pbx/api?from=^\"\n"),
            ("full", "dial:\n  url: \"http://pbx/api?from={{ extension }}\"\n"),
        ],
    );
    let out = webdial(&dir.path().join("webdial.yaml"), &["check"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let p = |name: &str| dir.path().join("profiles").join(format!("{name}.yaml")).display().to_string();
    assert!(err.contains(&format!("{}:1:7: the dial line has no `#`", p("iqx"))), "{err}");
    assert!(err.contains(&format!("{}:2:3: the dial never uses `{{{{ number }}}}`", p("full"))), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dial_writes_the_audit_line_with_the_number_as_received_and_as_dialled() {
    let pbx = webdial::standin::StandIn::bind("127.0.0.1:0").await.unwrap();
    let profile = "number: {country: GB, format: national}\ndial: \"PBX/ivr/PbxAPI.aspx?func=make_call&from=^&to=#\"\n";
    let dir = write_config(&pbx.url(), &[("b", profile)]);
    let config = dir.path().join("webdial.yaml");
    let out = tokio::task::spawn_blocking(move || {
        webdial(
            &config,
            &["dial", "--branch", "b", "--ext", "201", "--number", "+44 (0)20 7946 0000"],
            &[("RUST_LOG", "")],
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let logs = text(&out.stderr);
    let audit = logs.lines().find(|l| l.contains("webdial::audit")).unwrap_or_else(|| panic!("no audit line: {logs}"));
    assert!(audit.contains("number=\"+44 (0)20 7946 0000\"") && audit.contains("dialled=\"02079460000\""), "{audit}");
    assert_eq!(pbx.received()[0].param("to").as_deref(), Some("02079460000"));
}

#[test]
fn check_reports_every_problem_at_its_place() {
    let dir = write_config(
        "http://127.0.0.1:9",
        &[
            ("a-get-with-post-vars", "name: x\ndial: \"http://pbx/api<&>to=#\"\n"),
            ("b-unknown-key", "name: x\ndial:\n  url: http://pbx/\n  colour: red\n"),
            ("c-undefined", "dial:\n  method: GET\n  url: \"http://pbx/?to={{ numbr }}\"\n"),
            ("d-missing-env", "vars:\n  token: ${WEBDIAL_TEST_SURELY_UNSET}\ndial: \"http://pbx/?t=#\"\n"),
            ("e-extends", "extends: presets/nope.yaml\n"),
            ("f-yaml", "dial: [unclosed\n"),
            ("g-host", "dial:\n  url: \"http://{{ number }}.evil/\"\n"),
            ("h-good", "dial: \"tel:#\"\n"),
        ],
    );
    let out = webdial(&dir.path().join("webdial.yaml"), &["check"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let p = |name: &str| dir.path().join("profiles").join(format!("{name}.yaml")).display().to_string();
    let expect = [
        format!("{}:2:7: <&> marks a POST variable", p("a-get-with-post-vars")),
        format!("{}:4:3: dial: unknown field `colour`", p("b-unknown-key")),
        format!("{}:3:8: ", p("c-undefined")),
        format!("{}:2:10: environment variable WEBDIAL_TEST_SURELY_UNSET is not set", p("d-missing-env")),
        format!("{}:1:10: extends \"presets/nope.yaml\": no such file", p("e-extends")),
        format!("{}:2:1: ", p("f-yaml")),
        format!("{}:2:8: `number` is used in the scheme/host/port part", p("g-host")),
    ];
    for e in &expect {
        assert!(err.lines().any(|l| l.starts_with(e.as_str())), "missing {e:?} in:\n{err}");
    }
    assert!(err.contains("undefined"), "{err}");
    assert!(!err.contains("h-good"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn render_prints_the_exact_request_with_secrets_masked() {
    let dir = write_config(
        "http://127.0.0.1:9",
        &[(
            "m",
            "extends: presets/click2call.yaml\nvars: {host: pbx.example.com, user: u, pass: \"${C2C_PASS}\", org: o}\n",
        )],
    );
    let out = webdial(
        &dir.path().join("webdial.yaml"),
        &["render", "--branch", "m", "--ext", "201", "--number", "+44 20 7946 0000"],
        &[("C2C_PASS", "hunter2&more")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout,
        "POST https://pbx.example.com/API/dialup.php\ncontent-type: application/x-www-form-urlencoded\n\nuser=u&pass=***&org=o&dial1=201&dial2=%2B442079460000&Response=yes&showUID=yes&RFormat=json\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dial_prints_json_exits_by_outcome_and_logs_no_secret_even_at_trace() {
    let pbx = webdial::standin::StandIn::bind("127.0.0.1:0").await.unwrap();
    let secret = "demo-token";
    let dir = write_config(
        &pbx.url(),
        &[("m", "extends: presets/voispeed.yaml\nvars: {scheme: http, host: PBXHOST, token: \"${SERI}\"}\n")],
    );
    let config = dir.path().join("webdial.yaml");
    let run = |ext: &'static str| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            webdial(
                &config,
                &["dial", "--branch", "m", "--ext", ext, "--number", "187"],
                &[("SERI", secret), ("RUST_LOG", "trace")],
            )
        })
    };

    let out = run("35").await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(result["status"], "accepted");
    let logs = text(&out.stderr);
    assert!(logs.contains("webdial::audit"), "trace logging was on: {logs}");
    // `&token=` is the URL's parameter (mio's trace lines say `token=Token(…)`).
    assert!(logs.contains("***") || !logs.contains("&token="), "{logs}");
    assert!(!logs.contains(secret), "a secret reached the logs:\n{logs}");
    assert_eq!(pbx.received()[0].param("token").as_deref(), Some(secret));

    let out = run("901").await.unwrap();
    assert_eq!(out.status.code(), Some(1), "a rejected dial exits 1");
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(result["status"], "rejected");
}

#[test]
fn an_unknown_action_is_refused() {
    let dir = write_config("http://127.0.0.1:9", &[("b", "dial: \"tel:#\"\n")]);
    let out = webdial(
        &dir.path().join("webdial.yaml"),
        &["dial", "--branch", "b", "--ext", "1", "--number", "2", "--action", "hangup"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(result["status"], "unknown_action");
}

/// `webdial … | head` closes the pipe early: the command must end quietly
/// (exit 0), not panic with "failed printing to stdout" (exit 101).
#[test]
fn a_closed_stdout_pipe_ends_a_command_quietly() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: `fds` is two ints, as pipe(2) wants; both ends are owned below.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: pipe(2) just returned these descriptors, owned by nobody else.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_webdial"))
        .args(["standin", "--list"])
        .stdout(std::process::Stdio::from(writer))
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run webdial");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

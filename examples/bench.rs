//! End-to-end benchmark: what a dial through webdial costs, against dialling
//! the PBX directly and against nginx `proxy_pass` in front of the same PBX.
//!
//! ```sh
//! cargo install oha            # the load generator (once)
//! apt-get install nginx-light  # optional: the nginx column
//! cargo run --release --example bench            # -- --seconds 2 for a quicker run
//! ```
//!
//! It starts the stand-in PBX (`webdial standin --no-record`: answers at once,
//! records nothing), the release gateway with four branch kinds pointing at
//! it, and nginx if installed; drives each with oha at 1, 32 and 256
//! connections and at a fixed rate of half the gateway's saturation; and
//! reports throughput, latency percentiles, the ratios, the gateway's RSS,
//! its start-up time, and `check`/RSS/start-up with 1,000 branch profiles.
//! The report is printed and written to `target/bench-report.md`.
//!
//! `-- --once` measures the once-per-click stores instead (see `bench/once.rs`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "bench/once.rs"]
mod once;

type Error = Box<dyn std::error::Error>;

/// A child process stopped when dropped: SIGTERM first (so nginx's master
/// takes its workers with it), SIGKILL after 2 s.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0.id()) {
            // SAFETY: sending a signal to our own child process.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        for _ in 0..200 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Clone, Copy)]
struct Kind {
    name: &'static str,
    branch: &'static str,
    profile: &'static str,
    /// The PBX request a direct client would make: method, path+query, form body.
    direct: (&'static str, &'static str, Option<&'static str>),
}

const KINDS: &[Kind] = &[
    Kind {
        name: "IQX GET",
        branch: "iqx-get",
        profile: "dial: \"http://PBX/ivr/PbxAPI.aspx?func=make_call&from=^&to=#\"\n",
        direct: ("GET", "/ivr/PbxAPI.aspx?func=make_call&from=201&to=%2B442079460000", None),
    },
    Kind {
        name: "IQX POST form",
        branch: "iqx-post",
        profile: "dial: \"{POST}http://PBX/ivr/PbxAPI.aspx?func=make_call<&>from=^<&>to=#\"\n",
        direct: ("POST", "/ivr/PbxAPI.aspx?func=make_call", Some("from=201&to=%2B442079460000")),
    },
    Kind {
        name: "VOIspeed XML",
        branch: "voispeed",
        profile: "extends: presets/voispeed.yaml\nvars: {scheme: http, host: PBX, token: demo-token}\n",
        direct: (
            "GET",
            "/PBX/seri_endpoint.php?service=call_request&token=demo-token&ext=201&number=%2B442079460000",
            None,
        ),
    },
    Kind {
        name: "Click2Call JSON",
        branch: "click2call",
        profile: "extends: presets/click2call.yaml\nvars: {scheme: http, host: PBX, user: demo, pass: demo-pass, org: demo-org}\n",
        direct: (
            "POST",
            "/API/dialup.php",
            Some(
                "user=demo&pass=demo-pass&org=demo-org&dial1=201&dial2=%2B442079460000&Response=yes&showUID=yes&RFormat=json",
            ),
        ),
    },
];

const DIAL_BODY: &str = r#"{"branch":"BRANCH","extension":"201","number":"+44 20 7946 0000"}"#;

#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    rps: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    ok: f64,
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if args.iter().any(|a| a == "--once") {
        return once_mode(&root, &args);
    }

    let oha = find_oha().ok_or("oha not found: install it with `cargo install oha` (or put it on PATH)")?;
    eprintln!("building the release gateway…");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--bin", "webdial"])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        return Err("cargo build --release failed".into());
    }
    let bin = root.join("target/release/webdial");
    let work = tempfile::tempdir()?;

    // The stand-in PBX, in its own process.
    let pbx_port = free_port()?;
    let _pbx = Proc(
        Command::new(&bin)
            .args(["standin", "--no-record", "--listen", &format!("127.0.0.1:{pbx_port}")])
            .env("RUST_LOG", "warn")
            .spawn()?,
    );
    wait_port(pbx_port)?;

    // The gateway, with the four kinds.
    let gw_port = free_port()?;
    let config = write_config(
        &root,
        work.path(),
        gw_port,
        pbx_port,
        KINDS.iter().map(|k| (k.branch.to_string(), k.profile.to_string())),
        "0s",
    )?;
    let started = Instant::now();
    let gateway = Proc(
        Command::new(&bin)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stderr(std::fs::File::create(work.path().join("gateway.log"))?)
            .spawn()?,
    );
    wait_healthy(gw_port)?;
    let startup = started.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    let idle_rss = rss_kib(gateway.0.id(), "VmRSS");

    let nginx_port = free_port()?;
    let _nginx = start_nginx(work.path(), nginx_port, pbx_port);
    let nginx = _nginx.as_ref().map(|_| nginx_port);
    if nginx.is_none() {
        eprintln!("nginx not found: the nginx column is skipped (apt-get install nginx-light)");
    }

    let mut report = String::new();
    let machine = machine();
    report.push_str(&format!("### Throughput and latency ({seconds} s per cell, oha, {machine})\n\n"));
    report.push_str("| kind | conns | direct dials/s | nginx dials/s | webdial dials/s | webdial/direct | webdial/nginx | direct p50/p99/p99.9 ms | nginx p50/p99/p99.9 ms | webdial p50/p99/p99.9 ms |\n|---|---|---|---|---|---|---|---|---|---|\n");
    let mut rate_rows = Vec::new();
    for kind in KINDS {
        let (method, path, form) = kind.direct;
        let dial_body = DIAL_BODY.replace("BRANCH", kind.branch);
        let mut webdial_32 = 0.0;
        for conns in [1u32, 32, 256] {
            eprintln!("{} at {conns} connections…", kind.name);
            let direct = oha_run(
                &oha,
                seconds,
                conns,
                None,
                method,
                &format!("http://127.0.0.1:{pbx_port}{path}"),
                form,
                "application/x-www-form-urlencoded",
            )?;
            let via_nginx = match nginx {
                Some(port) => Some(oha_run(
                    &oha,
                    seconds,
                    conns,
                    None,
                    method,
                    &format!("http://127.0.0.1:{port}{path}"),
                    form,
                    "application/x-www-form-urlencoded",
                )?),
                None => None,
            };
            let via = oha_run(
                &oha,
                seconds,
                conns,
                None,
                "POST",
                &format!("http://127.0.0.1:{gw_port}/v1/dial"),
                Some(&dial_body),
                "application/json",
            )?;
            if conns == 32 {
                webdial_32 = via.rps;
            }
            let n = via_nginx.unwrap_or_default();
            report.push_str(&format!(
                "| {} | {conns} | {:.0} | {} | {:.0} | {:.2} | {} | {} | {} | {} |\n",
                kind.name,
                direct.rps,
                via_nginx.map(|n| format!("{:.0}", n.rps)).unwrap_or_else(|| "—".into()),
                via.rps,
                via.rps / direct.rps,
                via_nginx.map(|_| format!("{:.2}", via.rps / n.rps)).unwrap_or_else(|| "—".into()),
                lat(&direct),
                via_nginx.map(|n| lat(&n)).unwrap_or_else(|| "—".into()),
                lat(&via),
            ));
            for (what, s) in [("direct", Some(direct)), ("nginx", via_nginx), ("webdial", Some(via))] {
                if let Some(s) = s {
                    if s.ok < 0.999 {
                        eprintln!("warning: {} {what} at {conns}: only {:.1}% answered 2xx", kind.name, s.ok * 100.0);
                    }
                }
            }
        }
        // Half of saturation, fixed rate, 32 connections.
        let rate = (webdial_32 / 2.0).max(1.0).round() as u64;
        eprintln!("{} at a fixed {rate}/s…", kind.name);
        let direct = oha_run(
            &oha,
            seconds,
            32,
            Some(rate),
            method,
            &format!("http://127.0.0.1:{pbx_port}{path}"),
            form,
            "application/x-www-form-urlencoded",
        )?;
        let via = oha_run(
            &oha,
            seconds,
            32,
            Some(rate),
            "POST",
            &format!("http://127.0.0.1:{gw_port}/v1/dial"),
            Some(&dial_body),
            "application/json",
        )?;
        rate_rows.push(format!(
            "| {} | {rate} | {} | {} | {:.3} | {:.3} |\n",
            kind.name,
            lat(&direct),
            lat(&via),
            (via.p50 - direct.p50) * 1000.0,
            (via.p99 - direct.p99) * 1000.0
        ));
    }
    report.push_str("\n### Fixed rate: half of webdial's saturation at 32 connections\n\n| kind | rate/s | direct p50/p99/p99.9 ms | webdial p50/p99/p99.9 ms | added p50 ms | added p99 ms |\n|---|---|---|---|---|---|\n");
    for r in rate_rows {
        report.push_str(&r);
    }
    let peak_rss = rss_kib(gateway.0.id(), "VmHWM");
    drop(gateway);

    // 1,000 branch profiles.
    let many = work.path().join("many");
    std::fs::create_dir_all(&many)?;
    let profiles = (0..1000).map(|i| {
        let k = KINDS[i % KINDS.len()];
        (format!("branch-{i:04}"), k.profile.to_string())
    });
    let many_port = free_port()?;
    let many_config = write_config(&root, &many, many_port, pbx_port, profiles, "0s")?;
    let mut check_times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let out = Command::new(&bin).arg("--config").arg(&many_config).arg("check").output()?;
        check_times.push(t.elapsed());
        if !out.status.success() {
            return Err(format!("check failed: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
    }
    check_times.sort();
    let started = Instant::now();
    let many_gw =
        Proc(Command::new(&bin).arg("--config").arg(&many_config).arg("serve").stderr(Stdio::null()).spawn()?);
    wait_healthy(many_port)?;
    let many_startup = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let many_rss = rss_kib(many_gw.0.id(), "VmRSS");
    drop(many_gw);

    report.push_str(&format!(
        "\n### Footprint\n\n| measure | value |\n|---|---|\n\
         | start-up to first healthy answer (4 branches) | {:.1} ms |\n\
         | idle RSS (4 branches) | {:.1} MB |\n\
         | peak RSS during the load above | {:.1} MB |\n\
         | `check` of 1,000 profiles (median of 5, min–max) | {:.0} ms ({:.0}–{:.0}) |\n\
         | start-up to first healthy answer (1,000 branches) | {:.1} ms |\n\
         | idle RSS (1,000 branches) | {:.1} MB |\n",
        startup.as_secs_f64() * 1000.0,
        idle_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0,
        check_times[2].as_secs_f64() * 1000.0,
        check_times[0].as_secs_f64() * 1000.0,
        check_times[4].as_secs_f64() * 1000.0,
        many_startup.as_secs_f64() * 1000.0,
        many_rss as f64 / 1024.0,
    ));
    println!("{report}");
    let out = root.join("target/bench-report.md");
    std::fs::write(&out, &report)?;
    eprintln!("written to {}", out.display());
    Ok(())
}

/// `--once [--seconds N] [--repeat N] [--bin LABEL=PATH]…`: without `--bin`, the release
/// gateway built from this checkout.
fn once_mode(root: &Path, args: &[String]) -> Result<(), Error> {
    let seconds = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(17);
    let repeat = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut bins = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if a == "--bin" {
            let spec = args.get(i + 1).ok_or("--bin LABEL=PATH")?;
            let (label, path) = spec.split_once('=').ok_or("--bin LABEL=PATH")?;
            bins.push((label.to_string(), PathBuf::from(path)));
        }
    }
    if bins.is_empty() {
        eprintln!("building the release gateway…");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--quiet", "--bin", "webdial"])
            .current_dir(root)
            .status()?;
        if !status.success() {
            return Err("cargo build --release failed".into());
        }
        bins.push(("this checkout".into(), root.join("target/release/webdial")));
    }
    once::main(root, &bins, seconds, repeat)
}

fn lat(s: &Stats) -> String {
    format!("{:.2}/{:.2}/{:.2}", s.p50 * 1000.0, s.p99 * 1000.0, s.p999 * 1000.0)
}

#[allow(clippy::too_many_arguments)]
fn oha_run(
    oha: &Path,
    seconds: u64,
    conns: u32,
    rate: Option<u64>,
    method: &str,
    url: &str,
    body: Option<&str>,
    content_type: &str,
) -> Result<Stats, Error> {
    let mut cmd = Command::new(oha);
    cmd.args([
        "--no-tui",
        "--output-format",
        "json",
        "-z",
        &format!("{seconds}s"),
        "-c",
        &conns.to_string(),
        "-m",
        method,
    ]);
    if let Some(r) = rate {
        cmd.args(["-q", &r.to_string()]);
    }
    if let Some(b) = body {
        cmd.args(["-H", &format!("content-type: {content_type}"), "-d", b]);
    }
    cmd.arg(url);
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!("oha failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let f = |p: &serde_json::Value| p.as_f64().unwrap_or(f64::NAN);
    let total: f64 = v["statusCodeDistribution"].as_object().map(|m| m.values().map(f).sum()).unwrap_or(0.0);
    let ok: f64 = v["statusCodeDistribution"]
        .as_object()
        .map(|m| m.iter().filter(|(k, _)| k.starts_with('2')).map(|(_, n)| f(n)).sum())
        .unwrap_or(0.0);
    Ok(Stats {
        rps: f(&v["summary"]["requestsPerSec"]),
        p50: f(&v["latencyPercentiles"]["p50"]),
        p99: f(&v["latencyPercentiles"]["p99"]),
        p999: f(&v["latencyPercentiles"]["p99.9"]),
        ok: if total > 0.0 { ok / total } else { 0.0 },
    })
}

fn write_config(
    root: &Path,
    dir: &Path,
    port: u16,
    pbx_port: u16,
    profiles: impl Iterator<Item = (String, String)>,
    dedupe_window: &str,
) -> Result<PathBuf, Error> {
    let pdir = dir.join("profiles");
    std::fs::create_dir_all(pdir.join("presets"))?;
    for entry in std::fs::read_dir(root.join("profiles/presets"))? {
        let entry = entry?;
        std::fs::copy(entry.path(), pdir.join("presets").join(entry.file_name()))?;
    }
    for (name, yaml) in profiles {
        std::fs::write(pdir.join(format!("{name}.yaml")), yaml.replace("PBX", &format!("127.0.0.1:{pbx_port}")))?;
    }
    let config = dir.join("webdial.yaml");
    // The main benchmark uses a zero window: every request is a new dial
    // (the load repeats one number).
    std::fs::write(&config, format!("listen: 127.0.0.1:{port}\nprofiles: profiles\ndedupe_window: {dedupe_window}\n"))?;
    Ok(config)
}

fn start_nginx(dir: &Path, port: u16, pbx_port: u16) -> Option<Proc> {
    let nginx = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"].into_iter().find(|p| Path::new(p).exists())?;
    let conf = dir.join("nginx.conf");
    let text = format!(
        "worker_processes auto;\nerror_log {dir}/nginx-error.log;\npid {dir}/nginx.pid;\nevents {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  upstream pbx {{ server 127.0.0.1:{pbx_port}; keepalive 256; }}\n\
         server {{\n    listen 127.0.0.1:{port};\n    location / {{ proxy_pass http://pbx; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}\n  }}\n}}\n",
        dir = dir.display()
    );
    std::fs::write(&conf, text).ok()?;
    let child =
        Command::new(nginx).arg("-c").arg(&conf).args(["-g", "daemon off;"]).stderr(Stdio::null()).spawn().ok()?;
    let p = Proc(child);
    wait_port(port).ok()?;
    Some(p)
}

fn find_oha() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("oha")).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(Path::new(&home).join(".cargo/bin/oha"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

fn free_port() -> Result<u16, Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_port(port: u16) -> Result<(), Error> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..5000 {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Err(format!("nothing listens on {addr}").into())
}

/// Polls `/healthz` until it answers 200 (at most 10 s).
fn wait_healthy(port: u16) -> Result<(), Error> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
            if s.write_all(b"GET /healthz HTTP/1.0\r\nhost: x\r\n\r\n").is_ok() {
                let mut buf = [0u8; 16];
                if s.read(&mut buf)
                    .is_ok_and(|n| buf[..n].starts_with(b"HTTP/1.0 200") || buf[..n].starts_with(b"HTTP/1.1 200"))
                {
                    return Ok(());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(format!("the gateway on {addr} never became healthy").into())
}

/// A field of /proc/PID/status, in KiB.
fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    format!("{cpus} CPUs, {model}, load generator, PBX and gateway on the same machine")
}

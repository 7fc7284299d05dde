//! What a login costs once its session is warm: dials through the shipped
//! 3CX preset (a login step, then bearer requests) against the same dials
//! through a profile that sends the same request with a fixed token (from
//! the environment, so masked like a session's) and no login steps, both
//! in front of the stand-in PBX.
//!
//! ```sh
//! cargo run --release --example login_bench                  # 5 s per run, 32 clients
//! cargo run --release --example login_bench -- --seconds 3 --clients 64 --rounds 2
//! ```
//!
//! Everything runs in this one process (stand-in, gateway, clients), on
//! one tokio runtime, so the figures are for comparing the two profiles,
//! not for a machine's capacity (see `examples/bench.rs` for that). The
//! runs alternate (without, with, without, with…) so drift in the
//! machine's load falls on both; the duplicate window is off, so every
//! request is a dial that reaches the stand-in. The CPU time per dial (of
//! the whole process) is the figure least moved by other work on the
//! machine.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use webdial::standin::{StandIn, THREECX_CLIENT_ID, THREECX_SECRET};

type Error = Box<dyn std::error::Error>;

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|s| s.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let seconds = arg(&args, "--seconds", 5);
    let clients = arg(&args, "--clients", 32) as usize;
    let rounds = arg(&args, "--rounds", 3);

    let pbx = StandIn::start_with(tokio::net::TcpListener::bind("127.0.0.1:0").await?, false)?;
    let host = pbx.addr.to_string();
    // The token the no-login profile sends as it is: asked for here, once.
    let token: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/connect/token", pbx.url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", THREECX_CLIENT_ID),
            ("client_secret", THREECX_SECRET),
        ])
        .send()
        .await?
        .json()
        .await?;
    let token = token["access_token"].as_str().ok_or("no token from the stand-in")?.to_string();

    let work = tempfile::tempdir()?;
    let profiles = work.path().join("profiles");
    std::fs::create_dir_all(profiles.join("presets"))?;
    let presets = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/presets");
    std::fs::copy(presets.join("3cx.yaml"), profiles.join("presets/3cx.yaml"))?;
    let vars = format!(
        "{{scheme: http, host: \"{host}\", client_id: \"{THREECX_CLIENT_ID}\", client_secret: {THREECX_SECRET}}}"
    );
    std::fs::write(profiles.join("login.yaml"), format!("extends: presets/3cx.yaml\nvars: {vars}\n"))?;
    // The preset's dial, word for word, with a token from `vars` (and the
    // environment, so it is a secret like a session's) instead of `session`.
    std::fs::write(
        profiles.join("fixed.yaml"),
        format!(
            r#"vars: {{host: "{host}", token: "${{FIXED_TOKEN}}"}}
dial:
  method: POST
  url: "http://{{{{ host }}}}/callcontrol/{{{{ extension }}}}/makecall"
  auth: {{bearer: "{{{{ token }}}}"}}
  json: {{destination: "{{{{ number }}}}"}}
  response:
    format: json
    ok: "finalstatus == 'Success'"
    call_id: "result.id"
    message: "reasontext or reason or finalstatus"
"#
        ),
    )?;
    let config = work.path().join("webdial.yaml");
    std::fs::write(&config, "listen: 127.0.0.1:0\nprofiles: profiles\n")?;
    let env = |name: &str| (name == "FIXED_TOKEN").then(|| token.clone());
    let loaded = webdial::app::load(&config, true, &env);
    if !loaded.diagnostics.is_empty() {
        return Err(format!("profiles: {:?}", loaded.diagnostics).into());
    }
    let mut settings = loaded.settings.ok_or("no settings")?;
    settings.dedupe_window = Duration::ZERO;
    let gateway = webdial::app::build(settings, loaded.profiles)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v1/dial", listener.local_addr()?);
    tokio::spawn(webdial::app::serve(gateway, listener, std::future::pending(), Duration::from_secs(1)));

    let client = reqwest::Client::builder().pool_max_idle_per_host(clients).build()?;
    for branch in ["fixed", "login"] {
        // Warm: connections, and the login branch's session.
        let (ok, _) = run(&client, &url, branch, clients, Duration::from_millis(500)).await;
        if ok == 0 {
            return Err(format!("{branch}: no dial was accepted").into());
        }
    }
    println!("{clients} clients, {seconds} s per run, {rounds} rounds, in one process");
    println!("| profile | round | dials/s | p50 ms | p99 ms | CPU µs/dial |");
    println!("|---|---|---|---|---|---|");
    let mut totals = [(0.0, 0.0, 0.0), (0.0, 0.0, 0.0)];
    for round in 1..=rounds {
        for (i, branch) in ["fixed", "login"].iter().enumerate() {
            let cpu_before = cpu_time();
            let (ok, mut lat) = run(&client, &url, branch, clients, Duration::from_secs(seconds)).await;
            let cpu = (cpu_time() - cpu_before).as_secs_f64() * 1e6 / ok.max(1) as f64;
            lat.sort_unstable();
            let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied();
            let rate = ok as f64 / seconds as f64;
            let p50 = pct(0.50).unwrap_or_default().as_secs_f64() * 1e3;
            let p99 = pct(0.99).unwrap_or_default().as_secs_f64() * 1e3;
            totals[i].0 += rate;
            totals[i].1 += p99;
            totals[i].2 += cpu;
            println!("| {branch} | {round} | {rate:.0} | {p50:.2} | {p99:.2} | {cpu:.0} |");
        }
    }
    let n = rounds as f64;
    let mean = |t: (f64, f64, f64)| (t.0 / n, t.1 / n, t.2 / n);
    let (fixed, login) = (mean(totals[0]), mean(totals[1]));
    let change = |a: f64, b: f64| (b / a - 1.0) * 100.0;
    println!();
    println!(
        "mean: without login {:.0} dials/s, p99 {:.2} ms, {:.0} CPU µs/dial; with a warm session {:.0} dials/s ({:+.1} %), p99 {:.2} ms ({:+.1} %), {:.0} CPU µs/dial ({:+.1} %)",
        fixed.0,
        fixed.1,
        fixed.2,
        login.0,
        change(fixed.0, login.0),
        login.1,
        change(fixed.1, login.1),
        login.2,
        change(fixed.2, login.2),
    );
    Ok(())
}

/// CPU time this process (stand-in, gateway and clients alike) has used:
/// what a dial costs, whatever else the machine is busy with.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// `clients` loops dialling `branch` for `how_long`: accepted dials and every latency.
async fn run(
    client: &reqwest::Client,
    url: &str,
    branch: &str,
    clients: usize,
    how_long: Duration,
) -> (usize, Vec<Duration>) {
    let until = Instant::now() + how_long;
    let body: Arc<str> = Arc::from(format!(r#"{{"branch":"{branch}","extension":"201","number":"+44 20 7946 0000"}}"#));
    let mut all = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (client, url, body) = (client.clone(), url.to_string(), body.clone());
        all.spawn(async move {
            let (mut ok, mut lat) = (0usize, Vec::new());
            while Instant::now() < until {
                let started = Instant::now();
                let sent =
                    client.post(&url).header("content-type", "application/json").body(body.to_string()).send().await;
                if let Ok(resp) = sent {
                    let accepted = resp.status().is_success();
                    let _ = resp.bytes().await;
                    lat.push(started.elapsed());
                    ok += usize::from(accepted);
                }
            }
            (ok, lat)
        });
    }
    let mut total = (0, Vec::new());
    for (ok, lat) in all.join_all().await {
        total.0 += ok;
        total.1.extend(lat);
    }
    total
}

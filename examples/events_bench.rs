//! Events benchmark: notifications received per second by the release
//! gateway while 100 server-sent-event subscribers are attached, how long
//! each notification waits for its answer, how long an event takes to
//! reach a subscriber, whether any subscriber lost one, and whether the
//! gateway's memory stays flat.
//!
//! ```sh
//! cargo run --release --example events_bench                  # 10,000/s, flat out, 2,000/s, 10,000/s again; 10 s each
//! cargo run --release --example events_bench -- --rate 5000 --seconds 5 --subscribers 100
//! ```
//!
//! Everything runs on this machine: the gateway in its own process; the
//! senders (raw HTTP/1.1 keep-alive connections, each notification a
//! distinct VOIspeed `incoming_call` GET) and the subscribers (raw
//! connections that count `event: call` frames) in this one. The fixed-rate
//! run schedules each notification at its own instant and measures its
//! latency from that instant, so a stall is not hidden by sending less.
//! Subscriber 0 also reads each event's `t` (when it was scheduled) for the
//! delivery latency. The report is printed and written to
//! `target/events-bench-report.md`.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The gateway process, stopped when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds a process has used (user + system), from /proc/PID/stat.
fn cpu_seconds(pid: &str) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / ticks)
        })
        .unwrap_or(0.0)
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1_000_000.0
}

/// One subscriber: counts `event: call` frames; the first also reads each event's `t`.
async fn subscribe(
    addr: SocketAddr,
    count: Arc<AtomicU64>,
    epoch: Instant,
    delays: Option<Arc<std::sync::Mutex<Vec<u64>>>>,
    stop: Arc<AtomicBool>,
) -> Result<(), Error> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(b"GET /v1/events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n").await?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut carry: Vec<u8> = Vec::new();
    const MARK: &[u8] = b"event: call\n";
    while !stop.load(Ordering::Relaxed) {
        let n = match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Ok(Ok(0)) => return Err("the stream ended".into()),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => continue,
        };
        let now = epoch.elapsed().as_nanos() as u64;
        carry.extend_from_slice(&buf[..n]);
        let mut found = 0;
        let mut last_end = 0;
        let mut i = 0;
        while let Some(p) = carry[i..].iter().position(|&b| b == b'\n') {
            let at = i + p + 1;
            if carry.len() < at + MARK.len() {
                break;
            }
            if &carry[at..at + MARK.len()] == MARK {
                found += 1;
                if let Some(d) = &delays {
                    // `"t":"123"` in this frame's data line.
                    let rest = &carry[at..];
                    if let Some(q) = rest.windows(5).position(|w| w == b"\"t\":\"") {
                        let digits: Vec<u8> =
                            rest[q + 5..].iter().take_while(|b| b.is_ascii_digit()).copied().collect();
                        if let Ok(t) = String::from_utf8_lossy(&digits).parse::<u64>() {
                            if let Ok(mut d) = d.lock() {
                                d.push(now.saturating_sub(t));
                            }
                        }
                    }
                }
                last_end = at + MARK.len();
            }
            i = at;
        }
        // Keep the tail that may hold a mark cut by the read.
        let keep_from = last_end.max(carry.len().saturating_sub(4096));
        carry.drain(..keep_from);
        count.fetch_add(found, Ordering::Relaxed);
    }
    Ok(())
}

/// One sender on its own connection, until `until`: the k-th notification
/// at `start` + its slot when `schedule` (senders, this one's index, rate)
/// is given, else as soon as the last is answered; returns each one's
/// latency in ns. Each notification carries `t`, when it was due, in ns
/// since `epoch` (the subscribers' clock).
async fn send(
    addr: SocketAddr,
    id: u64,
    epoch: Instant,
    start: Instant,
    until: Instant,
    schedule: Option<(u64, u64, f64)>,
    sent: Arc<AtomicU64>,
) -> Result<Vec<u64>, Error> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let mut lat = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut k: u64 = 0;
    loop {
        let due = match schedule {
            Some((senders, index, rate)) => start + Duration::from_secs_f64((k * senders + index) as f64 / rate),
            None => Instant::now(),
        };
        if due >= until {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let t = due.duration_since(epoch).as_nanos() as u64;
        let req = format!(
            "GET /v1/events/bench?secret=bench-s3cret&event_type=2&event=8&event_name=incoming_call&ext=35&number=187&call_id={id}-{k}&t={t} HTTP/1.1\r\nHost: bench\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await?;
        // Read one answer: headers, then Content-Length bytes.
        let mut got = Vec::new();
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                return Err("the gateway closed the connection".into());
            }
            got.extend_from_slice(&buf[..n]);
            if let Some(h) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..h]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                    .unwrap_or(0);
                if got.len() >= h + 4 + len {
                    if !head.starts_with("http/1.1 200") {
                        return Err(format!("answer: {}", String::from_utf8_lossy(&got)).into());
                    }
                    break;
                }
            }
        }
        lat.push(epoch.elapsed().as_nanos() as u64 - t);
        sent.fetch_add(1, Ordering::Relaxed);
        k += 1;
    }
    Ok(lat)
}

struct Run {
    label: String,
    sent: u64,
    seconds: f64,
    lat: Vec<u64>,
    delays: Vec<u64>,
    lost: i64,
    rss: Vec<u64>,
    /// CPU seconds per second: the gateway, and this process (senders and subscribers).
    gateway_cpu: f64,
    bench_cpu: f64,
}

async fn run(
    label: &str,
    addr: SocketAddr,
    pid: u32,
    subscribers: usize,
    seconds: u64,
    rate: Option<f64>,
) -> Result<Run, Error> {
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Vec<Arc<AtomicU64>> = (0..subscribers).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let delays = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut subs = Vec::new();
    for (i, c) in counts.iter().enumerate() {
        let d = (i == 0).then(|| delays.clone());
        subs.push(tokio::spawn(subscribe(addr, c.clone(), epoch, d, stop.clone())));
    }
    // Let every subscriber attach before the first notification.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let senders: u64 = 32;
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for i in 0..senders {
        let schedule = rate.map(|r| (senders, i, r));
        tasks.push(tokio::spawn(send(addr, i, epoch, start, until, schedule, sent.clone())));
    }
    let mut rss = vec![rss_kib(pid)];
    let (gw_cpu0, me_cpu0) = (cpu_seconds(&pid.to_string()), cpu_seconds("self"));
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                samples.push(rss_kib(pid));
            }
            samples
        })
    };
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let seconds_taken = start.elapsed().as_secs_f64();
    let gateway_cpu = (cpu_seconds(&pid.to_string()) - gw_cpu0) / seconds_taken;
    let bench_cpu = (cpu_seconds("self") - me_cpu0) / seconds_taken;
    let total = sent.load(Ordering::Relaxed);
    // Wait for the subscribers to have everything (bounded).
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && counts.iter().any(|c| c.load(Ordering::Relaxed) < total) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    rss.extend(sampler.await?);
    let received: u64 = counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    for s in subs {
        if let Ok(Err(e)) = s.await {
            println!("a subscriber stopped: {e}");
        }
    }
    lat.sort_unstable();
    let mut d = delays.lock().map(|d| d.clone()).unwrap_or_default();
    d.sort_unstable();
    Ok(Run {
        label: label.to_string(),
        sent: total,
        seconds: seconds_taken,
        lat,
        delays: d,
        lost: (total * subscribers as u64) as i64 - received as i64,
        rss,
        gateway_cpu,
        bench_cpu,
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let seconds = arg("--seconds", 10);
    let rate = arg("--rate", 10_000) as f64;
    let subscribers = arg("--subscribers", 100) as usize;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    eprintln!("building the release gateway…");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--bin", "webdial"])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        return Err("cargo build --release failed".into());
    }
    let work = tempfile::tempdir()?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    std::fs::create_dir_all(work.path().join("profiles"))?;
    std::fs::write(
        work.path().join("webdial.yaml"),
        format!("listen: 127.0.0.1:{port}\nprofiles: profiles\ndedupe_window: 0s\n"),
    )?;
    // The shipped VOIspeed preset's events, with a dial line of its own.
    let preset = std::fs::read_to_string(root.join("profiles/presets/voispeed.yaml"))?;
    std::fs::create_dir_all(work.path().join("profiles/presets"))?;
    std::fs::write(work.path().join("profiles/presets/voispeed.yaml"), preset)?;
    std::fs::write(
        work.path().join("profiles/bench.yaml"),
        "extends: presets/voispeed.yaml\nvars: {scheme: http, host: 127.0.0.1:9, token: t}\nevents: {secret: bench-s3cret}\n",
    )?;
    let gateway = Proc(
        Command::new(root.join("target/release/webdial"))
            .arg("--config")
            .arg(work.path().join("webdial.yaml"))
            .arg("serve")
            .stderr(std::fs::File::create(work.path().join("gateway.log"))?)
            .stdout(Stdio::null())
            .spawn()?,
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            return Err("the gateway did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = gateway.0.id();
    let idle = rss_kib(pid);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut runs = Vec::new();
    runs.push(run(&format!("fixed {rate:.0}/s"), addr, pid, subscribers, seconds, Some(rate)).await?);
    runs.push(run("flat out (32 connections)", addr, pid, subscribers, seconds, None).await?);
    let low = rate / 5.0;
    runs.push(run(&format!("fixed {low:.0}/s"), addr, pid, subscribers, seconds, Some(low)).await?);
    runs.push(run(&format!("fixed {rate:.0}/s, again"), addr, pid, subscribers, seconds, Some(rate)).await?);

    let mut report = format!(
        "Events: {subscribers} SSE subscribers attached, {seconds} s per run; 32 sender connections.\n\
         Machine: {} CPUs; load average at start: {}\n\
         Gateway idle RSS: {:.1} MB\n\n\
         | run | received/s | receive p50/p99/p99.9 ms | delivery p50/p99 ms | lost | RSS start → end (max) MB | CPU s/s gateway, bench |\n\
         |---|---|---|---|---|---|---|\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        idle as f64 / 1024.0
    );
    for r in &runs {
        let mb = |k: u64| k as f64 / 1024.0;
        report.push_str(&format!(
            "| {} | {:.0} | {:.2}/{:.2}/{:.2} | {:.2}/{:.2} | {} | {:.1} → {:.1} ({:.1}) | {:.2}, {:.2} |\n",
            r.label,
            r.sent as f64 / r.seconds,
            pct(&r.lat, 0.5),
            pct(&r.lat, 0.99),
            pct(&r.lat, 0.999),
            pct(&r.delays, 0.5),
            pct(&r.delays, 0.99),
            r.lost,
            mb(*r.rss.first().unwrap_or(&0)),
            mb(*r.rss.last().unwrap_or(&0)),
            mb(r.rss.iter().copied().max().unwrap_or(0)),
            r.gateway_cpu,
            r.bench_cpu,
        ));
    }
    println!("{report}");
    let out = root.join("target/events-bench-report.md");
    std::fs::File::create(&out)?.write_all(report.as_bytes())?;
    eprintln!("written to {}", out.display());
    Ok(())
}

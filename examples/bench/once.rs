//! `--once`: the once-per-click stores under load. Every request dials a
//! number never dialled before, so each one is remembered: this measures
//! what remembering costs, not what a duplicate saves.
//!
//! ```sh
//! cargo run --release --example bench -- --once                       # the gateway built from this checkout
//! cargo run --release --example bench -- --once --repeat 3 --bin before=PATH --bin after=PATH   # interleaved
//! ```
//!
//! For each binary, against the stand-in PBX, VOIspeed XML profile, 32
//! connections (HTTP/1.1 keep-alive, a driver in this process on one
//! thread), three runs:
//!
//! 1. `dedupe_window: 0s` (the store off): throughput, the gateway's CPU
//!    time per dial (from /proc: less sensitive than throughput to other
//!    work on the machine), p50/p99/p99.9/max, peak RSS.
//! 2. `dedupe_window: 5s` (the default): the same, plus the longest dial and
//!    the longest `/healthz` answer (probed every 10 ms on its own
//!    connection) within ±1 s of each multiple of the window, when entries
//!    expire, against the longest elsewhere; and RSS 12 s after the load.
//! 3. `dedupe_window: 1h`, 30 s: nothing expires, so the store fills to its
//!    bound (the old store's cap was 100,000 entries; the new one's byte
//!    bound holds fewer): dials/s and CPU per dial over dials 2,000–20,000
//!    (below any bound) against after dial 105,000 (at it).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Errors from the driver's tasks, which cross threads.
type TaskError = Box<dyn std::error::Error + Send + Sync>;

use super::{Error, Proc, free_port, rss_kib, wait_healthy, wait_port, write_config};

/// The VOIspeed preset's dial, written out (`HOST` is the stand-in's
/// address), so that gateways built from older checkouts, whose presets
/// differ, load the same branch.
const PROFILE: &str = r#"dial:
  method: GET
  url: "http://HOST/PBX/seri_endpoint.php?service=call_request&token=demo-token&ext={{ extension }}&number={{ number }}{% if external_id %}&extid={{ external_id }}{% endif %}"
  response: {format: xml, ok: "outcome == '0'", call_id: request_id, message: error}
"#;
const CONNS: usize = 32;
/// Long enough for the old store to pass its 100,000-entry cap and run at it.
const FILL_SECONDS: u64 = 30;

/// One request: when it started (ms since the run began) and how long it took (µs).
#[derive(Clone, Copy)]
struct Sample {
    at_ms: u32,
    us: u32,
}

/// The gateway process every 100 ms: ms since the run began, CPU ticks.
#[derive(Clone, Copy)]
struct Tick {
    at_ms: u32,
    cpu: u64,
}

#[derive(Default)]
struct Run {
    seconds: f64,
    samples: Vec<Sample>,
    health: Vec<Sample>,
    ticks: Vec<Tick>,
    errors: u64,
    duplicates: u64,
    peak_rss_kib: u64,
    after_rss_kib: u64,
}

impl Run {
    fn rps(&self) -> f64 {
        self.samples.len() as f64 / self.seconds
    }

    fn pct(&self, p: f64) -> f64 {
        let mut v: Vec<u32> = self.samples.iter().map(|s| s.us).collect();
        v.sort_unstable();
        v.get(((v.len() as f64 - 1.0) * p).round() as usize).map_or(f64::NAN, |&us| us as f64 / 1000.0)
    }

    fn max_ms(samples: &[Sample], pick: impl Fn(&Sample) -> bool) -> f64 {
        samples.iter().filter(|s| pick(s)).map(|s| s.us).max().unwrap_or(0) as f64 / 1000.0
    }

    /// (dials/s, gateway CPU µs per dial) between the starts of dials
    /// number `from` and `to` (or the end).
    fn between(&mut self, from: usize, to: Option<usize>) -> (f64, f64) {
        self.samples.sort_unstable_by_key(|s| s.at_ms);
        let Some(a) = self.samples.get(from).map(|s| s.at_ms) else { return (f64::NAN, f64::NAN) };
        let (b, n) = match to.and_then(|t| self.samples.get(t)) {
            Some(s) => (s.at_ms, to.unwrap_or(0) - from),
            None => ((self.seconds * 1000.0) as u32, self.samples.len() - from),
        };
        let cpu_at = |ms: u32| self.ticks.iter().find(|t| t.at_ms >= ms).or(self.ticks.last()).map_or(0, |t| t.cpu);
        let secs = (b - a) as f64 / 1000.0;
        (n as f64 / secs, (cpu_at(b) - cpu_at(a)) as f64 * 1e6 / ticks_per_second() / n as f64)
    }

    fn cpu_per_dial(&self) -> f64 {
        let (first, last) = (self.ticks.first().map_or(0, |t| t.cpu), self.ticks.last().map_or(0, |t| t.cpu));
        (last - first) as f64 * 1e6 / ticks_per_second() / self.samples.len() as f64
    }
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if n > 0 { n as f64 } else { 100.0 }
}

/// User + system CPU ticks of `pid`.
fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// Measures for one (binary, window): one value per repeat.
#[derive(Default)]
struct Cells(Vec<Vec<f64>>);

impl Cells {
    fn push(&mut self, values: &[f64]) {
        self.0.push(values.to_vec());
    }

    /// The median of measure `i` over the repeats.
    fn median(&self, i: usize) -> f64 {
        let mut v: Vec<f64> = self.0.iter().map(|r| r[i]).filter(|x| !x.is_nan()).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }

    /// "median (min–max)" of measure `i`, or the median alone for one run.
    fn spread(&self, i: usize, digits: usize) -> String {
        let v: Vec<f64> = self.0.iter().map(|r| r[i]).filter(|x| !x.is_nan()).collect();
        let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        match v.len() {
            0 => "—".into(),
            1 => format!("{:.digits$}", self.median(i)),
            _ => format!("{:.digits$} ({lo:.digits$}–{hi:.digits$})", self.median(i)),
        }
    }

    fn sum(&self, i: usize) -> f64 {
        self.0.iter().map(|r| r[i]).sum()
    }
}

pub fn main(root: &Path, bins: &[(String, std::path::PathBuf)], seconds: u64, repeat: usize) -> Result<(), Error> {
    let mut rows: Vec<(String, &str, Cells)> = Vec::new();
    let mut caps: Vec<(String, Cells)> = Vec::new();
    for (label, _) in bins {
        for window in ["0s", "5s"] {
            rows.push((label.clone(), window, Cells::default()));
        }
        caps.push((label.clone(), Cells::default()));
    }
    // Repeats interleave the binaries, so a change in the machine's other
    // load falls on all of them alike.
    for rep in 0..repeat {
        for (b, (label, bin)) in bins.iter().enumerate() {
            for (w, window) in ["0s", "5s"].into_iter().enumerate() {
                eprintln!("[{}/{repeat}] {label}: dedupe_window {window}…", rep + 1);
                let r = run(root, bin, window, seconds, window == "5s")?;
                let near = |s: &Sample| window == "5s" && near_expiry(s.at_ms, 5_000);
                let na = |x: f64| if window == "5s" { x } else { f64::NAN };
                rows[b * 2 + w].2.push(&[
                    r.rps(),
                    r.cpu_per_dial(),
                    r.pct(0.5),
                    r.pct(0.99),
                    r.pct(0.999),
                    na(Run::max_ms(&r.samples, near)),
                    Run::max_ms(&r.samples, |s| !near(s)),
                    na(Run::max_ms(&r.health, near)),
                    Run::max_ms(&r.health, |s| !near(s)),
                    r.peak_rss_kib as f64 / 1024.0,
                    na(r.after_rss_kib as f64 / 1024.0),
                    r.errors as f64,
                    r.duplicates as f64,
                ]);
            }
            eprintln!("[{}/{repeat}] {label}: dedupe_window 1h (filling the store)…", rep + 1);
            let mut r = run(root, bin, "1h", FILL_SECONDS, false)?;
            let (below, below_cpu) = r.between(2_000, Some(20_000));
            let (at, at_cpu) = r.between(105_000, None);
            caps[b].1.push(&[below, below_cpu, at, at_cpu, at / below, r.peak_rss_kib as f64 / 1024.0]);
        }
    }

    let fmt = |x: f64, digits: usize| if x.is_nan() { "—".to_string() } else { format!("{x:.digits$}") };
    let mut report = format!(
        "### Once per click under load ({}; VOIspeed XML, {CONNS} connections, unique numbers, {seconds} s per run, median of {repeat})\n\n",
        super::machine()
    );
    report.push_str(
        "| binary | window | dials/s | CPU µs/dial | p50 ms | p99 ms | p99.9 ms | max dial ms at expiry / elsewhere | max /healthz ms at expiry / elsewhere | peak RSS MB | RSS 12 s after MB | errors | duplicates |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (label, window, c) in &rows {
        report.push_str(&format!(
            "| {label} | {window} | {} | {} | {} | {} | {} | {} / {} | {} / {} | {} | {} | {} | {} |\n",
            c.spread(0, 0),
            c.spread(1, 1),
            fmt(c.median(2), 2),
            fmt(c.median(3), 2),
            fmt(c.median(4), 2),
            fmt(c.median(5), 1),
            fmt(c.median(6), 1),
            fmt(c.median(7), 1),
            fmt(c.median(8), 1),
            fmt(c.median(9), 1),
            fmt(c.median(10), 1),
            c.sum(11),
            c.sum(12),
        ));
    }
    report.push_str(&format!(
        "\n`dedupe_window: 1h`, {FILL_SECONDS} s: below the bound (dials 2,000–20,000) and at it (after dial 105,000)\n\n| binary | dials/s below | CPU µs/dial below | dials/s at the bound | CPU µs/dial at the bound | ratio (dials/s) | peak RSS MB |\n|---|---|---|---|---|---|---|\n"
    ));
    for (label, c) in &caps {
        report.push_str(&format!(
            "| {label} | {} | {} | {} | {} | {} | {} |\n",
            c.spread(0, 0),
            c.spread(1, 1),
            c.spread(2, 0),
            c.spread(3, 1),
            fmt(c.median(4), 2),
            fmt(c.median(5), 1),
        ));
    }
    println!("{report}");
    let out = root.join("target/bench-once-report.md");
    std::fs::write(&out, &report)?;
    eprintln!("written to {}", out.display());
    Ok(())
}

/// Within 1 s of a multiple of the window (when the first entries expire).
fn near_expiry(at_ms: u32, window_ms: u32) -> bool {
    let off = at_ms % window_ms;
    at_ms >= window_ms - 1000 && (off <= 1000 || off >= window_ms - 1000)
}

fn run(root: &Path, bin: &Path, window: &str, seconds: u64, wait_after: bool) -> Result<Run, Error> {
    let work = tempfile::tempdir()?;
    let pbx_port = free_port()?;
    let _pbx = Proc(
        Command::new(bin)
            .args(["standin", "--no-record", "--listen", &format!("127.0.0.1:{pbx_port}")])
            .env("RUST_LOG", "warn")
            .spawn()?,
    );
    wait_port(pbx_port)?;
    let gw_port = free_port()?;
    let config = write_config(root, work.path(), gw_port, pbx_port, std::iter::empty(), window)?;
    std::fs::write(
        work.path().join("profiles/voispeed.yaml"),
        PROFILE.replace("HOST", &format!("127.0.0.1:{pbx_port}")),
    )?;
    let gateway = Proc(
        Command::new(bin)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stderr(std::fs::File::create(work.path().join("gateway.log"))?)
            .spawn()?,
    );
    wait_healthy(gw_port)?;
    let pid = gateway.0.id();

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let sampling = Arc::new(AtomicBool::new(true));
    // One origin for the samples and the dials.
    let start = Instant::now();
    let sampler = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut ticks = Vec::new();
            while sampling.load(Ordering::Relaxed) {
                ticks.push(Tick { at_ms: start.elapsed().as_millis() as u32, cpu: cpu_ticks(pid) });
                std::thread::sleep(Duration::from_millis(100));
            }
            ticks
        })
    };
    let mut run = rt.block_on(load(gw_port, start, Duration::from_secs(seconds)))?;
    sampling.store(false, Ordering::Relaxed);
    run.ticks = sampler.join().map_err(|_| "the sampler thread panicked")?;
    run.peak_rss_kib = rss_kib(pid, "VmHWM");
    if wait_after {
        // Past two windows with no request: what the gateway gives back on its own.
        std::thread::sleep(Duration::from_secs(12));
        run.after_rss_kib = rss_kib(pid, "VmRSS");
    }
    drop(gateway);
    let _ = std::io::stderr().flush();
    Ok(run)
}

async fn load(port: u16, start: Instant, length: Duration) -> Result<Run, Error> {
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    // A different range of numbers each run, so no two runs share a number.
    let base = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_micros() as u64;
    let mut tasks = Vec::new();
    for _ in 0..CONNS {
        let (stop, counter) = (stop.clone(), counter.clone());
        tasks.push(tokio::spawn(async move { connection(port, start, stop, counter, base).await }));
    }
    let probe = {
        let stop = stop.clone();
        tokio::spawn(async move { healthz(port, start, stop).await })
    };
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let mut run = Run { seconds: length.as_secs_f64(), ..Run::default() };
    for t in tasks {
        let (samples, errors, duplicates) = t.await?.map_err(|e| -> Error { e })?;
        run.samples.extend(samples);
        run.errors += errors;
        run.duplicates += duplicates;
    }
    run.health = probe.await?.map_err(|e| -> Error { e })?;
    Ok(run)
}

type Counts = (Vec<Sample>, u64, u64);

async fn connection(
    port: u16,
    start: Instant,
    stop: Arc<AtomicBool>,
    counter: Arc<AtomicU64>,
    base: u64,
) -> Result<Counts, TaskError> {
    let mut conn = Conn::open(port).await?;
    let (mut samples, mut errors, mut duplicates) = (Vec::new(), 0, 0);
    while !stop.load(Ordering::Relaxed) {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        // Ten digits, a new number for every request.
        let number = format!("+4420{:010}", base.wrapping_mul(1_000_003).wrapping_add(n) % 10_000_000_000);
        let body = format!(r#"{{"branch":"voispeed","extension":"201","number":"{number}"}}"#);
        let req = format!(
            "POST /v1/dial HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let t = Instant::now();
        let (status, text) = conn.exchange(req.as_bytes()).await?;
        samples.push(Sample { at_ms: (t - start).as_millis() as u32, us: t.elapsed().as_micros() as u32 });
        if status != 200 {
            errors += 1;
        }
        if text.windows(11).any(|w| w == b"\"duplicate\"") {
            duplicates += 1;
        }
    }
    Ok((samples, errors, duplicates))
}

async fn healthz(port: u16, start: Instant, stop: Arc<AtomicBool>) -> Result<Vec<Sample>, TaskError> {
    let mut conn = Conn::open(port).await?;
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        conn.exchange(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await?;
        samples.push(Sample { at_ms: (t - start).as_millis() as u32, us: t.elapsed().as_micros() as u32 });
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(samples)
}

/// A bare HTTP/1.1 keep-alive connection: cheap enough that the driver
/// takes little of the CPU it shares with the gateway and the PBX.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(port: u16) -> Result<Conn, TaskError> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::with_capacity(4096) })
    }

    /// Sends one request and reads its answer: (status, body).
    async fn exchange(&mut self, req: &[u8]) -> Result<(u16, Vec<u8>), TaskError> {
        self.stream.write_all(req).await?;
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or("an answer without content-length")?;
                while self.buf.len() < end + 4 + len {
                    let n = self.stream.read(&mut chunk).await?;
                    if n == 0 {
                        return Err("connection closed mid-answer".into());
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                return Ok((status, self.buf[end + 4..end + 4 + len].to_vec()));
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

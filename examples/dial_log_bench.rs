//! What recording every dial costs: dials/s through the release gateway
//! with the dial log in a file (WAL, group commits), with it in memory, and
//! with a baseline binary (one built without the log), at 32 connections
//! against the stand-in PBX.
//!
//! ```sh
//! cargo build --release --locked
//! cargo run --release --example dial_log_bench -- [--baseline PATH] [--seconds 5] [--rounds 3] [--conns 32]
//! ```
//!
//! The load driver is in this process: plain HTTP/1.1 keep-alive
//! connections on one thread, each sending `GET /v1/dial` and reading the
//! answer before the next (closed loop). Rounds alternate the
//! configurations (A B C A B C …) so that drift in the machine's other load
//! hits them alike; the median of the rounds is reported. The stand-in
//! answers at once and records nothing (`standin --no-record`); the gateway
//! runs with its normal `info` logging (to /dev/null) and `dedupe_window: 0s`.
//!
//! On a shared machine throughput swings with the other load; the
//! gateway's own CPU time per dial (all its threads, the dial log's
//! writer included, from `/proc`) swings far less, and at saturation
//! capacity is its inverse, so both are reported.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// A child process, killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16, Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_listening(addr: SocketAddr) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("nothing listens on {addr}").into())
}

struct Setup {
    name: String,
    binary: PathBuf,
    /// The `data:` line, if any (a baseline binary refuses the setting).
    data: Option<&'static str>,
}

/// Starts the gateway in `dir` with one IQX branch on `pbx`.
fn gateway(setup: &Setup, dir: &Path, pbx: SocketAddr) -> Result<(Proc, SocketAddr), Error> {
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles)?;
    std::fs::write(
        profiles.join("iqx.yaml"),
        format!("dial: \"http://{pbx}/ivr/PbxAPI.aspx?func=make_call&from=^&to=#\"\n"),
    )?;
    for f in ["webdial.db", "webdial.db-wal", "webdial.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let mut config = format!("listen: {addr}\nprofiles: profiles\ndedupe_window: 0s\n");
    if let Some(data) = setup.data {
        config.push_str(&format!("data: {data}\n"));
    }
    std::fs::write(dir.join("webdial.yaml"), config)?;
    let child = Command::new(&setup.binary)
        .arg("--config")
        .arg(dir.join("webdial.yaml"))
        .arg("serve")
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()?;
    let proc = Proc(child);
    wait_listening(addr)?;
    Ok((proc, addr))
}

/// One closed-loop connection until `until`: answers received whole.
async fn connection(addr: SocketAddr, until: Instant, n: usize) -> Result<u64, Error> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut done = 0u64;
    let mut i = 0u64;
    while Instant::now() < until {
        i += 1;
        let req = format!("GET /v1/dial?branch=iqx&ext=201&number=0207{n:03}{i:07} HTTP/1.1\r\nHost: bench\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut have = 0;
        let (head_end, length) = loop {
            let got = s.read(&mut buf[have..]).await?;
            if got == 0 {
                return Err("connection closed".into());
            }
            have += got;
            if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&buf[..end])?;
                if !head.starts_with("HTTP/1.1 200") {
                    return Err(format!("not 200: {}", head.lines().next().unwrap_or("")).into());
                }
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                    .ok_or("no content-length")?
                    .parse::<usize>()?;
                break (end + 4, length);
            }
        };
        while have < head_end + length {
            let got = s.read(&mut buf[have..]).await?;
            if got == 0 {
                return Err("connection closed".into());
            }
            have += got;
        }
        done += 1;
    }
    Ok(done)
}

/// CPU time (user + system) the process `pid` has used, all its threads.
fn cpu_time(pid: u32) -> Result<Duration, Error> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which is in parentheses): utime is the 14th field, stime the 15th.
    let rest = stat.rsplit_once(") ").ok_or("unreadable /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields.get(11).ok_or("no utime")?.parse::<u64>()? + fields.get(12).ok_or("no stime")?.parse::<u64>()?;
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_micros(ticks * 1_000_000 / per_second))
}

/// Dials/s over `seconds` with `conns` connections (after a 1 s warm-up),
/// and the gateway's (`pid`) CPU time per dial in that time.
fn drive(addr: SocketAddr, pid: u32, conns: usize, seconds: f64) -> Result<(f64, Duration), Error> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let warm = Instant::now() + Duration::from_secs(1);
        let mut tasks = Vec::new();
        for n in 0..conns {
            tasks.push(tokio::spawn(connection(addr, warm, n)));
        }
        for t in tasks {
            t.await??;
        }
        let cpu_before = cpu_time(pid)?;
        let started = Instant::now();
        let until = started + Duration::from_secs_f64(seconds);
        let mut tasks = Vec::new();
        for n in 0..conns {
            tasks.push(tokio::spawn(connection(addr, until, n)));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await??;
        }
        let cpu = cpu_time(pid)?.saturating_sub(cpu_before);
        Ok::<_, Error>((total as f64 / started.elapsed().as_secs_f64(), cpu / u32::try_from(total.max(1))?))
    })
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let seconds: f64 = value("--seconds").map_or(Ok(5.0), |s| s.parse())?;
    let rounds: usize = value("--rounds").map_or(Ok(3), |s| s.parse())?;
    let conns: usize = value("--conns").map_or(Ok(32), |s| s.parse())?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let binary = root.join("target/release/webdial");
    if !binary.exists() {
        return Err("build it first: cargo build --release --locked".into());
    }
    let mut setups = Vec::new();
    if let Some(base) = value("--baseline") {
        setups.push(Setup { name: "baseline (no dial log)".into(), binary: base.into(), data: None });
    }
    setups.push(Setup { name: "dial log in memory".into(), binary: binary.clone(), data: Some("\":memory:\"") });
    setups.push(Setup { name: "dial log in a file".into(), binary: binary.clone(), data: Some("webdial.db") });

    let pbx: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let _standin = Proc(
        Command::new(&binary)
            .args(["standin", "--no-record", "--listen", &pbx.to_string()])
            .stderr(Stdio::null())
            .spawn()?,
    );
    wait_listening(pbx)?;
    let dir = tempfile::tempdir()?;

    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); setups.len()];
    let mut cpus: Vec<Vec<f64>> = vec![Vec::new(); setups.len()];
    for round in 0..rounds {
        for (i, setup) in setups.iter().enumerate() {
            let (gw, addr) = gateway(setup, dir.path(), pbx)?;
            let (rate, cpu) = drive(addr, gw.0.id(), conns, seconds)?;
            let cpu = cpu.as_secs_f64() * 1e6;
            eprintln!("round {}: {:<24} {rate:>8.0} dials/s {cpu:>6.1} µs CPU/dial", round + 1, setup.name);
            rates[i].push(rate);
            cpus[i].push(cpu);
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (rate0, cpu0) = (median(&rates[0]), median(&cpus[0]));
    println!(
        "| setup | dials/s (median of {rounds}) | vs {0} | gateway CPU µs/dial (median) | capacity vs {0} (CPU) | dials/s per round |",
        setups[0].name
    );
    println!("|---|---|---|---|---|---|");
    for (i, setup) in setups.iter().enumerate() {
        let each: Vec<String> = rates[i].iter().map(|x| format!("{x:.0}")).collect();
        let (rate, cpu) = (median(&rates[i]), median(&cpus[i]));
        println!(
            "| {} | {rate:.0} | {:.2} | {cpu:.1} | {:.2} | {} |",
            setup.name,
            rate / rate0,
            cpu0 / cpu,
            each.join(", ")
        );
    }
    Ok(())
}

//! The gateway defends its own sockets: idle, slow and half-sent requests
//! are closed, headers are capped, connections are shed before the
//! open-file limit, SIGTERM drains within a bound, SIGHUP does not stop it, and a
//! stalled log reader never stops dialling.
//!
//! In-process tests serve with short [`Limits`] (hundreds of milliseconds)
//! and wait for the *event* (the server closing the socket) under a bounded
//! timeout; the process tests run the built binary with its defaults.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use webdial::net::Limits;

use crate::helpers::{VOISPEED, closed_port, write_config};

/// No single event is waited for longer than this.
const BOUND: Duration = Duration::from_secs(10);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Limits short enough for tests; each test shortens the one it exercises.
fn test_limits() -> Limits {
    Limits {
        header_read: Duration::from_secs(30),
        keep_alive: Duration::from_secs(30),
        max_header_bytes: 64 * 1024,
        max_connections: 1_000,
        shutdown_grace: Duration::from_secs(5),
    }
}

/// The real API (no branches) behind `limits`, on port 0.
async fn gateway(limits: Limits) -> SocketAddr {
    let settings = webdial::settings::Settings {
        file: "webdial.yaml".into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        dedupe_window: Duration::ZERO,
        ..webdial::settings::Settings::for_profiles("profiles".as_ref())
    };
    let gw = webdial::app::build(settings, webdial::profile::Profiles::default()).unwrap();
    serve(webdial::api::router(gw), limits).await
}

async fn serve(app: Router, limits: Limits) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(webdial::net::serve(listener, app, limits, std::future::pending()));
    addr
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one HTTP response (head and `Content-Length` body): status and body.
async fn read_response(s: &mut TcpStream) -> std::io::Result<(u16, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let read = async {
        loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").and_then(|v| v.trim().parse::<usize>().ok()))
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    return Ok((status, String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned()));
                }
            }
            let n = s.read(&mut chunk).await?;
            if n == 0 || buf.len() > 4 << 20 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before a whole response"));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(BOUND, read).await.unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

async fn get_on(s: &mut TcpStream, path: &str) -> (u16, String) {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).await.unwrap();
    read_response(s).await.unwrap()
}

/// `GET /healthz` on a new connection.
async fn healthz(addr: SocketAddr) -> std::io::Result<(u16, String)> {
    let mut s = tokio::time::timeout(BOUND, TcpStream::connect(addr)).await??;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await?;
    read_response(&mut s).await
}

/// Waits (at most [`BOUND`]) for the server to close `s`: a read returning
/// 0 or failing. Data before that is discarded. How long it took.
async fn wait_closed(s: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut chunk = [0u8; 8192];
    let closed = async {
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(BOUND, closed).await.expect("the server must close the connection");
    start.elapsed()
}

/// Sends one header byte every 100 ms (at most 100) until the server
/// closes the connection; how long that took, `None` if it never did.
async fn trickle_until_closed(s: &mut TcpStream) -> Option<Duration> {
    let start = Instant::now();
    let mut chunk = [0u8; 1024];
    for _ in 0..100 {
        if s.write_all(b"a").await.is_err() {
            return Some(start.elapsed());
        }
        match tokio::time::timeout(ms(100), s.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(n)) => panic!("a half-sent header was answered: {:?}", String::from_utf8_lossy(&chunk[..n])),
            Err(_) => {}
        }
    }
    None
}

// ---- idle, slow and half-sent ---------------------------------------------------

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_at_the_header_read_limit() {
    let addr = gateway(Limits { header_read: ms(300), ..test_limits() }).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let took = wait_closed(&mut s).await;
    assert!(took >= ms(250), "closed before the limit: {took:?}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_keep_alive_limit() {
    let addr = gateway(Limits { keep_alive: ms(300), ..test_limits() }).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert_eq!(get_on(&mut s, "/healthz").await.0, 200);
    let took = wait_closed(&mut s).await;
    assert!(took >= ms(250), "closed before the limit: {took:?}");
}

#[tokio::test]
async fn keep_alive_is_its_own_limit_not_the_header_read_one() {
    // hyper's own header-read timer also runs while a kept-alive connection
    // waits for its next request; the gateway times the two phases apart.
    let addr = gateway(Limits { header_read: ms(200), keep_alive: Duration::from_secs(5), ..test_limits() }).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert_eq!(get_on(&mut s, "/healthz").await.0, 200);
    tokio::time::sleep(ms(700)).await;
    assert_eq!(get_on(&mut s, "/healthz").await.0, 200, "an idle connection outlived the header-read limit");
}

#[tokio::test]
async fn a_slowloris_is_closed_at_the_header_read_limit() {
    let addr = gateway(Limits { header_read: ms(500), ..test_limits() }).await;
    // A new connection.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ").await.unwrap();
    let took = trickle_until_closed(&mut s).await.expect("a slowloris must be closed");
    assert!(took >= ms(350), "closed before the limit: {took:?}");
    // And on a kept-alive connection: the clock starts at the first byte of the next request.
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert_eq!(get_on(&mut s, "/healthz").await.0, 200);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ").await.unwrap();
    let took = trickle_until_closed(&mut s).await.expect("a slowloris must be closed");
    assert!((ms(350)..Duration::from_secs(5)).contains(&took), "closed after {took:?}");
}

#[tokio::test]
async fn a_half_sent_body_is_answered_and_closed() {
    let addr = gateway(Limits { header_read: ms(500), ..test_limits() }).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    s.write_all(b"POST /v1/dial HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"branch\":")
        .await
        .unwrap();
    let (code, body) = read_response(&mut s).await.expect("an answer to a body that never arrives");
    assert_eq!(code, 400, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], "invalid_request");
    wait_closed(&mut s).await;
    assert!(start.elapsed() >= ms(400), "answered before the limit: {:?}", start.elapsed());
}

#[tokio::test]
async fn oversized_headers_get_431_and_a_close_and_large_ones_pass() {
    let addr = gateway(test_limits()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert_eq!(get_on(&mut s, &format!("/healthz?pad={}", "a".repeat(32 * 1024))).await.0, 200, "32 KiB is allowed");
    let mut s = TcpStream::connect(addr).await.unwrap();
    let big = format!("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", "a".repeat(100_000));
    // The server may stop reading part-way: a failed write is fine.
    let _ = s.write_all(big.as_bytes()).await;
    match read_response(&mut s).await {
        Ok((code, _)) => assert_eq!(code, 431, "a 100 KB header must be refused"),
        Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "neither answered nor closed"),
    }
    wait_closed(&mut s).await;
}

// ---- the connection cap ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_while_1500_idle_connections_are_open() {
    // Both ends of every connection are in this process.
    let soft = webdial::net::raise_fd_limit().map_or(1024, |(_, now)| now);
    let max = 200;
    let n = 1_500.min(soft.saturating_sub(400) as usize);
    assert!(n > max + 100, "the open-file limit ({soft}) is too low for this test");
    let addr = gateway(Limits { max_connections: max, ..test_limits() }).await;
    let started = Instant::now();
    let mut idle = Vec::with_capacity(n);
    for _ in 0..n {
        idle.push(tokio::time::timeout(BOUND, TcpStream::connect(addr)).await.unwrap().unwrap());
    }
    for _ in 0..3 {
        let t = Instant::now();
        let (code, body) = healthz(addr).await.expect("/healthz must answer");
        assert_eq!(code, 200, "{body}");
        assert!(t.elapsed() < Duration::from_secs(2), "/healthz took {:?}", t.elapsed());
    }
    // The gateway shed the oldest idle connections to stay at its cap.
    let deadline = Instant::now() + BOUND;
    let mut closed = vec![false; n];
    let mut buf = [0u8; 64];
    while closed.iter().filter(|c| **c).count() < n - max && Instant::now() < deadline {
        for (s, c) in idle.iter().zip(closed.iter_mut()).filter(|(_, c)| !**c) {
            match s.try_read(&mut buf) {
                Ok(0) => *c = true,
                Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => *c = true,
                _ => {}
            }
        }
        tokio::time::sleep(ms(20)).await;
    }
    let shed = closed.iter().filter(|c| **c).count();
    assert!(shed >= n - max, "{shed} of {n} idle connections closed; the cap is {max}");
    eprintln!("{n} idle connections, cap {max}: {shed} shed, /healthz answered; {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_idle_connections_go_first_and_busy_ones_get_a_429() {
    let entered = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let (e, r) = (entered.clone(), release.clone());
    let app = Router::new()
        .route(
            "/hang",
            get(move || {
                let (e, r) = (e.clone(), r.clone());
                async move {
                    let wait = r.notified();
                    e.fetch_add(1, Ordering::SeqCst);
                    wait.await;
                    "done"
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }));
    let addr = serve(app, Limits { max_connections: 3, ..test_limits() }).await;
    let mut busy = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /hang HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
        busy.push(s);
    }
    let deadline = Instant::now() + BOUND;
    while entered.load(Ordering::SeqCst) < 3 {
        assert!(Instant::now() < deadline, "the three requests must reach the handler");
        tokio::time::sleep(ms(10)).await;
    }
    // Every connection is busy: a fourth is refused at once, with JSON.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (code, body) = read_response(&mut s).await.expect("a refusal");
    assert_eq!(code, 429, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["ok"], false, "{body}");
    wait_closed(&mut s).await;
    // The busy ones finish; idle now, they make room for a new caller.
    release.notify_waiters();
    for s in &mut busy {
        assert_eq!(read_response(s).await.unwrap().0, 200);
    }
    let (code, body) = healthz(addr).await.unwrap();
    assert_eq!((code, body.as_str()), (200, "ok"));
    let mut evicted = 0;
    for s in &mut busy {
        let mut buf = [0u8; 16];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(ms(500), s.read(&mut buf)).await {
            evicted += 1;
        }
    }
    assert!(evicted >= 1, "an idle connection must have been closed to make room");
}

#[tokio::test]
async fn answers_larger_than_the_header_cap_are_sent_whole() {
    // The cap is also hyper's buffer size: it must not cut long answers
    // (a dry run can echo a PBX answer of up to 1 MiB).
    let app = Router::new().route("/big", get(|| async { "x".repeat(2 << 20) }));
    let addr = serve(app, test_limits()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (code, body) = get_on(&mut s, "/big").await;
    assert_eq!((code, body.len()), (200, 2 << 20));
    assert_eq!(get_on(&mut s, "/big").await.1.len(), 2 << 20, "and the connection is kept");
}

#[tokio::test]
async fn handlers_still_see_the_peer_address() {
    let app =
        Router::new().route("/peer", get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }));
    let addr = serve(app, test_limits()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let me = s.local_addr().unwrap();
    assert_eq!(get_on(&mut s, "/peer").await, (200, me.to_string()));
}

// ---- shutdown, in process -----------------------------------------------------

/// A route that says when a request reaches it, then waits for `release`
/// (for ever if `release` is `None`).
fn held_route(entered: Arc<tokio::sync::Notify>, release: Option<Arc<tokio::sync::Notify>>) -> Router {
    Router::new()
        .route(
            "/held",
            get(move || {
                let (entered, release) = (entered.clone(), release.clone());
                async move {
                    entered.notify_one();
                    match release {
                        Some(r) => r.notified().await,
                        None => std::future::pending().await,
                    }
                    "finished"
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_and_half_read_connections_at_once_and_finishes_requests() {
    let (entered, release) = (Arc::new(tokio::sync::Notify::new()), Arc::new(tokio::sync::Notify::new()));
    let app = held_route(entered.clone(), Some(release.clone()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(webdial::net::serve(listener, app, test_limits(), async {
        let _ = stopped.await;
    }));
    let mut idle = TcpStream::connect(addr).await.unwrap();
    assert_eq!(get_on(&mut idle, "/healthz").await.0, 200);
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Half: ").await.unwrap();
    let mut held = TcpStream::connect(addr).await.unwrap();
    held.write_all(b"GET /held HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    tokio::time::timeout(BOUND, entered.notified()).await.expect("the request reaches its handler");
    stop.send(()).unwrap();
    // Both limits are 30 s here: closing within seconds is "at once".
    assert!(wait_closed(&mut idle).await < Duration::from_secs(2), "an idle connection must be closed at once");
    assert!(wait_closed(&mut half).await < Duration::from_secs(2), "a half-read request must be closed at once");
    assert!(TcpStream::connect(addr).await.is_err(), "no new connections after shutdown");
    assert!(!server.is_finished(), "serve waits for the request in progress");
    release.notify_one();
    assert_eq!(read_response(&mut held).await.unwrap(), (200, "finished".to_string()), "requests in flight finish");
    tokio::time::timeout(BOUND, server).await.expect("serve returns").unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_gives_up_on_a_request_after_the_grace_period() {
    let entered = Arc::new(tokio::sync::Notify::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = Limits { shutdown_grace: ms(400), ..test_limits() };
    let server = tokio::spawn(webdial::net::serve(listener, held_route(entered.clone(), None), limits, async {
        let _ = stopped.await;
    }));
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /held HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    tokio::time::timeout(BOUND, entered.notified()).await.expect("the request reaches its handler");
    let start = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(BOUND, server).await.expect("serve returns after the grace period").unwrap().unwrap();
    assert!(start.elapsed() >= ms(350), "gave up before the grace period: {:?}", start.elapsed());
    wait_closed(&mut s).await;
}

#[test]
fn the_serving_defaults_are_the_contract() {
    let d = Limits::default_for_serving();
    assert_eq!(d.header_read, Duration::from_secs(30));
    assert_eq!(d.keep_alive, Duration::from_secs(60));
    assert_eq!(d.max_header_bytes, 64 * 1024);
    assert_eq!(d.shutdown_grace, Duration::from_secs(15));
    assert!(d.max_connections >= 1, "{d:?}");
}

// ---- the binary ---------------------------------------------------------------

/// A `webdial serve` process, killed on drop.
struct Serve {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// Starts `webdial serve` on a free loopback port with `config`, stderr
    /// piped (the caller decides whether to read it), and, when given, the
    /// open-file limit (soft, hard) set before it starts.
    fn start(config: &std::path::Path, env: &[(&str, &str)], nofile: Option<(u64, u64)>) -> Serve {
        let addr: SocketAddr = format!("127.0.0.1:{}", closed_port()).parse().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_webdial"));
        cmd.arg("--config").arg(config).args(["serve", "--listen", &addr.to_string()]);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some((soft, hard)) = nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: only setrlimit (async-signal-safe) runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit { rlim_cur: soft, rlim_max: hard };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        Serve { child: cmd.spawn().unwrap(), addr }
    }

    /// Hands stderr over line by line (a thread reads it).
    fn logs(&mut self) -> std::sync::mpsc::Receiver<String> {
        let stderr = self.child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().take(1_000_000) {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    }

    /// Waits until `/healthz` answers.
    async fn ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Ok((200, _))) = tokio::time::timeout(Duration::from_secs(1), healthz(self.addr)).await {
                return;
            }
            assert!(self.child.try_wait().unwrap().is_none(), "webdial serve exited");
            assert!(Instant::now() < deadline, "webdial serve did not start");
            tokio::time::sleep(ms(50)).await;
        }
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: sending a signal to our own child has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(self.child.id() as libc::pid_t, sig) }, 0);
    }

    /// Waits at most `limit` for the process to exit.
    async fn exited_within(&mut self, limit: Duration) -> Option<(std::process::ExitStatus, Duration)> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some((status, start.elapsed()));
            }
            tokio::time::sleep(ms(20)).await;
        }
        None
    }
}

/// Waits for a log line containing `text` (at most [`BOUND`]); every line read.
fn wait_log(rx: &std::sync::mpsc::Receiver<String>, text: &str) -> Result<String, Vec<String>> {
    let deadline = Instant::now() + BOUND;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(text) => return Ok(line),
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    Err(seen)
}

fn config() -> (webdial::standin::StandIn, tempfile::TempDir) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let pbx = webdial::standin::StandIn::start(TcpListener::from_std(listener).unwrap()).unwrap();
    let dir = write_config(&pbx.url(), &[("m", VOISPEED)]);
    (pbx, dir)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigint_exit_promptly_with_a_client_stuck_mid_header() {
    let (_pbx, dir) = config();
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let mut server = Serve::start(&dir.path().join("webdial.yaml"), &[], None);
        let logs = server.logs();
        server.ready().await;
        let mut stuck = TcpStream::connect(server.addr).await.unwrap();
        stuck.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Stuck: ").await.unwrap();
        let mut idle = TcpStream::connect(server.addr).await.unwrap();
        assert_eq!(get_on(&mut idle, "/healthz").await.0, 200);
        server.signal(sig);
        // Well inside the 15 s grace period and the 30 s header-read limit:
        // the stuck and the idle connection are closed at once.
        let (status, took) = server.exited_within(Duration::from_secs(5)).await.expect("exit after the signal");
        assert!(status.success(), "{name}: {status:?}");
        wait_log(&logs, &format!("{name}: shutting down")).unwrap_or_else(|seen| panic!("{name}: {seen:?}"));
        eprintln!("{name} with a client stuck mid-header: exited in {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_refuses_new_connections_and_finishes_the_dial_in_flight() {
    let (pbx, dir) = config();
    pbx.set_behaviour(webdial::standin::Behaviour::Delay(Duration::from_secs(2)));
    let mut server = Serve::start(&dir.path().join("webdial.yaml"), &[], None);
    let _logs = server.logs();
    server.ready().await;
    let url = format!("http://{}/v1/dial", server.addr);
    let dial = tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .post(url)
            .json(&serde_json::json!({"branch": "m", "extension": "201", "number": "02079460000"}))
            .timeout(BOUND)
            .send()
            .await?;
        Ok::<_, reqwest::Error>((resp.status().as_u16(), resp.text().await?))
    });
    assert!(pbx.wait_for_requests(1, BOUND).await, "the dial must reach the PBX");
    server.signal(libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if TcpStream::connect(server.addr).await.is_err() {
            break;
        }
        assert!(Instant::now() < deadline, "new connections must be refused after SIGTERM");
        tokio::time::sleep(ms(20)).await;
    }
    assert!(!dial.is_finished(), "the dial was still in flight when new connections were refused");
    let (code, body) = dial.await.unwrap().expect("the dial in flight is answered");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"accepted\""), "{body}");
    let (status, _) = server.exited_within(BOUND).await.expect("exit after the dial");
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_does_not_stop_the_gateway() {
    let (_pbx, dir) = config();
    let mut server = Serve::start(&dir.path().join("webdial.yaml"), &[], None);
    let logs = server.logs();
    server.ready().await;
    server.signal(libc::SIGHUP);
    let line = wait_log(&logs, "SIGHUP").unwrap_or_else(|seen| panic!("no SIGHUP line in:\n{}", seen.join("\n")));
    assert!(line.contains("reloading the profiles"), "{line}");
    assert_eq!(healthz(server.addr).await.unwrap().0, 200);
    assert!(server.child.try_wait().unwrap().is_none(), "SIGHUP must not stop the gateway");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_log_reader_does_not_stop_dials_or_healthz() {
    let (pbx, dir) = config();
    // Trace logging: dozens of lines per dial fill the pipe and the queue fast.
    let mut server = Serve::start(&dir.path().join("webdial.yaml"), &[("RUST_LOG", "trace")], None);
    server.ready().await; // stderr is piped and, for now, never read
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let started = Instant::now();
    let dials = 1_500;
    for i in 0..dials {
        let resp = client
            .post(format!("http://{}/v1/dial", server.addr))
            .json(&serde_json::json!({"branch": "m", "extension": "201", "number": format!("020794{i:05}")}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("dial {i} with stderr stalled: {e}"));
        assert_eq!(resp.status().as_u16(), 200, "dial {i}");
        if i % 250 == 0 {
            assert_eq!(healthz(server.addr).await.unwrap().0, 200, "/healthz after {i} dials");
        }
    }
    eprintln!("{dials} dials with stderr unread: {:?}", started.elapsed());
    assert!(pbx.received().len() >= dials, "every dial reached the PBX");
    // Reading again: the writer catches up and says how much it dropped.
    let logs = server.logs();
    let line = wait_log(&logs, "log lines dropped")
        .unwrap_or_else(|seen| panic!("no drop report in {} lines; last: {:?}", seen.len(), seen.last()));
    assert!(line.contains("WARN"), "{line}");
    eprintln!("{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_raises_the_open_file_limit_and_logs_it() {
    let Some((_, hard)) = webdial::net::raise_fd_limit() else { panic!("cannot read the open-file limit") };
    if hard <= 1024 {
        eprintln!("skipped: the hard open-file limit is {hard}");
        return;
    }
    let (_pbx, dir) = config();
    let mut server = Serve::start(&dir.path().join("webdial.yaml"), &[], Some((1024, hard)));
    let logs = server.logs();
    let line = wait_log(&logs, "open-file limit").unwrap_or_else(|seen| panic!("not logged:\n{}", seen.join("\n")));
    assert!(line.contains("1024") && line.contains(&hard.to_string()), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_an_open_file_limit_of_1024_idle_sockets_do_not_stop_healthz() {
    let own = webdial::net::raise_fd_limit().map_or(1024, |(_, now)| now);
    let n: usize = 1_100;
    assert!(own > n as u64 + 300, "this test needs {} descriptors, the limit is {own}", n + 300);
    let (_pbx, dir) = config();
    let mut server = Serve::start(&dir.path().join("webdial.yaml"), &[], Some((1024, 1024)));
    let logs = server.logs();
    server.ready().await;
    let mut idle = Vec::with_capacity(n);
    for _ in 0..n {
        idle.push(tokio::time::timeout(BOUND, TcpStream::connect(server.addr)).await.unwrap().unwrap());
    }
    for _ in 0..5 {
        let t = Instant::now();
        let (code, body) = healthz(server.addr).await.expect("/healthz must answer");
        assert_eq!(code, 200, "{body}");
        assert!(t.elapsed() < Duration::from_secs(2), "/healthz took {:?}", t.elapsed());
    }
    drop(idle);
    let exhausted: Vec<String> = logs.try_iter().filter(|l| l.contains("Too many open files")).collect();
    assert!(exhausted.is_empty(), "descriptors ran out: {exhausted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_huge_headers_do_not_hold_memory() {
    let (_pbx, dir) = config();
    let mut server = Serve::start(&dir.path().join("webdial.yaml"), &[], None);
    let _logs = server.logs();
    server.ready().await;
    let pid = server.child.id();
    let before = rss_kib(pid);
    let header = format!("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {}", "a".repeat(380 * 1024));
    let header = Arc::new(header.into_bytes());
    let mut conns = Vec::new();
    for _ in 0..500 {
        let header = header.clone();
        let addr = server.addr;
        conns.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.ok()?;
            let _ = tokio::time::timeout(BOUND, s.write_all(&header)).await;
            Some(s) // held open, the header unfinished
        }));
    }
    let mut held = Vec::new();
    for c in conns {
        held.push(c.await.unwrap());
    }
    // The server reads what the kernel buffered for a while after the writes end.
    let mut after = rss_kib(pid);
    for _ in 0..15 {
        tokio::time::sleep(ms(200)).await;
        after = after.max(rss_kib(pid));
    }
    let grew_mib = after.saturating_sub(before) / 1024;
    eprintln!("500 unfinished 380 KB headers: RSS {before} KiB -> {after} KiB (+{grew_mib} MiB)");
    assert!(grew_mib < 40, "RSS grew by {grew_mib} MiB");
    drop(held);
}

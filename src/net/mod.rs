//! The gateway's own sockets: binding, the accept loop, how long a client
//! may take, how much it may send before its request is read, how many
//! connections are served at once, and the drain on shutdown.
//!
//! A gateway that stops answering because idle or slow clients hold every
//! descriptor or all the memory is down for every PBX behind it, so each
//! connection is bounded:
//!
//! - **Header read.** A new connection, or a kept-alive one that has started
//!   its next request, has [`Limits::header_read`] to deliver the whole head;
//!   a request's body has as long again once its head is in.
//! - **Keep-alive.** A connection with no request in progress and no byte of
//!   a new one is closed after [`Limits::keep_alive`].
//! - **Size.** The head (request line and headers) is at most
//!   [`Limits::max_header_bytes`] and [`MAX_HEADERS`] fields; past that the
//!   client gets `431` and the connection is closed. Memory held by a
//!   connection that has not finished its head is bounded by that size.
//! - **Count.** At most [`Limits::max_connections`] connections are open.
//!   At the cap a new connection first makes room by closing the oldest one
//!   that has no request in progress (an idle or half-sent one: exactly what
//!   an attacker or a forgotten client holds), so `/healthz` and new dials
//!   are still answered. Only when every connection has a request in
//!   progress is the new one refused, at once, with a short `429 rate_limited`
//!   JSON answer (`Retry-After: 1`).
//!   The cap sits well below the open-file limit ([`connection_budget`]), so
//!   the descriptors the gateway needs for its own PBX connections are never
//!   taken by callers.
//!
//! Why not hyper's `header_read_timeout`: it was read in hyper 1.x's source
//! (`proto/h1/conn.rs`): its timer starts whenever the connection is ready
//! for a head, which includes a kept-alive connection waiting for its next
//! request (`State::idle` re-arms it). It cannot give an idle connection a
//! different limit than a slow header, and it does not cover bodies, so
//! each connection's driver keeps the time itself ([`Phase`]).
//!
//! HTTP/1.1 only: the phases are read off the byte stream, which HTTP/2's
//! frames (pings, settings while idle) would blur, and no PBX-facing client
//! needs HTTP/2.

mod admission;
mod conn;

use admission::*;
use conn::*;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

/// Accept queue length: `TcpListener::bind` asks for 128, which a burst of
/// a few hundred new connections overflows (and each overflow is a 1 s SYN
/// retransmit for that caller).
pub const BACKLOG: u32 = 4096;

/// Binds `addr` for serving, with a [`BACKLOG`]-long accept queue.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Most header fields in one request (hyper's default, made explicit).
pub const MAX_HEADERS: usize = 100;

/// Descriptors never given to callers' connections: standard streams, the
/// listener, the runtime's own (epoll, wakers, signal pipe), the demo
/// stand-in, DNS look-ups, and room to accept one more connection at the cap
/// so it can be answered.
pub const RESERVED_FDS: u64 = 64;

/// The default cap never exceeds this: beyond it memory (up to
/// `max_header_bytes` per connection still sending its head) rather than
/// descriptors is what runs out.
pub const MAX_CONNECTIONS_CEILING: usize = 65_536;

/// How many connections over the cap may be waiting to close (closed to make
/// room, not yet gone) before new ones are refused instead.
const EVICTION_SLACK: usize = 32;

/// How many of the oldest connections are looked at for one to close.
const EVICTION_SCAN: usize = 4096;

/// What a connection may take, and how many there may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request's head must arrive within this, counted from the
    /// connection's start or the first byte of a kept-alive connection's
    /// next request. A request body gets as long again, from its head.
    pub header_read: Duration,
    /// A connection with nothing in progress is closed after this.
    pub keep_alive: Duration,
    /// The most a request's head (request line and headers) may take.
    pub max_header_bytes: usize,
    /// Connections open at once (see [`connection_budget`]).
    pub max_connections: usize,
    /// On shutdown, requests in progress get this long to finish.
    pub shutdown_grace: Duration,
}

impl Limits {
    /// What `webdial serve` uses: header read within 30 s, idle keep-alive
    /// 60 s, 64 KiB of headers, a connection cap from the current open-file
    /// limit (so call [`raise_fd_limit`] first), 15 s to finish on shutdown.
    pub fn default_for_serving() -> Limits {
        let fd_limit = fd_limits().map_or(1024, |(soft, _)| soft);
        Limits {
            header_read: Duration::from_secs(30),
            keep_alive: Duration::from_secs(60),
            max_header_bytes: 64 * 1024,
            max_connections: connection_budget(fd_limit),
            shutdown_grace: Duration::from_secs(15),
        }
    }
}

/// Connections that fit in `fd_limit` descriptors: after [`RESERVED_FDS`],
/// half, because every connection with a dial in progress also holds one
/// connection to a PBX (and the client keeps no more idle PBX connections
/// than it once had in use). At most [`MAX_CONNECTIONS_CEILING`].
pub fn connection_budget(fd_limit: u64) -> usize {
    let half = fd_limit.saturating_sub(RESERVED_FDS) / 2;
    usize::try_from(half).unwrap_or(usize::MAX).clamp(1, MAX_CONNECTIONS_CEILING)
}

/// The open-file limit (soft, hard), if it can be read.
pub fn fd_limits() -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes only into the struct it is given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return None;
        }
        Some((lim.rlim_cur, lim.rlim_max))
    }
    #[cfg(not(unix))]
    None
}

/// Raises the soft open-file limit to the hard one, and logs the result.
/// The common default soft limit (1024) is what a few hundred idle callers
/// exhaust; the hard limit is what the administrator allows. Returns the
/// soft limit before and after, `None` if it could not be read or raised.
pub fn raise_fd_limit() -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        let (soft, hard) = fd_limits()?;
        // An unlimited hard limit is refused by setrlimit for NOFILE: the
        // kernel's ceiling is fs.nr_open.
        let target = if hard == libc::RLIM_INFINITY {
            std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(1 << 20)
        } else {
            hard
        };
        if soft >= target {
            tracing::info!("open-file limit: {soft} (the hard limit)");
            return Some((soft, soft));
        }
        let lim = libc::rlimit { rlim_cur: target, rlim_max: hard };
        // SAFETY: setrlimit reads only the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            let e = io::Error::last_os_error();
            tracing::warn!("open-file limit stays at {soft}: cannot raise it to {target}: {e}");
            return None;
        }
        tracing::info!("open-file limit raised from {soft} to {target}");
        Some((soft, target))
    }
    #[cfg(not(unix))]
    None
}

/// Serves `app` on `listener` until `shutdown` completes, within `limits`.
///
/// Every request sees the peer as [`ConnectInfo<SocketAddr>`]. On
/// shutdown the listener is closed first (new connections are refused),
/// connections without a request in progress are closed at once, requests
/// in progress get [`Limits::shutdown_grace`] to finish (their connections
/// close after the answer), and whatever is left then is closed. A failed
/// accept does not end serving (the listener is kept), so this returns
/// `Ok` once shutdown is done.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.max_buf_size(limits.max_header_bytes.max(MIN_BUF_SIZE))
        .max_header_size(limits.max_header_bytes)
        .max_headers(MAX_HEADERS)
        // The connection's driver keeps both the header and the idle time.
        .header_read_timeout(None)
        .keep_alive(true);
    let registry = Arc::new(Registry::default());
    let graceful = GracefulShutdown::new();
    let (stop, stopping) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut refusals = Refusals::default();
    let mut accept_errors = Refusals::default();
    tokio::pin!(shutdown);
    tracing::info!(
        "at most {} connections; a request head within {:?}, idle connections closed after {:?}, heads of at most {} bytes",
        limits.max_connections,
        limits.header_read,
        limits.keep_alive,
        limits.max_header_bytes
    );
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                accept_failed(&e, &registry, &mut accept_errors).await;
                continue;
            }
        };
        let Some((id, state)) = registry.admit_or_wait(limits.max_connections).await else {
            refuse(stream, limits.max_connections, &mut refusals);
            continue;
        };
        let registration = Registration { registry: registry.clone(), id };
        let service = ConnService {
            app: TowerToHyperService::new(app.clone()),
            state: state.clone(),
            peer,
            body_limit: limits.header_read,
        };
        let io = TokioIo::new(Watched { stream, state: state.clone() });
        let conn = graceful.watch(http.serve_connection(io, service));
        tasks.spawn(drive(conn, state, limits, stopping.clone(), peer, registration));
    }
    drop(listener);
    let _ = stop.send(true);
    let open = registry.len();
    if open > 0 {
        tracing::info!("finishing {open} connection(s), for at most {:?}", limits.shutdown_grace);
    }
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            "{} connection(s) still had a request in progress after {:?}: closing them",
            registry.len(),
            limits.shutdown_grace
        );
    }
    tasks.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_budget_leaves_descriptors_for_pbx_connections() {
        assert_eq!(connection_budget(1024), 480);
        assert_eq!(connection_budget(20_000), 9_968);
        assert_eq!(connection_budget(10), 1);
        assert_eq!(connection_budget(u64::MAX), MAX_CONNECTIONS_CEILING);
    }

    #[test]
    fn the_refusal_is_a_short_json_answer() {
        let text = String::from_utf8(refusal()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 429 "), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["ok"], false);
        assert!(text.len() < 1024);
    }

    #[test]
    fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let admit = |r: &Registry| match r.admit(2) {
            Admission::Admit(id, state) => Some((id, state)),
            Admission::Wait => panic!("nothing pending"),
            Admission::Refuse => None,
        };
        let r = Arc::new(Registry::default());
        let (_, a) = admit(&r).unwrap();
        a.busy.store(1, Ordering::SeqCst);
        let (b_id, b) = admit(&r).unwrap();
        let (_, c) = admit(&r).expect("b is idle: room is made");
        assert!(b.evicted.load(Ordering::SeqCst) && !a.evicted.load(Ordering::SeqCst));
        c.busy.store(1, Ordering::SeqCst);
        // b's driver ends.
        drop(Registration { registry: r.clone(), id: b_id });
        assert_eq!((r.len(), r.lock().evicting), (2, 0));
        assert!(admit(&r).is_none(), "every connection is busy: refused");
    }
}

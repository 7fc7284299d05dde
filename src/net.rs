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

/// hyper refuses a smaller read buffer.
const MIN_BUF_SIZE: usize = 8192;

/// What a connection is doing, as far as its time limit goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing in progress, no byte of a next request: [`Limits::keep_alive`].
    Idle,
    /// A head is arriving (or may, on a new connection): [`Limits::header_read`].
    Head,
    /// A request is being handled or answered: no connection limit (the
    /// handler's own limits and the body deadline apply).
    Busy,
    /// Closed to make room for a new connection.
    Evicted,
}

/// Shared by a connection's driver, its socket wrapper and its service.
#[derive(Debug)]
struct ConnState {
    /// Requests being handled or answered.
    busy: AtomicUsize,
    /// Bytes of a request have arrived since the last answer.
    reading: AtomicBool,
    evicted: AtomicBool,
    /// Tells the driver the phase may have changed.
    wake: Notify,
}

impl ConnState {
    fn new() -> ConnState {
        // A new connection is reading its first head from the start.
        ConnState {
            busy: AtomicUsize::new(0),
            reading: AtomicBool::new(true),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    fn phase(&self) -> Phase {
        if self.evicted.load(Ordering::SeqCst) {
            Phase::Evicted
        } else if self.busy.load(Ordering::SeqCst) > 0 {
            Phase::Busy
        } else if self.reading.load(Ordering::SeqCst) {
            Phase::Head
        } else {
            Phase::Idle
        }
    }

    fn bytes_arrived(&self) {
        if !self.reading.load(Ordering::Relaxed) && self.busy.load(Ordering::SeqCst) == 0 {
            self.reading.store(true, Ordering::SeqCst);
            self.wake.notify_one();
        }
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

/// Runs one connection to its end, or closes it (drops it) when its phase's
/// time is up, when it is evicted, or on shutdown unless a request is in
/// progress.
async fn drive<C>(
    conn: C,
    state: Arc<ConnState>,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
    peer: SocketAddr,
    _registration: Registration,
) where
    C: Future<Output = Result<(), hyper::Error>>,
{
    tokio::pin!(conn);
    let deadline = tokio::time::sleep(limits.header_read);
    tokio::pin!(deadline);
    let mut phase = Phase::Head;
    let mut stop = *stopping.borrow();
    loop {
        if phase == Phase::Evicted {
            tracing::debug!(%peer, "connection closed to make room for a new one");
            return;
        }
        if stop && phase != Phase::Busy {
            return;
        }
        tokio::select! {
            biased;
            result = &mut conn => {
                if let Err(e) = result {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
                return;
            }
            () = state.wake.notified() => {
                let now = state.phase();
                if now != phase {
                    phase = now;
                    let limit = match phase {
                        Phase::Head => Some(limits.header_read),
                        Phase::Idle => Some(limits.keep_alive),
                        Phase::Busy | Phase::Evicted => None,
                    };
                    if let Some(limit) = limit {
                        deadline.as_mut().reset(tokio::time::Instant::now() + limit);
                    }
                }
            }
            () = &mut deadline, if matches!(phase, Phase::Head | Phase::Idle) => {
                match phase {
                    Phase::Head => tracing::debug!(%peer, "closed: no complete request head within {:?}", limits.header_read),
                    _ => tracing::debug!(%peer, "closed: idle for {:?}", limits.keep_alive),
                }
                return;
            }
            changed = stopping.changed(), if !stop => {
                stop = changed.is_err() || *stopping.borrow();
            }
        }
    }
}

/// The socket, watched for the first byte of a request after an answer.
struct Watched {
    stream: TcpStream,
    state: Arc<ConnState>,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.state.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// A request in progress on a connection, from its head to the end of its
/// answer (or until hyper gives up on it).
struct InProgress(Arc<ConnState>);

impl InProgress {
    fn start(state: &Arc<ConnState>) -> InProgress {
        state.busy.fetch_add(1, Ordering::SeqCst);
        state.wake.notify_one();
        InProgress(state.clone())
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.reading.store(false, Ordering::SeqCst);
        }
        self.0.wake.notify_one();
    }
}

type ServiceFuture = Pin<Box<dyn Future<Output = Result<Response<TrackedBody>, Infallible>> + Send>>;

/// The router, per connection: adds the peer, bounds the body's arrival,
/// and marks the connection busy until its answer is sent.
#[derive(Clone)]
struct ConnService {
    app: TowerToHyperService<Router>,
    state: Arc<ConnState>,
    peer: SocketAddr,
    body_limit: Duration,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let in_progress = InProgress::start(&self.state);
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(ConnectInfo(self.peer));
        let req = Request::from_parts(parts, DeadlineBody::new(body, self.body_limit));
        let answer = self.app.call(req);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| TrackedBody { body, _in_progress: in_progress }))
        })
    }
}

/// An answer's body; while hyper holds it, the connection is busy.
struct TrackedBody {
    body: axum::body::Body,
    _in_progress: InProgress,
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that fails if it has not all arrived in time, so a
/// client that announces more than it sends cannot hold its handler (and
/// its connection) for ever. The handler sees a read error (the API answers
/// `400`), and hyper closes the connection after the answer.
struct DeadlineBody {
    body: Incoming,
    until: tokio::time::Instant,
    limit: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl DeadlineBody {
    fn new(body: Incoming, limit: Duration) -> DeadlineBody {
        DeadlineBody { body, until: tokio::time::Instant::now() + limit, limit, timer: None }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
struct BodyTimeout(Duration);

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                // Timers only for bodies that make the handler wait.
                let until = this.until;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout(this.limit).into()))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Open connections, oldest first.
#[derive(Debug, Default)]
struct Registry {
    inner: Mutex<Open>,
    next: AtomicU64,
    /// A connection ended (its descriptor is free).
    closed: Notify,
}

#[derive(Debug, Default)]
struct Open {
    conns: BTreeMap<u64, Arc<ConnState>>,
    /// Of those, closed to make room but not gone yet.
    evicting: usize,
}

/// Whether a new connection may be served.
enum Admission {
    Admit(u64, Arc<ConnState>),
    /// Room is being made: ask again once a connection has ended.
    Wait,
    /// Every connection has a request in progress.
    Refuse,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Open> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        self.lock().conns.len()
    }

    /// Registers a new connection if there is room, making room at the cap
    /// by evicting the oldest connection with nothing in progress. An
    /// evicted connection holds its descriptor until its driver has run, so
    /// at most [`EVICTION_SLACK`] may be pending before new ones wait.
    fn admit(&self, max: usize) -> Admission {
        let mut open = self.lock();
        if open.conns.len() - open.evicting >= max && !open.evict_oldest_idle() {
            return Admission::Refuse;
        }
        if open.conns.len() >= max.saturating_add(EVICTION_SLACK) {
            return Admission::Wait;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState::new());
        open.conns.insert(id, state.clone());
        Admission::Admit(id, state)
    }

    /// [`Registry::admit`], waiting (boundedly) while room is being made.
    async fn admit_or_wait(&self, max: usize) -> Option<(u64, Arc<ConnState>)> {
        for _ in 0..ADMIT_WAITS {
            match self.admit(max) {
                Admission::Admit(id, state) => return Some((id, state)),
                Admission::Refuse => return None,
                Admission::Wait => {
                    let _ = tokio::time::timeout(Duration::from_millis(10), self.closed.notified()).await;
                }
            }
        }
        None
    }

    fn evict_oldest_idle(&self) -> bool {
        self.lock().evict_oldest_idle()
    }
}

/// How many times a new connection waits (10 ms each) for evicted ones to go.
const ADMIT_WAITS: usize = 20;

impl Open {
    fn evict_oldest_idle(&mut self) -> bool {
        let victim = self
            .conns
            .values()
            .take(EVICTION_SCAN)
            .find(|c| !c.evicted.load(Ordering::SeqCst) && c.busy.load(Ordering::SeqCst) == 0);
        match victim {
            Some(c) => {
                c.evict();
                self.evicting += 1;
                true
            }
            None => false,
        }
    }
}

/// Removes a connection from the registry when its driver ends.
struct Registration {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut open = self.registry.lock();
        if let Some(state) = open.conns.remove(&self.id)
            && state.evicted.load(Ordering::SeqCst)
        {
            open.evicting -= 1;
        }
        drop(open);
        self.registry.closed.notify_one();
    }
}

/// Counts refusals between warnings, so a flood logs a line now and then.
#[derive(Debug, Default)]
struct Refusals {
    since_warned: u64,
    warned: Option<Instant>,
}

impl Refusals {
    const EVERY: Duration = Duration::from_secs(10);

    /// Counts one; true when it is time to warn (then `since_warned` is the count).
    fn count(&mut self) -> bool {
        self.since_warned += 1;
        let due = self.warned.is_none_or(|t| t.elapsed() >= Self::EVERY);
        if due {
            self.warned = Some(Instant::now());
        }
        due
    }
}

/// Answers `429 rate_limited` (the one status table's code for "too much at
/// once") on a connection the gateway has no room for, and closes it.
/// Non-blocking: a new connection's send buffer is empty, so the short
/// answer fits; what the client already sent is read away first, or the
/// close would reset the connection and lose the answer.
fn refuse(stream: TcpStream, max: usize, refusals: &mut Refusals) {
    if refusals.count() {
        tracing::warn!(
            "at the connection limit ({max}, every one with a request in progress): refused {} new connection(s)",
            refusals.since_warned
        );
        refusals.since_warned = 0;
    }
    let mut sink = [0u8; 4096];
    for _ in 0..4 {
        match stream.try_read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    let _ = stream.try_write(&refusal());
}

fn refusal() -> Vec<u8> {
    use crate::outcome::{ActionResult, Refusal};
    let id = ulid::Ulid::generate().to_string();
    let reason = Refusal::RateLimited("the gateway is at its connection limit; try again shortly".into());
    let result = ActionResult::refused(&id, &reason, None, "");
    let code = result.http_status();
    let body = serde_json::to_string(&result).unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
        code.as_u16(),
        code.canonical_reason().unwrap_or(""),
        body.len()
    );
    [head.into_bytes(), body.into_bytes()].concat()
}

/// An accept that failed. A failure of that one connection is nothing; out
/// of descriptors or memory, room is made and the loop pauses rather than
/// spinning on a listener that stays ready.
async fn accept_failed(e: &io::Error, registry: &Registry, errors: &mut Refusals) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted) {
        return;
    }
    let evicted = registry.evict_oldest_idle();
    if errors.count() {
        tracing::warn!(
            "cannot accept connections: {e} ({} time(s); {} open{})",
            errors.since_warned,
            registry.len(),
            if evicted { ", closing idle ones" } else { "" }
        );
        errors.since_warned = 0;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
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

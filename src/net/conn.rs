//! One connection's driver: the phase it is in (idle, reading a head,
//! busy), the timers each phase has, and the bodies that keep it honest.

use super::*;

/// hyper refuses a smaller read buffer.
pub(super) const MIN_BUF_SIZE: usize = 8192;

/// What a connection is doing, as far as its time limit goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
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
pub(super) struct ConnState {
    /// Requests being handled or answered.
    pub(super) busy: AtomicUsize,
    /// Bytes of a request have arrived since the last answer.
    pub(super) reading: AtomicBool,
    pub(super) evicted: AtomicBool,
    /// Tells the driver the phase may have changed.
    pub(super) wake: Notify,
}

impl ConnState {
    pub(super) fn new() -> ConnState {
        // A new connection is reading its first head from the start.
        ConnState {
            busy: AtomicUsize::new(0),
            reading: AtomicBool::new(true),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    pub(super) fn phase(&self) -> Phase {
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

    pub(super) fn bytes_arrived(&self) {
        if !self.reading.load(Ordering::Relaxed) && self.busy.load(Ordering::SeqCst) == 0 {
            self.reading.store(true, Ordering::SeqCst);
            self.wake.notify_one();
        }
    }

    pub(super) fn evict(&self) {
        self.evicted.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

/// Runs one connection to its end, or closes it (drops it) when its phase's
/// time is up, when it is evicted, or on shutdown unless a request is in
/// progress.
pub(super) async fn drive<C>(
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
pub(super) struct Watched {
    pub(super) stream: TcpStream,
    pub(super) state: Arc<ConnState>,
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
pub(super) struct InProgress(Arc<ConnState>);

impl InProgress {
    pub(super) fn start(state: &Arc<ConnState>) -> InProgress {
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
pub(super) struct ConnService {
    pub(super) app: TowerToHyperService<Router>,
    pub(super) state: Arc<ConnState>,
    pub(super) peer: SocketAddr,
    pub(super) body_limit: Duration,
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
pub(super) struct TrackedBody {
    pub(super) body: axum::body::Body,
    pub(super) _in_progress: InProgress,
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
pub(super) struct DeadlineBody {
    pub(super) body: Incoming,
    pub(super) until: tokio::time::Instant,
    pub(super) limit: Duration,
    pub(super) timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl DeadlineBody {
    pub(super) fn new(body: Incoming, limit: Duration) -> DeadlineBody {
        DeadlineBody { body, until: tokio::time::Instant::now() + limit, limit, timer: None }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub(super) struct BodyTimeout(Duration);

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

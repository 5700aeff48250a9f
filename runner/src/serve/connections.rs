//! The connections the front ends keep open (`--max-connections`). Unbounded, they were limited only by
//! the process's open files, and running out of those took the whole runner down: 200 TCP connections
//! that sent nothing to the gRPC port of a runner allowed 128 open files held every descriptor, tonic
//! retried the failing `accept` at once (a whole core, 3.2 s of CPU in 3 s), and neither REST nor gRPC
//! answered anyone until those clients went, which they never had to.
//!
//! So each front end holds at most `--max-connections`, fitted within the limit on open files (first
//! raised to its hard limit, as Go's runtime does: the soft limit's usual 1024 dates from select(2));
//! past it, new connections wait in the listen queue until one closes. A gRPC connection that has not
//! begun a call within `--client-timeout-s` is closed, and HTTP/2 pings close those whose peer has
//! gone, so that neither silent clients nor vanished ones keep a place. (REST's are actix's: it closes
//! one whose request head has not come within 5 s, or that is idle 5 s after an answer, and it backs
//! off when `accept` fails.)
//!
//! A gRPC connection is told GOAWAY once it is `--max-connection-age-s` old (600 by default) and closed
//! when the calls on it are over: one that made a call and then idled, answering pings, otherwise kept
//! its place for as long as its client liked, as did one whose client grants no window after its answer
//! was dropped. An age rather than an idle time because tonic bounds the one and not the other; it also
//! moves a long-lived client to a new replica once a Service behind it has scaled out, which is why
//! gRPC's own servers offer it (grpc-go's `MaxConnectionAge`).
//!
//! On both, a connection whose client takes nothing the server has for it, or acknowledges nothing, for
//! twice `--client-timeout-s` is closed by the kernel (`TCP_USER_TIMEOUT`): the pace drops such a
//! client's answer and frees what it held (`client_pace`), but nothing would write to its connection
//! again, and it kept its place among the open ones for as long as the client liked. Twice, so that the
//! pace, which logs and counts, has its turn first.

use std::future::Future;
use std::io;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use metrics::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tonic::transport::server::Connected;

/// Open files kept for what is not a connection: the model, the engine's library, the cache, logs,
/// the registry's sockets (a runner serving a model holds about 25 when idle).
const RESERVED_FILES: u64 = 128;

/// How long `accept` rests after failing for want of resources (open files, memory) rather than for
/// one connection's sake: at once, it would fail again at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(500);

/// How many connections each of the two front ends may hold: `requested` (0: no bound of its own), or
/// fewer when the limit on open files (raised to its hard limit first) leaves room for fewer; at least
/// one.
pub fn fit(requested: usize) -> usize {
    let Some(files) = raise_open_files() else {
        return if requested == 0 {
            usize::MAX
        } else {
            requested
        };
    };
    let room = usize::try_from(files.saturating_sub(RESERVED_FILES) / 2).unwrap_or(usize::MAX);
    if requested == 0 {
        return room.max(1);
    }
    if requested > room {
        tracing::warn!(
            open_files = files,
            connections = room.max(1),
            "the limit on open files leaves room for fewer connections than --max-connections; \
             raise the limit (ulimit -n) to hold more"
        );
    }
    requested.min(room).max(1)
}

/// The limit on open files after raising it to the hard limit; `None` when unlimited or unknown.
fn raise_open_files() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the rlimit it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the rlimit it is given; failing, it changes nothing.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Makes the kernel close `socket` when what is sent on it stays unacknowledged, or unsent because the
/// client's window is closed, for twice `client_timeout` (TCP_USER_TIMEOUT; Linux). Failing, the
/// connection is only without that bound (logged at debug).
pub fn close_when_stalled(socket: &impl AsFd, client_timeout: Duration) {
    let stalled = client_timeout.saturating_mul(2);
    if let Err(e) = socket2::SockRef::from(socket).set_tcp_user_timeout(Some(stalled)) {
        tracing::debug!(error = %e, "cannot set TCP_USER_TIMEOUT on a connection");
    }
}

/// How long a connection with nothing to send may be silent before the kernel probes its client, how
/// often then, and how many unanswered probes close it: 60 s + 3 × 10 s, about gRPC's HTTP/2 pings'
/// 60 s + 20 s.
const PROBE_AFTER: Duration = Duration::from_secs(60);
const PROBE_EVERY: Duration = Duration::from_secs(10);
const PROBES: u32 = 3;

/// Makes the kernel probe `socket`'s client while nothing is sent either way (TCP keepalive), and close
/// the connection when it does not answer. A REST client that vanished without closing (a killed pod, a
/// lost route) while its request runs would otherwise never read as gone: nothing is sent until the
/// answer, and the run would go on for it to `--run-timeout-s` (gRPC's connections have HTTP/2 pings).
/// Failing, the connection is only without that probe (logged at debug).
pub fn probe_when_silent(socket: &impl AsFd) {
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(PROBE_AFTER)
        .with_interval(PROBE_EVERY)
        .with_retries(PROBES);
    if let Err(e) = socket2::SockRef::from(socket).set_tcp_keepalive(&keepalive) {
        tracing::debug!(error = %e, "cannot set TCP keepalive on a connection");
    }
}

/// The longest a gRPC connection stays open, from `--max-connection-age-s`: `None` for 0 (or not a
/// number); at least a second, so that a tiny age does not send every connection GOAWAY as it opens,
/// and at most a year.
pub fn age(seconds: f64) -> Option<Duration> {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    (seconds > 0.0).then(|| {
        Duration::try_from_secs_f64(seconds)
            .map_or(YEAR, |age| age.clamp(Duration::from_secs(1), YEAR))
    })
}

/// The gRPC connections `listener` accepts, at most `max` open at once; with `client_timeout`, each
/// closed when it has not begun a call within it, or when its client takes nothing for twice as long
/// ([`close_when_stalled`]).
pub fn accepted(
    listener: TcpListener,
    max: usize,
    client_timeout: Option<Duration>,
) -> impl Stream<Item = io::Result<Connection>> + Send + 'static {
    let places = Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS)));
    let open = super::metrics::connections("grpc");
    futures_util::stream::unfold(listener, move |listener| {
        let (places, open) = (places.clone(), open.clone());
        async move {
            // The semaphore is never closed.
            let place = places.acquire_owned().await.ok()?;
            let stream = accept(&listener).await;
            // Without TCP_NODELAY an answer's trailers wait for the client's delayed ACK of its data,
            // and a client that sends a call's end in a frame of its own (tonic's, grpc-go's) waited
            // 40 ms for every call.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY on a gRPC connection");
            }
            if let Some(timeout) = client_timeout {
                close_when_stalled(&stream, timeout);
            }
            let connection = Connection {
                stream,
                _place: place,
                called: Arc::new(AtomicBool::new(false)),
                silent_until: client_timeout.map(|t| Box::pin(tokio::time::sleep(t))),
                _open: Open::new(open),
            };
            Some((Ok(connection), listener))
        }
    })
}

async fn accept(listener: &TcpListener) -> TcpStream {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => return stream,
            // The one connection's trouble: the next may be fine.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                ) => {}
            Err(e) => {
                tracing::error!(
                    error = %e,
                    "cannot accept a gRPC connection (lower --max-connections, or raise the limit on \
                     open files); trying again in 0.5 s"
                );
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// An accepted gRPC connection, holding its place among those open.
pub struct Connection {
    stream: TcpStream,
    _place: OwnedSemaphorePermit,
    called: Arc<AtomicBool>,
    /// Until the first call begins: the connection is closed when this fires first.
    silent_until: Option<Pin<Box<Sleep>>>,
    _open: Open,
}

/// What a call on a connection finds among its request's extensions (tonic puts it there).
#[derive(Clone)]
pub struct ConnectionInfo {
    called: Arc<AtomicBool>,
}

impl ConnectionInfo {
    /// A call began on this connection: it is no longer silent.
    pub fn called(&self) {
        self.called.store(true, Ordering::Relaxed);
    }
}

impl Connected for Connection {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        ConnectionInfo {
            called: self.called.clone(),
        }
    }
}

/// One on the open connections' gauge while it lives (REST's lives in the connection's extensions).
pub struct Open(Gauge);

impl Open {
    pub fn new(gauge: Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(silent_until) = &mut this.silent_until {
            if this.called.load(Ordering::Relaxed) {
                this.silent_until = None;
            } else if silent_until.as_mut().poll(cx).is_ready() {
                // hyper closes the connection on a read error; no call is on it to be lost.
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no call began on this connection within --client-timeout-s",
                )));
            }
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, data)
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio::io::AsyncReadExt;

    async fn listening() -> (TcpListener, std::net::SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        (listener, address)
    }

    #[test]
    fn the_bound_fits_within_the_open_files_limit_and_0_takes_all_it_allows() {
        let files = raise_open_files().expect("this test's host limits open files");
        let room = usize::try_from((files - RESERVED_FILES) / 2).unwrap();
        assert_eq!(fit(1), 1);
        assert_eq!(fit(usize::MAX), room);
        assert_eq!(fit(0), room);
    }

    #[test]
    fn a_connection_age_of_0_is_no_limit_and_a_huge_one_a_year() {
        assert_eq!(age(0.0), None);
        assert_eq!(age(f64::NAN), None);
        assert_eq!(age(-1.0), None);
        assert_eq!(age(2.5), Some(Duration::from_millis(2500)));
        assert_eq!(age(1e-9), Some(Duration::from_secs(1)));
        assert_eq!(age(1e300), Some(Duration::from_secs(365 * 24 * 3600)));
    }

    #[tokio::test]
    async fn connections_are_accepted_without_nagle_delay() {
        let (listener, address) = listening().await;
        let mut incoming = Box::pin(accepted(listener, 4, None));
        let _client = TcpStream::connect(address).await.unwrap();
        let accepted = incoming.next().await.unwrap().unwrap();
        assert!(accepted.stream.nodelay().unwrap());
    }

    #[tokio::test]
    async fn past_the_bound_a_connection_waits_until_one_closes() {
        let (listener, address) = listening().await;
        let mut incoming = Box::pin(accepted(listener, 2, None));
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(TcpStream::connect(address).await.unwrap());
        }
        let first = incoming.next().await.unwrap().unwrap();
        let _second = incoming.next().await.unwrap().unwrap();
        let third = tokio::time::timeout(Duration::from_millis(200), incoming.next()).await;
        assert!(third.is_err(), "a third connection was accepted beside two");
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(5), incoming.next()).await;
        assert!(matches!(third, Ok(Some(Ok(_)))));
    }

    #[tokio::test]
    async fn the_kernel_closes_a_connection_whose_client_takes_nothing() {
        use tokio::io::AsyncWriteExt;
        let (listener, address) = listening().await;
        let client = tokio::net::TcpSocket::new_v4().unwrap();
        client.set_recv_buffer_size(4096).unwrap();
        let _client = client.connect(address).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        close_when_stalled(&server, Duration::from_millis(100));
        let chunk = vec![0u8; 64 << 10];
        let written = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Err(e) = server.write_all(&chunk).await {
                    return e;
                }
            }
        })
        .await
        .expect("the connection was not closed within 10 s");
        assert_eq!(written.kind(), io::ErrorKind::TimedOut, "{written}");
    }

    #[tokio::test]
    async fn a_silent_connection_is_probed() {
        let (listener, address) = listening().await;
        let _client = TcpStream::connect(address).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        probe_when_silent(&server);
        let socket = socket2::SockRef::from(&server);
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), PROBE_AFTER);
        assert_eq!(socket.tcp_keepalive_interval().unwrap(), PROBE_EVERY);
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), PROBES);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_call_is_closed_at_its_deadline_and_one_with_a_call_is_not() {
        let (listener, address) = listening().await;
        let mut incoming = Box::pin(accepted(listener, 4, Some(Duration::from_secs(2))));
        let _silent_client = TcpStream::connect(address).await.unwrap();
        let mut silent = incoming.next().await.unwrap().unwrap();
        let _calling_client = TcpStream::connect(address).await.unwrap();
        let mut calling = incoming.next().await.unwrap().unwrap();
        calling.connect_info().called();

        let started = tokio::time::Instant::now();
        let mut byte = [0u8; 1];
        let closed = silent.read(&mut byte).await.unwrap_err();
        assert_eq!(closed.kind(), io::ErrorKind::TimedOut);
        assert!(
            closed.to_string().contains("--client-timeout-s"),
            "{closed}"
        );
        assert_eq!(started.elapsed(), Duration::from_secs(2));

        let waited = tokio::time::timeout(Duration::from_secs(60), calling.read(&mut byte)).await;
        assert!(waited.is_err(), "a connection that began a call was closed");
    }
}

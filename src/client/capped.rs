//! A connector that keeps at most N connections open at once.
//!
//! hyper-util's pool opens a new connection whenever a request finds no idle one, even if one
//! is about to come back; under steady load that slowly grows the number of connections past
//! the number of requests in flight. A cap bounds the sockets (and TLS handshakes) a client
//! ever holds against the service.
//!
//! A connect that waits for a place under the cap waits no longer than the connect timeout:
//! when an idle connection wins the race, hyper-util finishes the losing connect in a task of
//! its own, and that task must end.
//!
//! A failed connect is evidence of an outage only when nothing of ours can explain it. A flood
//! on a cold (or deliberately emptied) pool opens hundreds of connects at once, and some of
//! them time out against a healthy service whose accept queue overflowed; descriptors or ports
//! can run out here. An attacker can cause both, so both are [`Crowded`]: overload, never a
//! reason to let anyone in.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use pin_project::pin_project;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The most connects under way at once for a failed one still to count as evidence that the
/// service is down. Past it, the failure may be our own burst's doing. A real outage at a
/// higher rate of new connections is then answered as overload (503): fail safe.
pub(crate) const QUIET_CONNECTS: usize = 8;

/// Wraps a connector so that each connection holds a permit until it is closed.
#[derive(Clone)]
pub(crate) struct CappedConnector<C> {
    inner: C,
    permits: Arc<Semaphore>,
    wait: Duration,
    /// Connects under way now.
    connecting: Arc<AtomicUsize>,
}

impl<C> CappedConnector<C> {
    pub(crate) fn new(inner: C, max_connections: usize, wait: Duration) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(max_connections)),
            wait,
            connecting: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// A connect that failed for a reason of ours rather than the service's: the cap stayed full,
/// a burst of our own connects was under way, or a local resource ran out. Classed as
/// overload by the transport.
#[derive(Debug)]
pub(crate) struct Crowded {
    why: String,
    source: Option<BoxError>,
}

impl Crowded {
    pub(crate) fn new(why: &str) -> Self {
        Self {
            why: why.to_owned(),
            source: None,
        }
    }
}

impl std::fmt::Display for Crowded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Crowded {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Counts a connect under way for as long as it lives.
struct Connecting(Arc<AtomicUsize>);

impl Connecting {
    /// Enters, and says how many connects are under way with this one.
    fn enter(count: &Arc<AtomicUsize>) -> (Self, usize) {
        let now = count.fetch_add(1, Ordering::Relaxed) + 1;
        (Self(Arc::clone(count)), now)
    }

    fn now(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl Drop for Connecting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether a failed connect shows the service (or the way to it) down: refused, reset,
/// unreachable, a name that does not resolve, or a timeout. Anything else (out of descriptors
/// or ports, say) is ours.
fn shows_service_down(error: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::*;
    let mut current = Some(error);
    while let Some(error) = current {
        // hyper-util's resolver failure carries no type of its own, only this message.
        if error.to_string() == "dns error" {
            return true;
        }
        if let Some(io) = error.downcast_ref::<io::Error>() {
            if matches!(
                io.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | HostUnreachable
                    | NetworkUnreachable
                    | TimedOut
            ) {
                return true;
            }
            // An io::Error hides the error it wraps from `source()`.
            current = io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static));
            continue;
        }
        current = error.source();
    }
    false
}

impl<C> Service<Uri> for CappedConnector<C>
where
    C: Service<Uri> + Clone + Send + 'static,
    C::Future: Send,
    C::Error: Into<BoxError>,
{
    type Response = CappedIo<C::Response>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        // The inner connector was made ready above; take that instance, leave a clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let permits = Arc::clone(&self.permits);
        let connecting = Arc::clone(&self.connecting);
        let wait = self.wait;
        Box::pin(async move {
            let crowded = |why: String, source: Option<BoxError>| -> BoxError {
                Box::new(Crowded { why, source })
            };
            let permit = tokio::time::timeout(wait, permits.acquire_owned())
                .await
                .map_err(|_| crowded("every connection under the cap stayed busy".into(), None))?
                .map_err(|_| crowded("connection cap closed".into(), None))?;
            let (under_way, at_start) = Connecting::enter(&connecting);
            match inner.call(uri).await {
                Ok(io) => Ok(CappedIo {
                    io,
                    _permit: permit,
                }),
                Err(error) => {
                    let error: BoxError = error.into();
                    let crowd = at_start.max(under_way.now());
                    if crowd > QUIET_CONNECTS {
                        Err(crowded(
                            format!("a connect failed amid {crowd} connects of our own"),
                            Some(error),
                        ))
                    } else if shows_service_down(&*error) {
                        Err(error)
                    } else {
                        Err(crowded(
                            "a connect failed for a local reason".into(),
                            Some(error),
                        ))
                    }
                }
            }
        })
    }
}

/// A connection that gives its permit back when dropped.
#[pin_project]
pub(crate) struct CappedIo<T> {
    #[pin]
    io: T,
    _permit: OwnedSemaphorePermit,
}

impl<T: Connection> Connection for CappedIo<T> {
    fn connected(&self) -> Connected {
        // Keeps what the inner stream negotiated (ALPN h2) and whether it goes through a proxy
        // visible to the pool. Leaves out the connector's extras (`HttpInfo`, the addresses),
        // which hyper-util would copy into every response's extensions (two allocations per
        // answer) and which nothing here reads.
        let inner = self.io.connected();
        let connected = Connected::new().proxy(inner.is_proxied());
        if inner.is_negotiated_h2() {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

impl<T: Read> Read for CappedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl<T: Write> Write for CappedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write_vectored(cx, bufs)
    }
}

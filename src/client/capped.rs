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

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use pin_project::pin_project;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Wraps a connector so that each connection holds a permit until it is closed.
#[derive(Clone)]
pub(crate) struct CappedConnector<C> {
    inner: C,
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl<C> CappedConnector<C> {
    pub(crate) fn new(inner: C, max_connections: usize, wait: Duration) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(max_connections)),
            wait,
        }
    }
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
        let wait = self.wait;
        Box::pin(async move {
            let permit = tokio::time::timeout(wait, permits.acquire_owned())
                .await
                .map_err(|_| BoxError::from("every connection under the cap stayed busy"))?
                .map_err(|_| BoxError::from("connection cap closed"))?;
            let io = inner.call(uri).await.map_err(Into::into)?;
            Ok(CappedIo {
                io,
                _permit: permit,
            })
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
        // Keeps what the inner stream negotiated (ALPN h2) visible to the pool.
        self.io.connected()
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

//! The pooled hyper transport, TLS roots, and how its failures are told apart.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;

use super::capped::{CappedConnector, Crowded};
use super::proxy::{Proxies, ProxyConnector, ProxyRefused};
use super::response::AnswerHeaders;
use crate::Error;
use crate::credentials::CredentialsError;
use crate::error::{ResponseError, ResponseErrorKind, TransportError, TransportErrorKind};
use crate::protocol::{REQUEST_ID_HEADER, RETRY_AFTER_HEADER};

/// How long an idle pooled connection is kept. The gateway closes idle ones after about a
/// minute and a half; closing ours first avoids racing its close.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(55);

/// How the client speaks TLS: which certificate authorities it trusts, or a rustls
/// configuration of your own. By default Mozilla's roots (feature `webpki-roots`), else the
/// operating system's (feature `native-roots`).
///
/// ```
/// use tower_aliyun_captcha::client::Tls;
/// use tower_aliyun_captcha::{Client, Credentials};
///
/// let mut roots = rustls::RootCertStore::empty();
/// # let ca_certificate_der: Vec<rustls::pki_types::CertificateDer<'static>> = Vec::new();
/// // A private CA (a TLS-inspecting proxy, a gateway of your own): its certificate, DER-encoded.
/// roots.add_parsable_certificates(ca_certificate_der);
/// let client = Client::builder()
///     .credentials(Credentials::new("id", "secret"))
///     .endpoint("https://captcha-gateway.corp.example")
///     .tls(Tls::roots(roots))
///     .build()?;
/// # let _ = client;
/// # Ok::<_, tower_aliyun_captcha::client::BuildError>(())
/// ```
#[derive(Clone, Default)]
pub struct Tls(Roots);

#[derive(Clone, Default)]
enum Roots {
    /// webpki-roots when that feature is on, else the operating system's store.
    #[default]
    Default,
    #[cfg(feature = "webpki-roots")]
    Webpki,
    #[cfg(feature = "native-roots")]
    Native,
    Custom(RootCertStore),
    Config(Box<rustls::ClientConfig>),
}

impl Tls {
    /// Mozilla's root set, compiled in (feature `webpki-roots`, on by default).
    #[cfg(feature = "webpki-roots")]
    pub fn webpki() -> Self {
        Self(Roots::Webpki)
    }

    /// The operating system's certificate store (feature `native-roots`).
    #[cfg(feature = "native-roots")]
    pub fn native() -> Self {
        Self(Roots::Native)
    }

    /// Exactly the authorities in `roots`.
    pub fn roots(roots: RootCertStore) -> Self {
        Self(Roots::Custom(roots))
    }

    /// A rustls configuration of your own: for another crypto provider (aws-lc-rs, a FIPS
    /// one), client certificates or pinned roots. Its ALPN protocols are replaced with HTTP/2
    /// and HTTP/1.1.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tower_aliyun_captcha::client::Tls;
    /// use tower_aliyun_captcha::{Client, Credentials};
    ///
    /// # #[allow(deprecated)] // ring's provider, for lack of post-quantum key exchange
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let config = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()?
    ///     .with_root_certificates(rustls::RootCertStore::empty())
    ///     .with_no_client_auth();
    /// let client = Client::builder()
    ///     .credentials(Credentials::new("id", "secret"))
    ///     .tls(Tls::config(config))
    ///     .build()?;
    /// # let _ = client;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    pub fn config(config: rustls::ClientConfig) -> Self {
        Self(Roots::Config(Box::new(config)))
    }
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let which = match &self.0 {
            Roots::Default => "default",
            #[cfg(feature = "webpki-roots")]
            Roots::Webpki => "webpki",
            #[cfg(feature = "native-roots")]
            Roots::Native => "native",
            Roots::Custom(_) => "custom roots",
            Roots::Config(_) => "custom config",
        };
        write!(f, "Tls({which})")
    }
}

pub(crate) struct Options {
    pub(crate) connect_timeout: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) max_connections: usize,
    pub(crate) tls: Tls,
    pub(crate) proxies: Option<Proxies>,
}

pub(crate) struct Transport {
    client: HyperClient<CappedConnector<HttpsConnector<ProxyConnector>>, Full<Bytes>>,
    max_response_bytes: usize,
}

thread_local! {
    /// Set when hyper spawns a task on this thread: see [`WatchedExecutor`].
    static SPAWNED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Tokio's executor, noting on the spawning thread that hyper spawned a task. hyper-util hands
/// an HTTP/1 connection back to its pool from a task it spawns when the answer's body is still
/// being read as its head arrives; when it spawns nothing, the connection went back before the
/// answer was handed over (or it is HTTP/2, shared), and the next request finds it in the pool.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WatchedExecutor;

impl<F> hyper::rt::Executor<F> for WatchedExecutor
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        SPAWNED.with(|spawned| spawned.set(true));
        TokioExecutor::new().execute(future);
    }
}

/// A future that records whether hyper spawned a task while polling it.
#[pin_project::pin_project]
struct NoteSpawns<F> {
    #[pin]
    inner: F,
    spawned: bool,
}

impl<F: std::future::Future> std::future::Future for NoteSpawns<F> {
    type Output = (F::Output, bool);

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let outer = SPAWNED.with(|spawned| spawned.replace(false));
        let polled = this.inner.poll(cx);
        let spawned_now = SPAWNED.with(|spawned| spawned.replace(outer));
        *this.spawned |= spawned_now;
        polled.map(|output| (output, *this.spawned))
    }
}

pub(crate) fn connector_builder(
    tls: Tls,
) -> Result<
    hyper_rustls::HttpsConnectorBuilder<hyper_rustls::builderstates::WantsSchemes>,
    crate::BoxError,
> {
    // rustls deprecates ring's provider for lacking post-quantum key exchange. ring stays the
    // default here (no C toolchain to build); `Tls::config` takes aws-lc-rs.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    match tls.0 {
        #[cfg(feature = "webpki-roots")]
        Roots::Default | Roots::Webpki => builder
            .with_provider_and_webpki_roots(provider)
            .map_err(crate::BoxError::from),
        #[cfg(all(feature = "native-roots", not(feature = "webpki-roots")))]
        Roots::Default => builder
            .with_provider_and_native_roots(provider)
            .map_err(crate::BoxError::from),
        #[cfg(feature = "native-roots")]
        Roots::Native => builder
            .with_provider_and_native_roots(provider)
            .map_err(crate::BoxError::from),
        #[cfg(not(any(feature = "webpki-roots", feature = "native-roots")))]
        Roots::Default => Err(
            "no trusted roots: enable the webpki-roots or native-roots feature, or call \
             ClientBuilder::tls"
                .into(),
        ),
        Roots::Custom(store) => {
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(crate::BoxError::from)?
                .with_root_certificates(store)
                .with_no_client_auth();
            Ok(builder.with_tls_config(config))
        }
        Roots::Config(mut config) => {
            // The connector sets ALPN (h2, http/1.1) itself.
            config.alpn_protocols.clear();
            Ok(builder.with_tls_config(*config))
        }
    }
}

impl Transport {
    pub(crate) fn new(options: Options) -> Result<Self, crate::BoxError> {
        let mut http = HttpConnector::new();
        // Endpoints were checked to be https:// unless plain HTTP was allowed.
        http.enforce_http(false);
        http.set_connect_timeout(Some(options.connect_timeout));
        http.set_nodelay(true);
        http.set_keepalive(Some(Duration::from_secs(60)));
        let builder = connector_builder(options.tls)?;
        let https = builder
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(ProxyConnector::new(http, options.proxies));
        let client = HyperClient::builder(WatchedExecutor)
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            // hyper re-sends only a request it never started to write (a pooled connection
            // found closed): safe for single-use params.
            .retry_canceled_requests(true)
            .build(CappedConnector::new(
                https,
                options.max_connections,
                options.connect_timeout,
            ));
        Ok(Self {
            client,
            max_response_bytes: options.max_response_bytes,
        })
    }

    /// Sends the request and reads the whole (capped) answer.
    pub(crate) async fn send(&self, request: Request<Bytes>) -> Result<Answer, Error> {
        let (response, spawned) = NoteSpawns {
            inner: self.client.request(request.map(Full::new)),
            spawned: false,
        }
        .await;
        let response = response.map_err(classify)?;
        let status = response.status().as_u16();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let headers = AnswerHeaders {
            retry_after: header(RETRY_AFTER_HEADER)
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|&ms| ms > 0)
                .map(Duration::from_millis),
            request_id: response.headers().get(REQUEST_ID_HEADER).cloned(),
        };
        let body = read_capped(response.into_body(), self.max_response_bytes)
            .await
            .map_err(|error| match error {
                BodyError::TooLarge => Error::from(ResponseError::new(
                    ResponseErrorKind::TooLarge,
                    status,
                    format!("the body is over {} bytes", self.max_response_bytes),
                )),
                BodyError::Read(error) => TransportError::possibly_sent(TransportErrorKind::Io)
                    .with_source(Box::new(error))
                    .into(),
            })?;
        // hyper-util hands an HTTP/1 connection back to its pool from a task it spawns when
        // the answer's body was still on its way as its head arrived. Then yield once, so that
        // task usually runs before our caller starts its next request, which would otherwise
        // find the pool empty and open a new connection. When nothing was spawned, the
        // connection is in the pool already: no yield, no wake-up.
        if spawned {
            tokio::task::yield_now().await;
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// Why a body could not be read.
enum BodyError {
    /// Over the cap.
    TooLarge,
    Read(hyper::Error),
}

/// Reads a whole body of at most `max` bytes. A body in one piece (the usual answer) is kept
/// as it came, without a copy.
async fn read_capped(mut body: hyper::body::Incoming, max: usize) -> Result<Bytes, BodyError> {
    let mut first: Option<Bytes> = None;
    let mut rest: Option<bytes::BytesMut> = None;
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Read)?;
        let Ok(data) = frame.into_data() else {
            // Trailers: not part of the answer.
            continue;
        };
        total = total.saturating_add(data.len());
        if total > max {
            return Err(BodyError::TooLarge);
        }
        match (&mut first, &mut rest) {
            (None, _) => first = Some(data),
            (Some(head), None) => {
                let mut joined = bytes::BytesMut::with_capacity(total);
                joined.extend_from_slice(head);
                joined.extend_from_slice(&data);
                rest = Some(joined);
            }
            (Some(_), Some(joined)) => joined.extend_from_slice(&data),
        }
    }
    Ok(match (first, rest) {
        (_, Some(joined)) => joined.freeze(),
        (Some(only), None) => only,
        (None, None) => Bytes::new(),
    })
}

/// What the service answered: status, what its headers said, and the body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: AnswerHeaders,
    pub(crate) body: Bytes,
}

/// Whether a rustls error is anywhere in `error`'s chain. An `io::Error` hides the error it
/// wraps from `source()` (it returns that error's source instead), so it is opened with
/// `get_ref()`: TLS failures arrive as an io::Error inside an io::Error.
fn is_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<rustls::Error>() {
            return true;
        }
        current = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    false
}

/// Whether a `T` is anywhere in `error`'s chain.
fn caused_by<T: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<T>() {
            return true;
        }
        current = error.source();
    }
    false
}

fn classify(error: hyper_util::client::legacy::Error) -> Error {
    if error.is_connect() {
        let kind = if caused_by::<ProxyRefused>(&error) {
            TransportErrorKind::Proxy
        } else if is_tls(&error) {
            TransportErrorKind::Tls
        } else if caused_by::<Crowded>(&error) {
            // Our own burst or resources, not the service: never evidence of an outage.
            TransportErrorKind::Overloaded
        } else {
            TransportErrorKind::Connect
        };
        // A connect error means no connection existed, so no byte of the request was sent.
        TransportError::unsent(kind)
            .with_source(Box::new(error))
            .into()
    } else {
        TransportError::possibly_sent(TransportErrorKind::Io)
            .with_source(Box::new(error))
            .into()
    }
}

pub(crate) fn timed_out() -> Error {
    // The deadline may strike after the request was written: assume it was.
    TransportError::possibly_sent(TransportErrorKind::Timeout).into()
}

/// Out of time while the service answered other verifications: held up on our side (a flood,
/// a starved runtime), which an attacker can cause; never evidence of an outage. The request
/// may have been written.
pub(crate) fn timed_out_under_load() -> Error {
    TransportError::possibly_sent(TransportErrorKind::Overloaded)
        .with_source(Box::new(Crowded::new(
            "out of time while the service answered other verifications",
        )))
        .into()
}

pub(crate) fn overloaded() -> Error {
    TransportError::unsent(TransportErrorKind::Overloaded).into()
}

pub(crate) fn no_endpoint() -> Error {
    TransportError::unsent(TransportErrorKind::Connect).into()
}

pub(crate) fn invalid_request(error: http::Error) -> Error {
    CredentialsError::Provider(format!(
        "the credentials or endpoint cannot be sent in an HTTP header ({error})"
    ))
    .into()
}

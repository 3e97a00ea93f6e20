//! The signed verification client.
//!
//! One long-lived [`Client`], cheap to clone, holds a pool of keep-alive connections (HTTP/1.1,
//! or HTTP/2 where TLS negotiates it) and signs each call with ACS3-HMAC-SHA256.
//!
//! A `CaptchaVerifyParam` is single-use, so the client **never re-sends a request that may have
//! reached the server**: it moves on to the next endpoint only when no connection could be
//! opened, within the same deadline. [`Client`] shows a verification; [`ClientBuilder`] the
//! settings.

mod builder;
mod capped;
mod endpoint;
pub(crate) mod proxy;
// The signed request, with a given date and nonce: for the emulator crate's tests of what it
// checks. Not an API of its own.
#[doc(hidden)]
pub mod request;
mod response;
mod transport;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub use builder::{BuildError, ClientBuilder};
pub use endpoint::{Endpoint, InvalidEndpoint, Region, UnknownRegion};
pub use proxy::Proxy;
pub(crate) use proxy::ProxyConnector;
// Public for the benchmarks and fuzz targets only.
#[doc(hidden)]
pub use response::parse_response;
pub use transport::Tls;
pub(crate) use transport::connector_builder;

use crate::Error;
use crate::credentials::{Credentials, CredentialsCache, CredentialsError};
use crate::verify::{CaptchaVerifyParam, Verification, Verify, VerifyRequest};
use tracing::Instrument as _;

/// The default deadline of a whole verification: Alibaba's own samples use 5 seconds.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default deadline for opening one connection: well within [`DEFAULT_TIMEOUT`], so that a
/// black-holed endpoint leaves time for its dual-stack twin.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a verification waits, by default, for one of the client's
/// [connection slots](ClientBuilder::max_connections) before it gives up as overloaded.
pub(crate) const DEFAULT_CONNECTION_WAIT: Duration = Duration::from_millis(250);
/// The default cap on a response body. Real answers are a few hundred bytes.
pub(crate) const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The default cap on connections open at once, across endpoints, and so on verifications in
/// flight through one client. The layer's default bound is the same number.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// Verifies params with Alibaba Cloud's `VerifyIntelligentCaptcha` API.
///
/// ```no_run
/// use tower_aliyun_captcha::{CaptchaVerifyParam, Client, SceneId, VerifyRequest};
///
/// # async fn run(param_from_the_page: String) -> Result<(), Box<dyn std::error::Error>> {
/// // Credentials, region and endpoint from the environment; one client (cheap to clone) per app.
/// let client = Client::from_env()?.build()?;
/// let param = CaptchaVerifyParam::new(param_from_the_page)?;
/// let verdict = client
///     .verify(VerifyRequest::new(param).with_scene(SceneId::new("login001")?))
///     .await?;
/// // Params are single-use: the same one again fails (F018).
/// println!("passed: {}, code {}", verdict.passed(), verdict.code());
/// # Ok(()) }
/// ```
///
/// Tests and examples run it against the emulator (the `aliyun-captcha-emulator` crate) with
/// `.endpoint(emulator.url()).allow_http(true)`.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// What a client and its clones share; made by [`ClientBuilder::build`].
struct Inner {
    transport: transport::Transport,
    endpoints: Vec<Endpoint>,
    credentials: Arc<CredentialsCache>,
    timeout: Duration,
    /// One per connection: a verification holds one from before hyper sees it until its answer
    /// is read, so hyper never has to open a connection past the cap.
    slots: Arc<tokio::sync::Semaphore>,
    connection_wait: Duration,
    /// The degraded budgets of the layers that verify with this client.
    budgets: crate::layer::SharedBudgets,
    /// When the service last answered anything, in nanoseconds since `epoch`: a verification
    /// that times out while the service answers others was held up here (a flood, a starved
    /// runtime), which is overload, not an outage.
    answered: std::sync::atomic::AtomicU64,
    epoch: Instant,
}

impl Client {
    /// A client over what its builder put together.
    fn from_parts(
        transport: transport::Transport,
        endpoints: Vec<Endpoint>,
        credentials: Arc<CredentialsCache>,
        timeout: Duration,
        max_connections: usize,
        connection_wait: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                transport,
                endpoints,
                credentials,
                timeout,
                slots: Arc::new(tokio::sync::Semaphore::new(max_connections)),
                connection_wait,
                budgets: crate::layer::SharedBudgets::default(),
                answered: std::sync::atomic::AtomicU64::new(0),
                epoch: Instant::now(),
            }),
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.inner.endpoints)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts configuring a client from the environment, so that a deployment (or a test) can
    /// point an app at a region or an emulator with variables alone:
    ///
    /// | variable | what |
    /// |---|---|
    /// | `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET`, `ALIBABA_CLOUD_SECURITY_TOKEN` | the credentials (and the rest of the default chain: [`DefaultChain`](crate::credentials::DefaultChain)) |
    /// | `ALIBABA_CLOUD_REGION_ID` | the region (default `cn-shanghai`) |
    /// | `ALIBABA_CLOUD_CAPTCHA_ENDPOINT` | an endpoint URL instead of the region's; `http://` only on the loopback, unless `ALIBABA_CLOUD_CAPTCHA_ALLOW_HTTP=true` |
    /// | `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY` | the outbound proxy (see [`Proxy`]) |
    ///
    /// Anything set on the builder afterwards wins.
    pub fn from_env() -> Result<ClientBuilder, BuildError> {
        ClientBuilder::from_lookup(|name| std::env::var(name).ok())
    }

    /// Starts configuring a client from nothing ([`from_env`](Self::from_env) starts from the
    /// environment).
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The endpoints, in the order they are tried.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.inner.endpoints
    }

    /// The signed request [`verify`](Self::verify) would send to the first endpoint, dated now
    /// with a fresh nonce, without sending it: for your own HTTP stack, or to look at. Send it
    /// at most once, and read the answer with [`parse_response`].
    ///
    /// ```
    /// use tower_aliyun_captcha::{CaptchaVerifyParam, Client, Credentials, VerifyRequest};
    ///
    /// let client = Client::builder()
    ///     .credentials(Credentials::new("id", "secret"))
    ///     .build()
    ///     .unwrap();
    /// let param = CaptchaVerifyParam::new("eyJ4IjoxfQ==").unwrap();
    /// let request = client.signed_request(&VerifyRequest::new(param)).unwrap();
    /// assert_eq!(
    ///     request.headers()["x-acs-action"],
    ///     "VerifyIntelligentCaptcha"
    /// );
    /// assert!(
    ///     request.headers()["authorization"]
    ///         .to_str()
    ///         .unwrap()
    ///         .starts_with("ACS3-HMAC-SHA256 ")
    /// );
    /// ```
    pub fn signed_request(
        &self,
        request: &VerifyRequest,
    ) -> Result<http::Request<bytes::Bytes>, Error> {
        let credentials = self.inner.credentials.now().ok_or_else(|| {
            CredentialsError::Provider(
                "no credentials fetched yet: verify once (or run Client::check) first".into(),
            )
        })?;
        sign_now(&self.inner.endpoints[0], &credentials, request)
    }

    /// Verifies one param. A failed captcha is a verdict (`Ok` with `passed()` false and its
    /// code), not an error; an error means no verdict could be had.
    pub fn verify(&self, request: VerifyRequest) -> VerifyFuture {
        let inner = Arc::clone(&self.inner);
        VerifyFuture(Box::pin(async move { inner.verify(request).await }))
    }

    /// Checks, with one verification of a dummy param, that the endpoint, credentials,
    /// permissions and clock all work: any verdict (the dummy fails, of course) means they do.
    /// Run it at startup, so that a wrong key, a missing permission, a wrong region or a skewed
    /// clock stops the deployment instead of failing every person later. The error says what
    /// to do ([`Error::advice`]).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = tower_aliyun_captcha::Client::from_env()?.build()?;
    /// if let Err(error) = client.check().await {
    ///     eprintln!("the captcha service cannot be used: {error}; {}", error.advice());
    ///     std::process::exit(1);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn check(&self) -> Result<(), Error> {
        let dummy = VerifyRequest::new(CaptchaVerifyParam::startup_check());
        self.inner.verify(dummy).await.map(drop)
    }
}

impl Inner {
    async fn verify(&self, request: VerifyRequest) -> Result<Verification, Error> {
        let started = Instant::now();
        // A client span with OpenTelemetry's conventional fields; it nests under the span of
        // whoever polls the verification (the layer's).
        let span = tracing::debug_span!(
            "captcha.verify",
            otel.kind = "client",
            http.request.method = "POST",
            server.address = tracing::field::Empty,
            server.port = tracing::field::Empty,
            url.full = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
            captcha.scene = request.scene().map(|s| s.as_str()),
            captcha.code = tracing::field::Empty,
            captcha.request_id = tracing::field::Empty,
        );
        self.verify_in(request, started, &span)
            .instrument(span.clone())
            .await
    }

    async fn verify_in(
        &self,
        request: VerifyRequest,
        started: Instant,
        span: &tracing::Span,
    ) -> Result<Verification, Error> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        // Credentials are usually at hand, and a slot free: then no timer is set for either.
        // When credentials are being fetched, the wait counts against the verification's
        // deadline.
        let credentials = match self.credentials.at_hand() {
            Some(credentials) => credentials,
            None => tokio::time::timeout_at(deadline, self.credentials.get())
                .await
                .map_err(|_| {
                    CredentialsError::Provider(format!(
                        "no credentials within the verification's timeout ({} ms)",
                        self.timeout.as_millis()
                    ))
                })??,
        };
        let slot = match self.slots.try_acquire() {
            Ok(slot) => Some(slot),
            // The semaphore is never closed.
            Err(tokio::sync::TryAcquireError::Closed) => None,
            // Permits go to queued waiters first: this waits its turn.
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let slot_deadline =
                    tokio::time::Instant::now() + self.connection_wait.min(self.timeout);
                tokio::time::timeout_at(slot_deadline, self.slots.acquire())
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
        };
        let outcome = match slot {
            Some(_slot) => {
                let sent = Instant::now();
                // The one timer of a verification: it bounds the call, every endpoint tried.
                tokio::time::timeout_at(
                    deadline,
                    self.attempt_each_endpoint(&credentials, &request, span),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(if self.answered_since(sent) {
                        transport::timed_out_under_load()
                    } else {
                        transport::timed_out()
                    })
                })
            }
            // Nothing was sent.
            None => Err(transport::overloaded()),
        };
        match &outcome {
            Ok(verdict) => {
                span.record("captcha.code", verdict.code().as_str());
                span.record("captcha.request_id", verdict.request_id());
                tracing::debug!(
                    latency_us = started.elapsed().as_micros() as u64,
                    passed = verdict.passed(),
                    "verified"
                );
            }
            Err(error) => {
                span.record("error.type", error.label());
                if let Error::Api(api) = error {
                    span.record("captcha.request_id", api.request_id());
                }
                tracing::debug!(latency_us = started.elapsed().as_micros() as u64, kind = error.label(), %error, "verification failed");
            }
        }
        outcome
    }

    async fn attempt_each_endpoint(
        &self,
        credentials: &Credentials,
        request: &VerifyRequest,
        span: &tracing::Span,
    ) -> Result<Verification, Error> {
        let mut last_error = None;
        for endpoint in &self.endpoints {
            let uri = endpoint.uri();
            span.record("server.address", uri.host());
            span.record(
                "server.port",
                uri.port_u16()
                    .unwrap_or(if endpoint.is_https() { 443 } else { 80 }),
            );
            span.record("url.full", tracing::field::display(uri));
            let http_request = sign_now(endpoint, credentials, request)?;
            match self.transport.send(http_request).await {
                Ok(answer) => {
                    self.note_answer();
                    span.record("http.response.status_code", answer.status);
                    return response::parse_answer(answer.status, &answer.headers, &answer.body);
                }
                // Nothing was written: the param is intact, so the next endpoint may have it.
                Err(error) if !error.may_have_reached_server() => {
                    tracing::debug!(endpoint = endpoint.host(), %error, "endpoint unreachable, trying the next");
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(transport::no_endpoint))
    }
}

impl Inner {
    fn note_answer(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.answered
            .fetch_max(now, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the service answered any verification after `instant`.
    fn answered_since(&self, instant: Instant) -> bool {
        let since = instant.saturating_duration_since(self.epoch).as_nanos();
        u128::from(self.answered.load(std::sync::atomic::Ordering::Relaxed)) > since
    }
}

/// Signs `request` for `endpoint` with the current time and a fresh nonce.
fn sign_now(
    endpoint: &Endpoint,
    credentials: &Credentials,
    request: &VerifyRequest,
) -> Result<http::Request<bytes::Bytes>, Error> {
    let date = crate::protocol::date_text(time::OffsetDateTime::now_utc());
    let nonce = request::fresh_nonce_text();
    request::signed_request(
        endpoint,
        credentials,
        request,
        date.as_str(),
        nonce.as_str(),
    )
    .map_err(transport::invalid_request)
}

/// The future of [`Client::verify`]: nameable, `Send` and `'static`, so that it can be stored
/// or spawned. Nothing is sent until it is polled.
#[must_use = "futures do nothing unless polled"]
pub struct VerifyFuture(Pin<Box<dyn Future<Output = Result<Verification, Error>> + Send>>);

impl Future for VerifyFuture {
    type Output = Result<Verification, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl fmt::Debug for VerifyFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerifyFuture")
    }
}

impl Verify for Client {
    type Future = VerifyFuture;

    fn verify(&self, request: VerifyRequest) -> Self::Future {
        Client::verify(self, request)
    }

    fn shared_budgets(&self) -> Option<&crate::layer::SharedBudgets> {
        Some(&self.inner.budgets)
    }

    /// The client's own timeout, which covers credentials, the wait for a connection and the
    /// call, and gives the better error; and a second's grace, for a busy runtime.
    fn deadline(&self) -> Duration {
        self.inner.timeout + Duration::from_secs(1)
    }
}

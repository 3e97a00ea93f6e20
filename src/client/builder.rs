//! [`ClientBuilder`]: what a [`Client`] is made of, its defaults, and why it could not be
//! built.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{
    Client, DEFAULT_CONNECT_TIMEOUT, DEFAULT_CONNECTION_WAIT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, Endpoint, InvalidEndpoint, Proxy, Region, Tls,
    UnknownRegion, transport,
};
use crate::credentials::{Credentials, CredentialsCache, DefaultChain, ProvideCredentials};

/// Configures a [`Client`].
///
/// ```
/// use std::time::Duration;
/// use tower_aliyun_captcha::{Client, Credentials};
/// use tower_aliyun_captcha::client::Region;
///
/// let client = Client::builder()
///     .credentials(Credentials::new("id", "secret")) // else the default chain's, when needed
///     .region(Region::CnShanghai) // the default: its endpoint, then its dual-stack twin
///     .failover_endpoint(Region::ApSoutheast1.endpoint().to_string())
///     .timeout(Duration::from_secs(2)) // a whole verification, failover included
///     .connect_timeout(Duration::from_millis(500)) // one connection, leaving time to fail over
///     .max_connections(64)
///     .build()?;
/// assert_eq!(client.endpoints().len(), 3);
/// # Ok::<_, tower_aliyun_captcha::client::BuildError>(())
/// ```
#[derive(Default)]
#[must_use]
pub struct ClientBuilder {
    credentials: Option<CredentialsCache>,
    endpoints: Vec<String>,
    allow_http: bool,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    max_response_bytes: Option<usize>,
    max_connections: Option<usize>,
    connection_wait: Option<Duration>,
    tls: Option<Tls>,
    proxy: Option<Proxy>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoints", &self.endpoints)
            .field("allow_http", &self.allow_http)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The environment variable with the region (`cn-shanghai`, `ap-southeast-1`, …), read by
/// [`ClientBuilder::from_env`].
pub(crate) const ENV_REGION: &str = "ALIBABA_CLOUD_REGION_ID";
/// The environment variable with an endpoint URL that replaces the region's, e.g. a local
/// emulator: `http://127.0.0.1:8787`.
pub(crate) const ENV_ENDPOINT: &str = "ALIBABA_CLOUD_CAPTCHA_ENDPOINT";
/// Set to `true` to allow a plain `http://` endpoint in [`ENV_ENDPOINT`] on a host other than
/// the loopback (an emulator in another container).
pub(crate) const ENV_ALLOW_HTTP: &str = "ALIBABA_CLOUD_CAPTCHA_ALLOW_HTTP";

impl ClientBuilder {
    /// As [`Client::from_env`], reading variables from `lookup` instead: a test seam,
    /// so that tests need not change the process's environment.
    #[doc(hidden)]
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Result<Self, BuildError> {
        let lookup = Arc::new(lookup);
        let read = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut builder = Self::default()
            .credentials_provider({
                let lookup = Arc::clone(&lookup);
                DefaultChain::builder()
                    .lookup(move |name| lookup(name))
                    .build()
            })
            .proxy(Proxy::from_lookup(|name| lookup(name)));
        if let Some(region) = read(ENV_REGION) {
            let region: Region = region.trim().parse().map_err(|source| BuildError::Region {
                variable: ENV_REGION,
                source,
            })?;
            builder = builder.region(region);
        }
        if let Some(url) = read(ENV_ENDPOINT) {
            let endpoint: Endpoint = url.trim().parse().map_err(BuildError::Endpoint)?;
            let allowed = read(ENV_ALLOW_HTTP).is_some_and(|v| v.trim() == "true");
            builder = builder
                .endpoint(url.trim())
                .allow_http(!endpoint.is_https() && (allowed || endpoint.is_loopback()));
        }
        Ok(builder)
    }

    /// Signs with fixed credentials. Without this (or a provider), the client takes its
    /// credentials from the [`DefaultChain`] when it first needs them.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(CredentialsCache::fixed(credentials));
        self
    }

    /// Signs with credentials from `provider`: asked when first needed, and again ahead of
    /// their expiry, in the background (see [`credentials`](crate::credentials)): e.g. a
    /// [`RamRoleArn`](crate::credentials::RamRoleArn) assumed with what the [`DefaultChain`]
    /// finds.
    pub fn credentials_provider(mut self, provider: impl ProvideCredentials) -> Self {
        self.credentials = Some(CredentialsCache::new(Box::new(provider)));
        self
    }

    /// Uses a region's endpoint, then its dual-stack twin. This is the default, with
    /// `cn-shanghai`.
    pub fn region(mut self, region: Region) -> Self {
        self.endpoints = region.endpoints().iter().map(ToString::to_string).collect();
        self
    }

    /// Uses one endpoint URL, replacing any set before.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoints = vec![url.into()];
        self
    }

    /// Adds an endpoint to try, in order, when none before it could be connected to.
    pub fn failover_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoints.push(url.into());
        self
    }

    /// Allows plain `http://` endpoints. Only for a local emulator: over plain HTTP the
    /// request can be read and the verdict forged on the way.
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// The deadline for a whole verification: connecting (to every endpoint tried), sending,
    /// and reading the answer. Default 5 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The deadline for opening one connection. Default 1 s; keep it
    /// well below [`timeout`](Self::timeout), so that failover has time to happen.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The largest response body accepted. Default 64 KiB.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = Some(bytes);
        self
    }

    /// The one bound on concurrency: the most verifications in flight, and connections open,
    /// at once, across endpoints. Default 256. Past it, a verification waits up to the
    /// [`connection_wait`](Self::connection_wait) for a place, then fails as overloaded
    /// (a layer answers 503 with `Retry-After`, whatever its failure policy): nothing queues.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = Some(connections);
        self
    }

    /// How long a verification waits for one of the [`max_connections`](Self::max_connections)
    /// slots before failing as [overloaded](crate::error::ErrorClass::Overloaded), with nothing
    /// sent. Default 250 ms: under a flood, verifications are turned away
    /// at once instead of queueing until they time out.
    pub fn connection_wait(mut self, wait: Duration) -> Self {
        self.connection_wait = Some(wait);
        self
    }

    /// How the client speaks TLS: the authorities it trusts, or a rustls configuration of
    /// your own (see [`Tls`]). Default: Mozilla's roots, compiled in (feature
    /// `webpki-roots`), else the operating system's (feature `native-roots`).
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Where connections go: by default [`Proxy::from_env`] (`HTTPS_PROXY`, `NO_PROXY`, …).
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Builds the client. Needs a Tokio runtime when it is used, not when it is built.
    pub fn build(self) -> Result<Client, BuildError> {
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let connect_timeout = self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let connection_wait = self.connection_wait.unwrap_or(DEFAULT_CONNECTION_WAIT);
        let max_connections = self.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        let max_response_bytes = self
            .max_response_bytes
            .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
        // A zero bound or deadline would fail every verification, which a fail-open layer
        // would turn into letting everyone in.
        for (zero, setting) in [
            (timeout.is_zero(), "timeout"),
            (connect_timeout.is_zero(), "connect_timeout"),
            (connection_wait.is_zero(), "connection_wait"),
            (max_connections == 0, "max_connections"),
            (max_response_bytes == 0, "max_response_bytes"),
        ] {
            if zero {
                return Err(BuildError::Zero(setting));
            }
        }
        let credentials = Arc::new(
            self.credentials
                .unwrap_or_else(|| CredentialsCache::new(Box::new(DefaultChain::new()))),
        );
        let urls = if self.endpoints.is_empty() {
            Region::CnShanghai
                .endpoints()
                .iter()
                .map(ToString::to_string)
                .collect()
        } else {
            self.endpoints
        };
        let mut endpoints = Vec::with_capacity(urls.len());
        for url in urls {
            let endpoint: Endpoint = url.parse().map_err(BuildError::Endpoint)?;
            if !endpoint.is_https() && !self.allow_http {
                return Err(BuildError::PlainHttp(endpoint.to_string()));
            }
            endpoints.push(endpoint);
        }
        let transport = transport::Transport::new(transport::Options {
            connect_timeout,
            max_response_bytes,
            max_connections,
            tls: self.tls.unwrap_or_default(),
            proxies: self
                .proxy
                .unwrap_or_default()
                .matcher()
                .map_err(BuildError::Proxy)?,
        })
        .map_err(BuildError::Tls)?;
        Ok(Client::from_parts(
            transport,
            endpoints,
            credentials,
            timeout,
            max_connections,
            connection_wait,
        ))
    }
}

/// A client could not be built.
///
/// ```
/// use tower_aliyun_captcha::client::BuildError;
/// use tower_aliyun_captcha::{Client, Credentials};
///
/// let error = Client::builder()
///     .credentials(Credentials::new("id", "secret"))
///     .endpoint("http://127.0.0.1:9000")
///     .build()
///     .unwrap_err();
/// assert!(matches!(error, BuildError::PlainHttp(_)));
/// assert!(error.to_string().contains("allow_http(true)"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// Credentials could not be had, or a credentials setting is out of range.
    Credentials(crate::credentials::CredentialsError),
    /// An endpoint URL is invalid.
    Endpoint(InvalidEndpoint),
    /// An `http://` endpoint without [`ClientBuilder::allow_http`].
    PlainHttp(String),
    /// The TLS configuration could not be made (no roots, or none could be loaded).
    Tls(crate::BoxError),
    /// A bound or deadline was set to zero, which would fail every verification.
    Zero(&'static str),
    /// The proxy URL is not an `http://` URL with a host.
    Proxy(String),
    /// The region in an environment variable is not known.
    Region {
        /// The variable.
        variable: &'static str,
        /// What was wrong with its value.
        source: UnknownRegion,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Credentials(error) => error.fmt(f),
            Self::Endpoint(error) => error.fmt(f),
            Self::PlainHttp(url) => write!(
                f,
                "{url} is plain HTTP; call allow_http(true) to use it (only for a local emulator)"
            ),
            Self::Tls(why) => write!(f, "TLS configuration failed: {why}"),
            Self::Proxy(why) => f.write_str(why),
            Self::Region { variable, source } => write!(f, "{variable}: {source}"),
            Self::Zero(setting) => write!(
                f,
                "{setting} is zero, which would fail every verification; leave it unset for the default"
            ),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Credentials(error) => Some(error),
            Self::Endpoint(error) => Some(error),
            Self::Tls(error) => Some(error.as_ref()),
            Self::Region { source, .. } => Some(source),
            Self::PlainHttp(_) | Self::Zero(_) | Self::Proxy(_) => None,
        }
    }
}

impl From<crate::credentials::CredentialsError> for BuildError {
    fn from(error: crate::credentials::CredentialsError) -> Self {
        Self::Credentials(error)
    }
}

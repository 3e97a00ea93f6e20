//! Outbound proxies: `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` by default, or one
//! given explicitly. The client always tunnels through the proxy with `CONNECT`, so TLS runs
//! end to end between the client and the service (hyper-util's matcher and tunnel).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower::Service;

use super::endpoint::is_loopback_host;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the client's connections go: straight to the service, or through an HTTP proxy.
///
/// The default, [`from_env`](Self::from_env), honours `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`
/// (upper or lower case) and `NO_PROXY`, as curl does, except that loopback destinations
/// (`localhost`, `127.0.0.1`, `::1`, e.g. a local emulator) are never proxied. Credentials in
/// the proxy URL (`http://user:password@proxy:3128`) are sent as `Proxy-Authorization`, and
/// never shown by `Debug`.
///
/// ```
/// use tower_aliyun_captcha::{Client, Credentials};
/// use tower_aliyun_captcha::client::Proxy;
///
/// let client = Client::builder()
///     .credentials(Credentials::new("id", "secret"))
///     .proxy(Proxy::url("http://proxy.internal:3128").no_proxy("captcha-vpc.cn-shanghai.aliyuncs.com"))
///     .build()?;
/// # let _ = client;
/// # Ok::<_, tower_aliyun_captcha::client::BuildError>(())
/// ```
#[derive(Clone)]
pub struct Proxy(Kind);

#[derive(Clone)]
enum Kind {
    /// From variables read when the client is built.
    Variables(Variables),
    /// One proxy for every destination.
    Explicit {
        url: String,
        no_proxy: String,
    },
    None,
}

/// The proxy variables, as read.
#[derive(Clone, Default)]
struct Variables {
    http: Option<String>,
    https: Option<String>,
    all: Option<String>,
    no: Option<String>,
}

impl Proxy {
    /// From the environment, when the client is built (the default).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`from_env`](Self::from_env), reading variables from `lookup` instead.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let read = |upper: &str, lower: &str| {
            lookup(upper)
                .or_else(|| lookup(lower))
                .filter(|v| !v.trim().is_empty())
        };
        // In a CGI script, HTTP_PROXY may come from a request header (httpoxy): no proxy.
        if lookup("REQUEST_METHOD").is_some() {
            return Self::none();
        }
        Self(Kind::Variables(Variables {
            http: read("HTTP_PROXY", "http_proxy"),
            https: read("HTTPS_PROXY", "https_proxy"),
            all: read("ALL_PROXY", "all_proxy"),
            no: read("NO_PROXY", "no_proxy"),
        }))
    }

    /// Every connection through the HTTP proxy at `url`, loopback destinations included. A
    /// password in the URL is never shown by `Debug`.
    pub fn url(url: impl Into<String>) -> Self {
        Self(Kind::Explicit {
            url: url.into(),
            no_proxy: String::new(),
        })
    }

    /// Destinations to reach directly: a comma-separated list of host names (a leading `.`
    /// matches subdomains), IP addresses and CIDR ranges, as in `NO_PROXY`. Only for
    /// [`url`](Self::url).
    pub fn no_proxy(mut self, list: impl Into<String>) -> Self {
        if let Kind::Explicit { no_proxy, .. } = &mut self.0 {
            *no_proxy = list.into();
        }
        self
    }

    /// No proxy, whatever the environment says.
    pub fn none() -> Self {
        Self(Kind::None)
    }

    /// The matcher, or `None` for direct connections; an explicit URL that is not an
    /// `http://` proxy is refused.
    pub(crate) fn matcher(&self) -> Result<Option<Proxies>, String> {
        match &self.0 {
            Kind::None => Ok(None),
            Kind::Variables(vars) => {
                if vars.http.is_none() && vars.https.is_none() && vars.all.is_none() {
                    return Ok(None);
                }
                let mut builder = Matcher::builder();
                if let Some(v) = &vars.http {
                    builder = builder.http(v.as_str());
                }
                if let Some(v) = &vars.https {
                    builder = builder.https(v.as_str());
                }
                if let Some(v) = &vars.all {
                    builder = builder.all(v.as_str());
                }
                if let Some(v) = &vars.no {
                    builder = builder.no(v.as_str());
                }
                Ok(Some(Proxies {
                    matcher: Arc::new(builder.build()),
                    exempt_loopback: true,
                }))
            }
            Kind::Explicit { url, no_proxy } => {
                let uri: Uri = url
                    .parse()
                    .map_err(|_| format!("proxy {}: not a URL", redacted(url)))?;
                if uri.scheme_str() != Some("http") || uri.host().is_none() {
                    return Err(format!(
                        "proxy {}: give an http:// proxy with a host",
                        redacted(url)
                    ));
                }
                let matcher = Matcher::builder()
                    .all(url.as_str())
                    .no(no_proxy.as_str())
                    .build();
                Ok(Some(Proxies {
                    matcher: Arc::new(matcher),
                    exempt_loopback: false,
                }))
            }
        }
    }
}

impl Default for Proxy {
    fn default() -> Self {
        Self::from_env()
    }
}

/// A proxy URL with its credentials hidden.
fn redacted(url: &str) -> String {
    match url.split_once('@') {
        Some((before, after)) => match before.split_once("://") {
            Some((scheme, _credentials)) => format!("{scheme}://<redacted>@{after}"),
            None => format!("<redacted>@{after}"),
        },
        None => url.to_owned(),
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.as_deref().map(redacted);
        match &self.0 {
            Kind::None => f.write_str("Proxy(none)"),
            Kind::Explicit { url, no_proxy } => f
                .debug_struct("Proxy")
                .field("url", &redacted(url))
                .field("no_proxy", no_proxy)
                .finish(),
            Kind::Variables(vars) => f
                .debug_struct("Proxy")
                .field("http", &show(&vars.http))
                .field("https", &show(&vars.https))
                .field("all", &show(&vars.all))
                .field("no", &vars.no)
                .finish(),
        }
    }
}

/// Which destinations go through which proxy.
#[derive(Clone)]
pub(crate) struct Proxies {
    matcher: Arc<Matcher>,
    exempt_loopback: bool,
}

/// The proxy refused the tunnel (authentication required, forbidden, or not a proxy): a
/// configuration problem, not an outage. Nothing reached the service.
#[derive(Debug)]
pub(crate) struct ProxyRefused(pub(crate) BoxError);

impl fmt::Display for ProxyRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the proxy refused the tunnel: {}", self.0)
    }
}

impl std::error::Error for ProxyRefused {}

/// Connects directly, or through a `CONNECT` tunnel where the proxies say so.
#[derive(Clone)]
pub(crate) struct ProxyConnector {
    direct: HttpConnector,
    proxies: Option<Proxies>,
}

impl ProxyConnector {
    pub(crate) fn new(direct: HttpConnector, proxies: Option<Proxies>) -> Self {
        Self { direct, proxies }
    }
}

impl Service<Uri> for ProxyConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Both ways clone a fresh HttpConnector, which is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let intercept = self.proxies.as_ref().and_then(|proxies| {
            if proxies.exempt_loopback && dst.host().is_some_and(is_loopback_host) {
                return None;
            }
            proxies.matcher.intercept(&dst)
        });
        let mut direct = self.direct.clone();
        match intercept {
            None => Box::pin(async move { direct.call(dst).await.map_err(Into::into) }),
            Some(intercept) => {
                let mut tunnel = Tunnel::new(intercept.uri().clone(), direct);
                if let Some(auth) = intercept.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                Box::pin(async move {
                    tunnel.call(dst).await.map_err(|error| {
                        let error: BoxError = error.into();
                        // Without a source, the tunnel failed on the proxy's answer, not on
                        // the way to it.
                        if std::error::Error::source(&*error).is_none() {
                            Box::new(ProxyRefused(error)) as BoxError
                        } else {
                            error
                        }
                    })
                })
            }
        }
    }
}

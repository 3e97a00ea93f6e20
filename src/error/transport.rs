//! Failures on the way to the service: `TransportErrorKind` and `TransportError`.

use std::fmt;

/// What went wrong on the way to the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// No connection could be opened (refused, unreachable, DNS). Nothing was sent.
    Connect,
    /// The TLS handshake failed (certificate, protocol). Nothing was sent.
    Tls,
    /// The call did not finish within its timeout.
    Timeout,
    /// The connection broke while the request or response was under way.
    Io,
    /// Our own load, which says nothing about the service: all of the client's connection
    /// slots stayed busy for longer than it waits for one, a connect failed amid a burst of the
    /// client's own connects (or for want of a local resource), or the verification ran out
    /// of time while the service answered others (a flood, a starved runtime; then it may
    /// have been sent).
    Overloaded,
    /// The outbound proxy refused the tunnel (authentication, policy). Nothing was sent.
    Proxy,
}

impl TransportErrorKind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Timeout => "timeout",
            Self::Io => "io",
            Self::Overloaded => "overloaded",
            Self::Proxy => "proxy",
        }
    }

    pub(super) fn advice(self) -> &'static str {
        match self {
            Self::Connect => "Check the endpoint, DNS and outbound network access.",
            Self::Tls => "Check the endpoint's certificate and the trusted roots.",
            Self::Timeout => {
                "The service was slow; check latency to the region or raise the timeout."
            }
            Self::Io => "The connection broke; it is usually transient.",
            Self::Overloaded => {
                "More verifications than the client's connections at once; raise \
                 max_connections, or bound them lower in the layer."
            }
            Self::Proxy => {
                "Check the proxy's URL, credentials and policy (HTTPS_PROXY, NO_PROXY, or \
                 ClientBuilder::proxy)."
            }
        }
    }
}

/// The service could not be reached or did not answer in time.
///
/// A verifier of your own reports that it could not reach its service with one; the layer
/// treats it as an [outage](crate::error::ErrorClass::Outage), where an
/// [`Error::other`](crate::Error::other) is taken for a configuration error.
///
/// ```
/// use tower_aliyun_captcha::Error;
/// use tower_aliyun_captcha::error::{ErrorClass, TransportError, TransportErrorKind};
///
/// let cause = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// let error: Error = TransportError::unsent(TransportErrorKind::Connect)
///     .with_source(cause)
///     .into();
/// assert_eq!(error.class(), ErrorClass::Outage);
/// assert!(!error.may_have_reached_server()); // nothing was written: the param is intact
/// ```
#[derive(Debug)]
pub struct TransportError {
    kind: TransportErrorKind,
    may_have_reached_server: bool,
    pub(super) source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl TransportError {
    /// A failure before any of the request was written: the param was not used up.
    pub fn unsent(kind: TransportErrorKind) -> Self {
        Self {
            kind,
            may_have_reached_server: false,
            source: None,
        }
    }

    /// A failure after some of the request may have been written: the param may be used up,
    /// and must not be sent again.
    pub fn possibly_sent(kind: TransportErrorKind) -> Self {
        Self {
            may_have_reached_server: true,
            ..Self::unsent(kind)
        }
    }

    /// The same failure, caused by `source`.
    pub fn with_source(mut self, source: impl Into<crate::BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// Whether the request may have reached the service (and used up the param).
    pub fn may_have_reached_server(&self) -> bool {
        self.may_have_reached_server
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            TransportErrorKind::Connect => "could not connect to the captcha service",
            TransportErrorKind::Tls => "TLS handshake with the captcha service failed",
            TransportErrorKind::Timeout => "the captcha service did not answer in time",
            TransportErrorKind::Io => "the connection to the captcha service broke",
            TransportErrorKind::Overloaded => {
                "no connection to the captcha service could be had under our own load (every \
                 one busy, or opening one failed amid a burst of our own)"
            }
            TransportErrorKind::Proxy => {
                "the outbound proxy refused to connect to the captcha service"
            }
        };
        f.write_str(what)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

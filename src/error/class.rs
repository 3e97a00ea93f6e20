//! `ErrorClass`: what a failed verification says about the service, and the layer's answer.

use std::fmt;

/// What a failed verification says about the service, and what a protected route does about
/// it. Alibaba's document advises letting a request through when *calling the API* fails; it
/// does not advise it when nothing was asked, when the account is misconfigured, or when the
/// request itself was bad. Each class is answered accordingly by the layer:
///
/// | class | examples | the layer's answer |
/// |---|---|---|
/// | [`Outage`](Self::Outage) | connect or I/O failure, timeout, 5xx, `InternalError`, `ServiceUnavailable`, a malformed or truncated answer | the failure policy (open: pass within the degraded budget; closed: 503) |
/// | [`Overloaded`](Self::Overloaded) | no connection slot freed in time; a connect failed amid a burst of our own connects, or for want of descriptors or ports; a timeout while the service answered others | 503 with `Retry-After` |
/// | [`Throttled`](Self::Throttled) | `Throttling*`, or an answer with `x-acs-retry-after` | 503 with `Retry-After` |
/// | [`Configuration`](Self::Configuration) | `SignatureDoesNotMatch`, `InvalidAccessKeyId.*`, `InvalidSecurityToken.*`, `Forbidden.*`, `InvalidTimeStamp.Expired`, `SignatureNonceUsed`, TLS failures, a failing credentials provider, unknown codes | 503, logged at error (opt-in: the failure policy) |
/// | [`BadRequest`](Self::BadRequest) | `InvalidParameter`, `MissingParameter` | 403, like a failed captcha |
///
/// [`Error`](crate::Error)'s example matches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The service could not be asked, or did not answer properly.
    Outage,
    /// Too many verifications were waiting for this client; none was sent.
    Overloaded,
    /// The service asked for fewer requests.
    Throttled,
    /// The credentials, account, permissions, clock, endpoint or TLS setup is wrong: every
    /// verification fails until someone fixes it.
    Configuration,
    /// The service refused the request's content.
    BadRequest,
}

impl ErrorClass {
    /// Every class, for tables and metrics.
    pub const ALL: [ErrorClass; 5] = [
        Self::Outage,
        Self::Overloaded,
        Self::Throttled,
        Self::Configuration,
        Self::BadRequest,
    ];

    /// A short, stable name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Outage => "outage",
            Self::Overloaded => "overloaded",
            Self::Throttled => "throttled",
            Self::Configuration => "configuration",
            Self::BadRequest => "bad_request",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

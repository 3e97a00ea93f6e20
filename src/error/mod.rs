//! Why a verification could not give a verdict, each case with what to do about it.
//!
//! A failed verification of a person (an `F…` code) is not an error: it is a
//! [`Verification`](crate::Verification) that did not pass. An [`Error`] means the service could
//! not be asked, or did not answer properly, so no verdict exists.

mod api;
mod class;
mod response;
mod transport;

use std::fmt;
use std::time::Duration;

pub use api::{ApiError, ApiErrorCode};
pub use class::ErrorClass;
pub use response::{ResponseError, ResponseErrorKind};
pub use transport::{TransportError, TransportErrorKind};

use crate::credentials::CredentialsError;

/// A verification that ended without a verdict. Its [`class`](Self::class) says what it
/// means for the request; [`advice`](Self::advice), what to fix.
///
/// ```
/// use tower_aliyun_captcha::error::ErrorClass;
/// use tower_aliyun_captcha::{CaptchaVerifyParam, Client, Credentials, Error, VerifyRequest};
///
/// // What a caller of the client does without a verdict (the layer does the same).
/// fn answer(error: &Error) -> &'static str {
///     match error.class() {
///         // Down or unreachable: your failure policy's call (Alibaba advises letting it pass).
///         ErrorClass::Outage => "outage",
///         // Too many verifications, or the service asked for fewer: 503, `retry_after()`.
///         ErrorClass::Overloaded | ErrorClass::Throttled => "retry later",
///         // Every verification fails until the setup is fixed: log `error.advice()`.
///         ErrorClass::Configuration => "misconfigured",
///         // The service refused the param itself: like a failed captcha.
///         ErrorClass::BadRequest => "refused",
///         _ => "misconfigured",
///     }
/// }
///
/// // Nothing listens on port 1: the connection is refused before anything is sent.
/// let client = Client::builder()
///     .credentials(Credentials::new("LTAI5tExample", "example-secret"))
///     .endpoint("http://127.0.0.1:1")
///     .allow_http(true)
///     .build()?;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let param = CaptchaVerifyParam::new("eyJ4IjoxfQ==").unwrap();
/// let error = client.verify(VerifyRequest::new(param)).await.unwrap_err();
/// assert_eq!(answer(&error), "outage");
/// assert!(!error.may_have_reached_server()); // the param is intact
/// # });
/// # Ok::<_, tower_aliyun_captcha::client::BuildError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The service answered with an error code (bad credentials, missing permission, …).
    Api(ApiError),
    /// The service could not be reached, or did not answer in time.
    Transport(TransportError),
    /// The service answered something that is not a valid response.
    Response(ResponseError),
    /// The credentials provider failed.
    Credentials(CredentialsError),
    /// A custom verifier's own failure.
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Wraps a custom verifier's failure, of class
    /// [`Configuration`](ErrorClass::Configuration): report an unreachable service with a
    /// [`TransportError`] instead, an outage.
    pub fn other(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Other(error.into())
    }

    /// Whether the request may have reached the service. When it may have, the param may
    /// have been used up and must not be sent again.
    pub fn may_have_reached_server(&self) -> bool {
        match self {
            Self::Transport(error) => error.may_have_reached_server(),
            Self::Credentials(_) => false,
            Self::Api(_) | Self::Response(_) | Self::Other(_) => true,
        }
    }

    /// Whether the call ran out of time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Transport(e) if e.kind() == TransportErrorKind::Timeout)
    }

    /// What the failure says about the service, and so what a protected route does with it.
    /// See [`ErrorClass`].
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Api(error) => error.class(),
            Self::Transport(error) => match error.kind() {
                TransportErrorKind::Connect
                | TransportErrorKind::Timeout
                | TransportErrorKind::Io => ErrorClass::Outage,
                // A certificate that does not verify is a wrong endpoint, wrong roots, or someone
                // in the middle: never a reason to let requests through. A proxy that refuses
                // the tunnel is misconfigured.
                TransportErrorKind::Tls | TransportErrorKind::Proxy => ErrorClass::Configuration,
                TransportErrorKind::Overloaded => ErrorClass::Overloaded,
            },
            Self::Response(error) => match error.kind() {
                ResponseErrorKind::UnexpectedStatus if !(500..600).contains(&error.status()) => {
                    ErrorClass::Configuration
                }
                _ => ErrorClass::Outage,
            },
            Self::Credentials(_) => ErrorClass::Configuration,
            // A custom verifier reports an outage with a `TransportError`; anything else is not
            // known to be one.
            Self::Other(_) => ErrorClass::Configuration,
        }
    }

    /// How long the service asked callers to wait before trying again, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api(error) => error.retry_after(),
            _ => None,
        }
    }

    /// A short, stable label of the failure, for logs and metrics
    /// (`"api"`, `"connect"`, `"timeout"`, `"malformed_response"`, …).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Api(_) => "api",
            Self::Transport(error) => error.kind().as_str(),
            Self::Response(error) => error.kind.as_str(),
            Self::Credentials(_) => "credentials",
            Self::Other(_) => "other",
        }
    }

    /// What to do about it, in a sentence.
    pub fn advice(&self) -> &'static str {
        match self {
            Self::Api(error) => error.code().advice(),
            Self::Transport(error) => error.kind().advice(),
            Self::Response(_) => {
                "The service answered something unexpected; check the endpoint URL points at \
                 Captcha 2.0, and retry later."
            }
            Self::Credentials(_) => {
                "Check the credentials source the error names (see credentials::DefaultChain)."
            }
            Self::Other(_) => "See the custom verifier's error.",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Api(error) => error.fmt(f),
            Self::Transport(error) => error.fmt(f),
            Self::Response(error) => error.fmt(f),
            Self::Credentials(error) => error.fmt(f),
            Self::Other(error) => write!(f, "verifier failed: {error}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Api(_) | Self::Response(_) => None,
            Self::Transport(error) => error.source.as_deref().map(|e| e as _),
            Self::Credentials(error) => Some(error),
            Self::Other(error) => Some(error.as_ref()),
        }
    }
}

impl From<ApiError> for Error {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<TransportError> for Error {
    fn from(error: TransportError) -> Self {
        Self::Transport(error)
    }
}

impl From<ResponseError> for Error {
    fn from(error: ResponseError) -> Self {
        Self::Response(error)
    }
}

impl From<CredentialsError> for Error {
    fn from(error: CredentialsError) -> Self {
        Self::Credentials(error)
    }
}

//! Why a verification could not give a verdict, each case with what to do about it.
//!
//! A failed verification of a person (an `F…` code) is not an error: it is a
//! [`Verification`](crate::Verification) that did not pass. An [`Error`] means the service could
//! not be asked, or did not answer properly, so no verdict exists.

use std::fmt;
use std::time::Duration;

use crate::credentials::CredentialsError;

/// A verification that ended without a verdict.
///
/// ```
/// use tower_aliyun_captcha::{CaptchaVerifyParam, Client, Credentials, Error, VerifyRequest};
///
/// // Nothing listens on port 1: the connection is refused before anything is sent.
/// let client = Client::builder()
///     .credentials(Credentials::new("LTAI5tExample", "example-secret"))
///     .endpoint("http://127.0.0.1:1")
///     .allow_http(true)
///     .build()?;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let param = CaptchaVerifyParam::new("eyJ4IjoxfQ==").unwrap();
/// match client.verify(VerifyRequest::new(param)).await {
///     Err(Error::Transport(error)) => {
///         assert!(!error.may_have_reached_server());
///     }
///     other => panic!("expected a transport error, got {other:?}"),
/// }
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
    /// Wraps a custom verifier's failure.
    ///
    /// ```
    /// let error = tower_aliyun_captcha::Error::other("cache unavailable");
    /// assert_eq!(error.to_string(), "verifier failed: cache unavailable");
    /// ```
    pub fn other(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Other(error.into())
    }

    /// Whether the request may have reached the service. When it may have, the param may
    /// have been used up and must not be sent again.
    ///
    /// ```
    /// use tower_aliyun_captcha::Error;
    /// use tower_aliyun_captcha::error::{TransportError, TransportErrorKind};
    ///
    /// let refused: Error = TransportError::unsent(TransportErrorKind::Connect).into();
    /// let broke: Error = TransportError::possibly_sent(TransportErrorKind::Io).into();
    /// assert!(!refused.may_have_reached_server()); // safe to try another endpoint
    /// assert!(broke.may_have_reached_server()); // the param may be used up: never resend it
    /// ```
    pub fn may_have_reached_server(&self) -> bool {
        match self {
            Self::Transport(error) => error.may_have_reached_server(),
            Self::Credentials(_) => false,
            Self::Api(_) | Self::Response(_) | Self::Other(_) => true,
        }
    }

    /// Whether the call ran out of time.
    ///
    /// ```
    /// use tower_aliyun_captcha::Error;
    /// use tower_aliyun_captcha::error::{TransportError, TransportErrorKind};
    ///
    /// let error: Error = TransportError::possibly_sent(TransportErrorKind::Timeout).into();
    /// assert!(error.is_timeout());
    /// assert!(!Error::other("nope").is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Transport(e) if e.kind() == TransportErrorKind::Timeout)
    }

    /// What the failure says about the service, and so what a protected route does with it.
    /// See [`ErrorClass`].
    ///
    /// ```
    /// use tower_aliyun_captcha::Error;
    /// use tower_aliyun_captcha::error::{ApiError, ApiErrorCode, ErrorClass};
    /// use tower_aliyun_captcha::error::{TransportError, TransportErrorKind};
    ///
    /// let api = |status, code: &str| -> Error { ApiError::new(status, code.into(), "", "R").into() };
    /// assert_eq!(api(500, "InternalError").class(), ErrorClass::Outage);
    /// assert_eq!(api(400, "SignatureDoesNotMatch").class(), ErrorClass::Configuration);
    /// assert_eq!(api(400, "InvalidParameter").class(), ErrorClass::BadRequest);
    /// assert_eq!(api(400, "Throttling.User").class(), ErrorClass::Throttled);
    /// let timeout: Error = TransportError::possibly_sent(TransportErrorKind::Timeout).into();
    /// assert_eq!(timeout.class(), ErrorClass::Outage);
    /// ```
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
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_aliyun_captcha::Error;
    /// use tower_aliyun_captcha::error::{ApiError, ApiErrorCode};
    ///
    /// let error: Error = ApiError::new(400, ApiErrorCode::Throttling, "slow down", "R")
    ///     .with_retry_after(Duration::from_secs(2))
    ///     .into();
    /// assert_eq!(error.retry_after(), Some(Duration::from_secs(2)));
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api(error) => error.retry_after(),
            _ => None,
        }
    }

    /// A short, stable name of the failure's kind, for logs and metrics
    /// (`"api"`, `"connect"`, `"timeout"`, `"malformed_response"`, …).
    ///
    /// ```
    /// use tower_aliyun_captcha::Error;
    /// use tower_aliyun_captcha::error::{
    ///     ResponseError, ResponseErrorKind, TransportError, TransportErrorKind,
    /// };
    ///
    /// let timeout: Error = TransportError::possibly_sent(TransportErrorKind::Timeout).into();
    /// let garbled: Error = ResponseError::new(ResponseErrorKind::Malformed, 200, "not JSON").into();
    /// assert_eq!(timeout.kind(), "timeout");
    /// assert_eq!(garbled.kind(), "malformed_response");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Api(_) => "api",
            Self::Transport(error) => error.kind().as_str(),
            Self::Response(error) => error.kind.as_str(),
            Self::Credentials(_) => "credentials",
            Self::Other(_) => "other",
        }
    }

    /// What to do about it, in a sentence.
    ///
    /// ```
    /// use tower_aliyun_captcha::Error;
    /// use tower_aliyun_captcha::error::{ApiError, ApiErrorCode};
    ///
    /// let error: Error = ApiError::new(
    ///     403,
    ///     ApiErrorCode::ForbiddenRamUserAccessDenied,
    ///     "denied",
    ///     "id",
    /// )
    /// .into();
    /// assert!(error.advice().contains("AliyunYundunAFSFullAccess"));
    /// ```
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
/// ```
/// use tower_aliyun_captcha::error::ErrorClass;
///
/// assert_eq!(ErrorClass::Configuration.as_str(), "configuration");
/// ```
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
    ///
    /// ```
    /// use tower_aliyun_captcha::error::ErrorClass;
    ///
    /// assert_eq!(ErrorClass::ALL.len(), 5);
    /// ```
    pub const ALL: [ErrorClass; 5] = [
        Self::Outage,
        Self::Overloaded,
        Self::Throttled,
        Self::Configuration,
        Self::BadRequest,
    ];

    /// A short, stable name, for logs and metrics.
    ///
    /// ```
    /// use tower_aliyun_captcha::error::ErrorClass;
    ///
    /// assert_eq!(ErrorClass::BadRequest.as_str(), "bad_request");
    /// ```
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

macro_rules! api_error_codes {
    ($($variant:ident = $code:literal => $advice:literal,)*) => {
        /// The `Code` of an error answer from the service or its API gateway.
        ///
        /// ```
        /// use tower_aliyun_captcha::error::ApiErrorCode;
        ///
        /// let code = ApiErrorCode::from("InvalidTimeStamp.Expired");
        /// assert_eq!(code, ApiErrorCode::InvalidTimeStampExpired);
        /// assert!(code.advice().contains("clock"));
        /// assert_eq!(ApiErrorCode::from("Nope").as_str(), "Nope");
        /// ```
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ApiErrorCode {
            $(#[doc = concat!("`", $code, "`: ", $advice)] $variant,)*
            /// A code this version of the crate does not know.
            Unknown(String),
        }

        impl ApiErrorCode {
            /// The code as the service writes it.
            ///
            /// ```
            /// use tower_aliyun_captcha::error::ApiErrorCode;
            ///
            /// assert_eq!(ApiErrorCode::SignatureNonceUsed.as_str(), "SignatureNonceUsed");
            /// assert_eq!(ApiErrorCode::InvalidAccessKeyIdNotFound.to_string(), "InvalidAccessKeyId.NotFound");
            /// ```
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $code,)*
                    Self::Unknown(code) => code,
                }
            }

            /// What to do about it.
            ///
            /// ```
            /// use tower_aliyun_captcha::error::ApiErrorCode;
            ///
            /// assert!(ApiErrorCode::SignatureDoesNotMatch.advice().contains("secret"));
            /// assert!(ApiErrorCode::Unknown("Odd.Code".into()).advice().contains("error center"));
            /// ```
            pub fn advice(&self) -> &'static str {
                match self {
                    $(Self::$variant => $advice,)*
                    Self::Unknown(_) => "See the message, and Alibaba Cloud's error center for the code.",
                }
            }
        }

        impl From<&str> for ApiErrorCode {
            fn from(code: &str) -> Self {
                match code {
                    $($code => Self::$variant,)*
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }
    };
}

api_error_codes! {
    MissingParameter = "MissingParameter" =>
        "A required header or parameter was not sent; this is a bug in the caller.",
    InvalidParameter = "InvalidParameter" =>
        "A header or parameter has an invalid value (action, version or format).",
    ForbiddenAccountAccessDenied = "Forbidden.AccountAccessDenied" =>
        "Activate Captcha 2.0 for the account and settle any overdue payment.",
    ForbiddenRamUserAccessDenied = "Forbidden.RAMUserAccessDenied" =>
        "Grant the RAM user the AliyunYundunAFSFullAccess permission.",
    InternalError = "InternalError" =>
        "The service failed; retry later, and open a ticket if it persists.",
    ServiceUnavailable = "ServiceUnavailable" =>
        "The service is unavailable for now; retry later.",
    SignatureDoesNotMatch = "SignatureDoesNotMatch" =>
        "Check the AccessKey secret: the signature computed with it does not match.",
    InvalidTimeStampExpired = "InvalidTimeStamp.Expired" =>
        "Check the clock: the request time is more than 15 minutes off the service's (use NTP).",
    SignatureNonceUsed = "SignatureNonceUsed" =>
        "A signature nonce was reused; every request needs a fresh random nonce.",
    InvalidAccessKeyIdNotFound = "InvalidAccessKeyId.NotFound" =>
        "Check the AccessKey id (an expired STS token gives this too).",
    InvalidSecurityTokenExpired = "InvalidSecurityToken.Expired" =>
        "The STS token has expired; refresh the temporary credentials.",
    InvalidSecurityTokenMismatch = "InvalidSecurityToken.MismatchWithAccessKey" =>
        "The STS token does not belong to this AccessKey id; send the pair together.",
    Throttling = "Throttling" =>
        "Too many requests; slow down or raise the quota.",
    ThrottlingUser = "Throttling.User" =>
        "Too many requests from this account; slow down or raise the quota.",
    ThrottlingApi = "Throttling.Api" =>
        "Too many requests to this API; slow down and retry later.",
    IncompleteSignature = "IncompleteSignature" =>
        "The Authorization header is incomplete or signs too few headers; this is a bug in the caller.",
    InvalidActionNotFound = "InvalidAction.NotFound" =>
        "The endpoint does not serve VerifyIntelligentCaptcha; check that it is a Captcha 2.0 endpoint.",
    InvalidVersion = "InvalidVersion" =>
        "The endpoint does not serve API version 2023-03-05; check that it is a Captcha 2.0 endpoint.",
}

impl fmt::Display for ApiErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer: HTTP status, `Code`, `Message` and `RequestId`.
///
/// ```
/// use tower_aliyun_captcha::Error;
/// use tower_aliyun_captcha::error::{ApiError, ApiErrorCode};
///
/// fn report(error: &Error) -> String {
///     match error {
///         Error::Api(api) => format!("{} {} ({})", api.status(), api.code(), api.request_id()),
///         other => other.kind().to_owned(),
///     }
/// }
/// let error = ApiError::new(400, ApiErrorCode::InvalidTimeStampExpired, "expired", "R-1");
/// assert_eq!(report(&error.into()), "400 InvalidTimeStamp.Expired (R-1)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: u16,
    code: ApiErrorCode,
    message: String,
    request_id: String,
    retry_after: Option<Duration>,
}

impl ApiError {
    /// An error answer as the service sent it.
    ///
    /// ```
    /// use tower_aliyun_captcha::error::{ApiError, ApiErrorCode};
    ///
    /// // A stand-in verifier can answer the way the service does.
    /// let error = ApiError::new(500, ApiErrorCode::from("InternalError"), "boom", "R-2");
    /// assert_eq!(error.code(), &ApiErrorCode::InternalError);
    /// assert!(error.to_string().contains("retry later"));
    /// ```
    pub fn new(
        status: u16,
        code: ApiErrorCode,
        message: impl Into<String>,
        request_id: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            request_id: request_id.into(),
            retry_after: None,
        }
    }

    /// The same error, with the wait the service asked for (`x-acs-retry-after`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_aliyun_captcha::error::{ApiError, ApiErrorCode};
    ///
    /// let error = ApiError::new(400, ApiErrorCode::Throttling, "", "R")
    ///     .with_retry_after(Duration::from_millis(1500));
    /// assert_eq!(error.retry_after(), Some(Duration::from_millis(1500)));
    /// ```
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// The wait the service asked for, if it did.
    ///
    /// ```
    /// use tower_aliyun_captcha::error::{ApiError, ApiErrorCode};
    ///
    /// assert_eq!(ApiError::new(500, ApiErrorCode::InternalError, "", "R").retry_after(), None);
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The error's [`ErrorClass`]: a throttling code or a requested wait is
    /// [`Throttled`](ErrorClass::Throttled); a 5xx or `InternalError`/`ServiceUnavailable` an
    /// [`Outage`](ErrorClass::Outage); `InvalidParameter`/`MissingParameter`
    /// [`BadRequest`](ErrorClass::BadRequest); every other code, known or not,
    /// [`Configuration`](ErrorClass::Configuration).
    ///
    /// ```
    /// use tower_aliyun_captcha::error::{ApiError, ApiErrorCode, ErrorClass};
    ///
    /// let unknown = ApiError::new(400, ApiErrorCode::from("Odd.Code"), "", "R");
    /// assert_eq!(unknown.class(), ErrorClass::Configuration);
    /// let unknown_5xx = ApiError::new(502, ApiErrorCode::from("Odd.Code"), "", "R");
    /// assert_eq!(unknown_5xx.class(), ErrorClass::Outage);
    /// ```
    pub fn class(&self) -> ErrorClass {
        let code = self.code.as_str();
        if self.retry_after.is_some() || code == "Throttling" || code.starts_with("Throttling.") {
            return ErrorClass::Throttled;
        }
        match &self.code {
            ApiErrorCode::InternalError | ApiErrorCode::ServiceUnavailable => ErrorClass::Outage,
            ApiErrorCode::InvalidParameter | ApiErrorCode::MissingParameter => {
                ErrorClass::BadRequest
            }
            _ if (500..600).contains(&self.status) => ErrorClass::Outage,
            _ => ErrorClass::Configuration,
        }
    }

    /// The HTTP status.
    ///
    /// ```
    /// use tower_aliyun_captcha::error::{ApiError, ApiErrorCode};
    ///
    /// let error = ApiError::new(
    ///     404,
    ///     ApiErrorCode::InvalidAccessKeyIdNotFound,
    ///     "no such key",
    ///     "R-3",
    /// );
    /// assert_eq!(error.status(), 404);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The error code.
    ///
    /// ```
    /// use tower_aliyun_captcha::error::{ApiError, ApiErrorCode};
    ///
    /// let error = ApiError::new(429, ApiErrorCode::from("Throttling"), "slow down", "R-4");
    /// assert_eq!(error.code(), &ApiErrorCode::Throttling);
    /// ```
    pub fn code(&self) -> &ApiErrorCode {
        &self.code
    }

    /// The service's message.
    ///
    /// ```
    /// use tower_aliyun_captcha::error::{ApiError, ApiErrorCode};
    ///
    /// let error = ApiError::new(
    ///     400,
    ///     ApiErrorCode::MissingParameter,
    ///     "x-acs-date is missing",
    ///     "R-5",
    /// );
    /// assert_eq!(error.message(), "x-acs-date is missing");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The service's request id.
    ///
    /// ```
    /// use tower_aliyun_captcha::error::{ApiError, ApiErrorCode};
    ///
    /// let error = ApiError::new(400, ApiErrorCode::SignatureDoesNotMatch, "mismatch", "R-6");
    /// assert_eq!(error.request_id(), "R-6");
    /// ```
    pub fn request_id(&self) -> &str {
        &self.request_id
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "captcha service answered {} {} ({}), request id {}: {}",
            self.status,
            self.code,
            self.message,
            self.request_id,
            self.code.advice()
        )
    }
}

impl std::error::Error for ApiError {}

/// What went wrong on the way to the service.
///
/// ```
/// use tower_aliyun_captcha::error::{TransportError, TransportErrorKind};
///
/// let error = TransportError::unsent(TransportErrorKind::Tls);
/// assert_eq!(error.kind(), TransportErrorKind::Tls);
/// assert!(error.to_string().starts_with("TLS handshake"));
/// ```
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
    fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Timeout => "timeout",
            Self::Io => "io",
            Self::Overloaded => "overloaded",
            Self::Proxy => "proxy",
        }
    }

    fn advice(self) -> &'static str {
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
/// ```
/// use std::error::Error as _;
/// use tower_aliyun_captcha::error::{TransportError, TransportErrorKind};
///
/// let cause = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// let error = TransportError::unsent(TransportErrorKind::Connect).with_source(Box::new(cause));
/// assert!(error.source().is_some());
/// assert!(error.to_string().starts_with("could not connect"));
/// ```
#[derive(Debug)]
pub struct TransportError {
    kind: TransportErrorKind,
    may_have_reached_server: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl TransportError {
    /// A failure before any of the request was written: the param was not used up.
    ///
    /// ```
    /// use tower_aliyun_captcha::error::{TransportError, TransportErrorKind};
    ///
    /// // A custom verifier that could not connect.
    /// let error = TransportError::unsent(TransportErrorKind::Connect);
    /// assert!(!error.may_have_reached_server());
    /// ```
    pub fn unsent(kind: TransportErrorKind) -> Self {
        Self {
            kind,
            may_have_reached_server: false,
            source: None,
        }
    }

    /// A failure after some of the request may have been written: the param may be used up,
    /// and must not be sent again.
    ///
    /// ```
    /// use tower_aliyun_captcha::error::{TransportError, TransportErrorKind};
    ///
    /// // A custom verifier whose connection broke after the request went out.
    /// let error = TransportError::possibly_sent(TransportErrorKind::Io);
    /// assert!(error.may_have_reached_server());
    /// ```
    pub fn possibly_sent(kind: TransportErrorKind) -> Self {
        Self {
            may_have_reached_server: true,
            ..Self::unsent(kind)
        }
    }

    /// The same failure, caused by `source`.
    ///
    /// ```
    /// use std::error::Error as _;
    /// use tower_aliyun_captcha::error::{TransportError, TransportErrorKind};
    ///
    /// let cause = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    /// let error = TransportError::unsent(TransportErrorKind::Connect).with_source(cause);
    /// assert!(error.source().is_some());
    /// ```
    pub fn with_source(mut self, source: impl Into<crate::BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What went wrong.
    ///
    /// ```
    /// use tower_aliyun_captcha::error::{TransportError, TransportErrorKind};
    ///
    /// let error = TransportError::possibly_sent(TransportErrorKind::Timeout);
    /// assert_eq!(error.kind(), TransportErrorKind::Timeout);
    /// ```
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// Whether the request may have reached the service (and used up the param).
    ///
    /// ```
    /// use tower_aliyun_captcha::error::{TransportError, TransportErrorKind};
    ///
    /// assert!(
    ///     !TransportError::unsent(TransportErrorKind::Connect).may_have_reached_server()
    /// );
    /// ```
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

/// How an answer was not a valid response.
///
/// ```
/// use tower_aliyun_captcha::Error;
/// use tower_aliyun_captcha::error::{ResponseError, ResponseErrorKind};
///
/// let error: Error = ResponseError::new(ResponseErrorKind::TooLarge, 200, "over 64 KiB").into();
/// assert_eq!(error.kind(), "oversized_response");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResponseErrorKind {
    /// The body is not the JSON the API documents.
    Malformed,
    /// The body is larger than the client's cap.
    TooLarge,
    /// An error status without an error body the gateway would send.
    UnexpectedStatus,
}

impl ResponseErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed_response",
            Self::TooLarge => "oversized_response",
            Self::UnexpectedStatus => "unexpected_status",
        }
    }
}

/// The service's answer could not be used.
///
/// ```
/// use tower_aliyun_captcha::error::{ResponseError, ResponseErrorKind};
///
/// let error = ResponseError::new(ResponseErrorKind::UnexpectedStatus, 502, "HTML error page");
/// assert_eq!(
///     error.to_string(),
///     "unexpected response from the captcha service (HTTP 502): HTML error page"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseError {
    kind: ResponseErrorKind,
    status: u16,
    detail: String,
}

impl ResponseError {
    /// An unusable answer with HTTP `status`; `detail` says what was wrong with it.
    ///
    /// ```
    /// use tower_aliyun_captcha::error::{ResponseError, ResponseErrorKind};
    ///
    /// let error = ResponseError::new(ResponseErrorKind::Malformed, 200, "missing Result");
    /// assert!(error.to_string().ends_with("missing Result"));
    /// ```
    pub fn new(kind: ResponseErrorKind, status: u16, detail: impl Into<String>) -> Self {
        Self {
            kind,
            status,
            detail: detail.into(),
        }
    }

    /// How it was unusable.
    ///
    /// ```
    /// use tower_aliyun_captcha::error::{ResponseError, ResponseErrorKind};
    ///
    /// let error = ResponseError::new(ResponseErrorKind::Malformed, 200, "truncated");
    /// assert_eq!(error.kind(), ResponseErrorKind::Malformed);
    /// ```
    pub fn kind(&self) -> ResponseErrorKind {
        self.kind
    }

    /// The HTTP status of the answer.
    ///
    /// ```
    /// use tower_aliyun_captcha::error::{ResponseError, ResponseErrorKind};
    ///
    /// assert_eq!(
    ///     ResponseError::new(ResponseErrorKind::UnexpectedStatus, 503, "").status(),
    ///     503
    /// );
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ResponseErrorKind::Malformed => "malformed response",
            ResponseErrorKind::TooLarge => "oversized response",
            ResponseErrorKind::UnexpectedStatus => "unexpected response",
        };
        write!(
            f,
            "{what} from the captcha service (HTTP {}): {}",
            self.status, self.detail
        )
    }
}

impl std::error::Error for ResponseError {}

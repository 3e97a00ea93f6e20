//! The responses the layer gives instead of calling the inner service.

use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use crate::VerifyCode;
use crate::error::ErrorClass;
use crate::extract::ContentKind;

/// Why the layer answered a request itself.
///
/// ```
/// use std::time::Duration;
/// use tower_aliyun_captcha::VerifyCode;
/// use tower_aliyun_captcha::layer::Refusal;
///
/// // What a page of your own (see `Respond`) tells the person.
/// fn page_text(refusal: &Refusal) -> &'static str {
///     match refusal {
///         Refusal::Rejected { .. } => "Please solve the captcha again.",
///         Refusal::Unavailable { .. } | Refusal::Overloaded { .. } => "Please try again shortly.",
///         // Coarse words, safe to show anyone.
///         other => other.reason().message(),
///     }
/// }
///
/// let failed = Refusal::Rejected { code: VerifyCode::F015, local: false };
/// assert_eq!(failed.status(), 403);
/// assert_eq!(failed.code(), "F015"); // for logs: it would tell a bot what to change
/// let shed = Refusal::Overloaded { retry_after: Duration::from_secs(1) };
/// assert_eq!(shed.retry_after(), Some(Duration::from_secs(1))); // sent as `Retry-After`
/// assert_eq!(page_text(&Refusal::BodyTimeout), "request body not received in time");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The captcha was not passed: the service's code (an `F…` code, or a `T…` code that
    /// does not count as a pass here, such as test mode's T005), or F002/F003 when the param was
    /// missing or malformed and no call was made (`local`).
    Rejected {
        /// The verification code.
        code: VerifyCode,
        /// True when decided without calling the service.
        local: bool,
    },
    /// No verdict could be had, and the request may not pass without one: the failure policy
    /// is closed, the degraded budget is spent, the account is misconfigured, or the service
    /// throttled us.
    Unavailable {
        /// What kind of failure it was.
        class: ErrorClass,
        /// How long the client should wait before trying again, when known.
        retry_after: Option<Duration>,
    },
    /// Too many verifications in flight: the request was turned away without asking the
    /// service.
    Overloaded {
        /// How long the client should wait before trying again.
        retry_after: Duration,
    },
    /// The body is over the layer's limit.
    PayloadTooLarge,
    /// The body did not arrive within the layer's read timeout.
    BodyTimeout,
    /// The body could not be read.
    BadBody,
    /// The request's path reads as two routes of different scenes: raw, as the router matches
    /// it, and normalised (`/signup/..%2Flogin`, `/Login` beside a catch-all). No browser
    /// sends such a path.
    AmbiguousPath,
}

impl Refusal {
    /// The HTTP status of the default answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Rejected { .. } => StatusCode::FORBIDDEN,
            Self::Unavailable { .. } | Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::BadBody | Self::AmbiguousPath => StatusCode::BAD_REQUEST,
        }
    }

    /// A short code for the JSON body: the `VerifyCode`, or a word.
    pub fn code(&self) -> &str {
        match self {
            Self::Rejected { code, .. } => code.as_str(),
            Self::Unavailable { .. } => "unavailable",
            Self::Overloaded { .. } => "overloaded",
            Self::PayloadTooLarge => "payload_too_large",
            Self::BodyTimeout => "body_timeout",
            Self::BadBody => "bad_body",
            Self::AmbiguousPath => "ambiguous_path",
        }
    }

    /// How long the client should wait before trying again, when the refusal is temporary
    /// and the wait is known. The default answer sends it as `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => *retry_after,
            Self::Overloaded { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// Why, in words safe to show anyone, for page code to act on.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Rejected {
                code: VerifyCode::F002,
                ..
            } => Reason::CaptchaRequired,
            Self::Rejected {
                code: VerifyCode::F008 | VerifyCode::F014 | VerifyCode::F018 | VerifyCode::F019,
                ..
            } => Reason::CaptchaExpired,
            Self::Rejected { .. } => Reason::CaptchaFailed,
            Self::Unavailable { .. } => Reason::CaptchaUnavailable,
            Self::Overloaded { .. } => Reason::TooManyRequests,
            Self::PayloadTooLarge => Reason::PayloadTooLarge,
            Self::BodyTimeout => Reason::BodyTimeout,
            Self::BadBody => Reason::BadBody,
            Self::AmbiguousPath => Reason::AmbiguousPath,
        }
    }

    /// The gRPC status code of the default answer to a gRPC request.
    pub fn grpc_status(&self) -> u8 {
        match self {
            Self::Rejected { .. } => 7, // PERMISSION_DENIED
            Self::Unavailable {
                class: ErrorClass::Throttled,
                ..
            }
            | Self::Overloaded { .. } => 8, // RESOURCE_EXHAUSTED
            Self::Unavailable { .. } => 14, // UNAVAILABLE
            Self::PayloadTooLarge => 8, // RESOURCE_EXHAUSTED
            Self::BodyTimeout => 4,     // DEADLINE_EXCEEDED
            Self::BadBody | Self::AmbiguousPath => 3, // INVALID_ARGUMENT
        }
    }
}

/// In the extensions of the layer's own refusals: why. An outer `WhenRisky` layer reads it, so
/// that an inner layer's `captcha_required` is not counted as a failed login.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerRefusal(pub(crate) Reason);

/// Why the layer refused, coarse and safe to show anyone: the `reason` of the default
/// answer's JSON, for page code to act on (`captcha_required`: show the widget;
/// `captcha_expired`: refresh it and try again; `captcha_unavailable`, `too_many_requests`:
/// try again later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// No param: show the widget.
    CaptchaRequired,
    /// The param was used, or is too old: refresh the widget and try again.
    CaptchaExpired,
    /// The captcha was not passed, or the param was invalid.
    CaptchaFailed,
    /// No verdict could be had, and none was let in: try again later.
    CaptchaUnavailable,
    /// Overloaded or throttled: try again later.
    TooManyRequests,
    /// The body is over the layer's limit.
    PayloadTooLarge,
    /// The body did not arrive in time.
    BodyTimeout,
    /// The body could not be read.
    BadBody,
    /// The path could name two routes of different scenes.
    AmbiguousPath,
}

impl Reason {
    /// The machine-readable name: `captcha_required`, `captcha_expired`, ….
    pub fn as_str(self) -> &'static str {
        self.describe().0
    }

    /// A short message for people, with no internal detail.
    pub fn message(self) -> &'static str {
        self.describe().1
    }

    fn describe(self) -> (&'static str, &'static str) {
        match self {
            Self::CaptchaRequired => ("captcha_required", "captcha required"),
            Self::CaptchaExpired => ("captcha_expired", "captcha expired, please verify again"),
            Self::CaptchaFailed => ("captcha_failed", "captcha verification failed"),
            Self::CaptchaUnavailable => (
                "captcha_unavailable",
                "captcha verification is unavailable, try again later",
            ),
            Self::TooManyRequests => ("too_many_requests", "too many requests, try again later"),
            Self::PayloadTooLarge => ("payload_too_large", "request body too large"),
            Self::BodyTimeout => ("body_timeout", "request body not received in time"),
            Self::BadBody => ("bad_body", "request body could not be read"),
            Self::AmbiguousPath => ("ambiguous_path", "the request's path is ambiguous"),
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A response body the layer can write its own answers in: the body type of the service it
/// wraps, so that the protected service's response type is the inner service's, and layers
/// outside it (tower-http's `CorsLayer` and `TimeoutLayer`, tower_governor, tonic's server)
/// see the body type they expect.
///
/// Implemented for axum's body (feature `axum`), tonic's (feature `tonic`), `String`,
/// `http_body_util::Full<Bytes>` and its boxed bodies. A service with another body type can be
/// given one with tower-http's `MapResponseBodyLayer` inside the captcha layer.
///
/// ```
/// use bytes::Bytes;
/// use tower_aliyun_captcha::layer::RefusalBody;
///
/// // The body type of a service of your own (which implements `http_body::Body` too).
/// struct MyBody(Bytes);
///
/// impl RefusalBody for MyBody {
///     fn from_refusal(bytes: Bytes) -> Self {
///         MyBody(bytes)
///     }
/// }
/// ```
pub trait RefusalBody: Sized {
    /// A body holding `bytes`.
    fn from_refusal(bytes: Bytes) -> Self;
}

impl RefusalBody for String {
    fn from_refusal(bytes: Bytes) -> Self {
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl RefusalBody for Full<Bytes> {
    fn from_refusal(bytes: Bytes) -> Self {
        Full::new(bytes)
    }
}

impl<E: 'static> RefusalBody for http_body_util::combinators::BoxBody<Bytes, E> {
    fn from_refusal(bytes: Bytes) -> Self {
        use http_body_util::BodyExt;
        Full::new(bytes).map_err(|never| match never {}).boxed()
    }
}

impl<E: 'static> RefusalBody for http_body_util::combinators::UnsyncBoxBody<Bytes, E> {
    fn from_refusal(bytes: Bytes) -> Self {
        use http_body_util::BodyExt;
        Full::new(bytes)
            .map_err(|never| match never {})
            .boxed_unsync()
    }
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl RefusalBody for axum::body::Body {
    fn from_refusal(bytes: Bytes) -> Self {
        axum::body::Body::from(bytes)
    }
}

#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
impl RefusalBody for tonic::body::Body {
    fn from_refusal(bytes: Bytes) -> Self {
        tonic::body::Body::new(Full::new(bytes))
    }
}

/// Builds the response for a [`Refusal`], in the body type `B` of the protected service.
/// Implemented by [`DefaultResponder`] (for any [`RefusalBody`]), by any
/// `Fn(&Refusal, &Parts) -> http::Response<B>`, and, with the `axum` feature, by
/// [`IntoResponder`] around a closure that returns anything `IntoResponse`.
///
/// ```
/// use tower_aliyun_captcha::{CaptchaLayer, SceneId};
/// use tower_aliyun_captcha::layer::{Refusal, Route};
/// # let verifier = tower_aliyun_captcha::verify::doc_verifier();
///
/// // A page for people instead of JSON, for a service whose body is a String.
/// let layer = CaptchaLayer::builder(verifier, Route::every_path(SceneId::new("login")?))
///     .responder(|refusal: &Refusal, _: &http::request::Parts| {
///         let mut response = http::Response::new(String::from("<p>Please solve the captcha</p>"));
///         *response.status_mut() = refusal.status();
///         response
///     })
///     .build()?;
/// # let _ = layer;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
pub trait Respond<B>: Send + Sync + 'static {
    /// The response to `refusal` of the request whose head is `request`.
    fn respond(&self, refusal: &Refusal, request: &Parts) -> Response<B>;
}

impl<B, F> Respond<B> for F
where
    F: Fn(&Refusal, &Parts) -> Response<B> + Send + Sync + 'static,
{
    fn respond(&self, refusal: &Refusal, request: &Parts) -> Response<B> {
        self(refusal, request)
    }
}

/// With the `axum` feature: a responder from a closure that returns anything axum can turn
/// into a response.
///
/// ```
/// use axum::response::{Html, IntoResponse};
/// use tower_aliyun_captcha::{CaptchaLayer, SceneId};
/// use tower_aliyun_captcha::layer::{IntoResponder, Refusal, Route};
/// # let verifier = tower_aliyun_captcha::verify::doc_verifier();
///
/// let layer = CaptchaLayer::builder(verifier, Route::every_path(SceneId::new("login")?))
///     .responder(IntoResponder(|refusal: &Refusal, _: &http::request::Parts| {
///         (refusal.status(), Html("<p>Please solve the captcha</p>"))
///     }))
///     .build()?;
/// # let _ = layer;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
#[derive(Debug, Clone, Copy)]
pub struct IntoResponder<F>(pub F);

#[cfg(feature = "axum")]
impl<F, R> Respond<axum::body::Body> for IntoResponder<F>
where
    F: Fn(&Refusal, &Parts) -> R + Send + Sync + 'static,
    R: axum::response::IntoResponse,
{
    fn respond(&self, refusal: &Refusal, request: &Parts) -> Response<axum::body::Body> {
        (self.0)(refusal, request).into_response()
    }
}

/// The default answers: JSON `{"captchaResult": false, "reason": …, "message": …}` with the
/// refusal's status (and `Retry-After` when the refusal has a wait), or a gRPC status
/// (`PERMISSION_DENIED`, `UNAVAILABLE`, `RESOURCE_EXHAUSTED`, …) for gRPC requests.
///
/// `captchaResult` tells page code the captcha outcome without guessing it from a status
/// code that business 403s share; `reason` is coarse on purpose (see [`Refusal::reason`]). The
/// exact code (F009, F010, …) would tell a bot what to change, so it goes to logs and custom
/// responders only, unless [`exposing_codes`](Self::exposing_codes) adds it as `code`.
///
/// ```
/// use tower_aliyun_captcha::VerifyCode;
/// use tower_aliyun_captcha::layer::{DefaultResponder, Refusal, Respond};
///
/// let refusal = Refusal::Rejected {
///     code: VerifyCode::F009,
///     local: false,
/// };
/// let (json, _) = http::Request::post("/login").body(()).unwrap().into_parts();
/// let response: http::Response<String> = DefaultResponder::default().respond(&refusal, &json);
/// assert_eq!(response.status(), 403);
///
/// let (grpc, _) = http::Request::post("/demo.Accounts/Signup")
///     .header("content-type", "application/grpc")
///     .body(())
///     .unwrap()
///     .into_parts();
/// let response: http::Response<String> = DefaultResponder::default().respond(&refusal, &grpc);
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.headers()["grpc-status"], "7");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultResponder {
    expose_codes: bool,
}

impl DefaultResponder {
    /// The default answers, plus the exact code as `code` (`F015`, `F009`, `overloaded`, …):
    /// for development, demos and trusted clients.
    pub fn exposing_codes() -> Self {
        Self { expose_codes: true }
    }
}

impl<B: RefusalBody> Respond<B> for DefaultResponder {
    fn respond(&self, refusal: &Refusal, request: &Parts) -> Response<B> {
        if ContentKind::of(&request.headers) == ContentKind::Grpc {
            // A trailers-only gRPC response: HTTP 200, the status in the headers.
            let mut response = Response::new(B::from_refusal(Bytes::new()));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            headers.insert(
                "grpc-status",
                HeaderValue::from(u16::from(refusal.grpc_status())),
            );
            // Public messages are plain ASCII without `%`, so no percent-encoding is needed.
            headers.insert(
                "grpc-message",
                HeaderValue::from_static(refusal.reason().message()),
            );
            return response;
        }
        let mut body = serde_json::json!({
            "captchaResult": false,
            "reason": refusal.reason().as_str(),
            "message": refusal.reason().message(),
        });
        if self.expose_codes {
            body["code"] = refusal.code().into();
        }
        let mut response = Response::new(B::from_refusal(Bytes::from(body.to_string())));
        *response.status_mut() = refusal.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(wait) = refusal.retry_after() {
            // Whole seconds, rounded up: a client never comes back too early.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

//! Where the `CaptchaVerifyParam` comes from: a header, the query, a form or JSON field, gRPC
//! metadata, several of those in order, or a closure of your own.
//!
//! The default, [`HeaderOrBody`], reads what a page written to Alibaba's guide sends: the
//! `x-captcha-verify-param` header (gRPC metadata too), else the `captchaVerifyParam` field
//! of a JSON or urlencoded form body.
//!
//! Header and query extractors never touch the body. Body extractors read it once, within
//! [`BodyLimits`], and hand the inner service the same bytes in a [`CaptchaBody`], so axum's
//! `Json` and `Form` extractors still work behind the layer.
//!
//! A param given twice in one place (two headers, form fields or query parameters of its
//! name, or two JSON keys) is refused as [`InvalidParam::Ambiguous`], without a call to the
//! service: servers and proxies disagree on which copy counts.
//!
//! ```
//! use tower_aliyun_captcha::extract::{ExtractParam, Header, JsonField};
//!
//! // The param from a header, or else from the `captchaVerifyParam` field of a JSON body.
//! let extractor = Header::default().or(JsonField::default());
//! # fn check<E: ExtractParam<axum::body::Body>>(_: E) {}
//! # check(extractor);
//! ```
//!
//! Any closure over the request's head that returns a future of `Option<String>` is an
//! extractor too:
//!
//! ```
//! use tower_aliyun_captcha::extract::ExtractParam;
//!
//! let from_cookie = |parts: &http::request::Parts| {
//!     let cookie = parts
//!         .headers
//!         .get("cookie")
//!         .and_then(|v| v.to_str().ok())
//!         .map(str::to_owned);
//!     async move {
//!         cookie?
//!             .split("; ")
//!             .find_map(|c| c.strip_prefix("captcha=").map(str::to_owned))
//!     }
//! };
//! # fn check<E: ExtractParam<axum::body::Body>>(_: E) {}
//! # check(from_cookie);
//! ```

mod body;
mod first_of;
mod form;
mod header;
mod header_or_body;
mod json;
mod query;
mod source;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Request;
use http::request::Parts;
use pin_project::pin_project;

pub use body::{BodyError, BodyLimits, CaptchaBody};
pub use first_of::{FirstOf, FirstOfFuture};
pub use form::FormField;
pub use header::{GrpcMetadata, Header, InvalidMetadataKey};
pub use header_or_body::{HeaderOrBody, HeaderOrBodyFuture};
pub use json::JsonField;
pub use query::Query;
pub use source::ParamSource;

use crate::verify::{CaptchaVerifyParam, InvalidParam};

/// The field name Alibaba's front-end template posts the param under.
pub(crate) const DEFAULT_FIELD: &str = "captchaVerifyParam";
/// The default header (and gRPC metadata key) for the param.
pub(crate) const DEFAULT_HEADER: &str = "x-captcha-verify-param";

/// What an extractor found: the request back (its body possibly buffered) and the param.
///
/// ```
/// use http::Request;
/// use tower_aliyun_captcha::extract::{BodyLimits, CaptchaBody, ExtractParam, JsonField};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let body = r#"{"user":"ann","captchaVerifyParam":"eyJ4IjoxfQ=="}"#;
/// let request = Request::post("/login")
///     .header("content-type", "application/json")
///     .body(CaptchaBody::new(body.to_owned()))
///     .unwrap();
/// let found = JsonField::default().extract(request, BodyLimits::DEFAULT).await;
/// assert_eq!(found.param.unwrap().unwrap().as_str(), "eyJ4IjoxfQ==");
/// // The inner service still gets the body, byte for byte.
/// let bytes = http_body_util::BodyExt::collect(found.request.into_body()).await.unwrap().to_bytes();
/// assert_eq!(bytes, body.as_bytes());
/// # });
/// ```
#[derive(Debug)]
pub struct Extracted<B> {
    /// The request, to hand on to the inner service.
    pub request: Request<CaptchaBody<B>>,
    /// `Ok(None)` when the request carries no param at all.
    pub param: Result<Option<CaptchaVerifyParam>, ExtractError>,
}

impl<B> Extracted<B> {
    /// The request and what was found in it: `raw` is checked as a param (`None`: nothing).
    ///
    /// ```
    /// use http::Request;
    /// use tower_aliyun_captcha::extract::{CaptchaBody, Extracted};
    ///
    /// let request = Request::post("/login")
    ///     .body(CaptchaBody::new(String::new()))
    ///     .unwrap();
    /// let nothing = Extracted::new(request, None);
    /// assert!(matches!(nothing.param, Ok(None)));
    ///
    /// let request = Request::post("/login")
    ///     .body(CaptchaBody::new(String::new()))
    ///     .unwrap();
    /// let empty = Extracted::new(request, Some(b""));
    /// assert!(empty.param.is_err()); // refused locally as F002, never sent upstream
    /// ```
    pub fn new(request: Request<CaptchaBody<B>>, raw: Option<&[u8]>) -> Self {
        let param = check(raw);
        Self { request, param }
    }
}

/// Checks raw bytes found in a request as a param; `None` means none was found.
///
/// ```
/// use tower_aliyun_captcha::extract::{ExtractError, check};
///
/// assert!(check(Some(b"eyJ4IjoxfQ==")).unwrap().is_some());
/// assert!(check(None).unwrap().is_none());
/// assert!(matches!(check(Some(b"")), Err(ExtractError::Invalid(_))));
/// ```
pub fn check(raw: Option<&[u8]>) -> Result<Option<CaptchaVerifyParam>, ExtractError> {
    raw.map(CaptchaVerifyParam::from_bytes)
        .transpose()
        .map_err(ExtractError::Invalid)
}

/// Checks the copies of the param found in one place: none, or one. A second copy is refused
/// rather than picking one, because servers, proxies and firewalls pick differently (the
/// first, the last, or both joined), and a copy one of them skipped was never looked at.
pub(crate) fn check_only<T: AsRef<[u8]>>(
    copies: impl IntoIterator<Item = T>,
) -> Result<Option<CaptchaVerifyParam>, ExtractError> {
    let mut copies = copies.into_iter();
    let first = copies.next();
    if first.is_some() && copies.next().is_some() {
        return Err(ExtractError::Invalid(InvalidParam::Ambiguous));
    }
    check(first.as_ref().map(AsRef::as_ref))
}

/// Why no usable param came out of a request.
///
/// ```
/// use tower_aliyun_captcha::VerifyCode;
/// use tower_aliyun_captcha::extract::{BodyError, ExtractError, check};
///
/// match check(Some(b"")) {
///     Err(ExtractError::Invalid(invalid)) => assert_eq!(invalid.code(), VerifyCode::F002),
///     other => panic!("{other:?}"),
/// }
/// let too_large = ExtractError::Body(BodyError::TooLarge);
/// # let _ = too_large;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtractError {
    /// A param was there but is empty, too long, not text, or given twice.
    Invalid(InvalidParam),
    /// The body could not be read.
    Body(BodyError),
}

/// Takes the param out of a request.
///
/// `extract` receives the whole request and must give it back in [`Extracted`]: an extractor
/// that reads the body puts the same bytes back. The future is `'static` so the layer can
/// hold it without boxing.
///
/// An extractor of your own, reading a cookie:
///
/// ```
/// use http::Request;
/// use std::future::{Ready, ready};
/// use tower_aliyun_captcha::extract::{BodyLimits, CaptchaBody, ExtractParam, Extracted};
///
/// #[derive(Clone)]
/// struct Cookie(&'static str);
///
/// impl<B: Send + 'static> ExtractParam<B> for Cookie {
///     type Future = Ready<Extracted<B>>;
///
///     fn extract(&self, request: Request<CaptchaBody<B>>, _limits: BodyLimits) -> Self::Future {
///         let prefix = format!("{}=", self.0);
///         let value = request
///             .headers()
///             .get_all(http::header::COOKIE)
///             .iter()
///             .filter_map(|v| v.to_str().ok())
///             .flat_map(|v| v.split("; "))
///             .find_map(|c| c.strip_prefix(prefix.as_str()))
///             .map(str::to_owned);
///         ready(Extracted::new(request, value.as_deref().map(str::as_bytes)))
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let request = Request::post("/login")
///     .header("cookie", "theme=dark; captcha=eyJ4IjoxfQ==")
///     .body(CaptchaBody::new(
///         http_body_util::Empty::<bytes::Bytes>::new(),
///     ))
///     .unwrap();
/// let found = Cookie("captcha")
///     .extract(request, BodyLimits::DEFAULT)
///     .await;
/// assert_eq!(found.param.unwrap().unwrap().as_str(), "eyJ4IjoxfQ==");
/// # });
/// ```
pub trait ExtractParam<B>: Clone + Send + Sync + 'static {
    /// The future of [`extract`](Self::extract).
    type Future: Future<Output = Extracted<B>> + Send + 'static;

    /// Looks for the param; reads at most `limits` of the body.
    ///
    /// ```
    /// use http::Request;
    /// use tower_aliyun_captcha::extract::{BodyError, BodyLimits, CaptchaBody, ExtractError, ExtractParam, FormField};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let limits = BodyLimits { max_bytes: 16, ..BodyLimits::DEFAULT };
    /// let request = Request::post("/login")
    ///     .header("content-type", "application/x-www-form-urlencoded")
    ///     .body(CaptchaBody::new("captchaVerifyParam=much-longer-than-sixteen-bytes".to_owned()))
    ///     .unwrap();
    /// let found = FormField::default().extract(request, limits).await;
    /// assert_eq!(found.param.unwrap_err(), ExtractError::Body(BodyError::TooLarge));
    /// # });
    /// ```
    fn extract(&self, request: Request<CaptchaBody<B>>, limits: BodyLimits) -> Self::Future;
}

impl<B, F, Fut> ExtractParam<B> for F
where
    B: Send + 'static,
    F: Fn(&Parts) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Option<String>> + Send + 'static,
{
    type Future = ClosureFuture<B, Fut>;

    fn extract(&self, request: Request<CaptchaBody<B>>, _limits: BodyLimits) -> Self::Future {
        let (parts, body) = request.into_parts();
        let future = self(&parts);
        ClosureFuture {
            future,
            request: Some(Request::from_parts(parts, body)),
        }
    }
}

/// The future of a closure extractor.
///
/// ```
/// use http::Request;
/// use http::request::Parts;
/// use tower_aliyun_captcha::extract::{BodyLimits, CaptchaBody, ExtractParam};
///
/// // Any `Fn(&Parts) -> impl Future<Output = Option<String>>` is an extractor; its future is
/// // a `ClosureFuture`, polled by the layer without boxing.
/// let from_path = |parts: &Parts| {
///     let param = parts.uri.path().strip_prefix("/verify/").map(str::to_owned);
///     async move { param }
/// };
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let request = Request::get("/verify/eyJ4IjoxfQ")
///     .body(CaptchaBody::new(String::new()))
///     .unwrap();
/// let found = from_path.extract(request, BodyLimits::DEFAULT).await;
/// assert_eq!(found.param.unwrap().unwrap().as_str(), "eyJ4IjoxfQ");
/// # });
/// ```
#[pin_project]
#[derive(Debug)]
pub struct ClosureFuture<B, Fut> {
    #[pin]
    future: Fut,
    request: Option<Request<CaptchaBody<B>>>,
}

impl<B, Fut> Future for ClosureFuture<B, Fut>
where
    Fut: Future<Output = Option<String>>,
{
    type Output = Extracted<B>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let raw = ready!(this.future.poll(cx));
        let request = this
            .request
            .take()
            .expect("ClosureFuture polled after completion");
        Poll::Ready(Extracted::new(request, raw.as_deref().map(str::as_bytes)))
    }
}

/// Adds `or` to the built-in extractors: `Header::default().or(JsonField::default())`.
macro_rules! impl_or {
    ($($ty:ident $(<$($param:ident),*>)?),*) => {$(
        impl$(<$($param),*>)? $ty$(<$($param),*>)? {
            /// Tries `self`, then `other` when `self` found no param.
            pub fn or<Next>(self, other: Next) -> FirstOf<Self, Next> {
                FirstOf::new(self, other)
            }
        }
    )*};
}

impl_or!(
    Header,
    HeaderOrBody,
    GrpcMetadata,
    Query,
    FormField,
    JsonField,
    ParamSource,
    FirstOf<A, B>
);

/// A boxed future, for the extractors that read the body (which allocates anyway).
pub type BoxExtractFuture<B> = Pin<Box<dyn Future<Output = Extracted<B>> + Send>>;

//! [`ParamSource`]: the one type that says where a layer, or a route, finds the param.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http::request::Parts;
use http_body::Body;

use super::{
    BodyLimits, CaptchaBody, ExtractError, ExtractFuture, Extracted, FormField, GrpcMetadata,
    Header, HeaderOrBody, JsonField, Query, check,
};
use crate::verify::CaptchaVerifyParam;

type Closure = dyn Fn(&Parts) -> Pin<Box<dyn Future<Output = Option<String>> + Send>> + Send + Sync;

/// Where the param is: a built-in extractor ([`HeaderOrBody`], [`Header`], [`Query`],
/// [`FormField`], [`JsonField`], [`GrpcMetadata`]), several in order (`or`), or a closure of
/// your own ([`from_fn`](Self::from_fn)). The layer's builder and each
/// [`Route`](crate::layer::Route) take one; every built-in converts into it.
///
/// ```
/// use tower_aliyun_captcha::extract::{Header, JsonField, ParamSource};
///
/// // The param from a header, or else from the `captchaVerifyParam` field of a JSON body.
/// let chained: ParamSource = Header::default().or(JsonField::default());
///
/// // Or from a cookie, read by a closure over the request's head.
/// let from_cookie = ParamSource::from_fn(|parts: &http::request::Parts| {
///     let cookie = parts
///         .headers
///         .get("cookie")
///         .and_then(|v| v.to_str().ok())
///         .map(str::to_owned);
///     async move {
///         cookie?
///             .split("; ")
///             .find_map(|c| c.strip_prefix("captcha=").map(str::to_owned))
///     }
/// });
/// ```
#[derive(Clone)]
pub struct ParamSource(Kind);

#[derive(Clone)]
enum Kind {
    HeaderOrBody(HeaderOrBody),
    Header(Header),
    Query(Query),
    Form(FormField),
    Json(JsonField),
    FirstOf(Arc<(ParamSource, ParamSource)>),
    Closure(Arc<Closure>),
}

impl ParamSource {
    /// The param from a closure over the request's head (a cookie, a header of your own
    /// format): a future of the raw param, or `None` when the request has none. What it returns
    /// is checked like any other param (empty, too long, not text: refused locally).
    pub fn from_fn<F, Fut>(closure: F) -> Self
    where
        F: Fn(&Parts) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        Self(Kind::Closure(Arc::new(move |parts: &Parts| {
            Box::pin(closure(parts)) as Pin<Box<dyn Future<Output = Option<String>> + Send>>
        })))
    }

    /// This source, or else `other` when this one finds no param. An invalid or ambiguous
    /// param is an answer, and stops there: a bad header does not fall through to the body.
    pub fn or(self, other: impl Into<ParamSource>) -> ParamSource {
        Self(Kind::FirstOf(Arc::new((self, other.into()))))
    }

    pub(crate) fn extract<B>(
        &self,
        request: Request<CaptchaBody<B>>,
        limits: BodyLimits,
    ) -> ExtractFuture<B>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<crate::BoxError>,
    {
        match &self.0 {
            Kind::HeaderOrBody(e) => e.extract(request, limits),
            Kind::Header(e) => e.extract(request),
            Kind::Query(e) => e.extract(request),
            Kind::Form(e) => e.extract(request, limits),
            Kind::Json(e) => e.extract(request, limits),
            Kind::FirstOf(chain) => match chain.0.extract(request, limits) {
                // Answered from the head: the second is asked at once, without a box.
                ExtractFuture::Ready(Some(Extracted {
                    request,
                    param: Ok(None),
                })) => chain.1.extract(request, limits),
                ExtractFuture::Reading(first) => {
                    let chain = Arc::clone(chain);
                    ExtractFuture::reading(async move {
                        let found = first.await;
                        match found.param {
                            Ok(None) => chain.1.extract(found.request, limits).await,
                            _ => found,
                        }
                    })
                }
                answered => answered,
            },
            Kind::Closure(closure) => {
                let (parts, body) = request.into_parts();
                let future = closure(&parts);
                ExtractFuture::reading(async move {
                    let raw = future.await;
                    Extracted {
                        request: Request::from_parts(parts, body),
                        param: check(raw.as_deref().map(str::as_bytes)),
                    }
                })
            }
        }
    }

    /// Runs the extraction alone: for the fuzz targets, which check that the body handed on
    /// is the body received.
    #[doc(hidden)]
    pub async fn extract_alone<B>(
        &self,
        request: Request<CaptchaBody<B>>,
        limits: BodyLimits,
    ) -> (
        Request<CaptchaBody<B>>,
        Result<Option<CaptchaVerifyParam>, ExtractError>,
    )
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<crate::BoxError>,
    {
        let found = self.extract(request, limits).await;
        (found.request, found.param)
    }
}

impl Default for ParamSource {
    fn default() -> Self {
        HeaderOrBody.into()
    }
}

impl fmt::Debug for ParamSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::HeaderOrBody(e) => e.fmt(f),
            Kind::Header(e) => e.fmt(f),
            Kind::Query(e) => e.fmt(f),
            Kind::Form(e) => e.fmt(f),
            Kind::Json(e) => e.fmt(f),
            Kind::FirstOf(chain) => f
                .debug_tuple("FirstOf")
                .field(&chain.0)
                .field(&chain.1)
                .finish(),
            Kind::Closure(_) => f.write_str("Closure"),
        }
    }
}

macro_rules! into_source {
    ($($ty:ident => $variant:ident),*) => {$(
        impl From<$ty> for ParamSource {
            fn from(extractor: $ty) -> Self {
                Self(Kind::$variant(extractor))
            }
        }
    )*};
}

into_source!(
    HeaderOrBody => HeaderOrBody,
    Header => Header,
    Query => Query,
    FormField => Form,
    JsonField => Json
);

impl From<GrpcMetadata> for ParamSource {
    fn from(metadata: GrpcMetadata) -> Self {
        // ASCII metadata is an HTTP/2 header.
        Self(Kind::Header(metadata.into_header()))
    }
}

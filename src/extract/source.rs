//! A built-in extractor chosen at run time, for route tables that pick one per route.

use bytes::Bytes;
use http::Request;
use http_body::Body;

use super::{
    BodyLimits, BoxExtractFuture, CaptchaBody, ExtractParam, FirstOf, FormField, GrpcMetadata,
    Header, HeaderOrBody, JsonField, Query,
};

/// Any built-in extractor, or a chain of them made with `or`, with its type erased: what a
/// [`Route`](crate::layer::Route) takes when it overrides the layer's extractor. Every built-in
/// (and every `or` of built-ins) converts into one.
///
/// ```
/// use tower_aliyun_captcha::extract::{FormField, JsonField, ParamSource};
///
/// let json_or_form: ParamSource = JsonField::default().or(FormField::default()).into();
/// assert!(matches!(json_or_form, ParamSource::FirstOf(_)));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ParamSource {
    /// The layer's default: a header, else a JSON or form field.
    HeaderOrBody(HeaderOrBody),
    /// A header.
    Header(Header),
    /// A query parameter.
    Query(Query),
    /// A urlencoded form field.
    Form(FormField),
    /// A JSON body field.
    Json(JsonField),
    /// gRPC metadata.
    Grpc(GrpcMetadata),
    /// Two sources tried in order, made by `or`.
    FirstOf(Box<FirstOf<ParamSource, ParamSource>>),
}

macro_rules! into_source {
    ($($ty:ident => $variant:ident),*) => {$(
        impl From<$ty> for ParamSource {
            fn from(extractor: $ty) -> Self {
                Self::$variant(extractor)
            }
        }
    )*};
}

into_source!(
    HeaderOrBody => HeaderOrBody,
    Header => Header,
    Query => Query,
    FormField => Form,
    JsonField => Json,
    GrpcMetadata => Grpc
);

impl<A: Into<ParamSource>, B: Into<ParamSource>> From<FirstOf<A, B>> for ParamSource {
    fn from(chain: FirstOf<A, B>) -> Self {
        let (first, second) = chain.into_parts();
        Self::FirstOf(Box::new(FirstOf::new(first.into(), second.into())))
    }
}

impl<B> ExtractParam<B> for ParamSource
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    type Future = BoxExtractFuture<B>;

    fn extract(&self, request: Request<CaptchaBody<B>>, limits: BodyLimits) -> Self::Future {
        match self {
            Self::HeaderOrBody(e) => Box::pin(e.extract(request, limits)),
            Self::Header(e) => Box::pin(e.extract(request, limits)),
            Self::Query(e) => Box::pin(e.extract(request, limits)),
            Self::Form(e) => e.extract(request, limits),
            Self::Json(e) => e.extract(request, limits),
            Self::Grpc(e) => Box::pin(e.extract(request, limits)),
            Self::FirstOf(chain) => Box::pin(chain.extract(request, limits)),
        }
    }
}

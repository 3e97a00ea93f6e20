//! A built-in extractor chosen at run time, for tables that pick one per route.

use bytes::Bytes;
use http::Request;
use http_body::Body;

use super::{
    BodyLimits, BoxExtractFuture, CaptchaBody, ExtractParam, Extracted, FormField, GrpcMetadata,
    Header, JsonField, Query,
};

/// One of the built-in extractors, or several tried in order. A route in a
/// [`Routes`](crate::layer::Routes) table can name one to override the layer's extractor.
///
/// ```
/// use tower_aliyun_captcha::extract::{FormField, JsonField, ParamSource};
///
/// let json_or_form = ParamSource::FirstOf(vec![
///     ParamSource::Json(JsonField::default()),
///     ParamSource::Form(FormField::default()),
/// ]);
/// # let _ = json_or_form;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ParamSource {
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
    /// The first of several that finds a param.
    FirstOf(Vec<ParamSource>),
}

impl<B> ExtractParam<B> for ParamSource
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    type Future = BoxExtractFuture<B>;

    fn extract(&self, request: Request<CaptchaBody<B>>, limits: BodyLimits) -> Self::Future {
        let source = self.clone();
        Box::pin(async move {
            match source {
                Self::Header(e) => e.extract(request, limits).await,
                Self::Query(e) => e.extract(request, limits).await,
                Self::Form(e) => e.extract(request, limits).await,
                Self::Json(e) => e.extract(request, limits).await,
                Self::Grpc(e) => e.extract(request, limits).await,
                Self::FirstOf(sources) => first_found(&sources, request, limits).await,
            }
        })
    }
}

async fn first_found<B>(
    sources: &[ParamSource],
    mut request: Request<CaptchaBody<B>>,
    limits: BodyLimits,
) -> Extracted<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    for source in sources {
        let extracted = source.extract(request, limits).await;
        if !matches!(extracted.param, Ok(None)) {
            return extracted;
        }
        request = extracted.request;
    }
    Extracted::new(request, None)
}

//! The default extractor: the header, else the field of a JSON or form body.

use bytes::Bytes;
use http::{HeaderName, Request};
use http_body::Body;

use super::body::find_in_body;
use super::form::in_form;
use super::header::in_header;
use super::json::in_json;
use super::{BodyLimits, CaptchaBody, ContentKind, DEFAULT_FIELD, DEFAULT_HEADER, ExtractFuture};

/// The default extractor of a [`CaptchaLayer`](crate::CaptchaLayer): the
/// `x-captcha-verify-param` header (or gRPC metadata of that key), else the
/// `captchaVerifyParam` field of a JSON body, else that field of a urlencoded form body. A
/// page written to Alibaba's guide posts the param in its JSON or form body; a page of your
/// own may send the header.
///
/// It reads what `Header::default().or(JsonField::default()).or(FormField::default())` reads,
/// more cheaply: a request with the header, or whose content type is neither JSON nor a form
/// (gRPC, say), is answered at once, its body untouched and nothing allocated. A body is read
/// once, within the layer's [`BodyLimits`], and the same bytes reach the inner service.
///
/// A [`Route`](crate::layer::Route) of a table can name it like any built-in, e.g. in
/// `HeaderOrBody::default().or(Query::default())`.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct HeaderOrBody;

const HEADER: HeaderName = HeaderName::from_static(DEFAULT_HEADER);

impl HeaderOrBody {
    pub(super) fn extract<B>(
        &self,
        request: Request<CaptchaBody<B>>,
        limits: BodyLimits,
    ) -> ExtractFuture<B>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<crate::BoxError>,
    {
        match in_header(request.headers(), &HEADER) {
            // The content types exclude each other, so "JSON, then form" is a choice by type.
            Ok(None) => match ContentKind::of(request.headers()) {
                ContentKind::Json => {
                    find_in_body(request, limits, ContentKind::Json, DEFAULT_FIELD, in_json)
                }
                ContentKind::Form => {
                    find_in_body(request, limits, ContentKind::Form, DEFAULT_FIELD, in_form)
                }
                ContentKind::FormOrJson | ContentKind::Grpc | ContentKind::Other => {
                    ExtractFuture::ready(request, Ok(None))
                }
            },
            param => ExtractFuture::ready(request, param),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;
    use crate::extract::{ExtractError, Extracted};
    use crate::verify::InvalidParam;

    /// A body that fails the test if anything reads it.
    struct Untouchable;

    impl Body for Untouchable {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            panic!("the body was read");
        }
    }

    fn request(content_type: &str, header: &[&str]) -> Request<CaptchaBody<Untouchable>> {
        let mut request = Request::post("/login")
            .header("content-type", content_type)
            .body(CaptchaBody::new(Untouchable))
            .unwrap();
        for value in header {
            request
                .headers_mut()
                .append(DEFAULT_HEADER, value.parse().unwrap());
        }
        request
    }

    fn ready(future: ExtractFuture<Untouchable>) -> Extracted<Untouchable> {
        match future {
            ExtractFuture::Ready(extracted) => extracted.unwrap(),
            ExtractFuture::Reading(_) => panic!("it would read the body"),
        }
    }

    #[test]
    fn the_header_and_other_content_types_are_answered_without_the_body() {
        let extract = |request| ready(HeaderOrBody.extract(request, BodyLimits::DEFAULT));
        let found = extract(request("application/json", &["eyJ4IjoxfQ=="]));
        assert_eq!(found.param.unwrap().unwrap().as_str(), "eyJ4IjoxfQ==");
        let twice = extract(request("application/json", &["eyJ4IjoxfQ==", "b3RoZXI="]));
        assert_eq!(
            twice.param.unwrap_err(),
            ExtractError::Invalid(InvalidParam::Ambiguous)
        );
        for content_type in ["application/grpc", "application/grpc+json", "text/plain"] {
            let found = extract(request(content_type, &[]));
            assert!(matches!(found.param, Ok(None)), "{content_type}");
        }
    }
}

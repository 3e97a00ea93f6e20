//! The default extractor: the header, else the field of a JSON or form body.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderName, Request};
use http_body::Body;

use super::body::find_in_body;
use super::form::{in_form, is_form};
use super::header::in_header;
use super::json::{in_json, is_json};
use super::{
    BodyLimits, BoxExtractFuture, CaptchaBody, DEFAULT_FIELD, DEFAULT_HEADER, ExtractParam,
    Extracted,
};

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
/// ```
/// use http::Request;
/// use http_body_util::BodyExt;
/// use tower_aliyun_captcha::extract::{BodyLimits, CaptchaBody, ExtractParam, HeaderOrBody};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let form = "user=ann&captchaVerifyParam=eyJ4IjoxfQ%3D%3D";
/// let request = Request::post("/login")
///     .header("content-type", "application/x-www-form-urlencoded")
///     .body(CaptchaBody::new(form.to_owned()))
///     .unwrap();
/// let found = HeaderOrBody::default().extract(request, BodyLimits::DEFAULT).await;
/// assert_eq!(found.param.unwrap().unwrap().as_str(), "eyJ4IjoxfQ==");
/// let body = found.request.into_body().collect().await.unwrap().to_bytes();
/// assert_eq!(body, form.as_bytes());
///
/// // A param given twice is refused, whichever copy a parser would keep.
/// let json = r#"{"captchaVerifyParam":"eyJ4IjoxfQ==","captchaVerifyParam":"b3RoZXI="}"#;
/// let request = Request::post("/login")
///     .header("content-type", "application/json")
///     .body(CaptchaBody::new(json.to_owned()))
///     .unwrap();
/// let found = HeaderOrBody::default().extract(request, BodyLimits::DEFAULT).await;
/// assert!(found.param.is_err());
/// # });
/// ```
///
/// A route of a table can name it like any built-in:
///
/// ```
/// use tower_aliyun_captcha::SceneId;
/// use tower_aliyun_captcha::extract::{HeaderOrBody, Query};
/// use tower_aliyun_captcha::layer::Route;
///
/// let route = Route::exact("/login", SceneId::new("login")?)
///     .extractor(HeaderOrBody::default().or(Query::default()));
/// # let _ = route;
/// # Ok::<_, tower_aliyun_captcha::verify::InvalidSceneId>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct HeaderOrBody;

const HEADER: HeaderName = HeaderName::from_static(DEFAULT_HEADER);

impl<B> ExtractParam<B> for HeaderOrBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    type Future = HeaderOrBodyFuture<B>;

    fn extract(&self, request: Request<CaptchaBody<B>>, limits: BodyLimits) -> Self::Future {
        let in_header = in_header(request.headers(), &HEADER);
        let state = match in_header {
            // The content types exclude each other, so "JSON, then form" is a choice by type.
            Ok(None) if is_json(&request) => {
                State::Reading(Box::pin(find_in_body(request, limits, |json| {
                    in_json(json, DEFAULT_FIELD)
                })))
            }
            Ok(None) if is_form(&request) => {
                State::Reading(Box::pin(find_in_body(request, limits, |form| {
                    in_form(form, DEFAULT_FIELD)
                })))
            }
            param => State::Ready(Some(Extracted { request, param })),
        };
        HeaderOrBodyFuture { state }
    }
}

/// The future of [`HeaderOrBody`]: ready at once, unless it reads a body.
pub struct HeaderOrBodyFuture<B> {
    state: State<B>,
}

// The request is held inline: boxing it would cost every request an allocation that the
// header case exists to avoid.
#[allow(clippy::large_enum_variant)]
enum State<B> {
    Ready(Option<Extracted<B>>),
    Reading(BoxExtractFuture<B>),
}

// Nothing in it is pinned: the body's future is boxed, and the answer is moved out whole.
impl<B> Unpin for HeaderOrBodyFuture<B> {}

impl<B> Future for HeaderOrBodyFuture<B> {
    type Output = Extracted<B>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            State::Ready(extracted) => Poll::Ready(
                extracted
                    .take()
                    .expect("HeaderOrBodyFuture polled after completion"),
            ),
            State::Reading(future) => future.as_mut().poll(cx),
        }
    }
}

impl<B> fmt::Debug for HeaderOrBodyFuture<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Ready(_) => "ready",
            State::Reading(_) => "reading the body",
        };
        f.debug_struct("HeaderOrBodyFuture")
            .field("state", &state)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::ExtractError;
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

    fn ready(future: HeaderOrBodyFuture<Untouchable>) -> Extracted<Untouchable> {
        match future.state {
            State::Ready(extracted) => extracted.unwrap(),
            State::Reading(_) => panic!("it would read the body"),
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

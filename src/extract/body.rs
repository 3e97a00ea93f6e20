//! The request body the inner service receives, and bounded buffering shared by the body
//! extractors.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Limited};
use pin_project::pin_project;

use super::{ExtractError, ExtractFuture, Extracted, Field};
use crate::verify::CaptchaVerifyParam;

/// How much of a body the extractors read, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// The most bytes read. A `Content-Length` above it is refused before reading (413).
    pub max_bytes: usize,
    /// The longest a client may take to send the body (408 after it).
    pub read_timeout: Duration,
}

impl BodyLimits {
    /// The default: 64 KiB within 10 seconds.
    pub const DEFAULT: Self = Self {
        max_bytes: 64 * 1024,
        read_timeout: Duration::from_secs(10),
    };
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a body could not be read for its param.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyError {
    /// Longer than [`BodyLimits::max_bytes`].
    TooLarge,
    /// Not sent within [`BodyLimits::read_timeout`].
    TimedOut,
    /// The connection failed while the body was read.
    Unreadable,
}

/// The body handed to the inner service: the original body, untouched, or — when an
/// extractor had to read it — the very same bytes (and trailers), replayed.
#[pin_project]
#[derive(Debug)]
pub struct CaptchaBody<B> {
    #[pin]
    kind: Kind<B>,
}

#[pin_project(project = KindProjection)]
#[derive(Debug)]
enum Kind<B> {
    Original(#[pin] B),
    Buffered {
        data: Option<Bytes>,
        trailers: Option<HeaderMap>,
    },
}

impl<B> CaptchaBody<B> {
    /// Wraps a body that has not been read.
    pub fn new(body: B) -> Self {
        Self {
            kind: Kind::Original(body),
        }
    }

    /// A body already read into memory.
    pub fn buffered(data: Bytes) -> Self {
        Self {
            kind: Kind::Buffered {
                data: Some(data),
                trailers: None,
            },
        }
    }

    /// The bytes, when the body was read into memory (and not yet replayed).
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match &self.kind {
            Kind::Buffered { data, .. } => data.as_ref(),
            Kind::Original(_) => None,
        }
    }
}

impl<B> Body for CaptchaBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProjection::Original(body) => body.poll_frame(cx),
            KindProjection::Buffered { data, trailers } => {
                if let Some(data) = data.take().filter(|d| !d.is_empty()) {
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Poll::Ready(trailers.take().map(|t| Ok(Frame::trailers(t))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Original(body) => body.is_end_stream(),
            Kind::Buffered { data, trailers } => {
                data.as_ref().is_none_or(Bytes::is_empty) && trailers.is_none()
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Original(body) => body.size_hint(),
            Kind::Buffered { data, .. } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

/// What a request's `Content-Type` says its body is: the one parser of it, for the body
/// extractors, the route table and the refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentKind {
    Json,
    Form,
    /// Both a form and JSON (`application/x-www-form-urlencoded+json`): axum's `Form` reads
    /// it as a form and its `Json` as JSON, so what the app reads cannot be told.
    FormOrJson,
    /// gRPC in any encoding (`application/grpc`, `+proto`, `+json`, any case): framed
    /// messages, often a stream, never buffered.
    Grpc,
    Other,
}

impl ContentKind {
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
            return Self::Other;
        };
        let bytes = value.as_bytes();
        let essence = bytes
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let starts = |prefix: &[u8]| {
            essence
                .get(..prefix.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
        };
        if starts(b"application/grpc") {
            return Self::Grpc;
        }
        // As axum reads them: a form by prefix, JSON by its `+json` suffix.
        let form = starts(b"application/x-www-form-urlencoded");
        let json = essence.eq_ignore_ascii_case(b"application/json")
            || (essence.len() > 5 && essence[essence.len() - 5..].eq_ignore_ascii_case(b"+json"));
        if form && json {
            Self::FormOrJson
        } else if form {
            Self::Form
        } else if json {
            Self::Json
        } else {
            Self::Other
        }
    }
}

/// Whether the body is encoded (a `Content-Encoding` other than `identity`): what an app
/// behind a decompression layer reads is not these bytes, so nothing is looked for in them.
fn is_encoded(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .any(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case(b"identity"))
}

/// Reads the request's body into memory (once: a body already read is reused), within
/// `limits`, and puts the same bytes back in the request.
pub(crate) async fn buffer<B>(
    request: Request<CaptchaBody<B>>,
    limits: BodyLimits,
) -> (Request<CaptchaBody<B>>, Result<Bytes, BodyError>)
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    if let Some(bytes) = request.body().as_bytes() {
        let bytes = bytes.clone();
        return (request, Ok(bytes));
    }
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_bytes as u64) {
        return (request, Err(BodyError::TooLarge));
    }
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(
        limits.read_timeout,
        Limited::new(body, limits.max_bytes).collect(),
    )
    .await;
    let (body, outcome) = match read {
        Ok(Ok(collected)) => {
            let trailers = collected.trailers().cloned();
            let data = collected.to_bytes();
            let body = CaptchaBody {
                kind: Kind::Buffered {
                    data: Some(data.clone()),
                    trailers,
                },
            };
            (body, Ok(data))
        }
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => (
            CaptchaBody::buffered(Bytes::new()),
            Err(BodyError::TooLarge),
        ),
        Ok(Err(_)) => (
            CaptchaBody::buffered(Bytes::new()),
            Err(BodyError::Unreadable),
        ),
        Err(_) => (
            CaptchaBody::buffered(Bytes::new()),
            Err(BodyError::TimedOut),
        ),
    };
    (Request::from_parts(parts, body), outcome)
}

/// The field `name` of the request, for what the layer reads besides the param (an account
/// name): in the body if it is JSON (a dotted path) or a urlencoded form, buffered as [`buffer`]
/// does, and in the query string (axum's `Form` reads a GET's query). Given in both, or in a
/// body of another type, it is ambiguous: the app may read what this cannot.
pub(crate) async fn body_field<B>(
    request: Request<CaptchaBody<B>>,
    limits: BodyLimits,
    name: &str,
) -> (Request<CaptchaBody<B>>, Result<Field, BodyError>)
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    let query = request.uri().query().unwrap_or_default();
    let in_query = super::form::form_string(query.as_bytes(), name);
    if is_encoded(request.headers()) && !request.body().is_end_stream() {
        // Compressed: the app (behind a decompression layer) may read a name this cannot.
        return (request, Ok(Field::Ambiguous));
    }
    type Reading = fn(&[u8], &str) -> Field;
    let (find, other): (Reading, Reading) = match ContentKind::of(request.headers()) {
        ContentKind::Json => (super::json::json_string, super::form::form_string),
        ContentKind::Form => (super::form::form_string, super::json::json_string),
        _ if request.body().is_end_stream() => return (request, Ok(in_query)),
        // A body of another type (multipart, gRPC's framed messages), or one read two ways:
        // the app may read a name in it that this cannot (a closure over the head can), so it
        // cannot be told.
        ContentKind::FormOrJson | ContentKind::Grpc | ContentKind::Other => {
            return (request, Ok(Field::Ambiguous));
        }
    };
    let (request, bytes) = buffer(request, limits).await;
    let field = bytes.map(|bytes| match (in_query, find(&bytes, name)) {
        // Named by neither: unless the body names one read the other way, which an app that
        // tells the two kinds apart otherwise (by sniffing, or a content type in another
        // case) would read.
        (Field::Missing, Field::Missing) => match other(&bytes, name) {
            Field::One(_) => Field::Ambiguous,
            _ => Field::Missing,
        },
        (Field::Missing, field) | (field, Field::Missing) => field,
        _ => Field::Ambiguous,
    });
    (request, field)
}

/// The skeleton of the body extractors: a body of the `kind` they read is buffered (as
/// [`buffer`] does) and searched with `find` for `name`; any other body, or an encoded one
/// (decompression goes outside the layer), is passed over unread, with no param.
pub(crate) fn find_in_body<B>(
    request: Request<CaptchaBody<B>>,
    limits: BodyLimits,
    kind: ContentKind,
    name: impl AsRef<str> + Send + 'static,
    find: fn(&[u8], &str) -> Result<Option<CaptchaVerifyParam>, ExtractError>,
) -> ExtractFuture<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    if ContentKind::of(request.headers()) != kind || is_encoded(request.headers()) {
        return ExtractFuture::ready(request, Ok(None));
    }
    ExtractFuture::reading(async move {
        let (request, bytes) = buffer(request, limits).await;
        let param = bytes
            .map_err(ExtractError::Body)
            .and_then(|bytes| find(&bytes, name.as_ref()));
        Extracted { request, param }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reading_of_the_content_type() {
        for (value, kind) in [
            ("application/json", ContentKind::Json),
            ("Application/JSON; charset=utf-8", ContentKind::Json),
            ("application/problem+json", ContentKind::Json),
            ("application/x-www-form-urlencoded", ContentKind::Form),
            ("application/x-www-form-urlencoded-x", ContentKind::Form),
            (
                "application/x-www-form-urlencoded+json",
                ContentKind::FormOrJson,
            ),
            (
                " application/x-www-form-urlencoded ;charset=utf-8",
                ContentKind::Form,
            ),
            ("application/grpc", ContentKind::Grpc),
            ("application/grpc+json", ContentKind::Grpc),
            ("Application/GRPC-web+json", ContentKind::Grpc),
            ("APPLICATION/GRPC+proto", ContentKind::Grpc),
            ("text/plain", ContentKind::Other),
            ("multipart/form-data; boundary=x", ContentKind::Other),
            ("+json", ContentKind::Other),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(http::header::CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(ContentKind::of(&headers), kind, "{value}");
        }
        assert_eq!(ContentKind::of(&HeaderMap::new()), ContentKind::Other);
    }

    #[test]
    fn an_encoded_body_is_any_coding_but_identity() {
        for (values, encoded) in [
            (&[][..], false),
            (&["identity"][..], false),
            (&[" Identity "][..], false),
            (&["gzip"][..], true),
            (&["identity, br"][..], true),
            (&["identity", "deflate"][..], true),
            (&["x-anything"][..], true),
        ] {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(http::header::CONTENT_ENCODING, value.parse().unwrap());
            }
            assert_eq!(is_encoded(&headers), encoded, "{values:?}");
        }
    }
}

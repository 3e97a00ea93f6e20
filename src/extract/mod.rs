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
//! Each built-in converts into a [`ParamSource`], the one type the layer and its routes take;
//! `or` chains them, and [`ParamSource::from_fn`] makes one of a closure of your own (its
//! example shows both).

mod body;
mod form;
mod header;
mod header_or_body;
mod json;
mod query;
mod source;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Request;

pub use body::{BodyError, BodyLimits, CaptchaBody};
pub(crate) use body::{ContentKind, body_field};
pub use form::FormField;
pub use header::{GrpcMetadata, Header, InvalidMetadataKey};
pub use header_or_body::HeaderOrBody;
pub use json::JsonField;
pub use query::Query;
pub use source::ParamSource;

use crate::verify::{CaptchaVerifyParam, InvalidParam};

/// The field name Alibaba's front-end template posts the param under.
pub(crate) const DEFAULT_FIELD: &str = "captchaVerifyParam";
/// The header the default extractors read.
pub(crate) const DEFAULT_HEADER: &str = "x-captcha-verify-param";

/// What an extractor found, with the request to hand on (its body replayed if it was read).
#[derive(Debug)]
pub(crate) struct Extracted<B> {
    pub(crate) request: Request<CaptchaBody<B>>,
    /// `Ok(None)`: no param in the request.
    pub(crate) param: Result<Option<CaptchaVerifyParam>, ExtractError>,
}

/// Checks raw param bytes, if any, into a `CaptchaVerifyParam`.
pub(crate) fn check(raw: Option<&[u8]>) -> Result<Option<CaptchaVerifyParam>, ExtractError> {
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

/// A string field of a body: absent (or not a string), once, or ambiguous (given twice, or
/// in a body whose other readers may find what this one cannot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    Missing,
    One(String),
    Ambiguous,
}

/// Why no usable param could be taken from a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtractError {
    /// A param was there but is empty, too long, not text, or given twice.
    Invalid(InvalidParam),
    /// The body could not be read.
    Body(BodyError),
}

/// The future of every extraction: answered at once from the request's head, or reading
/// the body.
// The request is held inline: boxing it would cost the header case an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum ExtractFuture<B> {
    Ready(Option<Extracted<B>>),
    Reading(Pin<Box<dyn Future<Output = Extracted<B>> + Send>>),
}

impl<B> ExtractFuture<B> {
    pub(crate) fn ready(
        request: Request<CaptchaBody<B>>,
        param: Result<Option<CaptchaVerifyParam>, ExtractError>,
    ) -> Self {
        Self::Ready(Some(Extracted { request, param }))
    }

    pub(crate) fn reading(future: impl Future<Output = Extracted<B>> + Send + 'static) -> Self {
        Self::Reading(Box::pin(future))
    }
}

// Nothing in it is pinned: the body's future is boxed, and the answer is moved out whole.
impl<B> Unpin for ExtractFuture<B> {}

impl<B> Future for ExtractFuture<B> {
    type Output = Extracted<B>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Self::Ready(extracted) => Poll::Ready(
                extracted
                    .take()
                    .expect("an extraction polled after it answered"),
            ),
            Self::Reading(future) => future.as_mut().poll(cx),
        }
    }
}

macro_rules! impl_or {
    ($($ty:ident),*) => {$(
        impl $ty {
            /// This extractor, or else `other` when this one finds no param (an invalid or
            /// ambiguous param is an answer, and stops there).
            pub fn or(self, other: impl Into<ParamSource>) -> ParamSource {
                ParamSource::from(self).or(other)
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
    JsonField
);

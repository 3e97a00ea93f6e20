//! The param from a request header, or from gRPC metadata (which travels as headers).

use http::{HeaderMap, HeaderName, HeaderValue, Request};

use super::{CaptchaBody, DEFAULT_HEADER, ExtractError, ExtractFuture, check_only};
use crate::verify::CaptchaVerifyParam;

/// The param from a header, by default `x-captcha-verify-param`. The header sent twice is
/// refused ([`InvalidParam::Ambiguous`](crate::verify::InvalidParam::Ambiguous)).
#[derive(Debug, Clone)]
pub struct Header {
    name: HeaderName,
}

impl Header {
    /// Reads the header `name`.
    pub fn new(name: HeaderName) -> Self {
        Self { name }
    }

    /// The header name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }
}

impl Default for Header {
    fn default() -> Self {
        Self::new(HeaderName::from_static(DEFAULT_HEADER))
    }
}

impl Header {
    pub(super) fn extract<B>(&self, request: Request<CaptchaBody<B>>) -> ExtractFuture<B> {
        let param = in_header(request.headers(), &self.name);
        ExtractFuture::ready(request, param)
    }
}

/// The param in the header `name`, checked in place (the value is not copied).
pub(super) fn in_header(
    headers: &HeaderMap,
    name: &HeaderName,
) -> Result<Option<CaptchaVerifyParam>, ExtractError> {
    check_only(headers.get_all(name).iter().map(HeaderValue::as_bytes))
}

/// The param from a gRPC metadata key (ASCII metadata is an HTTP/2 header), by default
/// `x-captcha-verify-param`. Use it in front of tonic services.
#[derive(Debug, Clone, Default)]
pub struct GrpcMetadata {
    header: Header,
}

impl GrpcMetadata {
    /// Reads the ASCII metadata `key` (lower-case; not ending in `-bin`).
    pub fn new(key: &str) -> Result<Self, InvalidMetadataKey> {
        if key.ends_with("-bin") || key.starts_with("grpc-") {
            return Err(InvalidMetadataKey);
        }
        let name = HeaderName::from_bytes(key.as_bytes()).map_err(|_| InvalidMetadataKey)?;
        if name.as_str() != key {
            return Err(InvalidMetadataKey);
        }
        Ok(Self {
            header: Header::new(name),
        })
    }

    /// The metadata key.
    pub fn key(&self) -> &str {
        self.header.name()
    }
}

impl GrpcMetadata {
    pub(super) fn into_header(self) -> Header {
        self.header
    }
}

/// A metadata key that is not lower-case ASCII, is reserved (`grpc-…`), or is binary (`-bin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidMetadataKey;

impl std::fmt::Display for InvalidMetadataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a captcha metadata key is lower-case ASCII, not `grpc-…` and not `…-bin`")
    }
}

impl std::error::Error for InvalidMetadataKey {}

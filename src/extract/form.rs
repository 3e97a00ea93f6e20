//! The param from an `application/x-www-form-urlencoded` body field.

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body::Body;

use super::body::buffer;
use super::{
    BodyLimits, BoxExtractFuture, CaptchaBody, DEFAULT_FIELD, ExtractError, ExtractParam, Extracted,
};

/// The param from a urlencoded form field, by default `captchaVerifyParam`. The first
/// occurrence wins. Requests of another content type are passed over (no param found)
/// without reading their body.
///
/// ```
/// use tower_aliyun_captcha::extract::FormField;
///
/// assert_eq!(FormField::default().name(), "captchaVerifyParam");
/// ```
#[derive(Debug, Clone)]
pub struct FormField {
    name: Arc<str>,
}

impl FormField {
    /// Reads the form field `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into().into(),
        }
    }

    /// The field name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Default for FormField {
    fn default() -> Self {
        Self::new(DEFAULT_FIELD)
    }
}

pub(super) fn has_content_type<B>(request: &Request<B>, expected: &str) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

impl<B> ExtractParam<B> for FormField
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    type Future = BoxExtractFuture<B>;

    fn extract(&self, request: Request<CaptchaBody<B>>, limits: BodyLimits) -> Self::Future {
        let name = Arc::clone(&self.name);
        Box::pin(async move {
            if !has_content_type(&request, "application/x-www-form-urlencoded") {
                return Extracted::new(request, None);
            }
            let (request, bytes) = buffer(request, limits).await;
            match bytes {
                Ok(bytes) => {
                    let raw = form_urlencoded::parse(&bytes)
                        .find(|(key, _)| **key == *name)
                        .map(|(_, value)| value.into_owned());
                    Extracted::new(request, raw.as_deref().map(str::as_bytes))
                }
                Err(error) => Extracted {
                    request,
                    param: Err(ExtractError::Body(error)),
                },
            }
        })
    }
}

//! The param from a field of a JSON body.

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body::Body;
use serde_json::Value;

use super::body::buffer;
use super::form::has_content_type;
use super::{
    BodyLimits, BoxExtractFuture, CaptchaBody, DEFAULT_FIELD, ExtractError, ExtractParam, Extracted,
};

/// The param from a JSON body field, by default `captchaVerifyParam` (what Alibaba's
/// front-end template posts). A dotted path reaches into nested objects. Requests whose
/// content type is not JSON are passed over without reading their body; a body that is not
/// valid JSON, or whose field is not a string, has no param.
///
/// ```
/// use tower_aliyun_captcha::extract::JsonField;
///
/// let nested = JsonField::new("captcha.param");
/// assert_eq!(nested.path(), "captcha.param");
/// ```
#[derive(Debug, Clone)]
pub struct JsonField {
    path: Arc<str>,
}

impl JsonField {
    /// Reads the field at `path` (`a.b.c` for nested objects).
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into().into(),
        }
    }

    /// The field path.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Default for JsonField {
    fn default() -> Self {
        Self::new(DEFAULT_FIELD)
    }
}

fn is_json<B>(request: &Request<B>) -> bool {
    has_content_type(request, "application/json")
        || request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().ends_with("+json"))
}

fn find<'a>(value: &'a Value, path: &str) -> Option<&'a str> {
    path.split('.')
        .try_fold(value, |value, key| value.get(key))?
        .as_str()
}

impl<B> ExtractParam<B> for JsonField
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    type Future = BoxExtractFuture<B>;

    fn extract(&self, request: Request<CaptchaBody<B>>, limits: BodyLimits) -> Self::Future {
        let path = Arc::clone(&self.path);
        Box::pin(async move {
            if !is_json(&request) {
                return Extracted::new(request, None);
            }
            let (request, bytes) = buffer(request, limits).await;
            match bytes {
                Ok(bytes) => {
                    let value: Option<Value> = serde_json::from_slice(&bytes).ok();
                    let raw = value.as_ref().and_then(|v| find(v, &path));
                    Extracted::new(request, raw.map(str::as_bytes))
                }
                Err(error) => Extracted {
                    request,
                    param: Err(ExtractError::Body(error)),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_reach_nested_strings_only() {
        let value: Value = serde_json::json!({"a": {"b": "x"}, "n": 1, "captchaVerifyParam": "p"});
        assert_eq!(find(&value, "a.b"), Some("x"));
        assert_eq!(find(&value, "captchaVerifyParam"), Some("p"));
        assert_eq!(find(&value, "n"), None);
        assert_eq!(find(&value, "a.c"), None);
        assert_eq!(find(&value, "a"), None);
    }
}

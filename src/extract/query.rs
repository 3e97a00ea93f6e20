//! The param from the URL's query string.

use http::Request;

use super::{CaptchaBody, DEFAULT_FIELD, ExtractFuture, check_only};

/// The param from a query parameter, by default `captchaVerifyParam`. The parameter given
/// twice is refused ([`InvalidParam::Ambiguous`](crate::verify::InvalidParam::Ambiguous)).
#[derive(Debug, Clone)]
pub struct Query {
    name: std::sync::Arc<str>,
}

impl Query {
    /// Reads the query parameter `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into().into(),
        }
    }

    /// The parameter name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Default for Query {
    fn default() -> Self {
        Self::new(DEFAULT_FIELD)
    }
}

impl Query {
    pub(super) fn extract<B>(&self, request: Request<CaptchaBody<B>>) -> ExtractFuture<B> {
        let query = request.uri().query().unwrap_or_default();
        let param = check_only(
            form_urlencoded::parse(query.as_bytes())
                .filter(|(key, _)| *key == *self.name)
                .map(|(_, value)| value.into_owned()),
        );
        ExtractFuture::ready(request, param)
    }
}

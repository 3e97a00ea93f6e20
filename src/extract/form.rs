//! The param from an `application/x-www-form-urlencoded` body field.

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body::Body;

use super::Field;
use super::body::find_in_body;
use super::{
    BodyLimits, CaptchaBody, ContentKind, DEFAULT_FIELD, ExtractError, ExtractFuture, check_only,
};
use crate::verify::CaptchaVerifyParam;

/// The param from a urlencoded form field, by default `captchaVerifyParam`. The field given
/// twice is refused ([`InvalidParam::Ambiguous`](crate::verify::InvalidParam::Ambiguous)).
/// Requests of another content type are passed over (no param found) without reading their
/// body.
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

/// The value of the form field `name` of a body already in memory (an account name, say).
pub(super) fn form_string(form: &[u8], name: &str) -> Field {
    let mut values = form_urlencoded::parse(form)
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value);
    match (values.next(), values.next()) {
        (None, _) => Field::Missing,
        (Some(value), None) => Field::One(value.into_owned()),
        (Some(_), Some(_)) => Field::Ambiguous,
    }
}

/// The param in the form field `name` of a body already in memory.
pub(super) fn in_form(form: &[u8], name: &str) -> Result<Option<CaptchaVerifyParam>, ExtractError> {
    // Names are compared decoded: `captcha%56erifyParam` is a second copy too.
    check_only(
        form_urlencoded::parse(form)
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned()),
    )
}

impl FormField {
    pub(super) fn extract<B>(
        &self,
        request: Request<CaptchaBody<B>>,
        limits: BodyLimits,
    ) -> ExtractFuture<B>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<crate::BoxError>,
    {
        find_in_body(
            request,
            limits,
            ContentKind::Form,
            Arc::clone(&self.name),
            in_form,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::InvalidParam;

    #[test]
    fn a_field_given_twice_is_refused_however_it_is_spelled() {
        let found = |form: &str| in_form(form.as_bytes(), DEFAULT_FIELD);
        let param = found("a=1&captchaVerifyParam=p%2B1&b=2").unwrap().unwrap();
        assert_eq!(param.as_str(), "p+1");
        assert_eq!(found("a=1").unwrap(), None);
        for twice in [
            "captchaVerifyParam=p&captchaVerifyParam=q",
            "captchaVerifyParam=p&captchaVerifyParam=p",
            "captchaVerifyParam=p&captcha%56erifyParam=q",
            "captchaVerifyParam=p&captchaVerifyParam=",
        ] {
            assert_eq!(
                found(twice).unwrap_err(),
                ExtractError::Invalid(InvalidParam::Ambiguous),
                "{twice}"
            );
        }
    }
}

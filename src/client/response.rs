//! The service's answers, parsed into a verdict or an error.

use std::borrow::Cow;

use serde::Deserialize;

use crate::error::{ApiError, ApiErrorCode, ResponseError, ResponseErrorKind};
use crate::{Error, Verification, VerifyCode};

/// A response body, success or error: the gateway writes its fields capitalised, some SDK
/// paths lower-case them. Text is borrowed from the body unless it has escapes.
#[derive(Debug, Deserialize)]
struct Wire<'a> {
    #[serde(rename = "RequestId", alias = "requestId", default, borrow)]
    request_id: Option<Text<'a>>,
    #[serde(rename = "Success", alias = "success", default)]
    success: Option<bool>,
    #[serde(rename = "Code", alias = "code", default, borrow)]
    code: Option<Text<'a>>,
    #[serde(rename = "Message", alias = "message", default, borrow)]
    message: Option<Text<'a>>,
    #[serde(rename = "Result", alias = "result", default, borrow)]
    result: Option<WireResult<'a>>,
}

#[derive(Debug, Deserialize)]
struct WireResult<'a> {
    #[serde(rename = "VerifyResult", alias = "verifyResult")]
    verify_result: bool,
    /// Optional in every official SDK's model: a verdict without one is still a verdict, with
    /// a code nobody knows.
    #[serde(rename = "VerifyCode", alias = "verifyCode", default, borrow)]
    verify_code: Option<Text<'a>>,
    /// Added to the answer in late 2025; older answers lack it.
    #[serde(rename = "CertifyId", alias = "certifyId", default, borrow)]
    certify_id: Option<Text<'a>>,
}

/// A JSON string: borrowed from the body when it has no escapes, decoded otherwise.
#[derive(Debug)]
struct Text<'a>(Cow<'a, str>);

impl<'a> Text<'a> {
    fn as_str(&self) -> &str {
        &self.0
    }

    fn into_string(self) -> String {
        self.0.into_owned()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Turns the service's HTTP status and body into the verdict, or the error it answered. Error
/// bodies may be JSON or, as the gateway sometimes answers, XML (`<Error><Code>…`).
pub fn parse_response(status: u16, body: &[u8]) -> Result<Verification, Error> {
    parse_answer(status, &AnswerHeaders::default(), body)
}

/// What the client reads from an answer's headers.
#[derive(Debug, Default)]
pub(crate) struct AnswerHeaders {
    /// `x-acs-retry-after`: the wait the gateway asked for.
    pub(crate) retry_after: Option<std::time::Duration>,
    /// `x-acs-request-id`, for answers whose body has no `RequestId`.
    pub(crate) request_id: Option<http::HeaderValue>,
}

/// [`parse_response`], with what the headers said.
pub(crate) fn parse_answer(
    status: u16,
    headers: &AnswerHeaders,
    body: &[u8],
) -> Result<Verification, Error> {
    let wire = if body.trim_ascii_start().starts_with(b"<") {
        xml_error(body)
    } else {
        serde_json::from_slice::<Wire<'_>>(body).map_err(|error| error.to_string())
    };
    let wire = match wire {
        Ok(wire) => wire,
        Err(why) => {
            let kind = if (200..300).contains(&status) {
                ResponseErrorKind::Malformed
            } else {
                ResponseErrorKind::UnexpectedStatus
            };
            return Err(ResponseError::new(
                kind,
                status,
                format!("body is not the API's JSON: {why}"),
            )
            .into());
        }
    };
    let request_id = match wire.request_id {
        Some(id) => id.into_string(),
        None => headers
            .request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
            .unwrap_or_default(),
    };
    let succeeded = (200..300).contains(&status)
        && wire.success != Some(false)
        && wire
            .code
            .as_ref()
            .is_none_or(|c| c.as_str().eq_ignore_ascii_case("success"));
    if !succeeded {
        let Some(code) = wire.code else {
            return Err(ResponseError::new(
                ResponseErrorKind::UnexpectedStatus,
                status,
                "an error answer without a Code",
            )
            .into());
        };
        let error = ApiError::new(
            status,
            ApiErrorCode::from(code.as_str()),
            wire.message.map(Text::into_string).unwrap_or_default(),
            request_id,
        );
        return Err(match headers.retry_after {
            Some(wait) => error.with_retry_after(wait),
            None => error,
        }
        .into());
    }
    let Some(result) = wire.result else {
        return Err(ResponseError::new(
            ResponseErrorKind::Malformed,
            status,
            "a success answer without a Result",
        )
        .into());
    };
    let verdict = Verification::from_result(
        result.verify_result,
        VerifyCode::from(result.verify_code.as_ref().map_or("", Text::as_str)),
        request_id,
    );
    Ok(match result.certify_id {
        Some(certify_id) => verdict.with_certify_id(certify_id.into_string()),
        None => verdict,
    })
}

/// The gateway's XML error body: `<Error>` with `RequestId`, `HostId`, `Code`, `Message` and
/// `Recommend` children. Only the error is ever XML; a verdict is always JSON.
fn xml_error(body: &[u8]) -> Result<Wire<'static>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "XML that is not UTF-8".to_owned())?;
    let error = element(text, "Error").ok_or("XML without an <Error> element")?;
    let owned = |name| element(error, name).map(|raw| Text(Cow::Owned(xml_text(raw))));
    Ok(Wire {
        request_id: owned("RequestId"),
        success: Some(false),
        code: owned("Code"),
        message: owned("Message"),
        result: None,
    })
}

/// The content of the first `<name>…</name>` in `xml`.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(&xml[start..end])
}

/// An element's text: CDATA unwrapped, the five predefined entities decoded.
fn xml_text(raw: &str) -> String {
    let raw = raw.trim();
    if let Some(cdata) = raw
        .strip_prefix("<![CDATA[")
        .and_then(|r| r.strip_suffix("]]>"))
    {
        return cdata.to_owned();
    }
    raw.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_sample_passes() {
        let body = br#"{"RequestId": "3F29-X", "Message": "success", "Code": "Success",
            "Success": true, "Result": {"VerifyResult": true, "VerifyCode": "T001"}}"#;
        let verdict = parse_response(200, body).unwrap();
        assert!(verdict.passed());
        assert_eq!(verdict.code(), &VerifyCode::T001);
        assert_eq!(verdict.request_id(), "3F29-X");
    }

    #[test]
    fn a_failed_check_is_a_verdict_not_an_error() {
        let body = br#"{"RequestId":"r","Code":"Success","Success":true,"Result":{"VerifyResult":false,"VerifyCode":"F015"}}"#;
        let verdict = parse_response(200, body).unwrap();
        assert!(!verdict.passed());
        assert_eq!(verdict.code(), &VerifyCode::F015);
    }

    #[test]
    fn gateway_errors_carry_status_code_message_and_request_id() {
        let body = br#"{"RequestId":"r1","HostId":"h","Code":"Forbidden.RAMUserAccessDenied","Message":"no","Recommend":"u"}"#;
        match parse_response(403, body) {
            Err(Error::Api(error)) => {
                assert_eq!(error.status(), 403);
                assert_eq!(error.code(), &ApiErrorCode::ForbiddenRamUserAccessDenied);
                assert!(error.code().advice().contains("AliyunYundunAFSFullAccess"));
                assert_eq!(error.message(), "no");
                assert_eq!(error.request_id(), "r1");
            }
            other => panic!("{other:?}"),
        }
        let lower = br#"{"requestId":"r2","code":"InternalError","message":"x"}"#;
        assert!(
            matches!(parse_response(500, lower), Err(Error::Api(e)) if e.code() == &ApiErrorCode::InternalError)
        );
    }

    #[test]
    fn a_verdict_without_a_code_is_decided_on_verify_result() {
        let body =
            br#"{"RequestId":"r","Code":"Success","Success":true,"Result":{"VerifyResult":false}}"#;
        let verdict = parse_response(200, body).unwrap();
        assert!(!verdict.passed());
        assert_eq!(verdict.code(), &VerifyCode::Unknown(String::new()));
        let no_result =
            br#"{"RequestId":"r","Code":"Success","Success":true,"Result":{"VerifyCode":"T001"}}"#;
        assert!(matches!(
            parse_response(200, no_result),
            Err(Error::Response(_))
        ));
    }

    #[test]
    fn xml_errors_keep_their_code_message_and_request_id() {
        let body = b"<?xml version='1.0' encoding='UTF-8'?><Error><RequestId>R-9</RequestId>\
            <HostId>captcha.cn-shanghai.aliyuncs.com</HostId><Code>InvalidVersion</Code>\
            <Message>Specified parameter Version is not valid &amp; known.</Message>\
            <Recommend><![CDATA[https://error-center.aliyun.com/status/search?Keyword=InvalidVersion&source=PopGw]]></Recommend></Error>";
        match parse_response(400, body) {
            Err(Error::Api(error)) => {
                assert_eq!(error.code(), &ApiErrorCode::InvalidVersion);
                assert_eq!(error.request_id(), "R-9");
                assert_eq!(
                    error.message(),
                    "Specified parameter Version is not valid & known."
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_response(502, b"<html>bad gateway</html>"),
            Err(Error::Response(_))
        ));
    }

    #[test]
    fn the_certify_id_and_a_header_request_id_are_kept() {
        let body = br#"{"Code":"Success","Success":true,"Result":{"VerifyResult":true,"VerifyCode":"T001","CertifyId":"c-1"}}"#;
        let headers = AnswerHeaders {
            request_id: Some(http::HeaderValue::from_static("R-h")),
            ..AnswerHeaders::default()
        };
        let verdict = parse_answer(200, &headers, body).unwrap();
        assert_eq!(verdict.certify_id(), Some("c-1"));
        assert_eq!(verdict.request_id(), "R-h");
    }

    #[test]
    fn escaped_text_is_decoded() {
        let body = br#"{"RequestId":"r\"1","Code":"Forbidden.RAMUserAccessDenied","Message":"a \u00e9 \n b"}"#;
        match parse_response(403, body) {
            Err(Error::Api(error)) => {
                assert_eq!(error.request_id(), "r\"1");
                assert_eq!(error.message(), "a \u{e9} \n b");
            }
            other => panic!("{other:?}"),
        }
        let body = br#"{"RequestId":"r","Code":"Success","Success":true,"Result":{"VerifyResult":true,"VerifyCode":"T\u0030\u00301","CertifyId":"c\/1"}}"#;
        let verdict = parse_response(200, body).unwrap();
        assert_eq!(verdict.code(), &VerifyCode::T001);
        assert_eq!(verdict.certify_id(), Some("c/1"));
    }

    #[test]
    fn garbage_is_a_response_error() {
        for (status, body) in [
            (200, &b"{\"Success\": tru"[..]),
            (200, b"{}"),
            (
                200,
                br#"{"Success":true,"Result":{"VerifyResult":"yes","VerifyCode":"T001"}}"#,
            ),
            (502, b"<html>bad gateway</html>"),
            (500, b"{}"),
        ] {
            assert!(
                matches!(parse_response(status, body), Err(Error::Response(_))),
                "{status} {body:?}"
            );
        }
    }
}

//! The service's answers, parsed into a verdict or an error.

use serde::Deserialize;

use crate::error::{ApiError, ApiErrorCode, ResponseError, ResponseErrorKind};
use crate::{Error, Verification, VerifyCode};

/// A response body, success or error: the gateway writes its fields capitalised, some SDK
/// paths lower-case them.
#[derive(Debug, Deserialize)]
struct Wire {
    #[serde(rename = "RequestId", alias = "requestId", default)]
    request_id: Option<String>,
    #[serde(rename = "Success", alias = "success", default)]
    success: Option<bool>,
    #[serde(rename = "Code", alias = "code", default)]
    code: Option<String>,
    #[serde(rename = "Message", alias = "message", default)]
    message: Option<String>,
    #[serde(rename = "Result", alias = "result", default)]
    result: Option<WireResult>,
}

#[derive(Debug, Deserialize)]
struct WireResult {
    #[serde(rename = "VerifyResult", alias = "verifyResult")]
    verify_result: bool,
    /// Optional in every official SDK's model: a verdict without one is still a verdict, with
    /// a code nobody knows.
    #[serde(rename = "VerifyCode", alias = "verifyCode", default)]
    verify_code: Option<String>,
}

/// Turns the service's HTTP status and body into the verdict, or the error it answered.
///
/// ```
/// use tower_aliyun_captcha::client::parse_response;
///
/// let body = br#"{"RequestId":"r","Code":"Success","Success":true,
///                "Result":{"VerifyResult":false,"VerifyCode":"F015"}}"#;
/// let verdict = parse_response(200, body).unwrap();
/// assert!(!verdict.passed());
/// assert!(parse_response(403, br#"{"Code":"Forbidden.AccountAccessDenied"}"#).is_err());
/// ```
pub fn parse_response(status: u16, body: &[u8]) -> Result<Verification, Error> {
    parse_answer(status, None, body)
}

/// [`parse_response`], with the wait the gateway asked for (`x-acs-retry-after`).
pub(crate) fn parse_answer(
    status: u16,
    retry_after: Option<std::time::Duration>,
    body: &[u8],
) -> Result<Verification, Error> {
    let wire: Wire = match serde_json::from_slice(body) {
        Ok(wire) => wire,
        Err(error) => {
            let kind = if (200..300).contains(&status) {
                ResponseErrorKind::Malformed
            } else {
                ResponseErrorKind::UnexpectedStatus
            };
            return Err(ResponseError::new(
                kind,
                status,
                format!("body is not the API's JSON: {error}"),
            )
            .into());
        }
    };
    let request_id = wire.request_id.unwrap_or_default();
    let succeeded = (200..300).contains(&status)
        && wire.success != Some(false)
        && wire
            .code
            .as_deref()
            .is_none_or(|c| c.eq_ignore_ascii_case("success"));
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
            wire.message.unwrap_or_default(),
            request_id,
        );
        return Err(match retry_after {
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
    Ok(Verification::new(
        result.verify_result,
        VerifyCode::from(result.verify_code.as_deref().unwrap_or_default()),
        request_id,
    ))
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

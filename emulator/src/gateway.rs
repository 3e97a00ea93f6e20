//! The gateway's flow for `POST /`: authenticate, then answer STS or the captcha API (a
//! verdict, or the fault in force).

use std::borrow::Cow;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;

use super::TestMode;
use super::answer::{Answer, CloseConnection, json, json_bytes};
use super::auth::{Api, GatewayError};
use super::faults::{FaultMode, Faults};
use super::params;
use super::state::{SceneKind, State};
use super::stats::bump;
use super::sts;
use tower_aliyun_captcha::VerifyCode;
use tower_aliyun_captcha::protocol::{REQUEST_ID_HEADER, RETRY_AFTER_HEADER};

/// A fresh request id, as the gateway's look: an upper-case hyphenated version-4 UUID, held
/// inline. An id only has to be unique, not unpredictable: a random base drawn once per
/// process plus a counter, so that a request costs no call to the system's random source.
pub(crate) fn request_id() -> RequestId {
    static BASE: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let base = *BASE.get_or_init(|| uuid::Uuid::new_v4().as_u128());
    let count = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The counter runs through the random bits of the low half (the variant bits stay set).
    let bits = base ^ u128::from(count);
    let id = uuid::Builder::from_random_bytes(bits.to_be_bytes()).into_uuid();
    let mut text = [0u8; 36];
    id.hyphenated().encode_upper(&mut text);
    RequestId(text)
}

pub(crate) struct RequestId([u8; 36]);

impl RequestId {
    pub(crate) fn as_str(&self) -> &str {
        // uuid writes hex digits and hyphens only.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// `x-acs-request-id`, a name made once.
static REQUEST_ID: header::HeaderName = header::HeaderName::from_static(REQUEST_ID_HEADER);

pub(crate) fn gateway_error(
    state: &State,
    host: &str,
    id: &str,
    error: &GatewayError,
) -> Response<Full<Bytes>> {
    state.counters.error(&error.code);
    json(
        error.status,
        &serde_json::json!({
            "RequestId": id,
            "HostId": host,
            "Code": error.code,
            "Message": error.message,
            "Recommend": format!(
                "https://error-center.aliyun.com/status/search?Keyword={}&source=PopGw",
                error.code
            ),
        }),
    )
}

/// `VerifyIntelligentCaptcha`, every answer carrying its request id in `x-acs-request-id`, as
/// the gateway's do.
pub(crate) async fn verify(state: &State, parts: &http::request::Parts, body: &Bytes) -> Answer {
    let id = request_id();
    let mut response = answer(state, parts, body, id.as_str()).await?;
    if let Ok(value) = header::HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    Ok(response)
}

async fn answer(state: &State, parts: &http::request::Parts, body: &Bytes, id: &str) -> Answer {
    bump(&state.counters.requests);
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("captcha.emulator.local");
    let now = state.now();

    let authenticated = state.authenticate(parts, body, now);
    let api = match authenticated {
        Ok(api) => api,
        Err(error) => return Ok(gateway_error(state, host, id, &error)),
    };
    if api != Api::Captcha {
        return Ok(match sts::assume(state, api, body, id) {
            Ok(answer) => json(StatusCode::OK, &answer),
            Err(error) => gateway_error(state, host, id, &error),
        });
    }

    let (param, scene_id) = form_fields(body);
    let Some(param) = param else {
        let error = GatewayError::new(
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            "The input parameter CaptchaVerifyParam that is mandatory for processing this \
             request is not supplied.",
        );
        return Ok(gateway_error(state, host, id, &error));
    };
    let decoded = params::decode(&param);
    if let Ok(decoded) = &decoded
        && state.arrive(&decoded.certify_id)
    {
        bump(&state.counters.repeated_params);
    }

    let faults = state.faults();
    if !faults.latency().is_zero() {
        tokio::time::sleep(faults.latency()).await;
    }
    if faults.fault_mode() != FaultMode::None {
        bump(&state.counters.faults);
        return fault(state, host, id, &faults);
    }

    let (certify_id, code) = match decoded {
        Err(code) => (None, code),
        Ok(decoded) => {
            let live = match state.scene(&decoded.scene_id) {
                None => Err(VerifyCode::F005),
                Some(_) if scene_id.as_ref().is_some_and(|s| **s != decoded.scene_id) => {
                    Err(VerifyCode::F012)
                }
                Some(SceneKind::Test(TestMode::Pass)) => Err(VerifyCode::T005),
                Some(SceneKind::Test(TestMode::Fail)) => Err(VerifyCode::F004),
                Some(SceneKind::Live) => Ok(()),
            };
            // The page's own certify id when it gave one, else the param's.
            let (code, user_certify_id) = match live {
                Ok(()) => state.verdict_and_user_certify_id(&decoded, now),
                Err(code) => (code, state.user_certify_id(&decoded)),
            };
            (Some(user_certify_id.unwrap_or(decoded.certify_id)), code)
        }
    };
    state.counters.verdict(code.as_str());
    Ok(json_bytes(
        StatusCode::OK,
        verdict_body(id, &code, certify_id.as_deref()),
    ))
}

/// The form fields the API reads, `CaptchaVerifyParam` and `SceneId`, decoded as
/// `form_urlencoded::parse` decodes them (the last of a repeated field wins); only the values
/// kept are decoded.
fn form_fields(body: &[u8]) -> (Option<Cow<'_, str>>, Option<Cow<'_, str>>) {
    let (mut param, mut scene) = (None, None);
    for pair in body.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
        let mut split = pair.splitn(2, |&b| b == b'=');
        let key = split.next().unwrap_or_default();
        let value = split.next().unwrap_or_default();
        let is = |name: &str| {
            if key.contains(&b'%') || key.contains(&b'+') {
                form_decode(key) == name
            } else {
                key == name.as_bytes()
            }
        };
        if is("CaptchaVerifyParam") {
            param = Some(value);
        } else if is("SceneId") {
            scene = Some(value);
        }
    }
    (param.map(form_decode), scene.map(form_decode))
}

/// One form key or value decoded: `+` as a space, `%XX` as its byte, invalid UTF-8 replaced.
fn form_decode(raw: &[u8]) -> Cow<'_, str> {
    if !raw.contains(&b'%') && !raw.contains(&b'+') {
        return String::from_utf8_lossy(raw);
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut index = 0;
    while index < raw.len() {
        let byte = raw[index];
        index += 1;
        match byte {
            b'+' => out.push(b' '),
            b'%' => match (
                raw.get(index).copied().and_then(hex),
                raw.get(index + 1).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    index += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
    }
    match String::from_utf8(out) {
        Ok(text) => Cow::Owned(text),
        Err(error) => Cow::Owned(String::from_utf8_lossy(error.as_bytes()).into_owned()),
    }
}

/// The verdict's JSON, written directly as `serde_json` writes the equivalent `Value` (keys
/// in order, compact), into a buffer of exactly its size.
fn verdict_body(id: &str, code: &VerifyCode, certify_id: Option<&str>) -> Vec<u8> {
    let pass = code.is_pass();
    let length = r#"{"Code":"Success","Message":"success","RequestId":,"Result":{"VerifyCode":,"VerifyResult":},"Success":true}"#.len()
        + json_string_len(id)
        + json_string_len(code.as_str())
        + if pass { 4 } else { 5 }
        + certify_id.map_or(0, |c| r#""CertifyId":,"#.len() + json_string_len(c));
    let mut out = Vec::with_capacity(length);
    out.extend_from_slice(br#"{"Code":"Success","Message":"success","RequestId":"#);
    push_json_string(&mut out, id);
    out.extend_from_slice(br#","Result":{"#);
    if let Some(certify_id) = certify_id {
        out.extend_from_slice(br#""CertifyId":"#);
        push_json_string(&mut out, certify_id);
        out.push(b',');
    }
    out.extend_from_slice(br#""VerifyCode":"#);
    push_json_string(&mut out, code.as_str());
    out.extend_from_slice(if pass {
        br#","VerifyResult":true},"Success":true}"#.as_slice()
    } else {
        br#","VerifyResult":false},"Success":true}"#.as_slice()
    });
    out
}

fn push_json_string(out: &mut Vec<u8>, text: &str) {
    // Writing a string to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// The length of `text` as a JSON string, quotes included, escaped as `serde_json` escapes.
fn json_string_len(text: &str) -> usize {
    2 + text
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

fn fault(state: &State, host: &str, id: &str, faults: &Faults) -> Answer {
    let error = |status, code: &'static str, message: &str| {
        Ok(gateway_error(
            state,
            host,
            id,
            &GatewayError::new(status, code, message),
        ))
    };
    match faults.fault_mode() {
        FaultMode::None => unreachable!("fault() is only called for a fault"),
        FaultMode::InternalError => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "The request processing has failed due to some unknown error.",
        ),
        FaultMode::Unavailable => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The request has failed due to a temporary failure of the server.",
        ),
        FaultMode::MalformedJson => {
            let mut response = json(StatusCode::OK, &());
            *response.body_mut() = Full::new(Bytes::from_static(
                b"{\"RequestId\": \"0\", \"Success\": tru",
            ));
            Ok(response)
        }
        FaultMode::TruncatedBody => {
            let body = verdict_body(id, &VerifyCode::T001, None);
            let announced = body.len() + 64;
            let mut response = json(StatusCode::OK, &());
            *response.body_mut() = Full::new(Bytes::from(body));
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, announced.into());
            Ok(response)
        }
        FaultMode::OversizedBody => {
            let mut body = verdict_body(id, &VerifyCode::T001, None);
            body.resize(body.len() + 1024 * 1024, b' ');
            let mut response = json(StatusCode::OK, &());
            *response.body_mut() = Full::new(Bytes::from(body));
            Ok(response)
        }
        FaultMode::CloseConnection => Err(CloseConnection),
        FaultMode::ApiError => {
            let code = faults.error_code().unwrap_or("InternalError");
            let status = match code {
                c if c.starts_with("Forbidden") => StatusCode::FORBIDDEN,
                "InvalidAccessKeyId.NotFound" => StatusCode::NOT_FOUND,
                "InternalError" => StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceUnavailable" => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            };
            let error = GatewayError {
                status,
                code: code.to_owned().into(),
                message: format!("Injected {code}."),
            };
            let mut response = gateway_error(state, host, id, &error);
            if let Some(wait) = faults.retry_after() {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER_HEADER, (wait.as_millis() as u64).into());
            }
            Ok(response)
        }
        FaultMode::Result => {
            let result = faults
                .result_object()
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({
                    "RequestId": id,
                    "Message": "success",
                    "Code": "Success",
                    "Success": true,
                    "Result": result,
                }),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_upper_case_v4_uuids() {
        let ids: std::collections::HashSet<String> = (0..10_000)
            .map(|_| request_id().as_str().to_owned())
            .collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            let parsed = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(parsed.get_version_num(), 4);
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
            assert_eq!(*id, id.to_uppercase());
        }
    }

    /// The verdict as `serde_json` writes the equivalent `Value`: the same bytes.
    #[test]
    fn verdicts_are_written_as_serde_json_writes_them() {
        let id = "3F290236-0C1E-4A5B-9F6E-54F31BD999FF";
        for (code, certify_id) in [
            (VerifyCode::T001, None),
            (VerifyCode::F018, Some("abc_0123456789")),
            (
                VerifyCode::Unknown("X\"\\\n\u{1}é".into()),
                Some("q\"\t\u{7f}中"),
            ),
        ] {
            let mut result =
                serde_json::json!({"VerifyResult": code.is_pass(), "VerifyCode": code.as_str()});
            if let Some(certify_id) = certify_id {
                result["CertifyId"] = certify_id.into();
            }
            let expected = serde_json::json!({
                "RequestId": id,
                "Message": "success",
                "Code": "Success",
                "Success": true,
                "Result": result,
            })
            .to_string();
            let written = verdict_body(id, &code, certify_id);
            assert_eq!(String::from_utf8(written.clone()).unwrap(), expected);
            assert_eq!(written.capacity(), written.len(), "{expected}");
        }
    }

    /// Fields as `form_urlencoded::parse` reads them, for any body.
    #[test]
    fn form_fields_read_as_form_urlencoded_reads_them() {
        let reference = |body: &[u8]| {
            let (mut param, mut scene) = (None, None);
            for (key, value) in form_urlencoded::parse(body) {
                match key.as_ref() {
                    "CaptchaVerifyParam" => param = Some(value.into_owned()),
                    "SceneId" => scene = Some(value.into_owned()),
                    _ => {}
                }
            }
            (param, scene)
        };
        let bodies: Vec<&[u8]> = vec![
            b"",
            b"&&",
            b"CaptchaVerifyParam=eyJ4%2B%2F%3D&SceneId=s1",
            b"SceneId=a+b&CaptchaVerifyParam=x&CaptchaVerifyParam=y",
            b"Captcha%56erifyParam=%zz%4&Scene%49d=%E4%B8%AD",
            b"CaptchaVerifyParam",
            b"CaptchaVerifyParam=a=b&SceneId=%ff%fe+",
            b"captchaverifyparam=no&Other=1&SceneId=",
            b"CaptchaVerifyParam=%",
            b"CaptchaVerifyParam=\xff\xfe",
        ];
        for body in bodies {
            let (param, scene) = form_fields(body);
            assert_eq!(
                (param.map(Cow::into_owned), scene.map(Cow::into_owned)),
                reference(body),
                "{body:?}"
            );
        }
    }
}

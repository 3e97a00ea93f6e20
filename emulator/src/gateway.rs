//! The gateway's flow for `POST /`: authenticate, then answer STS or the captcha API (a
//! verdict, or the fault in force).

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;

use super::TestMode;
use super::answer::{Answer, CloseConnection, json};
use super::auth::{Api, GatewayError};
use super::faults::{FaultMode, Faults};
use super::params;
use super::state::{SceneKind, State};
use super::stats::bump;
use super::sts;
use tower_aliyun_captcha::VerifyCode;
use tower_aliyun_captcha::protocol::{REQUEST_ID_HEADER, RETRY_AFTER_HEADER};

pub(crate) fn request_id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase()
}

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
    let mut response = answer(state, parts, body, &id).await?;
    if let Ok(value) = header::HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
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

    let (mut param, mut scene_id) = (None, None);
    for (key, value) in form_urlencoded::parse(body) {
        match key.as_ref() {
            "CaptchaVerifyParam" => param = Some(value.into_owned()),
            "SceneId" => scene_id = Some(value.into_owned()),
            _ => {}
        }
    }
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

    let certify_id = decoded.as_ref().ok().map(|d| state.certify_id(d));
    let code = match decoded {
        Err(code) => code,
        Ok(decoded) => match state.scene(&decoded.scene_id) {
            None => VerifyCode::F005,
            Some(_) if scene_id.as_ref().is_some_and(|s| *s != decoded.scene_id) => {
                VerifyCode::F012
            }
            Some(SceneKind::Test(TestMode::Pass)) => VerifyCode::T005,
            Some(SceneKind::Test(TestMode::Fail)) => VerifyCode::F004,
            Some(SceneKind::Live) => state.verdict(&decoded, now),
        },
    };
    state.counters.verdict(code.as_str());
    Ok(json(
        StatusCode::OK,
        &verdict_body(id, &code, certify_id.as_deref()),
    ))
}

fn verdict_body(id: &str, code: &VerifyCode, certify_id: Option<&str>) -> serde_json::Value {
    let mut result =
        serde_json::json!({"VerifyResult": code.is_pass(), "VerifyCode": code.as_str()});
    if let Some(certify_id) = certify_id {
        result["CertifyId"] = certify_id.into();
    }
    serde_json::json!({
        "RequestId": id,
        "Message": "success",
        "Code": "Success",
        "Success": true,
        "Result": result,
    })
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
            let body = verdict_body(id, &VerifyCode::T001, None).to_string();
            let announced = body.len() + 64;
            let mut response = json(StatusCode::OK, &());
            *response.body_mut() = Full::new(Bytes::from(body));
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, announced.into());
            Ok(response)
        }
        FaultMode::OversizedBody => {
            let mut body = verdict_body(id, &VerifyCode::T001, None).to_string();
            body.push_str(&" ".repeat(1024 * 1024));
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

//! The HTTP server: accept loop, routing, and the service's answers.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use super::auth::{self, Api, GatewayError};
use super::faults::FaultMode;
use super::params;
use super::stats::bump;
use super::sts;
use super::{Faults, Mint, State, TestMode};
use crate::VerifyCode;
use crate::protocol::{REQUEST_ID_HEADER, RETRY_AFTER_HEADER};

/// The largest request body the emulator reads.
const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// Stops the accept loop when told, or when dropped.
pub(crate) struct ServerHandle {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ServerHandle {
    pub(crate) async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub(crate) fn spawn(listener: TcpListener, state: Arc<State>) -> ServerHandle {
    let (stop, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // Dropping the set aborts every connection task, so a stopped emulator holds no socket.
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        bump(&state.counters.connections);
                        let _ = stream.set_nodelay(true);
                        connections.spawn(serve_connection(stream, Arc::clone(&state)));
                    }
                    // Out of file descriptors or a reset before accept: wait, then go on.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        connections.shutdown().await;
    });
    ServerHandle {
        stop: Some(stop),
        task: Some(task),
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, state: Arc<State>) {
    let service = service_fn(move |request| route(Arc::clone(&state), request));
    // Errors here are the peer's (a reset, a malformed request) or an injected close.
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// Returned by the service to make hyper drop the connection without an answer.
#[derive(Debug)]
struct CloseConnection;

impl std::fmt::Display for CloseConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed by an injected fault")
    }
}

impl std::error::Error for CloseConnection {}

type Answer = Result<Response<Full<Bytes>>, CloseConnection>;

async fn route(state: Arc<State>, request: Request<Incoming>) -> Answer {
    let (mut parts, body) = request.into_parts();
    // HTTP/2 carries the host as :authority, which hyper puts in the URI.
    if !parts.headers.contains_key(header::HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(value) = header::HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(header::HOST, value);
    }
    let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(json(
                StatusCode::PAYLOAD_TOO_LARGE,
                &serde_json::json!({"Code": "RequestTooLarge", "Message": "The request body is too large or unreadable."}),
            ));
        }
    };
    let path = parts.uri.path();
    if path.starts_with("/emulator/") {
        // The emulator's own API is called from browser pages (the demo's widget) on other
        // origins: allow them. The service path `/` is left as the real one is.
        return Ok(with_cors(emulator_api(&state, &parts, &body)));
    }
    if let Some((status, answer)) = sts::metadata(
        &state,
        &parts.method,
        path,
        parts
            .headers
            .get("x-aliyun-ecs-metadata-token")
            .and_then(|v| v.to_str().ok()),
    ) {
        let mut response = Response::new(Full::new(answer));
        *response.status_mut() = status;
        return Ok(response);
    }
    match (&parts.method, path) {
        (&Method::POST, "/") => verify(&state, &parts, &body).await,
        _ => Ok(not_found()),
    }
}

/// The stand-in for Alibaba's front-end script (see `captcha.js`).
const CAPTCHA_JS: &str = include_str!("captcha.js");

fn emulator_api(
    state: &State,
    parts: &http::request::Parts,
    body: &Bytes,
) -> Response<Full<Bytes>> {
    match (&parts.method, parts.uri.path()) {
        (&Method::OPTIONS, _) => {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        (&Method::GET, "/emulator/captcha.js") => {
            let mut response = Response::new(Full::new(Bytes::from_static(CAPTCHA_JS.as_bytes())));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/javascript; charset=utf-8"),
            );
            response
        }
        (&Method::POST, "/emulator/params") => mint(state, body),
        (&Method::GET, "/emulator/faults") => json(StatusCode::OK, &state.faults()),
        (&Method::POST, "/emulator/faults") => set_faults(state, body),
        (&Method::GET, "/emulator/stats") => json(StatusCode::OK, &state.counters.snapshot()),
        (&Method::GET, "/emulator/credentials") if state.sts.any() => {
            json(StatusCode::OK, &sts::credentials_uri(state))
        }
        _ => not_found(),
    }
}

fn not_found() -> Response<Full<Bytes>> {
    json(
        StatusCode::NOT_FOUND,
        &serde_json::json!({"Code": "NotFound", "Message": "No such path on the emulator."}),
    )
}

fn with_cors(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    let headers = response.headers_mut();
    headers.insert(
        "access-control-allow-origin",
        header::HeaderValue::from_static("*"),
    );
    headers.insert(
        "access-control-allow-methods",
        header::HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        "access-control-allow-headers",
        header::HeaderValue::from_static("content-type"),
    );
    response
}

fn json(status: StatusCode, value: &impl Serialize) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json;charset=utf-8"),
    );
    response
}

fn request_id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase()
}

fn gateway_error(
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
async fn verify(state: &State, parts: &http::request::Parts, body: &Bytes) -> Answer {
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

    let authenticated = {
        let mut nonces = state.nonces.lock().unwrap_or_else(|e| e.into_inner());
        let keys = sts::Keys(state);
        auth::authenticate(
            parts,
            body,
            &keys,
            state.sts.sts_enabled(),
            now,
            &mut nonces,
        )
        .map(|authenticated| {
            nonces.insert(authenticated.nonce, now);
            authenticated.api
        })
    };
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
    if let Ok(decoded) = &decoded {
        let repeated = state
            .params
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .arrive(&decoded.certify_id);
        if repeated {
            bump(&state.counters.repeated_params);
        }
    }

    let faults = state.faults();
    if !faults.latency().is_zero() {
        tokio::time::sleep(faults.latency()).await;
    }
    if faults.mode != FaultMode::None {
        bump(&state.counters.faults);
        return fault(state, host, id, &faults);
    }

    let certify_id = decoded.as_ref().ok().map(|d| d.certify_id.clone());
    let code = match decoded {
        Err(code) => code,
        Ok(decoded) => match state.scene(&decoded.scene_id) {
            None => VerifyCode::F005,
            Some(_) if scene_id.as_ref().is_some_and(|s| *s != decoded.scene_id) => {
                VerifyCode::F012
            }
            Some(Some(TestMode::Pass)) => VerifyCode::T005,
            Some(Some(TestMode::Fail)) => VerifyCode::F004,
            Some(None) => state
                .params
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .verdict(&decoded, now),
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
    match faults.mode {
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
            let code = faults.error_code.as_deref().unwrap_or("InternalError");
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
            if let Some(wait) = faults.retry_after_ms {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER_HEADER, wait.into());
            }
            Ok(response)
        }
        FaultMode::Result => {
            let result = faults.result.clone().unwrap_or(serde_json::Value::Null);
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

fn mint(state: &State, body: &[u8]) -> Response<Full<Bytes>> {
    let request: Mint = if body.iter().all(u8::is_ascii_whitespace) {
        Mint::default()
    } else {
        match serde_json::from_slice(body) {
            Ok(request) => request,
            Err(error) => {
                return json(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({"Code": "InvalidMintRequest", "Message": error.to_string()}),
                );
            }
        }
    };
    match state.mint(request) {
        Ok(param) => json(
            StatusCode::OK,
            &serde_json::json!({"captchaVerifyParam": param}),
        ),
        Err(error) => json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({"Code": "InvalidMintRequest", "Message": error.to_string()}),
        ),
    }
}

fn set_faults(state: &State, body: &[u8]) -> Response<Full<Bytes>> {
    match serde_json::from_slice::<Faults>(body) {
        Ok(faults) => {
            let response = json(StatusCode::OK, &faults);
            *state.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
            response
        }
        Err(error) => json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({"Code": "InvalidFaults", "Message": error.to_string()}),
        ),
    }
}

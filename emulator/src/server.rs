//! The HTTP plumbing: accept loop, connections, routing, and the emulator's own API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use super::Faults;
use super::access::Refusal;
use super::answer::{Answer, json};
use super::gateway;
use super::mint::Mint;
use super::state::State;
use super::stats::bump;
use super::sts;

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
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let service = service_fn(move |request| route(Arc::clone(&state), local, request));
    // Errors here are the peer's (a reset, a malformed request) or an injected close.
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn route(state: Arc<State>, local: SocketAddr, request: Request<Incoming>) -> Answer {
    let (mut parts, body) = request.into_parts();
    // HTTP/2 carries the host as :authority, which hyper puts in the URI.
    if !parts.headers.contains_key(header::HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(value) = header::HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(header::HOST, value);
    }
    let body = match read_capped(body, MAX_REQUEST_BODY).await {
        Some(body) => body,
        None => {
            return Ok(json(
                StatusCode::PAYLOAD_TOO_LARGE,
                &serde_json::json!({"Code": "RequestTooLarge", "Message": "The request body is too large or unreadable."}),
            ));
        }
    };
    let path = parts.uri.path();
    if path == CAPTCHA_JS_PATH {
        // A public script, as Alibaba's is: any page may load it.
        return Ok(captcha_js(&parts.method));
    }
    if path.starts_with("/emulator/") {
        // The emulator's own API mints passing params and switches faults: only for requests
        // addressed to the emulator, and from the pages it was told about (which the stand-in
        // widget calls it from). The service path `/` is left as the real one is.
        return Ok(match state.admit(&parts, local) {
            Ok(origin) => with_cors(emulator_api(&state, &parts, &body), origin),
            Err(refusal) => refused(&refusal),
        });
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
        (&Method::POST, "/") => gateway::verify(&state, &parts, &body).await,
        _ => Ok(not_found()),
    }
}

/// A whole request body of at most `max` bytes (`None` when larger or unreadable), as
/// `Limited::collect` reads it; a body in one piece (the usual request) is kept as it came.
async fn read_capped(mut body: Incoming, max: usize) -> Option<Bytes> {
    let mut first: Option<Bytes> = None;
    let mut joined: Option<bytes::BytesMut> = None;
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.ok()?.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total > max {
            return None;
        }
        match (&first, &mut joined) {
            (None, _) => first = Some(data),
            (Some(head), None) => {
                let mut both = bytes::BytesMut::with_capacity(total);
                both.extend_from_slice(head);
                both.extend_from_slice(&data);
                joined = Some(both);
            }
            (Some(_), Some(joined)) => joined.extend_from_slice(&data),
        }
    }
    Some(match (first, joined) {
        (_, Some(joined)) => joined.freeze(),
        (Some(only), None) => only,
        (None, None) => Bytes::new(),
    })
}

/// The stand-in for Alibaba's front-end script (see `captcha.js`).
const CAPTCHA_JS: &str = include_str!("captcha.js");
const CAPTCHA_JS_PATH: &str = "/emulator/captcha.js";

fn captcha_js(method: &Method) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return not_found();
    }
    let mut response = Response::new(Full::new(Bytes::from_static(CAPTCHA_JS.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/javascript; charset=utf-8"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    response
}

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
        (&Method::POST, "/emulator/params") => mint(state, body),
        (&Method::GET, "/emulator/faults") => json(StatusCode::OK, &state.faults()),
        (&Method::POST, "/emulator/faults") => set_faults(state, body),
        (&Method::GET, "/emulator/stats") => json(StatusCode::OK, &state.counters.snapshot()),
        (&Method::GET, "/emulator/credentials") if state.sts().any() => {
            json(StatusCode::OK, &sts::credentials_uri(state))
        }
        _ => not_found(),
    }
}

/// The answer to a request that may not use the emulator's API, in the API's error form.
fn refused(refusal: &Refusal) -> Response<Full<Bytes>> {
    match refusal {
        Refusal::UnknownHost => json(
            StatusCode::MISDIRECTED_REQUEST,
            &serde_json::json!({
                "Code": "UnknownHost",
                "Message": "The emulator's API answers requests addressed to the emulator only \
                    (its address, or localhost on its port, in Host); allow other names with \
                    --allow-host or EmulatorBuilder::allow_host.",
            }),
        ),
        Refusal::OriginNotAllowed(origin) => json(
            StatusCode::FORBIDDEN,
            &serde_json::json!({
                "Code": "OriginNotAllowed",
                "Message": format!(
                    "Pages from {origin:?} may not use the emulator's API; allow them with \
                     --allow-origin or EmulatorBuilder::allow_origin."
                ),
            }),
        ),
    }
}

fn not_found() -> Response<Full<Bytes>> {
    json(
        StatusCode::NOT_FOUND,
        &serde_json::json!({"Code": "NotFound", "Message": "No such path on the emulator."}),
    )
}

/// CORS headers for a page of an allowed `origin`; none for other callers.
fn with_cors(
    mut response: Response<Full<Bytes>>,
    origin: Option<header::HeaderValue>,
) -> Response<Full<Bytes>> {
    let headers = response.headers_mut();
    headers.insert(header::VARY, header::HeaderValue::from_static("origin"));
    let Some(origin) = origin else {
        return response;
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        header::HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        header::HeaderValue::from_static("content-type"),
    );
    // Chrome asks before a public page calls a private address (Private Network Access).
    headers.insert(
        "access-control-allow-private-network",
        header::HeaderValue::from_static("true"),
    );
    response
}

fn mint(state: &State, body: &[u8]) -> Response<Full<Bytes>> {
    let request: Mint = if body.iter().all(u8::is_ascii_whitespace) {
        Mint::pass()
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
            state.set_faults(faults);
            response
        }
        Err(error) => json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({"Code": "InvalidFaults", "Message": error.to_string()}),
        ),
    }
}

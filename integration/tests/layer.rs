//! The layer in front of an axum app, verifying against the emulator, all over real sockets.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aliyun_captcha_emulator::{Emulator, Faults, Mint};
use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tower_aliyun_captcha::Client;
use tower_aliyun_captcha::SceneId;
use tower_aliyun_captcha::VerifyCode;
use tower_aliyun_captcha::extract::{BodyLimits, FormField, Header, JsonField, Query};
use tower_aliyun_captcha::layer::{
    CaptchaLayer, CaptchaVerified, DefaultResponder, FailurePolicy, Route, Routes,
};

const LIMIT: usize = 1024;

/// Echoes what the handler saw: the body bytes and the verdict.
async fn echo(verified: CaptchaVerified, body: Bytes) -> axum::Json<Value> {
    axum::Json(json!({
        "body": String::from_utf8_lossy(&body),
        "code": match &verified {
            CaptchaVerified::Passed(passed) => Some(passed.code().as_str().to_owned()),
            _ => None,
        },
        "degraded": matches!(verified, CaptchaVerified::Degraded(_)),
        "scene": verified.scene().as_str(),
    }))
}

/// axum's own Json extractor still works behind the layer.
async fn json_handler(
    verified: CaptchaVerified,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    let degraded = matches!(verified, CaptchaVerified::Degraded(_));
    axum::Json(json!({"name": body["name"], "degraded": degraded}))
}

fn layer(emulator: &Emulator, scene: &str, policy: FailurePolicy) -> CaptchaLayer<Client> {
    let client = client_builder(emulator.url())
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    // Header, then JSON, then form, then query.
    CaptchaLayer::builder(client, Route::every_path(SceneId::new(scene).unwrap()))
        .extractor(
            Header::default()
                .or(JsonField::default())
                .or(FormField::default())
                .or(Query::default()),
        )
        .failure_policy(policy)
        .body_limits(BodyLimits {
            max_bytes: LIMIT,
            read_timeout: Duration::from_millis(500),
        })
        // These tests tell refusals apart by their exact code.
        .responder(DefaultResponder::exposing_codes())
        .build()
        .unwrap()
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn app(emulator: &Emulator, policy: FailurePolicy) -> SocketAddr {
    let app = Router::new()
        .route("/login", post(echo).layer(layer(emulator, LOGIN, policy)))
        .route(
            "/login-json",
            post(json_handler).layer(layer(emulator, LOGIN, policy)),
        )
        .route("/signup", post(echo).layer(layer(emulator, SIGNUP, policy)));
    serve(app).await
}

struct Answer {
    status: StatusCode,
    json: Value,
    headers: http::HeaderMap,
}

async fn send<B>(request: Request<B>) -> Answer
where
    B: http_body::Body<Data = Bytes> + Send + 'static + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let client: HyperClient<HttpConnector, B> =
        HyperClient::builder(TokioExecutor::new()).build(HttpConnector::new());
    let response = client.request(request).await.expect("the app answers");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers: parts.headers,
    }
}

fn post_to(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Request<Full<Bytes>> {
    Request::post(format!("http://{addr}{path}"))
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .unwrap()
}

#[tokio::test]
async fn passes_through_each_extractor_with_the_same_body() {
    let emulator = emulator().await;
    let addr = app(&emulator, FailurePolicy::Open).await;

    // Header.
    let param = emulator.mint(Mint::pass()).unwrap();
    let mut request = post_to(addr, "/login", "text/plain", "plain body");
    request
        .headers_mut()
        .insert("x-captcha-verify-param", param.parse().unwrap());
    let answer = send(request).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(answer.json["body"], "plain body");
    assert_eq!(answer.json["code"], "T001");
    assert_eq!(answer.json["scene"], LOGIN);

    // JSON: the handler reads the very bytes that were sent.
    let param = emulator.mint(Mint::pass()).unwrap();
    let body = format!(r#"{{"user":"ann",  "captchaVerifyParam":"{param}", "pw":"x y"}}"#);
    let answer = send(post_to(addr, "/login", "application/json", body.clone())).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(answer.json["body"], body);

    // axum's Json extractor behind the layer.
    let param = emulator.mint(Mint::pass()).unwrap();
    let body = json!({"name": "ann", "captchaVerifyParam": param}).to_string();
    let answer = send(post_to(addr, "/login-json", "application/json", body)).await;
    assert_eq!(
        (answer.status, &answer.json["name"]),
        (StatusCode::OK, &json!("ann"))
    );

    // Form, with reserved characters around the field.
    let param = emulator.mint(Mint::pass()).unwrap();
    let body = format!(
        "user=a%26b&captchaVerifyParam={}&note=%E4%B8%AD+x",
        form_urlencoded::byte_serialize(param.as_bytes()).collect::<String>()
    );
    let answer = send(post_to(
        addr,
        "/login",
        "application/x-www-form-urlencoded",
        body.clone(),
    ))
    .await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(answer.json["body"], body);

    // Query.
    let param = emulator.mint(Mint::pass()).unwrap();
    let query: String = form_urlencoded::byte_serialize(param.as_bytes()).collect();
    let request = Request::post(format!("http://{addr}/login?captchaVerifyParam={query}"))
        .body(Full::new(Bytes::from_static(b"q")))
        .unwrap();
    let answer = send(request).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(answer.json["body"], "q");
    assert_eq!(emulator.stats().verdicts["T001"], 5);
}

#[tokio::test]
async fn bodies_up_to_the_limit_pass_and_larger_ones_get_413() {
    let emulator = emulator().await;
    let addr = app(&emulator, FailurePolicy::Open).await;
    let param = emulator.mint(Mint::pass()).unwrap();
    let skeleton = format!(r#"{{"captchaVerifyParam":"{param}","pad":""}}"#);
    let exact = format!(
        r#"{{"captchaVerifyParam":"{param}","pad":"{}"}}"#,
        "p".repeat(LIMIT - skeleton.len())
    );
    assert_eq!(exact.len(), LIMIT);
    let answer = send(post_to(addr, "/login", "application/json", exact.clone())).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(answer.json["body"], exact);

    // A form body of exactly the limit too.
    let param = emulator.mint(Mint::pass()).unwrap();
    let field: String = form_urlencoded::byte_serialize(param.as_bytes()).collect();
    let skeleton = format!("captchaVerifyParam={field}&pad=");
    let exact = format!("{skeleton}{}", "f".repeat(LIMIT - skeleton.len()));
    assert_eq!(exact.len(), LIMIT);
    let answer = send(post_to(
        addr,
        "/login",
        "application/x-www-form-urlencoded",
        exact.clone(),
    ))
    .await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(answer.json["body"], exact);

    // Over the limit with a Content-Length: refused before reading.
    let param = emulator.mint(Mint::pass()).unwrap();
    let over = format!(
        r#"{{"captchaVerifyParam":"{param}","pad":"{}"}}"#,
        "p".repeat(LIMIT)
    );
    let answer = send(post_to(addr, "/login", "application/json", over.clone())).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json["code"], "payload_too_large");

    // Over the limit, chunked (no Content-Length): refused while reading.
    let request = Request::post(format!("http://{addr}/login"))
        .header("content-type", "application/json")
        .body(Trickle::new(over.into_bytes(), 100, Duration::ZERO))
        .unwrap();
    let answer = send(request).await;
    assert_eq!(answer.status, 413);
    assert_eq!(
        emulator.stats().requests,
        2,
        "only the two bodies within the limit reach the service"
    );
}

fn with_header(addr: SocketAddr, path: &str, param: &str) -> Request<Full<Bytes>> {
    let mut request = post_to(addr, path, "text/plain", "body");
    request
        .headers_mut()
        .insert("x-captcha-verify-param", param.parse().unwrap());
    request
}

#[tokio::test]
async fn missing_or_malformed_params_are_refused_without_calling_the_service() {
    let emulator = emulator().await;
    let addr = app(&emulator, FailurePolicy::Open).await;
    let answer = send(post_to(
        addr,
        "/login",
        "application/json",
        r#"{"user":"ann"}"#,
    ))
    .await;
    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.json,
        json!({"captchaResult": false, "reason": "captcha_required", "code": "F002", "message": "captcha required"})
    );
    let answer = send(with_header(addr, "/login", "   ")).await;
    assert_eq!(
        (answer.status, &answer.json["code"]),
        (StatusCode::FORBIDDEN, &json!("F002"))
    );
    let huge = "x".repeat(16 * 1024 + 1);
    let answer = send(with_header(addr, "/login", &huge)).await;
    assert_eq!(
        (answer.status, &answer.json["code"]),
        (StatusCode::FORBIDDEN, &json!("F003"))
    );
    assert_eq!(
        emulator.stats().requests,
        0,
        "no paid call for a param that cannot be real"
    );
}

#[tokio::test]
async fn reuse_and_scene_mismatch_are_refused() {
    let emulator = emulator().await;
    let addr = app(&emulator, FailurePolicy::Open).await;
    for (format, code) in [
        (aliyun_captcha_emulator::ParamFormat::V2, "F008"),
        (aliyun_captcha_emulator::ParamFormat::V3, "F018"),
    ] {
        let param = emulator.mint(Mint::pass().format(format)).unwrap();
        let body = json!({"captchaVerifyParam": param}).to_string();
        assert_eq!(
            send(post_to(addr, "/login", "application/json", body.clone()))
                .await
                .status,
            200
        );
        let again = send(post_to(addr, "/login", "application/json", body)).await;
        assert_eq!(again.status, 403);
        assert_eq!(again.json["code"], code);
        assert_eq!(
            again.json["message"],
            "captcha expired, please verify again"
        );
    }
    // A signup param used on the login route.
    let param = emulator
        .mint(Mint::pass().in_scene(SceneId::new(SIGNUP).unwrap()))
        .unwrap();
    let answer = send(with_header(addr, "/login", &param)).await;
    assert_eq!(
        (answer.status, &answer.json["code"]),
        (StatusCode::FORBIDDEN, &json!("F012"))
    );
    // The same param is fine on its own route.
    let param = emulator
        .mint(Mint::pass().in_scene(SceneId::new(SIGNUP).unwrap()))
        .unwrap();
    let answer = send(with_header(addr, "/signup", &param)).await;
    assert_eq!(
        (answer.status, &answer.json["scene"]),
        (StatusCode::OK, &json!(SIGNUP))
    );
    // A failed challenge.
    let param = emulator.mint(Mint::verdict(VerifyCode::F015)).unwrap();
    let answer = send(with_header(addr, "/login", &param)).await;
    assert_eq!(
        (answer.status, &answer.json["code"]),
        (StatusCode::FORBIDDEN, &json!("F015"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_in_flight_bound_requests_are_shed_at_once() {
    let emulator = emulator().await;
    emulator.set_faults(Faults::none().with_latency(Duration::from_millis(400)));
    // The one bound: the client's connections, with a short wait for one.
    let client = client_builder(emulator.url())
        .max_connections(2)
        .connection_wait(Duration::from_millis(50))
        .build()
        .unwrap();
    // The policy is open: local overload is answered 503 all the same.
    let layer = CaptchaLayer::builder(client, Route::every_path(SceneId::new(LOGIN).unwrap()))
        .failure_policy(FailurePolicy::Open)
        .build()
        .unwrap();
    let addr = serve(Router::new().route("/login", post(echo).layer(layer))).await;

    let mut tasks = Vec::new();
    for _ in 0..10 {
        let request = with_header(addr, "/login", &emulator.mint(Mint::pass()).unwrap());
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let answer = send(request).await;
            let retry_after = answer
                .headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            (answer.status, started.elapsed(), retry_after)
        }));
    }
    let mut passed = 0;
    let mut shed = 0;
    for task in tasks {
        let (status, elapsed, retry_after) = task.await.unwrap();
        match status {
            StatusCode::OK => passed += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                shed += 1;
                assert_eq!(retry_after, Some("1".to_owned()));
                assert!(
                    elapsed < Duration::from_millis(300),
                    "shed after {elapsed:?}: it queued"
                );
            }
            other => panic!("{other}"),
        }
    }
    assert_eq!((passed, shed), (2, 8));
    assert_eq!(emulator.stats().requests, 2);
}

#[tokio::test]
async fn a_route_table_protects_only_its_routes() {
    let emulator = emulator().await;
    let routes = Routes::new()
        .route(Route::exact("/login", SceneId::new(LOGIN).unwrap()))
        .route(Route::prefix("/signup", SceneId::new(SIGNUP).unwrap()));
    let layer = CaptchaLayer::builder(client_for(&emulator), routes)
        .extractor(JsonField::default())
        .build()
        .unwrap();
    let open_handler = |body: Bytes| async move { format!("open {}", body.len()) };
    let app = Router::new()
        .route("/login", post(echo))
        .route("/signup/email", post(echo))
        .route("/about", get(|| async { "about" }))
        .route("/comment", post(open_handler))
        .layer(layer);
    let addr = serve(app).await;

    let answer = send(post_to(addr, "/login", "application/json", "{}")).await;
    assert_eq!(answer.status, 403);
    let param = emulator
        .mint(Mint::pass().in_scene(SceneId::new(SIGNUP).unwrap()))
        .unwrap();
    let answer = send(post_to(
        addr,
        "/signup/email",
        "application/json",
        json!({"captchaVerifyParam": param}).to_string(),
    ))
    .await;
    assert_eq!(
        (answer.status, &answer.json["scene"]),
        (StatusCode::OK, &json!(SIGNUP))
    );

    let request = Request::get(format!("http://{addr}/about"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(send(request).await.status, 200);
    // An unprotected route's body passes untouched, whatever its size.
    let big = "c".repeat(10 * LIMIT);
    let client: HyperClient<HttpConnector, Full<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build(HttpConnector::new());
    let response = client
        .request(post_to(addr, "/comment", "application/json", big))
        .await
        .unwrap();
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(text, format!("open {}", 10 * LIMIT));
    assert_eq!(emulator.stats().requests, 1);
}

#[tokio::test]
async fn a_slow_body_times_out_without_holding_a_verification_slot() {
    let emulator = emulator().await;
    let addr = app(&emulator, FailurePolicy::Closed).await;
    let param = emulator.mint(Mint::pass()).unwrap();
    let body = json!({"captchaVerifyParam": param})
        .to_string()
        .into_bytes();
    // One byte every 50 ms: far slower than the 500 ms read timeout allows.
    let request = Request::post(format!("http://{addr}/login"))
        .header("content-type", "application/json")
        .body(Trickle::new(body, 1, Duration::from_millis(50)))
        .unwrap();
    let started = Instant::now();
    let answer = send(request).await;
    assert_eq!(answer.status, 408);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(emulator.stats().requests, 0);
}

#[tokio::test]
async fn gateway_refusals_of_grpc_requests_are_grpc_statuses() {
    let emulator = emulator().await;
    let addr = app(&emulator, FailurePolicy::Closed).await;
    let answer = send(post_to(addr, "/login", "application/grpc", Bytes::new())).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["grpc-status"], "7");
    assert_eq!(answer.headers["content-type"], "application/grpc");
}

#[tokio::test]
async fn a_route_can_name_its_own_extractor() {
    let emulator = emulator().await;
    let scene = |name| SceneId::new(name).unwrap();
    let routes = Routes::new()
        .route(Route::exact("/login", scene(LOGIN)).extractor(JsonField::default()))
        .route(
            Route::exact("/signup", scene(SIGNUP))
                .extractor(FormField::default().or(Query::default())),
        )
        .route(Route::exact("/comment", scene(LOGIN)));
    // The layer's own extractor (a header) serves routes that name none.
    let layer = CaptchaLayer::builder(client_for(&emulator), routes)
        .responder(DefaultResponder::exposing_codes())
        .build()
        .unwrap();
    let app = Router::new()
        .route("/login", post(echo))
        .route("/signup", post(echo))
        .route("/comment", post(echo))
        .layer(layer);
    let addr = serve(app).await;

    let param = emulator.mint(Mint::pass()).unwrap();
    let body = json!({"captchaVerifyParam": param}).to_string();
    let answer = send(post_to(addr, "/login", "application/json", body.clone())).await;
    assert_eq!(
        (answer.status, &answer.json["body"]),
        (StatusCode::OK, &json!(body))
    );
    // /login reads JSON only: a header is not looked at.
    let answer = send(with_header(
        addr,
        "/login",
        &emulator.mint(Mint::pass()).unwrap(),
    ))
    .await;
    assert_eq!(
        (answer.status, &answer.json["code"]),
        (StatusCode::FORBIDDEN, &json!("F002"))
    );

    let param = emulator
        .mint(Mint::pass().in_scene(SceneId::new(SIGNUP).unwrap()))
        .unwrap();
    let form = format!(
        "captchaVerifyParam={}",
        form_urlencoded::byte_serialize(param.as_bytes()).collect::<String>()
    );
    let answer = send(post_to(
        addr,
        "/signup",
        "application/x-www-form-urlencoded",
        form,
    ))
    .await;
    assert_eq!(
        (answer.status, &answer.json["scene"]),
        (StatusCode::OK, &json!(SIGNUP))
    );
    let param = emulator
        .mint(Mint::pass().in_scene(SceneId::new(SIGNUP).unwrap()))
        .unwrap();
    let query: String = form_urlencoded::byte_serialize(param.as_bytes()).collect();
    let request = Request::post(format!("http://{addr}/signup?captchaVerifyParam={query}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(send(request).await.status, StatusCode::OK);

    let answer = send(with_header(
        addr,
        "/comment",
        &emulator.mint(Mint::pass()).unwrap(),
    ))
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
}

/// By default a refusal tells page code the captcha outcome and a coarse reason, never the
/// exact code that would tell a bot what to change.
#[tokio::test]
async fn refusals_tell_the_page_the_outcome_and_a_coarse_reason() {
    let emulator = emulator().await;
    let layer = CaptchaLayer::new(client_for(&emulator), SceneId::new(LOGIN).unwrap());
    let addr = serve(Router::new().route("/login", post(echo).layer(layer))).await;
    let answer = send(post_to(addr, "/login", "text/plain", "x")).await;
    assert_eq!(
        (answer.status, answer.json.clone()),
        (
            StatusCode::FORBIDDEN,
            json!({"captchaResult": false, "reason": "captcha_required", "message": "captcha required"})
        )
    );
    for (verdict, reason) in [
        ("F009", "captcha_failed"),
        ("F010", "captcha_failed"),
        ("F017", "captcha_failed"),
        ("F019", "captcha_expired"),
        ("F014", "captcha_expired"),
    ] {
        let param = emulator
            .mint(Mint::verdict(VerifyCode::from(verdict)))
            .unwrap();
        let answer = send(with_header(addr, "/login", &param)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{verdict}");
        assert_eq!(answer.json["captchaResult"], false, "{verdict}");
        assert_eq!(answer.json["reason"], reason, "{verdict}");
        assert!(
            answer.json.get("code").is_none(),
            "{verdict}: {}",
            answer.json
        );
        assert!(
            !answer.json.to_string().contains(verdict),
            "{verdict}: {}",
            answer.json
        );
    }
    // A param used twice: refresh the widget.
    let param = emulator.mint(Mint::pass()).unwrap();
    assert_eq!(
        send(with_header(addr, "/login", &param)).await.status,
        StatusCode::OK
    );
    let again = send(with_header(addr, "/login", &param)).await;
    assert_eq!(again.json["reason"], "captcha_expired");
}

/// An app whose layer is given nothing but the client and the scene: the default extractor.
async fn default_app(emulator: &Emulator) -> SocketAddr {
    let layer = CaptchaLayer::new(client_for(emulator), SceneId::new(LOGIN).unwrap());
    serve(Router::new().route("/login", post(echo).layer(layer))).await
}

fn form_with(param: &str) -> String {
    format!(
        "username=ann&captchaVerifyParam={}&password=p+w%26",
        form_urlencoded::byte_serialize(param.as_bytes()).collect::<String>()
    )
}

#[tokio::test]
async fn the_default_layer_reads_a_json_body_a_form_body_the_header_and_grpc_metadata() {
    let emulator = emulator().await;
    let addr = default_app(&emulator).await;

    // What the README's page (and Alibaba's V3 guide) posts: JSON.
    let param = emulator.mint(Mint::pass()).unwrap();
    let body = format!(r#"{{"captchaVerifyParam": "{param}", "username":"ann","password":"p w"}}"#);
    let answer = send(post_to(addr, "/login", "application/json", body.clone())).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(
        (&answer.json["body"], &answer.json["code"]),
        (&json!(body), &json!("T001"))
    );

    // A classic form post.
    let body = form_with(&emulator.mint(Mint::pass()).unwrap());
    let answer = send(post_to(
        addr,
        "/login",
        "application/x-www-form-urlencoded",
        body.clone(),
    ))
    .await;
    assert_eq!(
        (answer.status, &answer.json["body"]),
        (StatusCode::OK, &json!(body))
    );

    // The header, which wins over a body field (read no further).
    let param = emulator.mint(Mint::pass()).unwrap();
    let body = r#"{"captchaVerifyParam": "not-looked-at"}"#;
    let mut request = post_to(addr, "/login", "application/json", body);
    request
        .headers_mut()
        .insert("x-captcha-verify-param", param.parse().unwrap());
    let answer = send(request).await;
    assert_eq!(
        (answer.status, &answer.json["body"]),
        (StatusCode::OK, &json!(body))
    );

    // gRPC metadata travels as that header.
    let param = emulator.mint(Mint::pass()).unwrap();
    let mut request = post_to(addr, "/login", "application/grpc", &b"\0\0\0\0\x02hi"[..]);
    request
        .headers_mut()
        .insert("x-captcha-verify-param", param.parse().unwrap());
    let answer = send(request).await;
    assert_eq!(
        (answer.status, &answer.json["body"]),
        (StatusCode::OK, &json!("\0\0\0\0\u{2}hi"))
    );

    let stats = emulator.stats();
    assert_eq!((stats.requests, stats.verdicts["T001"]), (4, 4));
}

#[tokio::test]
async fn the_default_layer_never_reads_a_grpc_body() {
    let emulator = emulator().await;
    let addr = default_app(&emulator).await;
    // gRPC's JSON codec ends in `+json`; its body is framed, often a stream, never a form to
    // search. Sent a byte every 50 ms, it would take seconds to read.
    let param = emulator.mint(Mint::pass()).unwrap();
    let body = json!({"captchaVerifyParam": param})
        .to_string()
        .into_bytes();
    assert!(body.len() > 40);
    let request = Request::post(format!("http://{addr}/login"))
        .header("content-type", "application/grpc+json")
        .body(Trickle::new(body, 1, Duration::from_millis(50)))
        .unwrap();
    let started = Instant::now();
    let answer = send(request).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "waited {:?} for the body",
        started.elapsed()
    );
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["grpc-status"], "7");
    assert_eq!(emulator.stats().requests, 0);
}

#[tokio::test]
async fn a_param_given_twice_in_one_place_is_refused_without_calling_the_service() {
    let emulator = emulator().await;
    // The default extractor, with the codes shown.
    let layer = CaptchaLayer::builder(
        client_for(&emulator),
        Route::every_path(SceneId::new(LOGIN).unwrap()),
    )
    .responder(DefaultResponder::exposing_codes())
    .build()
    .unwrap();
    let addr = serve(Router::new().route("/login", post(echo).layer(layer))).await;
    let chained = app(&emulator, FailurePolicy::Open).await;
    let first = emulator.mint(Mint::pass()).unwrap();
    let second = emulator.mint(Mint::pass()).unwrap();
    let encode = |p: &str| form_urlencoded::byte_serialize(p.as_bytes()).collect::<String>();

    let mut requests = Vec::new();
    for addr in [addr, chained] {
        // Two JSON keys: serde_json keeps the last, other parsers the first.
        for (a, b) in [(&first, &second), (&first, &first)] {
            let body = format!(
                r#"{{"captchaVerifyParam":"{a}","user":"ann","captchaVerifyParam":"{b}"}}"#
            );
            requests.push(post_to(addr, "/login", "application/json", body));
        }
        // Two form fields.
        let body = format!(
            "captchaVerifyParam={}&user=ann&captchaVerifyParam={}",
            encode(&first),
            encode(&second)
        );
        requests.push(post_to(
            addr,
            "/login",
            "application/x-www-form-urlencoded",
            body,
        ));
        // Two headers.
        let mut request = post_to(addr, "/login", "text/plain", "body");
        for param in [&first, &second] {
            request
                .headers_mut()
                .append("x-captcha-verify-param", param.parse().unwrap());
        }
        requests.push(request);
    }
    // Two query parameters (the chained app reads the query last).
    let uri = format!(
        "http://{chained}/login?captchaVerifyParam={}&captchaVerifyParam={}",
        encode(&first),
        encode(&second)
    );
    requests.push(Request::post(uri).body(Full::new(Bytes::new())).unwrap());

    assert_eq!(requests.len(), 9);
    for request in requests {
        let described = format!("{} {:?}", request.uri(), request.headers());
        let answer = send(request).await;
        assert_eq!(
            (answer.status, &answer.json["code"]),
            (StatusCode::FORBIDDEN, &json!("F003")),
            "{described}"
        );
    }
    assert_eq!(
        emulator.stats().requests,
        0,
        "no paid call for a param given twice"
    );
    // Neither param was spent: each alone still passes.
    for param in [&first, &second] {
        let body = json!({"captchaVerifyParam": param}).to_string();
        let answer = send(post_to(addr, "/login", "application/json", body)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    }
}

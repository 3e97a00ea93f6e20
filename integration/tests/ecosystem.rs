//! The layer in production-style stacks, over real sockets: one `ServiceBuilder` with
//! tower-http's `TraceLayer`, `CorsLayer` and `TimeoutLayer` and tower_governor's rate limit
//! outside `CaptchaLayer`, in an axum app and in a plain hyper app; and a tonic server with the
//! rate limit outside the captcha layer. No body bridge anywhere: the protected service answers
//! in the inner service's body type. The rate limit runs first, so a flood over it never costs
//! a (billed) verification.

mod common;

#[path = "../../examples/support/accounts.rs"]
mod accounts;

use std::net::SocketAddr;
use std::time::Duration;

use aliyun_captcha_emulator::{Emulator, Mint};
use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use common::*;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::ServiceBuilder;
use tower_aliyun_captcha::VerifyCode;
use tower_aliyun_captcha::extract::{CaptchaBody, GrpcMetadata};
use tower_aliyun_captcha::layer::Route;
use tower_aliyun_captcha::{CaptchaLayer, CaptchaVerified, SceneId};
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::GlobalKeyExtractor;
use tower_http::cors::CorsLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Three requests at once, then one every minute: the fourth in a row is rate-limited.
const BURST: u32 = 3;

type Http = HyperClient<HttpConnector, Full<Bytes>>;

fn http() -> Http {
    HyperClient::builder(TokioExecutor::new()).build(HttpConnector::new())
}

async fn post_login(http: &Http, addr: SocketAddr, param: &str) -> StatusCode {
    let request = Request::post(format!("http://{addr}/login"))
        .header("x-captcha-verify-param", param)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = http.request(request).await.unwrap();
    let status = response.status();
    let _ = response.into_body().collect().await;
    status
}

/// The first `BURST` logins reach the captcha (and pass); the next is rate-limited before it
/// costs a verification. A CORS preflight is answered outside the captcha.
async fn check_stack(addr: SocketAddr, emulator: &Emulator) {
    let http = http();
    let preflight = Request::builder()
        .method(Method::OPTIONS)
        .uri(format!("http://{addr}/login"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = http.request(preflight).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    for _ in 0..BURST - 1 {
        let param = emulator.mint(Mint::pass()).unwrap();
        assert_eq!(post_login(&http, addr, &param).await, StatusCode::OK);
    }
    let param = emulator.mint(Mint::verdict(VerifyCode::F015)).unwrap();
    assert_eq!(post_login(&http, addr, &param).await, StatusCode::FORBIDDEN);
    let param = emulator.mint(Mint::pass()).unwrap();
    assert_eq!(
        post_login(&http, addr, &param).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        emulator.stats().requests,
        u64::from(BURST),
        "the rate-limited request reached the captcha service"
    );
}

#[tokio::test]
async fn an_axum_app_behind_trace_cors_timeout_and_governor() {
    let emulator = emulator().await;
    let governor = GovernorConfigBuilder::default()
        .key_extractor(GlobalKeyExtractor)
        .per_second(60)
        .burst_size(BURST)
        .finish()
        .unwrap();
    let captcha = CaptchaLayer::builder(
        client_for(&emulator),
        Route::exact("/login", SceneId::new(LOGIN).unwrap()),
    )
    .build()
    .unwrap();
    let app = Router::new()
        .route(
            "/login",
            post(|_verified: CaptchaVerified| async { "welcome" }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(TraceLayer::new_for_http())
                .layer(CorsLayer::permissive())
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    Duration::from_secs(5),
                ))
                .layer(GovernorLayer::new(governor))
                .layer(captcha),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    check_stack(addr, &emulator).await;
}

#[tokio::test]
async fn a_hyper_app_behind_trace_cors_timeout_and_governor() {
    let emulator = emulator().await;
    let governor = GovernorConfigBuilder::default()
        .key_extractor(GlobalKeyExtractor)
        .per_second(60)
        .burst_size(BURST)
        .finish()
        .unwrap();
    let captcha = CaptchaLayer::new(client_for(&emulator), SceneId::new(LOGIN).unwrap());
    // tower_governor answers in axum's or tonic's body type, so the handler does too.
    let service = ServiceBuilder::new()
        .layer(TraceLayer::new_for_http())
        .layer(CorsLayer::permissive())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(5),
        ))
        .layer(GovernorLayer::new(governor))
        .layer(captcha)
        .service_fn(
            |request: Request<CaptchaBody<hyper::body::Incoming>>| async move {
                let verified = request.extensions().get::<CaptchaVerified>().is_some();
                let status = if verified {
                    StatusCode::OK
                } else {
                    StatusCode::FORBIDDEN
                };
                let mut response = http::Response::new(axum::body::Body::from("welcome"));
                *response.status_mut() = status;
                Ok::<_, std::convert::Infallible>(response)
            },
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = hyper_util::service::TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    check_stack(addr, &emulator).await;
}

#[tokio::test]
async fn a_tonic_server_with_governor_outside_the_captcha() {
    let emulator = emulator().await;
    let governor = GovernorConfigBuilder::default()
        .key_extractor(GlobalKeyExtractor)
        .per_second(60)
        .burst_size(2)
        .finish()
        .unwrap();
    let captcha = CaptchaLayer::builder(
        client_for(&emulator),
        Route::exact(accounts::SIGNUP_PATH, SceneId::new(SIGNUP).unwrap()),
    )
    .extractor(GrpcMetadata::default())
    .build()
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .layer(
                ServiceBuilder::new()
                    .layer(GovernorLayer::new(governor))
                    .layer(captcha),
            )
            .add_service(accounts::AccountsServer)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let param = emulator
        .mint(Mint::pass().in_scene(SceneId::new(SIGNUP).unwrap()))
        .unwrap();
    let reply = accounts::call_signup(channel.clone(), "ann@example.com", Some(&param))
        .await
        .unwrap();
    assert!(reply.message.contains("T001"), "{}", reply.message);
    let status = accounts::call_signup(channel.clone(), "bot@example.com", None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    let param = emulator
        .mint(Mint::pass().in_scene(SceneId::new(SIGNUP).unwrap()))
        .unwrap();
    let limited = accounts::call_signup(channel, "bot@example.com", Some(&param))
        .await
        .unwrap_err();
    assert_ne!(limited.code(), tonic::Code::Ok);
    assert_eq!(
        emulator.stats().requests,
        1,
        "rate-limited calls reached the service"
    );
}

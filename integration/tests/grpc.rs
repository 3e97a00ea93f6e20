//! A tonic service behind the layer, called by a tonic client, over real sockets.

mod common;

#[path = "../../examples/support/accounts.rs"]
mod accounts;

use std::net::SocketAddr;

use aliyun_captcha_emulator::{Emulator, FaultMode, Faults, Mint};
use common::*;
use tonic::Code;
use tonic::transport::{Channel, Server};
use tower_aliyun_captcha::VerifyCode;
use tower_aliyun_captcha::extract::GrpcMetadata;
use tower_aliyun_captcha::layer::{FailurePolicy, Route};
use tower_aliyun_captcha::{CaptchaLayer, SceneId};

async fn grpc_server(emulator: &Emulator, policy: FailurePolicy) -> SocketAddr {
    let route = Route::exact(accounts::SIGNUP_PATH, SceneId::new(SIGNUP).unwrap());
    let layer = CaptchaLayer::builder(client_for(emulator), route)
        .extractor(GrpcMetadata::default())
        .failure_policy(policy)
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(async move {
        Server::builder()
            .layer(layer)
            .add_service(accounts::AccountsServer)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    addr
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_tonic_client_passes_or_sees_permission_denied() {
    let emulator = emulator().await;
    let addr = grpc_server(&emulator, FailurePolicy::Closed).await;
    let channel = channel(addr).await;

    let param = emulator
        .mint(Mint::pass().in_scene(SceneId::new(SIGNUP).unwrap()))
        .unwrap();
    let reply = accounts::call_signup(channel.clone(), "ann@example.com", Some(&param))
        .await
        .unwrap();
    assert_eq!(reply.message, "signed up ann@example.com (captcha T001)");
    assert!(!reply.degraded);

    let status = accounts::call_signup(channel.clone(), "bot@example.com", None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(status.message(), "captcha required");

    let status = accounts::call_signup(channel.clone(), "bot@example.com", Some(&param))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "reuse: {status:?}");

    let failing = emulator
        .mint(Mint::verdict(VerifyCode::F015).in_scene(SceneId::new(SIGNUP).unwrap()))
        .unwrap();
    let status = accounts::call_signup(channel.clone(), "bot@example.com", Some(&failing))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "captcha verification failed");

    emulator.set_faults(Faults::mode(FaultMode::InternalError));
    let param = emulator
        .mint(Mint::pass().in_scene(SceneId::new(SIGNUP).unwrap()))
        .unwrap();
    let status = accounts::call_signup(channel, "ann@example.com", Some(&param))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "fail closed: {status:?}");
}

#[tokio::test]
async fn fail_open_lets_a_grpc_call_through_marked_degraded() {
    let emulator = emulator().await;
    let addr = grpc_server(&emulator, FailurePolicy::Open).await;
    emulator.set_faults(Faults::mode(FaultMode::Unavailable));
    let param = emulator
        .mint(Mint::pass().in_scene(SceneId::new(SIGNUP).unwrap()))
        .unwrap();
    let reply = accounts::call_signup(channel(addr).await, "ann@example.com", Some(&param))
        .await
        .unwrap();
    assert!(reply.degraded);
    assert_eq!(
        reply.message,
        "signed up ann@example.com (captcha degraded)"
    );
}

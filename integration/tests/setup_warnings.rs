//! Setup mistakes speak: a verdict that points at the setup rather than the person (a param
//! of another scene, test mode, a pass code this crate does not know) is logged at warn with
//! the fix, once per kind per interval however many arrive; a bot's ordinary failure is not.
//! One test in its own binary: it owns the process-wide log capture.

mod common;

use std::net::SocketAddr;

use aliyun_captcha_emulator::{Faults, Mint};
use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tower_aliyun_captcha::layer::CaptchaVerified;
use tower_aliyun_captcha::{CaptchaLayer, Client, SceneId, VerifyCode};

async fn app(client: Client, scene: &str) -> SocketAddr {
    let layer = CaptchaLayer::new(client, SceneId::new(scene).unwrap());
    let handler = post(|_verified: CaptchaVerified| async { "welcome" });
    let app = Router::new().route("/login", handler.layer(layer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn login(addr: SocketAddr, param: &str) -> StatusCode {
    let http: HttpClient<HttpConnector, Full<Bytes>> =
        HttpClient::builder(TokioExecutor::new()).build(HttpConnector::new());
    let request = Request::post(format!("http://{addr}/login"))
        .header("x-captcha-verify-param", param)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = http.request(request).await.unwrap();
    let status = response.status();
    let _ = response.into_body().collect().await;
    status
}

fn warnings(logs: &str) -> Vec<&str> {
    logs.lines()
        .filter(|line| line.contains(" WARN "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_mistakes_warn_with_the_fix_and_bots_do_not() {
    let captured = Captured::install();
    let emulator = emulator().await;
    let login_route = app(client_for(&emulator), LOGIN).await;

    // Bots failing the challenge: refused, and nothing at warn.
    for _ in 0..20 {
        let bot = emulator.mint(Mint::verdict(VerifyCode::F015)).unwrap();
        assert_eq!(login(login_route, &bot).await, StatusCode::FORBIDDEN);
    }
    assert_eq!(warnings(&captured.text()), Vec::<&str>::new());

    // The signup page's param sent to the login route: refused, and the warning names the
    // scene and the fix; a hundred of them make one line.
    let before = captured.text().len();
    for _ in 0..100 {
        let signup_param = emulator
            .mint(Mint::pass().in_scene(SceneId::new(SIGNUP).unwrap()))
            .unwrap();
        assert_eq!(
            login(login_route, &signup_param).await,
            StatusCode::FORBIDDEN
        );
    }
    let logs = captured.text()[before..].to_owned();
    let lines = warnings(&logs);
    assert_eq!(lines.len(), 1, "{logs}");
    assert!(lines[0].contains("F012"), "{}", lines[0]);
    assert!(
        lines[0].contains(LOGIN),
        "names the route's scene: {}",
        lines[0]
    );
    assert!(
        lines[0].contains("same SceneId"),
        "says the fix: {}",
        lines[0]
    );

    // A scene left in test mode: T005 is refused by default, with a warning saying so.
    let test_mode_route = app(client_for(&emulator), "test-pass").await;
    let before = captured.text().len();
    let param = emulator
        .mint(Mint::pass().in_scene(SceneId::new("test-pass").unwrap()))
        .unwrap();
    assert_eq!(login(test_mode_route, &param).await, StatusCode::FORBIDDEN);
    let logs = captured.text()[before..].to_owned();
    let lines = warnings(&logs);
    assert_eq!(lines.len(), 1, "{logs}");
    assert!(
        lines[0].contains("T005") && lines[0].contains("test mode"),
        "{}",
        lines[0]
    );

    // A pass code Alibaba added after this crate: the person passes, with a warning.
    let before = captured.text().len();
    emulator.set_faults(Faults::result(
        json!({"VerifyResult": true, "VerifyCode": "T007"}),
    ));
    let param = emulator.mint(Mint::pass()).unwrap();
    assert_eq!(login(login_route, &param).await, StatusCode::OK);
    let logs = captured.text()[before..].to_owned();
    let lines = warnings(&logs);
    assert_eq!(lines.len(), 1, "{logs}");
    assert!(
        lines[0].contains("T007") && lines[0].contains("passed"),
        "{}",
        lines[0]
    );

    // A contradiction stays refused.
    emulator.set_faults(Faults::result(
        json!({"VerifyResult": false, "VerifyCode": "T001"}),
    ));
    let param = emulator.mint(Mint::pass()).unwrap();
    assert_eq!(login(login_route, &param).await, StatusCode::FORBIDDEN);
    emulator.set_faults(Faults::result(
        json!({"VerifyResult": true, "VerifyCode": "F015"}),
    ));
    let param = emulator.mint(Mint::pass()).unwrap();
    assert_eq!(login(login_route, &param).await, StatusCode::FORBIDDEN);
}

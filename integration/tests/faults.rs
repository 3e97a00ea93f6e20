//! Every upstream fault under both failure policies, over real sockets: the documented
//! outcome within the timeout + 100 ms, never a param sent twice, recovery once the fault
//! clears, and a warning with the reason in the logs (and never a secret or a param).
//!
//! One test in its own binary: it owns the process-wide log capture.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aliyun_captcha_emulator::{Emulator, FaultMode, Faults, Mint};
use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tower_aliyun_captcha::VerifyCode;
use tower_aliyun_captcha::layer::{FailurePolicy, Route};
use tower_aliyun_captcha::{CaptchaLayer, CaptchaVerified, Client, SceneId};

const TIMEOUT: Duration = Duration::from_millis(300);
const GRACE: Duration = Duration::from_millis(100);

async fn handler(verified: CaptchaVerified) -> axum::Json<Value> {
    axum::Json(json!({"degraded": matches!(verified, CaptchaVerified::Degraded(_))}))
}

fn client_to(url: String) -> Client {
    client_builder(url)
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .build()
        .unwrap()
}

/// An app whose `/login` is protected with `policy`, verifying at `url`.
async fn app(url: String, policy: FailurePolicy) -> SocketAddr {
    let layer = CaptchaLayer::builder(
        client_to(url),
        Route::every_path(SceneId::new(LOGIN).unwrap()),
    )
    .failure_policy(policy)
    .build()
    .unwrap();
    let app = Router::new().route("/login", post(handler).layer(layer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Posts to the app with `param` and returns the status, the body and how long it took.
async fn login(addr: SocketAddr, param: &str) -> (StatusCode, Value, Duration) {
    let http: HttpClient<HttpConnector, Full<Bytes>> =
        HttpClient::builder(TokioExecutor::new()).build(HttpConnector::new());
    let request = Request::post(format!("http://{addr}/login"))
        .header("x-captcha-verify-param", param)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let started = Instant::now();
    let response = http.request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        started.elapsed(),
    )
}

/// Checks both policies' outcomes for one fault.
async fn expect_policy_outcomes(
    open: SocketAddr,
    closed: SocketAddr,
    param: impl Fn() -> String,
    what: &str,
) {
    let (status, body, took) = login(open, &param()).await;
    assert_eq!(
        (status, &body["degraded"]),
        (StatusCode::OK, &json!(true)),
        "open, {what}: {body}"
    );
    assert!(
        took < TIMEOUT + GRACE,
        "open, {what}: answered after {took:?}"
    );
    let (status, body, took) = login(closed, &param()).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "closed, {what}: {body}"
    );
    assert_eq!(body["reason"], "captcha_unavailable");
    assert!(
        took < TIMEOUT + GRACE,
        "closed, {what}: answered after {took:?}"
    );
}

async fn expect_recovery(open: SocketAddr, closed: SocketAddr, emulator: &Emulator, what: &str) {
    for addr in [open, closed] {
        let param = emulator.mint(Mint::pass()).unwrap();
        let (status, body, _) = login(addr, &param).await;
        assert_eq!(
            (status, &body["degraded"]),
            (StatusCode::OK, &json!(false)),
            "after {what}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_under_both_policies() {
    let captured = Captured::install();

    let clock = TestClock::default();
    let emulator = emulator_with_clock(clock.clone()).await;
    let emulator_addr = emulator.addr();
    let open = app(emulator.url(), FailurePolicy::Open).await;
    let closed = app(emulator.url(), FailurePolicy::Closed).await;
    let mut minted = Vec::new();

    let faults = [
        (
            "latency past the timeout",
            Faults::none().with_latency(Duration::from_millis(1500)),
        ),
        ("HTTP 500", Faults::mode(FaultMode::InternalError)),
        ("HTTP 503", Faults::mode(FaultMode::Unavailable)),
        ("malformed JSON", Faults::mode(FaultMode::MalformedJson)),
        ("truncated body", Faults::mode(FaultMode::TruncatedBody)),
        ("oversized body", Faults::mode(FaultMode::OversizedBody)),
        (
            "reset after the request was sent",
            Faults::mode(FaultMode::CloseConnection),
        ),
    ];
    for (what, fault) in faults {
        emulator.set_faults(fault);
        let before = emulator.stats().requests;
        let params = [
            emulator.mint(Mint::pass()).unwrap(),
            emulator.mint(Mint::pass()).unwrap(),
        ];
        minted.extend(params.iter().cloned());
        let next = std::cell::Cell::new(0);
        let take = || {
            let index = next.get();
            next.set(index + 1);
            params[index].clone()
        };
        expect_policy_outcomes(open, closed, take, what).await;
        // Each param reached the service exactly once.
        assert_eq!(emulator.stats().requests, before + 2, "{what}");
        assert_eq!(emulator.stats().repeated_params, 0, "{what}");
        emulator.set_faults(Faults::none());
        // Let the slow answer of the latency fault drain before the next round.
        if what.starts_with("latency") {
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        expect_recovery(open, closed, &emulator, what).await;
    }

    // Connection refused: the emulator is stopped, then started again at the same address.
    emulator.shutdown().await;
    expect_policy_outcomes(
        open,
        closed,
        || "eyJwYXJhbSI6InJlZnVzZWQifQ==".to_owned(),
        "connection refused",
    )
    .await;
    let emulator = Emulator::builder()
        .access_key(KEY_ID, KEY_SECRET)
        .scene(LOGIN)
        .start(emulator_addr)
        .await
        .expect("the emulator restarts on its address");
    expect_recovery(open, closed, &emulator, "connection refused").await;

    // A host that does not resolve.
    let open_nowhere = app("http://captcha.invalid".into(), FailurePolicy::Open).await;
    let closed_nowhere = app("http://captcha.invalid".into(), FailurePolicy::Closed).await;
    expect_policy_outcomes(
        open_nowhere,
        closed_nowhere,
        || "eyJwYXJhbSI6Im5vd2hlcmUifQ==".to_owned(),
        "unresolvable host",
    )
    .await;

    let logs = captured.text();
    for kind in [
        "timeout",
        "api",
        "malformed_response",
        "oversized_response",
        "io",
        "connect",
    ] {
        assert!(
            logs.lines().any(|l| l.contains("WARN")
                && l.contains("captcha verification failed")
                && l.contains(&format!("captcha.error_kind=\"{kind}\""))),
            "no warning with kind {kind} in the logs"
        );
    }
    assert!(logs.contains("captcha.policy=Open") && logs.contains("captcha.policy=Closed"));
    for secret in [KEY_SECRET, STS_SECRET, STS_TOKEN]
        .into_iter()
        .map(str::to_owned)
        .chain(minted)
    {
        assert!(!logs.contains(&secret), "{secret:?} leaked into the logs");
    }

    // Under a flood of failures, the logs get one line per kind per interval, with a count.
    let before = captured.text().len();
    let flooded = Emulator::builder()
        .access_key(KEY_ID, KEY_SECRET)
        .scene(LOGIN)
        .start("127.0.0.1:0")
        .await
        .unwrap();
    flooded.set_faults(Faults::mode(FaultMode::Unavailable));
    let client = client_builder(flooded.url())
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .max_connections(8)
        .build()
        .unwrap();
    let layer = CaptchaLayer::new(client, SceneId::new(LOGIN).unwrap());
    let app = Router::new().route("/login", post(handler).layer(layer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let logins: Vec<_> = (0..300)
        .map(|_| {
            let param = flooded.mint(Mint::verdict(VerifyCode::F015)).unwrap();
            tokio::spawn(async move { login(addr, &param).await })
        })
        .collect();
    for login in logins {
        login.await.unwrap();
    }
    let flood_logs = captured.text()[before..].to_owned();
    let warnings = flood_logs.lines().filter(|l| l.contains("WARN")).count();
    assert!(
        (1..=4).contains(&warnings),
        "{warnings} warning lines for 300 failures:\n{flood_logs}"
    );
}

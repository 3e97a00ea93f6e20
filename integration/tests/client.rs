//! The client against the emulator over real sockets.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aliyun_captcha_emulator::{FaultMode, Faults, Mint, ParamFormat};
use common::*;
use tower_aliyun_captcha::SceneId;
use tower_aliyun_captcha::error::{ApiErrorCode, ResponseErrorKind, TransportErrorKind};
use tower_aliyun_captcha::{Client, Credentials, Error, VerifyCode};

#[tokio::test]
async fn a_human_passes_and_failures_are_verdicts() {
    let emulator = emulator().await;
    let client = client_for(&emulator);
    let verdict = client
        .verify(request(&emulator.mint(Mint::pass()).unwrap(), Some(LOGIN)))
        .await
        .unwrap();
    assert!(verdict.passed());
    assert_eq!(verdict.code(), &VerifyCode::T001);
    assert!(!verdict.request_id().is_empty());

    for (mint, scene, expected) in [
        (
            Mint::verdict(VerifyCode::F015),
            Some(LOGIN),
            VerifyCode::F015,
        ),
        (Mint::verdict(VerifyCode::F001), None, VerifyCode::F001),
        (Mint::pass(), Some(SIGNUP), VerifyCode::F012),
        (
            Mint::pass().in_scene(SceneId::new("unknown").unwrap()),
            None,
            VerifyCode::F005,
        ),
        (
            Mint::pass().in_scene(SceneId::new("test-pass").unwrap()),
            None,
            VerifyCode::T005,
        ),
        (
            Mint::pass().in_scene(SceneId::new("test-fail").unwrap()),
            None,
            VerifyCode::F004,
        ),
    ] {
        let param = emulator.mint(mint).unwrap();
        let verdict = client.verify(request(&param, scene)).await.unwrap();
        assert_eq!(verdict.code(), &expected);
        assert_eq!(verdict.passed(), expected.is_pass());
    }
    let verdict = client.verify(request("not a param", None)).await.unwrap();
    assert_eq!(verdict.code(), &VerifyCode::F003);
}

#[tokio::test]
async fn a_param_is_single_use() {
    let emulator = emulator().await;
    let client = client_for(&emulator);
    for (format, reused) in [
        (ParamFormat::V3, VerifyCode::F018),
        (ParamFormat::V2, VerifyCode::F008),
    ] {
        let param = emulator.mint(Mint::pass().format(format)).unwrap();
        assert!(
            client
                .verify(request(&param, Some(LOGIN)))
                .await
                .unwrap()
                .passed()
        );
        let again = client.verify(request(&param, Some(LOGIN))).await.unwrap();
        assert_eq!(again.code(), &reused);
    }
}

#[tokio::test]
async fn every_api_error_is_typed_with_advice() {
    let emulator = emulator().await;
    let client = client_for(&emulator);
    for (code, status, expected) in [
        ("MissingParameter", 400, ApiErrorCode::MissingParameter),
        ("InvalidParameter", 400, ApiErrorCode::InvalidParameter),
        (
            "Forbidden.AccountAccessDenied",
            403,
            ApiErrorCode::ForbiddenAccountAccessDenied,
        ),
        (
            "Forbidden.RAMUserAccessDenied",
            403,
            ApiErrorCode::ForbiddenRamUserAccessDenied,
        ),
        ("InternalError", 500, ApiErrorCode::InternalError),
        ("SignatureNonceUsed", 400, ApiErrorCode::SignatureNonceUsed),
        ("Throttling.User", 400, ApiErrorCode::ThrottlingUser),
        (
            "Odd.NewCode",
            400,
            ApiErrorCode::Unknown("Odd.NewCode".into()),
        ),
    ] {
        emulator.set_faults(Faults::api_error(code));
        let param = emulator.mint(Mint::pass()).unwrap();
        match client.verify(request(&param, None)).await {
            Err(Error::Api(error)) => {
                assert_eq!(error.status(), status, "{code}");
                assert_eq!(error.code(), &expected);
                assert!(!error.request_id().is_empty());
            }
            other => panic!("{code}: {other:?}"),
        }
    }
    emulator.set_faults(Faults::api_error("Forbidden.RAMUserAccessDenied"));
    let error = client.verify(request("p", None)).await.unwrap_err();
    assert!(
        error.advice().contains("AliyunYundunAFSFullAccess"),
        "{}",
        error.advice()
    );
    assert!(error.to_string().contains("AliyunYundunAFSFullAccess"));
}

#[tokio::test]
async fn wrong_credentials_and_wrong_clock_are_reported() {
    let clock = TestClock::default();
    let emulator = emulator_with_clock(clock.clone()).await;

    let wrong_secret = client_with(emulator.url(), Credentials::new(KEY_ID, "wrong"));
    let error = wrong_secret.verify(request("p", None)).await.unwrap_err();
    assert!(
        matches!(&error, Error::Api(e) if e.code() == &ApiErrorCode::SignatureDoesNotMatch && e.status() == 400),
        "{error:?}"
    );

    let unknown = client_with(emulator.url(), Credentials::new("LTAInobody", KEY_SECRET));
    let error = unknown.verify(request("p", None)).await.unwrap_err();
    assert!(
        matches!(&error, Error::Api(e) if e.code() == &ApiErrorCode::InvalidAccessKeyIdNotFound && e.status() == 404),
        "{error:?}"
    );

    clock.advance(Duration::from_secs(3600));
    let error = client_for(&emulator)
        .verify(request("p", None))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Api(e) if e.code() == &ApiErrorCode::InvalidTimeStampExpired),
        "{error:?}"
    );
    assert!(error.advice().contains("clock"));
}

#[tokio::test]
async fn sts_credentials_pass_and_are_fetched_again_when_they_expire() {
    let emulator = emulator().await;
    // A provider whose token is wrong at first, and whose credentials last a second.
    let token = Arc::new(Mutex::new("stale".to_owned()));
    let current = Arc::clone(&token);
    let provider = move || {
        let token = current.lock().unwrap().clone();
        async move {
            Ok::<_, tower_aliyun_captcha::credentials::CredentialsError>(
                Credentials::new(STS_ID, STS_SECRET)
                    .with_security_token(token)
                    .with_expiration(std::time::SystemTime::now() + Duration::from_secs(1)),
            )
        }
    };
    let client = client_builder(emulator.url())
        .credentials_provider(provider)
        .build()
        .unwrap();
    let error = client
        .verify(request(&emulator.mint(Mint::pass()).unwrap(), None))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Api(e) if e.code() == &ApiErrorCode::InvalidSecurityTokenMismatch),
        "{error:?}"
    );

    *token.lock().unwrap() = STS_TOKEN.to_owned();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let verdict = client
        .verify(request(&emulator.mint(Mint::pass()).unwrap(), Some(LOGIN)))
        .await
        .unwrap();
    assert!(verdict.passed());
}

async fn verify_concurrently(
    client: &Client,
    emulator: &aliyun_captcha_emulator::Emulator,
    concurrency: usize,
    total: usize,
) {
    // Mint everything first and start the workers together: `concurrency` requests in flight
    // from the first one on, rather than workers joining one by one while minting.
    let start = Arc::new(tokio::sync::Barrier::new(concurrency));
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (client, start) = (client.clone(), Arc::clone(&start));
        let params: Vec<String> = (0..total / concurrency)
            .map(|_| emulator.mint(Mint::pass()).unwrap())
            .collect();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            for param in params {
                let verdict = client.verify(request(&param, Some(LOGIN))).await.unwrap();
                assert!(verdict.passed(), "worker {worker}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_reused() {
    const CONCURRENCY: usize = 8;
    const TOTAL: usize = 1000;

    // With the connection cap at the concurrency, never more connections than that.
    let emulator = emulator().await;
    let client = client_builder(emulator.url())
        .max_connections(CONCURRENCY)
        .build()
        .unwrap();
    verify_concurrently(&client, &emulator, CONCURRENCY, TOTAL).await;
    let stats = emulator.stats();
    assert_eq!(stats.requests, TOTAL as u64);
    assert_eq!(stats.verdicts["T001"], TOTAL as u64);
    assert!(
        stats.connections <= CONCURRENCY as u64,
        "{} connections for {TOTAL} verifications at concurrency {CONCURRENCY}",
        stats.connections
    );

    // With the default cap, the pool may open a spare connection or two, never one per call.
    let emulator = emulator_with_clock(TestClock::default()).await;
    verify_concurrently(&client_for(&emulator), &emulator, CONCURRENCY, TOTAL).await;
    let connections = emulator.stats().connections;
    assert!(
        connections <= 2 * CONCURRENCY as u64,
        "{connections} connections"
    );
}

#[tokio::test]
async fn a_slow_service_times_out_on_time_and_is_not_retried() {
    let emulator = emulator().await;
    emulator.set_faults(Faults::none().with_latency(Duration::from_secs(3)));
    let timeout = Duration::from_millis(300);
    let client = client_builder(emulator.url())
        .timeout(timeout)
        .build()
        .unwrap();
    let param = emulator.mint(Mint::pass()).unwrap();
    let started = Instant::now();
    let error = client.verify(request(&param, None)).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(error.is_timeout(), "{error:?}");
    assert!(error.may_have_reached_server());
    assert!(
        elapsed >= timeout && elapsed < timeout + Duration::from_millis(100),
        "{elapsed:?}"
    );
    assert_eq!(emulator.stats().requests, 1);
}

#[tokio::test]
async fn a_fault_after_sending_is_never_retried() {
    let emulator = emulator().await;
    let client = client_for(&emulator);
    for mode in [
        FaultMode::CloseConnection,
        FaultMode::TruncatedBody,
        FaultMode::MalformedJson,
        FaultMode::OversizedBody,
        FaultMode::Unavailable,
    ] {
        emulator.set_faults(Faults::mode(mode));
        let before = emulator.stats().requests;
        let param = emulator.mint(Mint::pass()).unwrap();
        let error = client.verify(request(&param, None)).await.unwrap_err();
        assert!(error.may_have_reached_server(), "{mode:?}: {error:?}");
        assert_eq!(
            emulator.stats().requests,
            before + 1,
            "{mode:?} was re-sent"
        );
        match mode {
            FaultMode::MalformedJson => assert!(
                matches!(&error, Error::Response(e) if e.kind() == ResponseErrorKind::Malformed)
            ),
            FaultMode::OversizedBody => assert!(
                matches!(&error, Error::Response(e) if e.kind() == ResponseErrorKind::TooLarge)
            ),
            FaultMode::Unavailable => assert!(matches!(&error, Error::Api(e) if e.status() == 503)),
            _ => assert!(
                matches!(&error, Error::Transport(e) if e.kind() == TransportErrorKind::Io),
                "{mode:?}: {error:?}"
            ),
        }
    }
    assert_eq!(emulator.stats().repeated_params, 0);
    // Once the fault clears, the same client (and its pool) works again.
    emulator.set_faults(Faults::none());
    let param = emulator.mint(Mint::pass()).unwrap();
    assert!(client.verify(request(&param, None)).await.unwrap().passed());
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_over_to_the_next() {
    let emulator = emulator().await;
    // A port that was just free: connecting to it is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let client = client_builder(format!("http://{closed}"))
        .failover_endpoint(emulator.url())
        .build()
        .unwrap();
    let param = emulator.mint(Mint::pass()).unwrap();
    assert!(
        client
            .verify(request(&param, Some(LOGIN)))
            .await
            .unwrap()
            .passed()
    );
    assert_eq!(emulator.stats().requests, 1);

    let only_closed = client_builder(format!("http://{closed}")).build().unwrap();
    let error = only_closed.verify(request(&param, None)).await.unwrap_err();
    assert!(
        matches!(&error, Error::Transport(e) if e.kind() == TransportErrorKind::Connect),
        "{error:?}"
    );
    assert!(!error.may_have_reached_server());
}

#[test]
fn plain_http_needs_consent() {
    let error = Client::builder()
        .credentials(Credentials::new("id", "secret"))
        .endpoint("http://127.0.0.1:1")
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("allow_http"), "{error}");
}

/// `Client::check` at startup: a working setup passes, a mistyped secret fails with advice
/// that names the secret.
#[tokio::test]
async fn check_passes_a_working_setup_and_names_a_mistyped_secret() {
    let emulator = emulator().await;
    assert!(client_for(&emulator).check().await.is_ok());
    let mistyped = client_with(emulator.url(), Credentials::new(KEY_ID, "mistyped-secret"));
    let error = mistyped.check().await.unwrap_err();
    assert!(error.advice().contains("secret"), "{}", error.advice());
}

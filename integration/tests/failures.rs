//! Failures never switch the captcha off: floods past the bounds, every gateway error class,
//! an outage flood against the degraded budget, the connection cap's background tasks, and
//! settings that would refuse (or, fail-open, admit) everyone. Over real sockets, against the
//! emulator; every request carries a param that fails verification unless said otherwise.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aliyun_captcha_emulator::{Emulator, Faults, Mint};
use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tower_aliyun_captcha::VerifyCode;
use tower_aliyun_captcha::client;
use tower_aliyun_captcha::error::ErrorClass;
use tower_aliyun_captcha::extract::BodyLimits;
use tower_aliyun_captcha::layer::{
    BuildError, CaptchaLayer, CaptchaVerified, DegradedBudget, FailurePolicy, Route,
};
use tower_aliyun_captcha::{Client, Credentials, SceneId};

/// How often the protected handler ran, and how often degraded.
#[derive(Clone, Default)]
struct Runs {
    all: Arc<AtomicUsize>,
    degraded: Arc<AtomicUsize>,
}

impl Runs {
    fn all(&self) -> usize {
        self.all.load(Ordering::SeqCst)
    }
    fn degraded(&self) -> usize {
        self.degraded.load(Ordering::SeqCst)
    }
}

async fn serve(layer: CaptchaLayer<Client>, runs: &Runs) -> SocketAddr {
    let runs = runs.clone();
    let handler = post(move |verified: CaptchaVerified| {
        let runs = runs.clone();
        async move {
            runs.all.fetch_add(1, Ordering::SeqCst);
            let by = match &verified {
                CaptchaVerified::Degraded(degraded) => {
                    runs.degraded.fetch_add(1, Ordering::SeqCst);
                    Some(degraded.class().as_str())
                }
                _ => None,
            };
            axum::Json(json!({"degraded": by.is_some(), "by": by}))
        }
    });
    let app = Router::new().route("/login", handler.layer(layer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

type Http = HyperClient<HttpConnector, Full<Bytes>>;

fn http() -> Http {
    HyperClient::builder(TokioExecutor::new()).build(HttpConnector::new())
}

struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    json: Value,
    took: Duration,
}

async fn login(http: &Http, addr: SocketAddr, param: &str) -> Answer {
    let request = Request::post(format!("http://{addr}/login"))
        .header("x-captcha-verify-param", param)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let started = Instant::now();
    let response = http.request(request).await.expect("the app answers");
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        retry_after,
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        took: started.elapsed(),
    }
}

/// Sends every param at once; returns the answers.
async fn flood(addr: SocketAddr, params: Vec<String>) -> Vec<Answer> {
    let http = http();
    let tasks: Vec<_> = params
        .into_iter()
        .map(|param| {
            let http = http.clone();
            tokio::spawn(async move { login(&http, addr, &param).await })
        })
        .collect();
    let mut answers = Vec::with_capacity(tasks.len());
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

fn failing_params(emulator: &Emulator, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| emulator.mint(Mint::verdict(VerifyCode::F015)).unwrap())
        .collect()
}

fn count(answers: &[Answer], status: u16) -> usize {
    answers
        .iter()
        .filter(|a| a.status.as_u16() == status)
        .count()
}

/// Upstream at once and upstream slow, floods past the one bound (the client's
/// connections): the handler never runs, and nothing waits for long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_past_the_bounds_never_reaches_the_handler() {
    let emulator = emulator().await;
    for (latency_ms, connections, requests) in [
        // The defaults, the upstream answering at once.
        (0, None, 1000),
        // A slow upstream, with a bound of 32 and of 16.
        (300, Some(32), 600),
        (300, Some(16), 600),
    ] {
        emulator.set_faults(Faults::none().with_latency(Duration::from_millis(latency_ms)));
        let mut client = client_builder(emulator.url()).timeout(Duration::from_secs(3));
        if let Some(connections) = connections {
            client = client.max_connections(connections);
        }
        let layer = CaptchaLayer::builder(
            client.build().unwrap(),
            Route::every_path(SceneId::new(LOGIN).unwrap()),
        );
        let runs = Runs::default();
        let addr = serve(layer.build().unwrap(), &runs).await;
        let answers = flood(addr, failing_params(&emulator, requests)).await;
        let what = format!("latency {latency_ms} ms, connections {connections:?}");
        assert_eq!(runs.all(), 0, "{what}: the handler ran");
        assert_eq!(
            count(&answers, 403) + count(&answers, 503),
            requests,
            "{what}: every request refused"
        );
        for answer in answers.iter().filter(|a| a.status == 503) {
            assert_eq!(answer.json["reason"], "too_many_requests", "{what}");
            assert_eq!(answer.retry_after.as_deref(), Some("1"), "{what}");
            // Not queued behind verifications: well within the client's 3 s timeout, even on
            // a loaded machine with a thousand connections opening at once.
            assert!(
                answer.took < Duration::from_millis(2500),
                "{what}: turned away after {:?}",
                answer.took
            );
        }
        if latency_ms > 0 {
            assert!(count(&answers, 503) > 0, "{what}: nothing was turned away");
        }
        assert_eq!(emulator.stats().repeated_params, 0);
    }
}

/// Each gateway error, injected and for real, gets its class's answer under the default
/// (open) policy: only an outage may let anyone in.
#[tokio::test]
async fn every_gateway_error_gets_its_class_answer() {
    let clock = TestClock::default();
    let emulator = emulator_with_clock(clock.clone()).await;
    let runs = Runs::default();
    let layer = CaptchaLayer::new(client_for(&emulator), SceneId::new(LOGIN).unwrap());
    let addr = serve(layer, &runs).await;
    let http = http();
    let mut expected_runs = 0;
    for (code, class) in [
        ("SignatureDoesNotMatch", ErrorClass::Configuration),
        ("InvalidAccessKeyId.NotFound", ErrorClass::Configuration),
        ("InvalidSecurityToken.Expired", ErrorClass::Configuration),
        ("Forbidden.AccountAccessDenied", ErrorClass::Configuration),
        ("Forbidden.RAMUserAccessDenied", ErrorClass::Configuration),
        ("InvalidTimeStamp.Expired", ErrorClass::Configuration),
        ("SignatureNonceUsed", ErrorClass::Configuration),
        ("Some.CodeNobodyKnows", ErrorClass::Configuration),
        ("InvalidParameter", ErrorClass::BadRequest),
        ("MissingParameter", ErrorClass::BadRequest),
        ("Throttling", ErrorClass::Throttled),
        ("Throttling.User", ErrorClass::Throttled),
        ("InternalError", ErrorClass::Outage),
        ("ServiceUnavailable", ErrorClass::Outage),
    ] {
        emulator.set_faults(Faults::api_error(code));
        let param = emulator.mint(Mint::verdict(VerifyCode::F015)).unwrap();
        let answer = login(&http, addr, &param).await;
        let got = (answer.status.as_u16(), answer.retry_after.as_deref());
        match class {
            ErrorClass::Configuration => assert_eq!(got, (503, None), "{code}: {}", answer.json),
            ErrorClass::BadRequest => assert_eq!(got, (403, None), "{code}: {}", answer.json),
            ErrorClass::Throttled => assert_eq!(got, (503, Some("1")), "{code}: {}", answer.json),
            _ => {
                expected_runs += 1;
                assert_eq!(got.0, 200, "{code}: {}", answer.json);
                assert_eq!(answer.json["by"], "outage");
            }
        }
        assert_eq!(runs.all(), expected_runs, "{code}");
    }
    // A requested wait is passed on, rounded up to whole seconds.
    emulator.set_faults(
        Faults::api_error("Throttling.Api").with_retry_after(Duration::from_millis(2500)),
    );
    let answer = login(
        &http,
        addr,
        &emulator.mint(Mint::verdict(VerifyCode::F015)).unwrap(),
    )
    .await;
    assert_eq!(
        (answer.status.as_u16(), answer.retry_after.as_deref()),
        (503, Some("3"))
    );
    emulator.set_faults(Faults::none());

    // The same classes, caused for real: a mistyped secret, an unknown key, a skewed clock.
    for credentials in [
        Credentials::new(KEY_ID, "mistyped-secret"),
        Credentials::new("LTAI5tUnknownKey", KEY_SECRET),
    ] {
        let layer = CaptchaLayer::new(
            client_with(emulator.url(), credentials),
            SceneId::new(LOGIN).unwrap(),
        );
        let runs = Runs::default();
        let addr = serve(layer, &runs).await;
        let answer = login(&http, addr, &emulator.mint(Mint::pass()).unwrap()).await;
        assert_eq!(answer.status, 503, "{}", answer.json);
        assert_eq!(runs.all(), 0);
    }
    clock.advance(Duration::from_secs(20 * 60));
    let param = emulator.mint(Mint::pass()).unwrap();
    let answer = login(&http, addr, &param).await;
    assert_eq!(answer.status, 503, "skewed clock: {}", answer.json);
    assert_eq!(runs.all(), expected_runs);

    // Opting in to fail open on configuration errors puts them under the policy.
    emulator.set_faults(Faults::api_error("SignatureDoesNotMatch"));
    let layer = CaptchaLayer::builder(
        client_for(&emulator),
        Route::every_path(SceneId::new(LOGIN).unwrap()),
    )
    .fail_open_on_configuration_errors(true)
    .build()
    .unwrap();
    let runs = Runs::default();
    let addr = serve(layer, &runs).await;
    let answer = login(
        &http,
        addr,
        &emulator.mint(Mint::verdict(VerifyCode::F015)).unwrap(),
    )
    .await;
    assert_eq!(
        (answer.status.as_u16(), &answer.json["by"]),
        (200, &json!("configuration"))
    );
}

/// During an outage, a flood of failing captchas gets in no faster than the degraded budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_flood_gets_in_no_faster_than_the_budget() {
    let emulator = emulator().await;
    emulator.set_faults(Faults::mode(
        aliyun_captcha_emulator::FaultMode::InternalError,
    ));
    for (budget, burst, rate) in [
        (DegradedBudget::per_second(5, 10), 10.0, 5.0),
        // The default, with no genuine passes seen yet: its floor (1/s) and burst (10).
        (DegradedBudget::adaptive(), 10.0, 1.0),
    ] {
        let layer = CaptchaLayer::builder(
            client_for(&emulator),
            Route::every_path(SceneId::new(LOGIN).unwrap()),
        )
        .degraded_budget(budget)
        .build()
        .unwrap();
        let runs = Runs::default();
        let addr = serve(layer, &runs).await;
        let started = Instant::now();
        let mut answers = Vec::new();
        // 1,000 failing captchas in waves over about two seconds.
        for _ in 0..10 {
            answers.extend(flood(addr, failing_params(&emulator, 100)).await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let allowed = (burst + rate * elapsed).ceil() as usize + 1;
        assert!(
            runs.degraded() <= allowed,
            "{budget:?}: {} of 1,000 got in over {elapsed:.1} s, budget {allowed}",
            runs.degraded()
        );
        assert!(runs.degraded() >= 10, "{budget:?}: the burst let nobody in");
        assert_eq!(runs.all(), runs.degraded());
        assert_eq!(count(&answers, 200) + count(&answers, 503), 1000);
        for answer in answers.iter().filter(|a| a.status == 503) {
            assert_eq!(answer.retry_after.as_deref(), Some("1"));
        }
    }
    // Unlimited lets everyone in, as the API document has it: an explicit choice.
    let layer = CaptchaLayer::builder(
        client_for(&emulator),
        Route::every_path(SceneId::new(LOGIN).unwrap()),
    )
    .degraded_budget(DegradedBudget::unlimited())
    .build()
    .unwrap();
    let runs = Runs::default();
    let addr = serve(layer, &runs).await;
    flood(addr, failing_params(&emulator, 200)).await;
    assert_eq!(runs.degraded(), 200);
}

/// Verifications far past the connection cap leave no task behind once they are done: the
/// runtime's alive tasks return to their baseline.
#[test]
fn the_connection_cap_leaves_no_tasks_behind() {
    // The emulator on a runtime of its own, so that only the client's tasks are counted.
    let emulator_runtime = tokio::runtime::Runtime::new().unwrap();
    let emulator = emulator_runtime.block_on(emulator());
    emulator.set_faults(Faults::none().with_latency(Duration::from_millis(5)));
    let params: Vec<String> = (0..6400)
        .map(|_| emulator.mint(Mint::pass()).unwrap())
        .collect();
    let url = emulator.url();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let client = client_builder(url)
            .max_connections(4)
            .connection_wait(Duration::from_secs(2))
            .build()
            .unwrap();
        let metrics = tokio::runtime::Handle::current().metrics();
        // Warm the pool to its cap, then take the baseline.
        let warm: Vec<_> = params[..8]
            .iter()
            .map(|p| {
                let client = client.clone();
                let p = p.clone();
                tokio::spawn(async move { client.verify(request(&p, None)).await })
            })
            .collect();
        for task in warm {
            task.await.unwrap().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let baseline = metrics.num_alive_tasks();

        let params = Arc::new(params[8..].to_vec());
        let next = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..64)
            .map(|_| {
                let (client, params, next) =
                    (client.clone(), Arc::clone(&params), Arc::clone(&next));
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(param) = params.get(i) else { break };
                        let _ = client.verify(request(param, None)).await;
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let alive = metrics.num_alive_tasks();
            if alive <= baseline {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{alive} tasks alive 5 s after the flood, baseline {baseline}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    drop(emulator);
}

/// Zero bounds, deadlines and budgets are refused when building: they would fail every
/// verification, which a fail-open layer would turn into letting everyone in.
#[test]
fn zero_settings_are_refused() {
    let base = || Client::builder().credentials(Credentials::new("id", "secret"));
    for (builder, setting) in [
        (base().timeout(Duration::ZERO), "timeout"),
        (base().connect_timeout(Duration::ZERO), "connect_timeout"),
        (base().connection_wait(Duration::ZERO), "connection_wait"),
        (base().max_connections(0), "max_connections"),
        (base().max_response_bytes(0), "max_response_bytes"),
    ] {
        match builder.build() {
            Err(client::BuildError::Zero(name)) => assert_eq!(name, setting),
            other => panic!("{setting}: {other:?}"),
        }
    }
    let scene = || SceneId::new(LOGIN).unwrap();
    let layer = || CaptchaLayer::builder(base().build().unwrap(), Route::every_path(scene()));
    let zero_body = BodyLimits {
        max_bytes: 0,
        read_timeout: Duration::from_secs(1),
    };
    let no_time = BodyLimits {
        max_bytes: 1024,
        read_timeout: Duration::ZERO,
    };
    for (result, setting) in [
        (
            layer().body_limits(zero_body).build(),
            "body_limits.max_bytes",
        ),
        (
            layer().body_limits(no_time).build(),
            "body_limits.read_timeout",
        ),
        (
            layer()
                .degraded_budget(DegradedBudget::per_second(0, 10))
                .build(),
            "degraded_budget",
        ),
        (
            layer()
                .degraded_budget(DegradedBudget::per_second(10, 0))
                .build(),
            "degraded_budget",
        ),
    ] {
        assert_eq!(result.map(drop).unwrap_err(), BuildError::Zero(setting));
    }
}

/// A custom verifier that never answers: the layer's deadline (the verifier's say) counts it
/// as an outage.
#[tokio::test]
async fn the_layer_deadline_bounds_a_verifier_without_one() {
    struct Never;
    impl tower_aliyun_captcha::Verify for Never {
        type Future = std::future::Pending<
            Result<tower_aliyun_captcha::Verification, tower_aliyun_captcha::Error>,
        >;
        fn verify(&self, _: tower_aliyun_captcha::VerifyRequest) -> Self::Future {
            std::future::pending()
        }
        fn deadline(&self) -> Duration {
            Duration::from_millis(200)
        }
    }
    let runs = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&runs);
    let layer = CaptchaLayer::builder(Never, Route::every_path(SceneId::new(LOGIN).unwrap()))
        .failure_policy(FailurePolicy::Closed)
        .build()
        .unwrap();
    let app = Router::new().route(
        "/login",
        post(move || {
            seen.fetch_add(1, Ordering::SeqCst);
            async { "in" }
        })
        .layer(layer),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let answer = login(&http(), addr, "eyJ4IjoxfQ==").await;
    assert_eq!(answer.status, 503);
    assert!(
        answer.took < Duration::from_millis(1000),
        "{:?}",
        answer.took
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

/// Credentials that cannot be had (STS down, say) are a configuration error, not an outage:
/// even a fail-open layer with an unlimited degraded budget lets nobody in on them.
#[tokio::test]
async fn a_credentials_source_that_is_down_never_opens_the_door() {
    use tower_aliyun_captcha::credentials::RamRoleArn;
    let emulator = emulator().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let role = RamRoleArn::new(
        Credentials::new(KEY_ID, KEY_SECRET),
        "acs:ram::1:role/captcha",
    )
    .sts_endpoint(format!("http://{closed}"));
    let client = Client::builder()
        .credentials_provider(role)
        .endpoint(emulator.url())
        .allow_http(true)
        .build()
        .unwrap();
    let layer = CaptchaLayer::builder(client, Route::every_path(SceneId::new(LOGIN).unwrap()))
        .failure_policy(FailurePolicy::Open)
        .degraded_budget(DegradedBudget::unlimited())
        .build()
        .unwrap();
    let runs = Runs::default();
    let addr = serve(layer, &runs).await;
    let answers = flood(addr, failing_params(&emulator, 50)).await;
    assert_eq!(count(&answers, 503), 50);
    assert_eq!(runs.all(), 0);
    assert_eq!(
        emulator.stats().requests,
        0,
        "nothing unsigned reached the service"
    );
}

/// A flood that makes the client open its connections all at once: on a cold pool, and on a
/// pool the attacker emptied by hanging up mid-verification. The upstream is healthy but slow,
/// so every verification needs a connection of its own; whatever fails in that storm is our
/// own doing, never evidence of an outage, and no bot gets in under the open policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_storm_is_overload_not_an_outage() {
    let emulator = emulator().await;
    for latency in [Duration::from_millis(1000), Duration::from_millis(2500)] {
        emulator.set_faults(Faults::none().with_latency(latency));
        // The login example's setup: the defaults, open policy, adaptive budget.
        let layer = CaptchaLayer::new(client_for(&emulator), SceneId::new(LOGIN).unwrap());
        let runs = Runs::default();
        let addr = serve(layer, &runs).await;

        // Cold pool.
        let answers = flood(addr, failing_params(&emulator, 1500)).await;
        assert_eq!(runs.all(), 0, "{latency:?}, cold pool: bots got in");
        assert_eq!(count(&answers, 403) + count(&answers, 503), 1500);

        // The attacker empties the pool: 300 verifications hung up halfway.
        let http = http();
        let hung_up: Vec<_> = failing_params(&emulator, 300)
            .into_iter()
            .map(|param| {
                let http = http.clone();
                tokio::spawn(async move { login(&http, addr, &param).await })
            })
            .collect();
        tokio::time::sleep(latency / 2).await;
        for task in &hung_up {
            task.abort();
        }
        drop(http);
        let answers = flood(addr, failing_params(&emulator, 1500)).await;
        assert_eq!(runs.all(), 0, "{latency:?}, emptied pool: bots got in");
        assert_eq!(count(&answers, 403) + count(&answers, 503), 1500);
    }
    assert_eq!(emulator.stats().repeated_params, 0);
}

/// A real outage still follows the policy when traffic is quiet: a refused connect, a black
/// hole and a service that was killed let a person through degraded, within the budget.
#[tokio::test]
async fn a_real_outage_at_a_quiet_moment_follows_the_policy() {
    // Refused: a port nothing listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    // A black hole: a listener whose accept queue is full and never drained, so connects
    // time out (the backlog of 1 is filled first).
    let hole = tokio::net::TcpSocket::new_v4().unwrap();
    hole.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let hole = hole.listen(1).unwrap();
    let hole_addr = hole.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        if let Ok(Ok(stream)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(hole_addr),
        )
        .await
        {
            fillers.push(stream);
        }
    }
    // Killed: an emulator that answered once, then stopped.
    let killed = emulator().await;
    let killed_url = killed.url();
    killed.shutdown().await;

    for (what, url) in [
        ("refused", format!("http://{closed}")),
        ("black hole", format!("http://{hole_addr}")),
        ("killed", killed_url),
    ] {
        let client = client_builder(url)
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let layer = CaptchaLayer::new(client, SceneId::new(LOGIN).unwrap());
        let runs = Runs::default();
        let addr = serve(layer, &runs).await;
        let http = http();
        // A few people, one after another.
        for _ in 0..3 {
            let answer = login(&http, addr, "eyJwZXJzb24iOnRydWV9").await;
            assert_eq!(answer.status, 200, "{what}: {:?}", answer.json);
            assert_eq!(answer.json["degraded"], true, "{what}");
            assert_eq!(answer.json["by"], "outage", "{what}");
        }
        assert_eq!(runs.degraded(), 3, "{what}");
    }
    drop(hole);
}

/// The adaptive budget follows the pass rate before an outage: a steady 20 genuine passes a
/// second, then an outage, lets about 20 a second through (not the floor's 1 a second); and
/// two routes verified with one client share that one budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adaptive_budget_learns_the_pass_rate_and_routes_share_it() {
    let emulator = emulator().await;
    let client = client_for(&emulator);
    let runs = Runs::default();
    let addr = serve(
        CaptchaLayer::new(client.clone(), SceneId::new(LOGIN).unwrap()),
        &runs,
    )
    .await;
    let second_route = serve(
        CaptchaLayer::new(client.clone(), SceneId::new(LOGIN).unwrap()),
        &runs,
    )
    .await;
    let http = http();
    // Twelve seconds of 20 people a second, half on each route.
    let started = Instant::now();
    for tick in 0..240u32 {
        let at = started + Duration::from_millis(u64::from(tick) * 50);
        tokio::time::sleep_until(at.into()).await;
        let param = emulator.mint(Mint::pass()).unwrap();
        let route = if tick % 2 == 0 { addr } else { second_route };
        let answer = login(&http, route, &param).await;
        assert_eq!(answer.status, 200, "{:?}", answer.json);
    }
    assert_eq!(runs.degraded(), 0);

    // An outage, and bots on both routes: 3 seconds of 200 a second on each.
    emulator.set_faults(Faults::mode(
        aliyun_captcha_emulator::FaultMode::InternalError,
    ));
    let outage = Instant::now();
    for wave in 0..15u32 {
        tokio::time::sleep_until((outage + Duration::from_millis(u64::from(wave) * 200)).into())
            .await;
        let (a, b) = tokio::join!(
            flood(addr, failing_params(&emulator, 40)),
            flood(second_route, failing_params(&emulator, 40))
        );
        assert_eq!(
            count(&a, 200) + count(&a, 503) + count(&b, 200) + count(&b, 503),
            80
        );
    }
    let elapsed = outage.elapsed().as_secs_f64();
    let degraded = runs.degraded();
    // One budget for both routes: a second's worth (20) at once, then about 20 a second.
    let most = (20.0 + 20.0 * elapsed).ceil() as usize + 2;
    assert!(
        degraded <= most,
        "{degraded} got in over {elapsed:.1} s: more than one shared budget of {most}"
    );
    // Learned, not the floor (10 at once, then 1 a second).
    let floor = (10.0 + 1.0 * elapsed).ceil() as usize;
    assert!(
        degraded > 2 * floor,
        "{degraded} got in over {elapsed:.1} s: the budget did not learn the pass rate"
    );
}

/// A stand-in for the service that answers every verification at once with a failing
/// verdict, except those whose param contains `hang`, which it never answers.
async fn selective_upstream() -> String {
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service =
                    service_fn(|request: http::Request<hyper::body::Incoming>| async move {
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        if body.windows(4).any(|w| w == b"hang") {
                            std::future::pending::<()>().await;
                        }
                        let verdict = json!({"RequestId": "R", "Success": true, "Code": "Success",
                        "Result": {"VerifyResult": false, "VerifyCode": "F015"}});
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from(verdict.to_string()),
                        )))
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    url
}

/// A verification that runs out of time while the service answers others was held up on our
/// side (a flood, a starved runtime: an attacker can cause both), so it is overload (503),
/// never a degraded pass; a timeout with nobody answered is an outage, and follows the policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_while_the_service_answers_others_is_overload_not_an_outage() {
    let upstream = selective_upstream().await;
    let app = |url: String| {
        let client = client_builder(url)
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        CaptchaLayer::new(client, SceneId::new(LOGIN).unwrap())
    };

    let runs = Runs::default();
    let addr = serve(app(upstream.clone()), &runs).await;
    let held = tokio::spawn(async move { login(&http(), addr, "eyJoYW5nIjoxfQ-hang").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let answered = login(&http(), addr, "eyJib3QiOjF9").await;
    assert_eq!(answered.status, 403);
    let held = held.await.unwrap();
    assert_eq!(held.status, 503, "{}", held.json);
    assert_eq!(held.json["reason"], "too_many_requests", "{}", held.json);
    assert_eq!(runs.all(), 0, "the held request got in");

    // Nobody answered since it was sent: an outage, under the open policy a degraded pass.
    let runs = Runs::default();
    let addr = serve(app(upstream), &runs).await;
    let alone = login(&http(), addr, "eyJoYW5nIjoxfQ-hang").await;
    assert_eq!(alone.status, 200, "{}", alone.json);
    assert_eq!(runs.degraded(), 1);
}

//! Metrics, over real sockets: every documented metric with its labels, recorded by
//! `metrics-util`'s debugging recorder (local to the test's one thread), and the outcome hook.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aliyun_captcha_emulator::{Faults, Mint};
use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tower_aliyun_captcha::VerifyCode;
use tower_aliyun_captcha::layer::{Outcome, Route};
use tower_aliyun_captcha::{CaptchaLayer, CaptchaVerified, Client, SceneId};

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn serve(layer: CaptchaLayer<Client>) -> SocketAddr {
    let handler = post(|_verified: CaptchaVerified| async {
        tracing::info!("handler ran");
        "in"
    });
    let app = Router::new().route("/login", handler.layer(layer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn login(addr: SocketAddr, param: Option<&str>) -> u16 {
    let http: HyperClient<HttpConnector, Full<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut request = Request::post(format!("http://{addr}/login"));
    if let Some(param) = param {
        request = request.header("x-captcha-verify-param", param);
    }
    let response = http
        .request(request.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    status
}

/// Counters, gauges and histograms by name and sorted labels, summed over snapshots.
#[derive(Default, Debug)]
struct Metrics {
    counters: BTreeMap<(String, String), u64>,
    gauges: BTreeMap<(String, String), f64>,
    histograms: BTreeMap<(String, String), usize>,
}

impl Metrics {
    fn add(&mut self, snapshotter: &Snapshotter) {
        for (key, _unit, _description, value) in snapshotter.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let id = (key.name().to_owned(), labels.join(","));
            match value {
                DebugValue::Counter(n) => *self.counters.entry(id).or_default() += n,
                // Each snapshot resets what it reads: a gauge reads as its change since.
                DebugValue::Gauge(v) => *self.gauges.entry(id).or_default() += v.into_inner(),
                DebugValue::Histogram(samples) => {
                    *self.histograms.entry(id).or_default() += samples.len();
                }
            }
        }
    }
}

#[test]
fn every_documented_metric_is_recorded_with_its_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let hooked: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&hooked);
    let mut metrics = Metrics::default();
    metrics::with_local_recorder(&recorder, || {
        current_thread().block_on(async {
            let emulator = emulator().await;
            let client = client_builder(emulator.url())
                .max_connections(1)
                .connection_wait(Duration::from_millis(50))
                .build()
                .unwrap();
            let layer =
                CaptchaLayer::builder(client, Route::every_path(SceneId::new(LOGIN).unwrap()))
                    .on_outcome(move |outcome: &Outcome<'_>| {
                        seen.lock()
                            .unwrap()
                            .push(format!("{} {}", outcome.kind(), outcome.code()));
                    })
                    .build()
                    .unwrap();
            let addr = serve(layer).await;

            assert_eq!(
                login(addr, Some(&emulator.mint(Mint::pass()).unwrap())).await,
                200
            );
            assert_eq!(
                login(
                    addr,
                    Some(&emulator.mint(Mint::verdict(VerifyCode::F015)).unwrap())
                )
                .await,
                403
            );
            assert_eq!(login(addr, None).await, 403);

            // One verification in flight, and one turned away.
            emulator.set_faults(Faults::none().with_latency(Duration::from_millis(400)));
            let slow = emulator.mint(Mint::pass()).unwrap();
            let in_flight = tokio::spawn(async move { login(addr, Some(&slow)).await });
            tokio::time::sleep(Duration::from_millis(150)).await;
            metrics.add(&snapshotter);
            assert_eq!(
                metrics.gauges.get(&(
                    "captcha_verifications_in_flight".into(),
                    format!("scene={LOGIN}")
                )),
                Some(&1.0),
                "{metrics:?}"
            );
            assert_eq!(
                login(addr, Some(&emulator.mint(Mint::pass()).unwrap())).await,
                503
            );
            assert_eq!(in_flight.await.unwrap(), 200);

            emulator.set_faults(Faults::mode(
                aliyun_captcha_emulator::FaultMode::InternalError,
            ));
            assert_eq!(
                login(addr, Some(&emulator.mint(Mint::pass()).unwrap())).await,
                200
            );
            emulator.set_faults(Faults::api_error("SignatureDoesNotMatch"));
            assert_eq!(
                login(addr, Some(&emulator.mint(Mint::pass()).unwrap())).await,
                503
            );
        });
    });
    metrics.add(&snapshotter);

    let scene = format!("scene={LOGIN}");
    let requests = |outcome: &str, code: &str| {
        let labels = format!("code={code},outcome={outcome},{scene}");
        metrics
            .counters
            .get(&("captcha_requests_total".into(), labels))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(requests("pass", "T001"), 2, "{metrics:#?}");
    assert_eq!(requests("refused", "F015"), 1, "{metrics:#?}");
    assert_eq!(requests("local_refusal", "F002"), 1, "{metrics:#?}");
    assert_eq!(requests("overloaded", "overloaded"), 1, "{metrics:#?}");
    assert_eq!(requests("degraded", "api"), 1, "{metrics:#?}");
    assert_eq!(requests("unavailable", "api"), 1, "{metrics:#?}");
    let errors = |class: &str, code: &str| {
        let labels = format!("class={class},code={code},{scene}");
        metrics
            .counters
            .get(&("captcha_service_errors_total".into(), labels))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(errors("outage", "InternalError"), 1, "{metrics:#?}");
    assert_eq!(
        errors("configuration", "SignatureDoesNotMatch"),
        1,
        "{metrics:#?}"
    );
    let durations: usize = metrics
        .histograms
        .iter()
        .filter(|((name, _), _)| name == "captcha_verification_duration_seconds")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        durations, 5,
        "one per verification that asked the service: {metrics:#?}"
    );
    assert_eq!(
        metrics
            .gauges
            .get(&("captcha_verifications_in_flight".into(), scene.clone())),
        Some(&0.0)
    );
    // The hook saw the same outcomes.
    let hooked = hooked.lock().unwrap();
    assert_eq!(hooked.len(), 7, "{hooked:?}");
    assert!(
        hooked.contains(&"local_refusal F002".to_owned()),
        "{hooked:?}"
    );
}

//! Shared test fixtures: an emulator with known keys and scenes, and raw signed requests.
#![allow(dead_code)]

#[path = "../../../tests/common/vectors.rs"]
pub mod vectors;

use std::future::Future as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use aliyun_captcha_emulator::{Emulator, TestMode};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tower_aliyun_captcha::client::ClientBuilder;
use tower_aliyun_captcha::sign::{self, CanonicalRequest};
use tower_aliyun_captcha::{CaptchaVerifyParam, Client, Credentials, SceneId, VerifyRequest};

pub const KEY_ID: &str = "LTAI5tTestKeyId";
pub const KEY_SECRET: &str = "TestSecret-do-not-log-0123456789";
pub const STS_ID: &str = "STS.TestTemporaryKeyId";
pub const STS_SECRET: &str = "StsSecret-do-not-log-abcdef";
pub const STS_TOKEN: &str = "CAIStsToken+do/not=log";
pub const LOGIN: &str = "login-scene";
pub const SIGNUP: &str = "signup-scene";

/// A clock the test can move: seconds added to the system time.
#[derive(Clone, Default)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_secs() as i64, Ordering::SeqCst);
    }
    pub fn now(&self) -> SystemTime {
        let offset = self.0.load(Ordering::SeqCst);
        if offset >= 0 {
            SystemTime::now() + Duration::from_secs(offset as u64)
        } else {
            SystemTime::now() - Duration::from_secs((-offset) as u64)
        }
    }
}

pub async fn emulator_with_clock(clock: TestClock) -> Emulator {
    Emulator::builder()
        .access_key(KEY_ID, KEY_SECRET)
        .sts_key(STS_ID, STS_SECRET, STS_TOKEN)
        .scene(LOGIN)
        .scene(SIGNUP)
        .test_mode_scene("test-pass", TestMode::Pass)
        .test_mode_scene("test-fail", TestMode::Fail)
        .clock(move || clock.now())
        .start("127.0.0.1:0")
        .await
        .expect("the emulator starts")
}

pub async fn emulator() -> Emulator {
    emulator_with_clock(TestClock::default()).await
}

/// A client builder for `url` (plain HTTP allowed) with the test AccessKey.
pub fn client_builder(url: String) -> ClientBuilder {
    Client::builder()
        .credentials(Credentials::new(KEY_ID, KEY_SECRET))
        .endpoint(url)
        .allow_http(true)
}

pub fn client_for(emulator: &Emulator) -> Client {
    client_builder(emulator.url())
        .build()
        .expect("the client builds")
}

pub fn request(param: &str, scene: Option<&str>) -> VerifyRequest {
    let request = VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap());
    match scene {
        Some(scene) => request.with_scene(SceneId::new(scene).unwrap()),
        None => request,
    }
}

pub fn client_with(url: String, credentials: Credentials) -> Client {
    client_builder(url)
        .credentials(credentials)
        .build()
        .unwrap()
}

/// A request to the emulator, signed like our client signs, that a test can spoil.
pub struct RawRequest {
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub key_id: String,
    pub secret: String,
    /// Header names to leave out of SignedHeaders (but still send).
    pub unsigned: Vec<String>,
    /// Headers to add after signing.
    pub after_signing: Vec<(String, String)>,
}

impl RawRequest {
    pub fn new(emulator: &Emulator, param: &str, scene: Option<&str>) -> Self {
        let mut fields = vec![("CaptchaVerifyParam", param)];
        if let Some(scene) = scene {
            fields.push(("SceneId", scene));
        }
        let body = sign::form_encode(&fields);
        let date = time::OffsetDateTime::now_utc()
            .format(&time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .unwrap();
        let headers = vec![
            ("host".into(), emulator.addr().to_string()),
            ("x-acs-action".into(), "VerifyIntelligentCaptcha".into()),
            ("x-acs-version".into(), "2023-03-05".into()),
            ("x-acs-date".into(), date),
            (
                "x-acs-signature-nonce".into(),
                uuid::Uuid::new_v4().simple().to_string(),
            ),
            (
                "x-acs-content-sha256".into(),
                sign::hash_payload(body.as_bytes()),
            ),
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
        ];
        Self {
            headers,
            body,
            key_id: KEY_ID.into(),
            secret: KEY_SECRET.into(),
            unsigned: Vec::new(),
            after_signing: Vec::new(),
        }
    }

    /// Dates the request at `at` instead of now.
    pub fn dated(self, at: SystemTime) -> Self {
        let date = time::OffsetDateTime::from(at)
            .format(&time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .unwrap();
        self.set("x-acs-date", &date)
    }

    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn remove(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| n != name);
        self
    }

    pub fn authorization(&self) -> String {
        let signed: Vec<(&str, &str)> = self
            .headers
            .iter()
            .filter(|(n, _)| !self.unsigned.contains(n))
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let hash = sign::hash_payload(self.body.as_bytes());
        let canonical = CanonicalRequest::new("POST", "/", &[], &signed, &hash);
        sign::authorization(
            &self.key_id,
            canonical.signed_headers(),
            &canonical.signature(self.secret.as_bytes()),
        )
    }

    /// Sends it with the right Authorization; returns status, headers and JSON.
    pub async fn send_full(self, emulator: &Emulator) -> (u16, http::HeaderMap, Value) {
        let request = self.build(emulator, None);
        send_full(request).await
    }

    fn build(
        self,
        emulator: &Emulator,
        authorization: Option<String>,
    ) -> http::Request<Full<Bytes>> {
        let authorization = authorization.unwrap_or_else(|| self.authorization());
        let mut builder = http::Request::post(format!("{}/", emulator.url()));
        for (name, value) in self.headers.iter().chain(&self.after_signing) {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if !authorization.is_empty() {
            builder = builder.header("authorization", authorization);
        }
        builder.body(Full::new(Bytes::from(self.body))).unwrap()
    }

    /// Sends it with the given Authorization (or the right one) and returns status and JSON.
    pub async fn send_with(
        self,
        emulator: &Emulator,
        authorization: Option<String>,
    ) -> (u16, Value) {
        send(self.build(emulator, authorization)).await
    }

    pub async fn send(self, emulator: &Emulator) -> (u16, Value) {
        self.send_with(emulator, None).await
    }
}

pub async fn send(request: http::Request<Full<Bytes>>) -> (u16, Value) {
    let (status, _, body) = send_full(request).await;
    (status, body)
}

pub async fn send_full(request: http::Request<Full<Bytes>>) -> (u16, http::HeaderMap, Value) {
    let client: HyperClient<HttpConnector, Full<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build(HttpConnector::new());
    let response = client.request(request).await.expect("the emulator answers");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status.as_u16(),
        parts.headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

pub async fn post_json(url: String, json: Value) -> (u16, Value) {
    let request = http::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(json.to_string())))
        .unwrap();
    send(request).await
}

pub async fn get_json(url: String) -> (u16, Value) {
    let request = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(request).await
}

/// A request body sent in chunks of `chunk` bytes, `interval` apart, without a Content-Length.
pub struct Trickle {
    chunks: std::collections::VecDeque<Bytes>,
    interval: Duration,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl Trickle {
    pub fn new(data: Vec<u8>, chunk: usize, interval: Duration) -> Self {
        let data = Bytes::from(data);
        let chunks = (0..data.len())
            .step_by(chunk)
            .map(|start| data.slice(start..(start + chunk).min(data.len())))
            .collect();
        Self {
            chunks,
            interval,
            sleep: None,
        }
    }
}

impl http_body::Body for Trickle {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if !self.interval.is_zero() {
            let interval = self.interval;
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(interval)));
            std::task::ready!(sleep.as_mut().poll(cx));
            self.sleep = None;
        }
        std::task::Poll::Ready(
            self.chunks
                .pop_front()
                .map(|c| Ok(http_body::Frame::data(c))),
        )
    }
}

/// Collects what tracing writes, for tests that read the logs.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// Installs the process-wide subscriber (once per test binary) at debug, writing here.
    pub fn install() -> Self {
        let captured = Self::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        captured
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

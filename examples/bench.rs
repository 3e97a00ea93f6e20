//! End-to-end benchmarks over loopback sockets, printing one JSON object per line:
//! `{"scenario", "requests", "concurrency", "seconds", "per_second", "p50_us", "p99_us",
//!   "upstream_connections", "rss_kib", …}`.
//!
//! ```text
//! cargo run --release --example bench -- [--scenario sign|client|layer|layer-json|soak]
//!     [--requests N] [--concurrency C] [--endpoint URL]
//! ```
//!
//! - `sign`: N signings (no I/O), timed in this run; `benches/sign.rs` is the criterion twin.
//! - `client`: N verifications through our client at concurrency C.
//! - `layer`: an axum app with a protected route and an identical unprotected one, both driven
//!   at concurrency C by a hyper client; one line per route, the protected one with the ratio.
//! - `layer-json`: the same with the param in a 1 KiB JSON body.
//! - `soak`: N protected requests (default 1,000,000) at concurrency C (default 256); after a
//!   warm-up, lines at the start, middle and end with RSS and open file descriptors, then a
//!   summary with errors by kind.
//!
//! By default the emulator runs in this process. `--endpoint URL` uses an emulator started
//! apart (`cargo run --release --example emulator`), minting params over its HTTP API, with
//! credentials from `ALIBABA_CLOUD_*`: then RSS measures only the app, the layer and the client.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tower_aliyun_captcha::emulator::{Emulator, Mint};
use tower_aliyun_captcha::extract::{Header, JsonField};
use tower_aliyun_captcha::layer::CaptchaLayer;
use tower_aliyun_captcha::{CaptchaVerifyParam, Client, Credentials, SceneId, VerifyRequest};

const SCENE: &str = "bench-scene";

struct Args {
    scenario: String,
    requests: Option<usize>,
    concurrency: Option<usize>,
    endpoint: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        scenario: "client".into(),
        requests: None,
        concurrency: None,
        endpoint: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--scenario" => args.scenario = value()?,
            "--requests" => {
                args.requests = Some(value()?.parse().map_err(|e| format!("--requests: {e}"))?)
            }
            "--concurrency" => {
                args.concurrency = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--concurrency: {e}"))?,
                )
            }
            "--endpoint" => args.endpoint = Some(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

type Http = HttpClient<HttpConnector, Full<Bytes>>;

fn http_client() -> Http {
    HttpClient::builder(TokioExecutor::new()).build(HttpConnector::new())
}

async fn get_json(http: &Http, request: Request<Full<Bytes>>) -> Result<Value, String> {
    let response = http.request(request).await.map_err(|e| e.to_string())?;
    read_json(response).await
}

async fn read_json(response: Response<Incoming>) -> Result<Value, String> {
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&body.to_bytes()).map_err(|e| e.to_string())
}

/// The param in an answer of `POST /emulator/params`.
async fn minted(response: Response<Incoming>) -> Result<String, String> {
    read_json(response).await?["captchaVerifyParam"]
        .as_str()
        .map(str::to_owned)
        .ok_or("no param minted".into())
}

/// One keep-alive HTTP/1 connection per worker to one peer. A pooled client may open a spare
/// connection while a returned one is still on its way back to the pool; with lanes the load
/// generator holds exactly one socket per worker, so the soak's descriptor ceiling measures
/// the code under test rather than the harness.
struct Lanes {
    authority: String,
    senders: Vec<Mutex<Option<SendRequest<Full<Bytes>>>>>,
}

impl Lanes {
    fn new(authority: impl Into<String>, workers: usize) -> Self {
        Self {
            authority: authority.into(),
            senders: (0..workers).map(|_| Mutex::new(None)).collect(),
        }
    }

    async fn send(
        &self,
        worker: usize,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, String> {
        let kept = self.senders[worker]
            .lock()
            .expect("a worker never panics holding its lane")
            .take();
        let mut sender = match kept {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.connect().await?,
        };
        sender.ready().await.map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        // The worker reads this body before its next request, so the lane is free by then.
        *self.senders[worker]
            .lock()
            .expect("a worker never panics holding its lane") = Some(sender);
        Ok(response)
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        Ok(sender)
    }
}

/// Where verifications go: an emulator in this process, or one at `--endpoint`.
enum Upstream {
    InProcess(Emulator, Credentials),
    External {
        url: String,
        credentials: Credentials,
        http: Box<Http>,
    },
}

impl Upstream {
    async fn start(endpoint: Option<String>) -> Result<Self, String> {
        match endpoint {
            Some(url) => Ok(Self::External {
                url: url.trim_end_matches('/').to_owned(),
                credentials: Credentials::from_env().map_err(|e| e.to_string())?,
                http: Box::new(http_client()),
            }),
            None => {
                let credentials = Credentials::new("LTAIbench", "bench-secret");
                let emulator = Emulator::builder()
                    .credentials(&credentials)
                    .scene(SCENE)
                    .start("127.0.0.1:0")
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Self::InProcess(emulator, credentials))
            }
        }
    }

    fn client(&self, max_connections: usize) -> Client {
        let (url, credentials) = match self {
            Self::InProcess(emulator, credentials) => (emulator.url(), credentials),
            Self::External {
                url, credentials, ..
            } => (url.clone(), credentials),
        };
        Client::builder()
            .credentials(credentials.clone())
            .endpoint(url)
            .allow_http(true)
            .max_connections(max_connections)
            .build()
            .expect("the client builds")
    }

    async fn mint(&self) -> Result<String, String> {
        match self {
            Self::InProcess(..) => self.mint_in_process(),
            Self::External { http, .. } => {
                let response = http
                    .request(self.mint_request())
                    .await
                    .map_err(|e| e.to_string())?;
                minted(response).await
            }
        }
    }

    /// Mints over `worker`'s own connection of `lanes` (external emulator only).
    async fn mint_on(&self, lanes: &Lanes, worker: usize) -> Result<String, String> {
        match self {
            Self::InProcess(..) => self.mint_in_process(),
            Self::External { .. } => minted(lanes.send(worker, self.mint_request()).await?).await,
        }
    }

    fn mint_in_process(&self) -> Result<String, String> {
        match self {
            Self::InProcess(emulator, _) => emulator
                .mint(Mint::pass().in_scene(SCENE))
                .map_err(|e| e.to_string()),
            Self::External { .. } => Err("not an in-process emulator".into()),
        }
    }

    fn mint_request(&self) -> Request<Full<Bytes>> {
        let url = match self {
            Self::InProcess(emulator, _) => emulator.url(),
            Self::External { url, .. } => url.clone(),
        };
        Request::post(format!("{url}/emulator/params"))
            .body(Full::new(Bytes::from(json!({"scene": SCENE}).to_string())))
            .expect("a valid request")
    }

    /// The emulator's port, to tell its sockets apart from the app's.
    fn port(&self) -> u16 {
        self.authority()
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or(0)
    }

    /// The emulator's address, for connections of our own.
    fn authority(&self) -> String {
        let url = match self {
            Self::InProcess(emulator, _) => emulator.url(),
            Self::External { url, .. } => url.clone(),
        };
        url.trim_start_matches("http://").to_owned()
    }

    async fn connections(&self) -> u64 {
        match self {
            Self::InProcess(emulator, _) => emulator.stats().connections,
            Self::External { url, http, .. } => {
                let request = Request::get(format!("{url}/emulator/stats"))
                    .body(Full::default())
                    .expect("valid");
                get_json(http, request)
                    .await
                    .ok()
                    .and_then(|s| s["connections"].as_u64())
                    .unwrap_or(0)
            }
        }
    }
}

/// Resident set size of this process, from /proc (0 where unavailable).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time this process has used (user + system), in microseconds, from /proc.
fn cpu_us() -> u64 {
    let ticks_per_second = 100; // USER_HZ, fixed at 100 on Linux
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks: u64 =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some(ticks * 1_000_000 / ticks_per_second)
        })
        .unwrap_or(0)
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// This process's open descriptors, sockets sorted by the peer they belong to: `app` (either end
/// of a connection to the app under test, and its listener), `emulator` (connections to or from
/// the emulator's port), and `other` (everything else: files, pipes, the runtime's own).
fn descriptor_census(app_port: u16, emulator_port: u16) -> Value {
    // inode -> (local port, remote port), from the kernel's socket tables.
    let mut ports = std::collections::HashMap::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for row in text.lines().skip(1) {
            let fields: Vec<&str> = row.split_whitespace().collect();
            let port = |field: Option<&&str>| {
                let hex = field?.rsplit_once(':')?.1;
                u16::from_str_radix(hex, 16).ok()
            };
            if let (Some(local), Some(remote), Some(inode)) =
                (port(fields.get(1)), port(fields.get(2)), fields.get(9))
            {
                ports.insert(inode.to_string(), (local, remote));
            }
        }
    }
    let (mut app, mut emulator, mut other) = (0, 0, 0);
    for entry in std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
    {
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        let inode = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'));
        match inode.and_then(|inode| ports.get(inode)) {
            Some(&(local, remote)) if local == app_port || remote == app_port => app += 1,
            Some(&(local, remote)) if local == emulator_port || remote == emulator_port => {
                emulator += 1
            }
            _ => other += 1,
        }
    }
    json!({"app": app, "emulator": emulator, "other": other})
}

/// Latencies in fixed memory, so that a long soak measures the code under test, not this
/// bookkeeping: exact below 1,024 µs, then 64 buckets per power of two (within 1.6 %).
#[derive(Clone)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Histogram {
    const LINEAR: u64 = 1024;
    const SUB_BUCKETS: u64 = 64;
    const BUCKETS: usize = (Self::LINEAR + 54 * Self::SUB_BUCKETS) as usize;

    fn new() -> Self {
        Self {
            counts: vec![0; Self::BUCKETS],
            total: 0,
        }
    }

    fn index(micros: u64) -> usize {
        if micros < Self::LINEAR {
            return micros as usize;
        }
        let exponent = 63 - u64::from(micros.leading_zeros()); // 10 and up
        let sub = (micros >> (exponent - 6)) - Self::SUB_BUCKETS;
        (Self::LINEAR + (exponent - 10) * Self::SUB_BUCKETS + sub) as usize
    }

    fn value(index: usize) -> u64 {
        let index = index as u64;
        if index < Self::LINEAR {
            return index;
        }
        let k = index - Self::LINEAR;
        (Self::SUB_BUCKETS + k % Self::SUB_BUCKETS) << (10 + k / Self::SUB_BUCKETS - 6)
    }

    fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[Self::index(micros).min(Self::BUCKETS - 1)] += 1;
        self.total += 1;
    }

    fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
    }

    fn percentile(&self, p: f64) -> u64 {
        let rank = ((self.total as f64 - 1.0).max(0.0) * p).round() as u64;
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen > rank {
                return Self::value(index);
            }
        }
        0
    }
}

/// Latencies of what succeeded, and failures by kind.
struct Outcome {
    latencies: Histogram,
    errors: BTreeMap<String, u64>,
    /// CPU time of the whole process during the run (10 ms resolution).
    cpu_us: u64,
}

impl Default for Outcome {
    fn default() -> Self {
        Self {
            latencies: Histogram::new(),
            errors: BTreeMap::new(),
            cpu_us: 0,
        }
    }
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.latencies.merge(&other.latencies);
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        self.cpu_us += other.cpu_us;
    }
}

/// Runs `op` `total` times over `concurrency` workers (worker, index) and gathers outcomes.
async fn drive<F, Fut>(total: usize, concurrency: usize, op: F) -> (Outcome, f64)
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let started = Instant::now();
    let cpu_before = cpu_us();
    let mut workers = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let op = op.clone();
        let count = total / concurrency + usize::from(worker < total % concurrency);
        workers.push(tokio::spawn(async move {
            let mut outcome = Outcome::default();
            for index in 0..count {
                let begun = Instant::now();
                match op(worker, index).await {
                    Ok(()) => outcome.latencies.record(begun.elapsed()),
                    Err(kind) => *outcome.errors.entry(kind).or_default() += 1,
                }
            }
            outcome
        }));
    }
    let mut outcome = Outcome::default();
    for worker in workers {
        outcome.merge(worker.await.expect("worker finished"));
    }
    outcome.cpu_us = cpu_us().saturating_sub(cpu_before);
    (outcome, started.elapsed().as_secs_f64())
}

fn line(
    scenario: &str,
    concurrency: usize,
    outcome: Outcome,
    seconds: f64,
    upstream: u64,
) -> Value {
    let done = outcome.latencies.total as usize;
    json!({
        "scenario": scenario,
        "requests": done,
        "concurrency": concurrency,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "per_second": (done as f64 / seconds).round(),
        "p50_us": outcome.latencies.percentile(0.50),
        "p99_us": outcome.latencies.percentile(0.99),
        "upstream_connections": upstream,
        "rss_kib": rss_kib(),
        "cpu_us_per_request": if done > 0 { outcome.cpu_us / done as u64 } else { 0 },
        "errors": outcome.errors,
    })
}

async fn mint_many(upstream: &Upstream, count: usize) -> Result<Vec<String>, String> {
    let mut params = Vec::with_capacity(count);
    for _ in 0..count {
        params.push(upstream.mint().await?);
    }
    Ok(params)
}

/// Signing alone, as in `benches/sign.rs`, timed here so scripts can compare it in one run.
fn sign_scenario(requests: usize) -> Vec<Value> {
    use tower_aliyun_captcha::sign::{self, CanonicalRequest};
    let param = format!(
        "{}fQ==",
        "eyJjZXJ0aWZ5SWQiOiJhYmMxMjMiLCJzY2VuZUlkIjoiMWV6eDhweW4iLCJpc1NpZ24iOnRy".repeat(4)
    );
    let started = Instant::now();
    for _ in 0..requests {
        let body = sign::form_encode(&[
            ("CaptchaVerifyParam", std::hint::black_box(&param)),
            ("SceneId", SCENE),
        ]);
        let hash = sign::hash_payload(body.as_bytes());
        let canonical = CanonicalRequest::new(
            "POST",
            "/",
            &[],
            &[
                ("host", "captcha.cn-shanghai.aliyuncs.com"),
                ("x-acs-action", "VerifyIntelligentCaptcha"),
                ("x-acs-version", "2023-03-05"),
                ("x-acs-date", "2026-11-24T10:00:00Z"),
                ("x-acs-signature-nonce", "0f3c2a9e8b7d4c1a9e2b3c4d5e6f7a8b"),
                ("x-acs-content-sha256", &hash),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            &hash,
        );
        let signature = canonical.signature(b"ExampleAccessKeySecret0123456789");
        std::hint::black_box(sign::authorization(
            "LTAI5tExampleAccessKeyId",
            canonical.signed_headers(),
            &signature,
        ));
    }
    let seconds = started.elapsed().as_secs_f64();
    vec![json!({
        "scenario": "sign",
        "requests": requests,
        "concurrency": 1,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "per_second": (requests as f64 / seconds).round(),
        "ns_per_op": (seconds * 1e9 / requests as f64).round(),
        "rss_kib": rss_kib(),
    })]
}

async fn client_scenario(
    upstream: Arc<Upstream>,
    requests: usize,
    concurrency: usize,
) -> Result<Vec<Value>, String> {
    let client = upstream.client(concurrency);
    let params = Arc::new(mint_many(&upstream, requests).await?);
    let scene = SceneId::new(SCENE).expect("valid");
    let connections_before = upstream.connections().await;
    let (outcome, seconds) = drive(requests, concurrency, move |worker, index| {
        let (client, params, scene) = (client.clone(), Arc::clone(&params), scene.clone());
        async move {
            let param = CaptchaVerifyParam::new(params[worker + index * concurrency].clone())
                .map_err(|e| e.to_string())?;
            match client
                .verify(VerifyRequest::new(param).with_scene(scene))
                .await
            {
                Ok(verdict) if verdict.passed() => Ok(()),
                Ok(verdict) => Err(verdict.code().to_string()),
                Err(error) => Err(error.kind().to_owned()),
            }
        }
    })
    .await;
    // Only the connections our client opened during the run (the emulator counts all).
    let opened = upstream.connections().await - connections_before;
    Ok(vec![line("client", concurrency, outcome, seconds, opened)])
}

/// The app under test: the same handler behind the layer and bare.
async fn serve_app(client: Client, json_body: bool) -> Result<SocketAddr, String> {
    async fn handler(body: Bytes) -> String {
        format!("ok {}", body.len())
    }
    let scene = SceneId::new(SCENE).expect("valid");
    let protected = if json_body {
        post(handler).layer(
            CaptchaLayer::builder(client, scene)
                .extractor(JsonField::default())
                .max_in_flight(4096)
                .build()
                .map_err(|e| e.to_string())?,
        )
    } else {
        post(handler).layer(
            CaptchaLayer::builder(client, scene)
                .extractor(Header::default())
                .max_in_flight(4096)
                .build()
                .map_err(|e| e.to_string())?,
        )
    };
    let app = Router::new()
        .route("/protected", protected)
        .route("/open", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// A request to the app carrying `param` in a header or a 1 KiB JSON body.
fn app_request(addr: SocketAddr, path: &str, param: &str, json_body: bool) -> Request<Full<Bytes>> {
    let builder = Request::post(format!("http://{addr}{path}"));
    if json_body {
        let mut body = format!(
            r#"{{"username":"ann","password":"hunter2","captchaVerifyParam":"{param}","pad":""#
        );
        while body.len() < 1022 {
            body.push('x');
        }
        body.push_str("\"}");
        builder
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
    } else {
        builder
            .header("x-captcha-verify-param", param)
            .body(Full::new(Bytes::from_static(b"{}")))
    }
    .expect("a valid request")
}

async fn call_app(http: &Http, request: Request<Full<Bytes>>) -> Result<(), String> {
    let response = http
        .request(request)
        .await
        .map_err(|_| "app_connection".to_owned())?;
    check_app_response(response).await
}

async fn check_app_response(response: Response<Incoming>) -> Result<(), String> {
    let status = response.status();
    response
        .into_body()
        .collect()
        .await
        .map_err(|_| "app_body".to_owned())?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("status_{}", status.as_u16()))
    }
}

async fn layer_scenario(
    upstream: Arc<Upstream>,
    requests: usize,
    concurrency: usize,
    json_body: bool,
) -> Result<Vec<Value>, String> {
    let name = if json_body { "layer-json" } else { "layer" };
    let addr = serve_app(upstream.client(concurrency), json_body).await?;
    let http = http_client();
    let mut lines = Vec::new();
    let mut per_second = Vec::new();
    for path in ["/open", "/protected"] {
        let params = Arc::new(mint_many(&upstream, requests).await?);
        let before = upstream.connections().await;
        let http = http.clone();
        let (outcome, seconds) = drive(requests, concurrency, move |worker, index| {
            let (http, params) = (http.clone(), Arc::clone(&params));
            async move {
                call_app(
                    &http,
                    app_request(addr, path, &params[worker + index * concurrency], json_body),
                )
                .await
            }
        })
        .await;
        let mut value = line(
            name,
            concurrency,
            outcome,
            seconds,
            upstream.connections().await - before,
        );
        value["route"] = json!(path.trim_start_matches('/'));
        per_second.push(value["per_second"].as_f64().unwrap_or(0.0));
        lines.push(value);
    }
    if per_second[0] > 0.0 {
        lines[1]["ratio_to_open"] =
            json!(((per_second[1] / per_second[0]) * 1000.0).round() / 1000.0);
    }
    Ok(lines)
}

async fn soak_scenario(
    upstream: Arc<Upstream>,
    requests: usize,
    concurrency: usize,
) -> Result<Vec<Value>, String> {
    let addr = serve_app(upstream.client(concurrency), false).await?;
    let app = Arc::new(Lanes::new(addr.to_string(), concurrency));
    let mint = Arc::new(Lanes::new(upstream.authority(), concurrency));
    let run = |count: usize| {
        let (app, mint, upstream) = (Arc::clone(&app), Arc::clone(&mint), Arc::clone(&upstream));
        drive(count, concurrency, move |worker, _| {
            let (app, mint, upstream) =
                (Arc::clone(&app), Arc::clone(&mint), Arc::clone(&upstream));
            async move {
                let param = upstream
                    .mint_on(&mint, worker)
                    .await
                    .map_err(|_| "mint".to_owned())?;
                let request = app_request(addr, "/protected", &param, false);
                let response = app
                    .send(worker, request)
                    .await
                    .map_err(|_| "app_connection".to_owned())?;
                check_app_response(response).await
            }
        })
    };
    let sample = |phase: &str, done: usize| {
        let value = json!({
            "scenario": "soak",
            "phase": phase,
            "requests": done,
            "rss_kib": rss_kib(),
            "open_fds": open_fds(),
            "sockets": descriptor_census(addr.port(), upstream.port()),
        });
        println!("{value}");
        value
    };
    // Warm up first (connections, buffers, allocator arenas), so that the samples compare
    // like with like: what grows after this is what the requests leave behind.
    let warm_up = (requests / 20)
        .clamp(concurrency.max(5_000), 20_000)
        .min(requests);
    let (mut total, mut seconds) = run(warm_up).await;
    let start = sample("start", warm_up);
    let half = (requests - warm_up) / 2;
    let (outcome, took) = run(half).await;
    total.merge(outcome);
    seconds += took;
    let middle = sample("middle", warm_up + half);
    let (outcome, took) = run(requests - warm_up - half).await;
    total.merge(outcome);
    seconds += took;
    let end = sample("end", requests);
    let mut summary = line(
        "soak",
        concurrency,
        total,
        seconds,
        upstream.connections().await,
    );
    for (name, value) in [("start", &start), ("middle", &middle), ("end", &end)] {
        summary[format!("rss_kib_{name}")] = value["rss_kib"].clone();
        summary[format!("open_fds_{name}")] = value["open_fds"].clone();
        summary[format!("sockets_{name}")] = value["sockets"].clone();
    }
    Ok(vec![summary])
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("bench: {message}");
            return ExitCode::from(2);
        }
    };
    let upstream = match Upstream::start(args.endpoint.clone()).await {
        Ok(upstream) => Arc::new(upstream),
        Err(message) => {
            eprintln!("bench: {message}");
            return ExitCode::from(2);
        }
    };
    let soak = args.scenario == "soak";
    let requests = args
        .requests
        .unwrap_or(if soak { 1_000_000 } else { 10_000 });
    let concurrency = args
        .concurrency
        .unwrap_or(if soak { 256 } else { 1 })
        .max(1);
    let result = match args.scenario.as_str() {
        "sign" => Ok(sign_scenario(args.requests.unwrap_or(200_000))),
        "client" => client_scenario(upstream, requests, concurrency).await,
        "layer" => layer_scenario(upstream, requests, concurrency, false).await,
        "layer-json" => layer_scenario(upstream, requests, concurrency, true).await,
        "soak" => soak_scenario(upstream, requests, concurrency).await,
        other => Err(format!(
            "unknown scenario {other:?}: client, layer, layer-json or soak"
        )),
    };
    match result {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("bench: {message}");
            ExitCode::from(2)
        }
    }
}

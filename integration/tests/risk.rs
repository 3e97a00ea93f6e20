//! Risk-based requirement over real sockets: `WhenRisky` asks for a captcha only once failures
//! pile up (per account, per address, per route), and `Monitor` verifies without refusing.
//!
//! Each defence is attacked the way an attacker would: from many source addresses (the client
//! binds to 127.0.0.2, 127.0.0.3, … before connecting; Linux routes all of 127/8 to loopback),
//! with spoofed headers, ambiguous bodies, sprays that overflow the store. Each test asserts the
//! exact statuses and how many times the handler ran: a broken defence lets the attacker reach
//! it without a captcha.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aliyun_captcha_emulator::{Emulator, Mint};
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use common::*;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::{Value, json};
use tower_aliyun_captcha::layer::{
    CaptchaLayer, CaptchaPassed, FailedAttempt, Outcome, Requirement, Risk, Route,
};
use tower_aliyun_captcha::{CaptchaVerified, Client, SceneId, VerifyCode};

// ---------------------------------------------------------------------------------------------
// The app under attack
// ---------------------------------------------------------------------------------------------

/// What the login handler answers to a wrong password.
#[derive(Clone, Copy)]
enum Wrong {
    /// This status.
    Status(StatusCode),
    /// 200, with [`FailedAttempt`] in the response's extensions (a page that shows the error).
    MarkedOk,
}

/// The login handler's state: how it answers, and how many times it ran.
#[derive(Clone)]
struct Handler {
    runs: Arc<AtomicUsize>,
    wrong: Wrong,
    /// Usernames compared exactly (a case-sensitive app), else without case.
    case_sensitive: bool,
    /// How long checking a password takes (a password hash).
    hashing: Duration,
}

/// The accounts and their passwords: `ann` is the victim, `ANN` (a case-sensitive app only)
/// the attacker's own account.
fn password_of(user: &str, case_sensitive: bool) -> Option<&'static str> {
    let user = if case_sensitive {
        user.to_owned()
    } else {
        user.to_lowercase()
    };
    match user.as_str() {
        "ann" => Some("correct horse"),
        "bob" => Some("hunter2"),
        "ANN" if case_sensitive => Some("mine"),
        _ => None,
    }
}

/// The credentials of a JSON or form body, as the app reads them (the last copy of a field).
fn credentials(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form {
        let fields: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
        let get = |name: &str| fields.get(name).cloned().unwrap_or_default();
        (get("username"), get("password"))
    } else {
        let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let get = |name: &str| json[name].as_str().unwrap_or_default().to_owned();
        (get("username"), get("password"))
    }
}

/// How the verdict reads in the handler's answer.
fn how(verified: &CaptchaVerified) -> String {
    match verified {
        CaptchaVerified::Passed(_) => "passed".into(),
        CaptchaVerified::NotRequired(_) => "not_required".into(),
        CaptchaVerified::Monitored(m) => {
            format!("monitored:{}:{}", m.would_refuse().as_str(), m.code())
        }
        CaptchaVerified::Degraded(_) => "degraded".into(),
        _ => "other".into(),
    }
}

/// The login handler: it demands the verdict, then checks the password.
async fn login(
    State(handler): State<Handler>,
    verified: CaptchaVerified,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handler.runs.fetch_add(1, Ordering::SeqCst);
    let (user, password) = credentials(&headers, &body);
    tokio::time::sleep(handler.hashing).await;
    let captcha = how(&verified);
    if password_of(&user, handler.case_sensitive) == Some(password.as_str()) {
        return (
            StatusCode::OK,
            axum::Json(json!({"ok": true, "captcha": captcha})),
        )
            .into_response();
    }
    let answer = json!({"ok": false, "captcha": captcha});
    match handler.wrong {
        Wrong::Status(status) => (status, axum::Json(answer)).into_response(),
        Wrong::MarkedOk => {
            let mut response = (StatusCode::OK, axum::Json(answer)).into_response();
            response.extensions_mut().insert(FailedAttempt);
            response
        }
    }
}

/// An app on its own port, served with the peer's address in `ConnectInfo`.
struct App {
    addr: SocketAddr,
    runs: Arc<AtomicUsize>,
}

impl App {
    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

fn scene() -> SceneId {
    SceneId::new(LOGIN).unwrap()
}

fn layer_for(client: Client, requirement: Requirement) -> CaptchaLayer<Client> {
    let route = Route::every_path(scene()).requirement(requirement);
    CaptchaLayer::builder(client, route).build().unwrap()
}

async fn serve_router(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    addr
}

async fn serve_handler(layer: CaptchaLayer<Client>, handler: Handler) -> App {
    let runs = Arc::clone(&handler.runs);
    let app = Router::new()
        .route("/login", post(login).layer(layer))
        .with_state(handler);
    App {
        addr: serve_router(app).await,
        runs,
    }
}

fn handler(wrong: Wrong) -> Handler {
    Handler {
        runs: Arc::default(),
        wrong,
        case_sensitive: false,
        hashing: Duration::ZERO,
    }
}

/// The usual app: 401 on a wrong password.
async fn serve(emulator: &Emulator, requirement: Requirement) -> App {
    serve_handler(
        layer_for(client_for(emulator), requirement),
        handler(Wrong::Status(StatusCode::UNAUTHORIZED)),
    )
    .await
}

fn risky(risk: Risk) -> Requirement {
    Requirement::WhenRisky(risk)
}

fn by_username() -> Risk {
    Risk::new().account_field("username")
}

// ---------------------------------------------------------------------------------------------
// The attacker's client
// ---------------------------------------------------------------------------------------------

/// 127.0.0.`n`: a source address of its own for each simulated client.
fn from(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// A login attempt: a body and the headers to send it with.
#[derive(Clone)]
struct Attempt {
    content_type: &'static str,
    body: String,
    headers: Vec<(&'static str, String)>,
}

impl Attempt {
    /// A JSON login.
    fn json(user: &str, password: &str) -> Self {
        Self::json_raw(json!({"username": user, "password": password}).to_string())
    }

    /// A JSON body as written.
    fn json_raw(body: impl Into<String>) -> Self {
        Self {
            content_type: "application/json",
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// A form body as written.
    fn form(body: impl Into<String>) -> Self {
        Self {
            content_type: "application/x-www-form-urlencoded",
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// With a captcha param (in the `x-captcha-verify-param` header).
    fn param(mut self, param: &str) -> Self {
        self.headers
            .push(("x-captcha-verify-param", param.to_owned()));
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn content_type(mut self, content_type: &'static str) -> Self {
        self.content_type = content_type;
        self
    }

    fn request(&self, addr: SocketAddr) -> Request<Full<Bytes>> {
        let mut request = Request::post("/login")
            .header("host", addr.to_string())
            .header("content-type", self.content_type);
        for (name, value) in &self.headers {
            request = request.header(*name, value.as_str());
        }
        request
            .body(Full::new(Bytes::from(self.body.clone())))
            .unwrap()
    }

    /// Sends it over a connection of its own from `source`; the status and the JSON answer.
    async fn send_from(&self, source: IpAddr, addr: SocketAddr) -> (u16, Value) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(source, 0)).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let response = sender.send_request(self.request(addr)).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Sends it from 127.0.0.1 through `client` (pooled connections).
    async fn send_pooled(&self, client: &Pooled, addr: SocketAddr) -> u16 {
        let mut request = self.request(addr);
        *request.uri_mut() = format!("http://{addr}/login").parse().unwrap();
        let response = client.request(request).await.unwrap();
        let status = response.status().as_u16();
        let _ = response.into_body().collect().await;
        status
    }
}

type Pooled = HyperClient<HttpConnector, Full<Bytes>>;

/// The `reason` of a refusal's JSON.
fn reason(answer: &(u16, Value)) -> (u16, &str) {
    (answer.0, answer.1["reason"].as_str().unwrap_or(""))
}

/// The verdict the handler saw.
fn captcha(answer: &(u16, Value)) -> (u16, &str) {
    (answer.0, answer.1["captcha"].as_str().unwrap_or(""))
}

const REQUIRED: (u16, &str) = (403, "captcha_required");

fn pass(emulator: &Emulator) -> String {
    emulator.mint(Mint::pass()).unwrap()
}

fn fail(emulator: &Emulator) -> String {
    emulator.mint(Mint::verdict(VerifyCode::F015)).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Metrics, recorded on the test's one thread
// ---------------------------------------------------------------------------------------------

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Counters by name and sorted labels, summed over snapshots.
#[derive(Default, Debug)]
struct Counters(BTreeMap<(String, String), u64>);

impl Counters {
    fn add(&mut self, snapshotter: &Snapshotter) {
        for (key, _unit, _description, value) in snapshotter.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            if let DebugValue::Counter(n) = value {
                *self
                    .0
                    .entry((key.name().to_owned(), labels.join(",")))
                    .or_default() += n;
            }
        }
    }

    fn get(&self, name: &str, labels: &str) -> u64 {
        self.0
            .get(&(name.to_owned(), labels.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// `captcha_requirement_total` of the login scene, by reason.
    fn requirement(&self, reason: &str) -> u64 {
        self.get(
            "captcha_requirement_total",
            &format!("reason={reason},scene={LOGIN}"),
        )
    }
}

/// Runs `test` on a current-thread runtime with a metrics recorder of its own; the counters
/// it recorded.
fn with_metrics(test: impl AsyncFnOnce()) -> Counters {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || current_thread().block_on(test()));
    let mut counters = Counters::default();
    counters.add(&snapshotter);
    counters
}

// ---------------------------------------------------------------------------------------------
// The smoke tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn three_wrong_passwords_then_the_captcha_is_required() {
    let emulator = emulator().await;
    // Names are case-insensitive to this app: a success may clear the account's count.
    let app = serve(&emulator, risky(by_username().clear_on_success(true))).await;
    let addr = app.addr;
    let me = from(1);
    let ok = Attempt::json("ann", "correct horse");
    let wrong = Attempt::json("ann", "wrong");
    assert_eq!(
        captcha(&ok.send_from(me, addr).await),
        (200, "not_required")
    );
    for _ in 0..3 {
        assert_eq!(wrong.send_from(me, addr).await.0, 401);
    }
    assert_eq!(reason(&ok.send_from(me, addr).await), REQUIRED);
    assert_eq!(app.runs(), 4);
    // Another account from the same address is not yet risky.
    assert_eq!(Attempt::json("bob", "x").send_from(me, addr).await.0, 401);
    // With a captcha that passes, ann gets in, and her count is cleared.
    let answer = ok.clone().param(&pass(&emulator)).send_from(me, addr).await;
    assert_eq!(captcha(&answer), (200, "passed"));
    assert_eq!(ok.send_from(me, addr).await.0, 200);
    // A failing captcha is refused before the handler.
    let bad = Attempt::json("carol", "x").param(&fail(&emulator));
    assert_eq!(
        reason(&bad.send_from(me, addr).await),
        (403, "captcha_failed")
    );
    assert_eq!(app.runs(), 7);
}

#[tokio::test]
async fn monitor_lets_everything_through_and_says_what_it_would_have_done() {
    let emulator = emulator().await;
    let app = serve(&emulator, Requirement::Monitor).await;
    let ok = Attempt::json("ann", "correct horse");
    let me = from(1);
    let answer = ok.send_from(me, app.addr).await;
    assert_eq!(captcha(&answer), (200, "monitored:captcha_required:F002"));
    let answer = ok
        .clone()
        .param(&fail(&emulator))
        .send_from(me, app.addr)
        .await;
    assert_eq!(captcha(&answer), (200, "monitored:captcha_failed:F015"));
    let answer = ok
        .clone()
        .param(&pass(&emulator))
        .send_from(me, app.addr)
        .await;
    assert_eq!(captcha(&answer), (200, "passed"));
}

// ---------------------------------------------------------------------------------------------
// 1. Rotating addresses against one account
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rotating_addresses_does_not_escape_the_account_count() {
    let emulator = emulator().await;
    let app = serve(&emulator, risky(by_username().clear_on_success(true))).await;
    // Three wrong passwords for ann, each from an address of its own, each spelt differently.
    for (n, spelling) in [(2, "ann"), (3, "Ann"), (4, " ANN ")] {
        let answer = Attempt::json(spelling, "wrong")
            .send_from(from(n), app.addr)
            .await;
        assert_eq!(captcha(&answer), (401, "not_required"), "{spelling:?}");
    }
    assert_eq!(app.runs(), 3);
    // From a fourth, never-seen address, even the right password needs the captcha.
    let ok = Attempt::json("ann", "correct horse");
    assert_eq!(reason(&ok.send_from(from(5), app.addr).await), REQUIRED);
    assert_eq!(reason(&ok.send_from(from(6), app.addr).await), REQUIRED);
    assert_eq!(
        app.runs(),
        3,
        "the handler never saw the attempts without a captcha"
    );
    // The fresh address itself is clean: bob logs in from it without a captcha.
    let bob = Attempt::json("bob", "hunter2")
        .send_from(from(5), app.addr)
        .await;
    assert_eq!(captcha(&bob), (200, "not_required"));
    // ann with a captcha that passes gets in, and her count is cleared.
    let answer = ok
        .clone()
        .param(&pass(&emulator))
        .send_from(from(5), app.addr)
        .await;
    assert_eq!(captcha(&answer), (200, "passed"));
    assert_eq!(
        captcha(&ok.send_from(from(7), app.addr).await),
        (200, "not_required")
    );
    assert_eq!(app.runs(), 6);
}

// ---------------------------------------------------------------------------------------------
// 2. Spraying accounts from one address
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn spraying_accounts_from_one_address_raises_that_address() {
    let emulator = emulator().await;
    let app = serve(&emulator, risky(by_username())).await;
    let sprayer = from(2);
    for i in 0..10 {
        let answer = Attempt::json(&format!("user{i}"), "Summer2024!")
            .send_from(sprayer, app.addr)
            .await;
        assert_eq!(answer.0, 401, "attempt {i}");
    }
    assert_eq!(app.runs(), 10);
    // The eleventh account, never seen, needs the captcha from that address...
    let next = Attempt::json("user10", "Summer2024!");
    assert_eq!(reason(&next.send_from(sprayer, app.addr).await), REQUIRED);
    // ...and so does a right password from it.
    let ann = Attempt::json("ann", "correct horse");
    assert_eq!(reason(&ann.send_from(sprayer, app.addr).await), REQUIRED);
    assert_eq!(app.runs(), 10);
    // From another address it does not.
    assert_eq!(
        captcha(&next.send_from(from(3), app.addr).await),
        (401, "not_required")
    );
    // A success from the sprayer's address (with a captcha) does not wash the address.
    let answer = ann
        .clone()
        .param(&pass(&emulator))
        .send_from(sprayer, app.addr)
        .await;
    assert_eq!(captcha(&answer), (200, "passed"));
    assert_eq!(reason(&next.send_from(sprayer, app.addr).await), REQUIRED);
    assert_eq!(app.runs(), 12);
}

// ---------------------------------------------------------------------------------------------
// 3. Failures across the route
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn failures_spread_over_accounts_and_addresses_raise_the_route() {
    let emulator = emulator().await;
    let risk = by_username().per_route(5, Duration::from_secs(60)).unwrap();
    let app = serve(&emulator, risky(risk)).await;
    // Four failures, each a new account from a new address: every count below its limit.
    for n in 0..4u8 {
        let answer = Attempt::json(&format!("stuffed{n}"), "pw")
            .send_from(from(10 + n), app.addr)
            .await;
        assert_eq!(answer.0, 401);
    }
    // Still quiet: ann logs in without a captcha (a success does not lower the route's count).
    let ann = Attempt::json("ann", "correct horse");
    assert_eq!(
        captcha(&ann.send_from(from(20), app.addr).await),
        (200, "not_required")
    );
    // The fifth.
    let answer = Attempt::json("stuffed4", "pw")
        .send_from(from(14), app.addr)
        .await;
    assert_eq!(answer.0, 401);
    assert_eq!(app.runs(), 6);
    // Now everyone needs it: a new account from a new address, and ann from yet another.
    let fresh = Attempt::json("never-seen", "pw");
    assert_eq!(reason(&fresh.send_from(from(30), app.addr).await), REQUIRED);
    assert_eq!(reason(&ann.send_from(from(31), app.addr).await), REQUIRED);
    assert_eq!(app.runs(), 6);
    // With a captcha, ann still gets in.
    let answer = ann
        .clone()
        .param(&pass(&emulator))
        .send_from(from(31), app.addr)
        .await;
    assert_eq!(captcha(&answer), (200, "passed"));
}

// ---------------------------------------------------------------------------------------------
// 4. X-Forwarded-For
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_spoofed_forwarded_header_is_ignored_by_default() {
    let emulator = emulator().await;
    // No account signal: only the address (and the route, raised out of the way) count.
    let risk = Risk::new()
        .per_route(1_000, Duration::from_secs(60))
        .unwrap();
    let app = serve(&emulator, risky(risk)).await;
    let attacker = from(2);
    for i in 0..10 {
        let answer = Attempt::json(&format!("u{i}"), "pw")
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .header("x-real-ip", format!("203.0.113.{i}"))
            .header("forwarded", format!("for=203.0.113.{i}"))
            .send_from(attacker, app.addr)
            .await;
        assert_eq!(answer.0, 401);
    }
    // A new spoofed address does not escape the socket's count.
    let next = Attempt::json("u10", "pw").header("x-forwarded-for", "198.51.100.99");
    assert_eq!(reason(&next.send_from(attacker, app.addr).await), REQUIRED);
    assert_eq!(app.runs(), 10);
    // Another socket address is another client.
    assert_eq!(next.send_from(from(3), app.addr).await.0, 401);
}

#[tokio::test]
async fn behind_one_proxy_the_right_most_forwarded_address_counts() {
    let emulator = emulator().await;
    let risk = Risk::new()
        .forwarded_for(1)
        .per_route(1_000, Duration::from_secs(60))
        .unwrap();
    let app = serve(&emulator, risky(risk)).await;
    // Every request comes from the proxy's socket (127.0.0.2); the proxy appends the client's
    // address to whatever the client sent.
    let proxy = from(2);
    let via = |spoofed: &str, client: &str| {
        Attempt::json("someone", "pw").header("x-forwarded-for", format!("{spoofed}, {client}"))
    };
    // The attacker (198.51.100.7) rotates what it writes itself: nothing it sends counts.
    for i in 0..10 {
        let answer = via(&format!("6.6.6.{i}"), "198.51.100.7")
            .send_from(proxy, app.addr)
            .await;
        assert_eq!(answer.0, 401);
    }
    assert_eq!(
        reason(
            &via("1.1.1.1", "198.51.100.7")
                .send_from(proxy, app.addr)
                .await
        ),
        REQUIRED
    );
    // The same client, its address in a second header line.
    let split = Attempt::json("someone", "pw")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-for", "198.51.100.7");
    assert_eq!(reason(&split.send_from(proxy, app.addr).await), REQUIRED);
    // Another client behind the same proxy is not blamed; nor is the proxy itself.
    let other = via("6.6.6.6", "198.51.100.8")
        .send_from(proxy, app.addr)
        .await;
    assert_eq!(captcha(&other), (401, "not_required"));
    let direct = Attempt::json("someone", "pw")
        .send_from(proxy, app.addr)
        .await;
    assert_eq!(captcha(&direct), (401, "not_required"));
    assert_eq!(app.runs(), 12);

    // IPv6 clients count by /64: rotating inside one does not help.
    for i in 0..10 {
        let client = format!("2001:db8:1:2::{i:x}");
        let answer = via("6.6.6.6", &client).send_from(proxy, app.addr).await;
        assert_eq!(answer.0, 401);
    }
    let same_64 = via("6.6.6.6", "2001:db8:1:2:ffff:ffff:ffff:ffff");
    assert_eq!(reason(&same_64.send_from(proxy, app.addr).await), REQUIRED);
    let next_64 = via("6.6.6.6", "2001:db8:1:3::1")
        .send_from(proxy, app.addr)
        .await;
    assert_eq!(next_64.0, 401);
    // An IPv4-mapped address is the IPv4 address.
    let mapped = via("6.6.6.6", "::ffff:198.51.100.7");
    assert_eq!(reason(&mapped.send_from(proxy, app.addr).await), REQUIRED);
    assert_eq!(app.runs(), 23);
}

// ---------------------------------------------------------------------------------------------
// 5. Ambiguous and form bodies
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_account_named_twice_needs_the_captcha_and_forms_count_like_json() {
    let emulator = emulator().await;
    let app = serve(&emulator, risky(by_username())).await;
    let me = from(2);
    // Never a failure anywhere, yet two names in one body: parsers disagree on which counts.
    let twice = [
        Attempt::json_raw(r#"{"username":"ann","username":"other","password":"correct horse"}"#),
        Attempt::json_raw(r#"{"username":"ann","user\u006eame":"other","password":"x"}"#),
        Attempt::form("username=ann&username=other&password=correct+horse"),
        Attempt::form("username=ann&user%6Eame=other&password=x"),
    ];
    for attempt in &twice {
        assert_eq!(
            reason(&attempt.send_from(me, app.addr).await),
            REQUIRED,
            "{}",
            attempt.body
        );
    }
    assert_eq!(app.runs(), 0);
    // With a captcha, they are verified and handed on like any other.
    let with_param = twice[0].clone().param(&pass(&emulator));
    assert_eq!(
        with_param.send_from(me, app.addr).await.0,
        401,
        "the app read the last name"
    );

    // Form logins count under the same account as JSON ones.
    for n in 3..6 {
        let answer = Attempt::form("username=ann&password=wrong")
            .send_from(from(n), app.addr)
            .await;
        assert_eq!(captcha(&answer), (401, "not_required"));
    }
    let json = Attempt::json("ANN", "correct horse");
    assert_eq!(reason(&json.send_from(from(6), app.addr).await), REQUIRED);
    let form = Attempt::form("password=correct+horse&username=%61nn");
    assert_eq!(reason(&form.send_from(from(7), app.addr).await), REQUIRED);
    assert_eq!(app.runs(), 4);
}

// ---------------------------------------------------------------------------------------------
// 6. What counts as a failure, and what a success clears
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_failed_captcha_counts_as_a_failure() {
    let emulator = emulator().await;
    let app = serve(&emulator, risky(by_username())).await;
    // A bot failing the challenge from three addresses, never reaching the handler.
    for n in 2..5 {
        let bot = Attempt::json("ann", "guess").param(&fail(&emulator));
        assert_eq!(
            reason(&bot.send_from(from(n), app.addr).await),
            (403, "captcha_failed")
        );
    }
    assert_eq!(app.runs(), 0);
    let ok = Attempt::json("ann", "correct horse");
    assert_eq!(reason(&ok.send_from(from(5), app.addr).await), REQUIRED);
    // A param the service calls invalid (not a failed challenge) counts too.
    let garbage = Attempt::json("bob", "hunter2").param("not-a-real-param");
    for n in 6..9 {
        assert_eq!(garbage.send_from(from(n), app.addr).await.0, 403);
    }
    let bob = Attempt::json("bob", "hunter2");
    assert_eq!(reason(&bob.send_from(from(9), app.addr).await), REQUIRED);
    assert_eq!(app.runs(), 0);
}

#[tokio::test]
async fn a_failed_attempt_marker_counts_whatever_the_status() {
    let emulator = emulator().await;
    let layer = layer_for(client_for(&emulator), risky(by_username()));
    let app = serve_handler(layer, handler(Wrong::MarkedOk)).await;
    for n in 2..5 {
        let answer = Attempt::json("ann", "wrong")
            .send_from(from(n), app.addr)
            .await;
        assert_eq!((answer.0, &answer.1["ok"]), (200, &json!(false)));
    }
    let ok = Attempt::json("ann", "correct horse");
    assert_eq!(reason(&ok.send_from(from(5), app.addr).await), REQUIRED);
    assert_eq!(app.runs(), 3);
}

#[tokio::test]
async fn failure_statuses_are_the_ones_counted() {
    let emulator = emulator().await;
    let risk = || {
        by_username().failure_statuses([StatusCode::UNPROCESSABLE_ENTITY, StatusCode::UNAUTHORIZED])
    };
    // An app that answers 422 to a wrong password, with 422 among the failures.
    let layer = layer_for(client_for(&emulator), risky(risk()));
    let app = serve_handler(
        layer,
        handler(Wrong::Status(StatusCode::UNPROCESSABLE_ENTITY)),
    )
    .await;
    for n in 2..5 {
        assert_eq!(
            Attempt::json("ann", "wrong")
                .send_from(from(n), app.addr)
                .await
                .0,
            422
        );
    }
    let ok = Attempt::json("ann", "correct horse");
    assert_eq!(reason(&ok.send_from(from(5), app.addr).await), REQUIRED);
    assert_eq!(app.runs(), 3);

    // Failures set to 422 alone: a 403 or 401 answer is then not a failure (the app said so).
    let only_422 = by_username().failure_statuses([StatusCode::UNPROCESSABLE_ENTITY]);
    let layer = layer_for(client_for(&emulator), risky(only_422));
    let app = serve_handler(layer, handler(Wrong::Status(StatusCode::FORBIDDEN))).await;
    for n in 2..8 {
        assert_eq!(
            Attempt::json("ann", "wrong")
                .send_from(from(n), app.addr)
                .await
                .0,
            403
        );
    }
    assert_eq!(
        captcha(&ok.send_from(from(9), app.addr).await),
        (200, "not_required")
    );
    assert_eq!(app.runs(), 7);
}

#[tokio::test]
async fn a_success_clears_the_account_not_the_address() {
    let emulator = emulator().await;
    let risk = by_username()
        .clear_on_success(true)
        .per_ip(5, Duration::from_secs(900))
        .unwrap();
    let app = serve(&emulator, risky(risk)).await;
    let me = from(2);
    let wrong = Attempt::json("ann", "wrong");
    let ok = Attempt::json("ann", "correct horse");
    for _ in 0..2 {
        assert_eq!(wrong.send_from(me, app.addr).await.0, 401);
    }
    assert_eq!(
        captcha(&ok.send_from(me, app.addr).await),
        (200, "not_required")
    );
    for _ in 0..2 {
        assert_eq!(wrong.send_from(me, app.addr).await.0, 401);
    }
    // ann's count restarted at her success: two now, not four.
    assert_eq!(
        captcha(&ok.send_from(from(3), app.addr).await),
        (200, "not_required")
    );
    // The address keeps all four, and a fifth raises it for everyone on it.
    assert_eq!(
        Attempt::json("bob", "x").send_from(me, app.addr).await.0,
        401
    );
    assert_eq!(reason(&ok.send_from(me, app.addr).await), REQUIRED);
    assert_eq!(
        reason(
            &Attempt::json("bob", "hunter2")
                .send_from(me, app.addr)
                .await
        ),
        REQUIRED
    );
    assert_eq!(app.runs(), 7);

    // clear_on_success(false): the success does not lower ann's count.
    let keep = by_username().clear_on_success(false);
    let app = serve(&emulator, risky(keep)).await;
    for n in 2..4 {
        assert_eq!(wrong.send_from(from(n), app.addr).await.0, 401);
    }
    assert_eq!(ok.send_from(from(4), app.addr).await.0, 200);
    assert_eq!(wrong.send_from(from(5), app.addr).await.0, 401);
    assert_eq!(reason(&ok.send_from(from(6), app.addr).await), REQUIRED);
}

// ---------------------------------------------------------------------------------------------
// 7. The memory store's bound under a spray
// ---------------------------------------------------------------------------------------------

/// The process's resident memory, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn a_spray_past_the_memory_bound_evicts_its_own_counters_and_raises_the_route() {
    const CAPACITY: usize = 1_000;
    const SPRAYED: usize = 5_000;
    const WORKERS: usize = 16;
    let counters = with_metrics(async || {
        let emulator = Arc::new(emulator().await);
        // The address and route limits out of the way: only the accounts and the bound count.
        let risk = by_username()
            .memory_capacity(CAPACITY)
            .unwrap()
            .per_ip(u32::MAX, Duration::from_secs(900))
            .unwrap()
            .per_route(u32::MAX, Duration::from_secs(60))
            .unwrap();
        let app = serve(&emulator, risky(risk)).await;
        // The victim: two wrong passwords, one short of the captcha.
        for n in 2..4 {
            assert_eq!(
                Attempt::json("ann", "wrong")
                    .send_from(from(n), app.addr)
                    .await
                    .0,
                401
            );
        }
        // A never-seen account is not asked for a captcha, before the spray and while the
        // spray still fits (a counter per name, plus ann's, the address's and the route's).
        let addr = app.addr;
        let fresh = |n: u8| async move {
            Attempt::json(&format!("never-seen-{n}"), "pw")
                .send_from(from(n), addr)
                .await
        };
        assert_eq!(captcha(&fresh(40).await), (401, "not_required"));

        // The spray: a failure each for thousands of random names, with a solved captcha each
        // (a solving service), so that every one reaches the handler and is counted.
        let rss_before = rss_kib();
        let started = Instant::now();
        let client: Pooled = HyperClient::builder(TokioExecutor::new()).build(HttpConnector::new());
        let spray = |range: std::ops::Range<usize>| {
            let next = Arc::new(AtomicUsize::new(range.start));
            let workers: Vec<_> = (0..WORKERS)
                .map(|_| {
                    let (client, emulator, next) =
                        (client.clone(), Arc::clone(&emulator), Arc::clone(&next));
                    let (addr, end) = (app.addr, range.end);
                    tokio::spawn(async move {
                        loop {
                            let i = next.fetch_add(1, Ordering::SeqCst);
                            if i >= end {
                                return;
                            }
                            let name = uuid::Uuid::new_v4().simple().to_string();
                            let attempt = Attempt::json(&name, "123456").param(&pass(&emulator));
                            assert_eq!(
                                attempt.send_pooled(&client, addr).await,
                                401,
                                "sprayed {i}"
                            );
                        }
                    })
                })
                .collect();
            async move {
                for worker in workers {
                    worker.await.unwrap();
                }
            }
        };
        // Below the bound: nothing evicted, nothing raised.
        spray(0..CAPACITY - 100).await;
        assert_eq!(captcha(&fresh(41).await), (401, "not_required"));
        // Past it.
        spray(CAPACITY - 100..SPRAYED).await;
        let took = started.elapsed();
        let rss_after = rss_kib();
        eprintln!(
            "sprayed {SPRAYED} names into a store of {CAPACITY} counters in {took:?}; \
             RSS {rss_before} KiB -> {rss_after} KiB"
        );
        assert_eq!(app.runs(), 2 + 2 + SPRAYED);

        // Fail-safe: counts were dropped, so the route asks everyone, never-seen accounts on
        // never-seen addresses included.
        assert_eq!(reason(&fresh(42).await), REQUIRED);
        assert_eq!(
            reason(
                &Attempt::json("bob", "hunter2")
                    .send_from(from(43), app.addr)
                    .await
            ),
            REQUIRED
        );
        // The victim's two failures outlived the spray's one-failure counters: her third
        // (a wrong password behind a solved captcha) reaches her limit, by her own count.
        let third = Attempt::json("ann", "wrong").param(&pass(&emulator));
        assert_eq!(third.send_from(from(44), app.addr).await.0, 401);
        let ann = Attempt::json("ann", "correct horse");
        assert_eq!(reason(&ann.send_from(from(45), app.addr).await), REQUIRED);
        // The spray took at most a few MB however many names it sent (the store holds at most
        // CAPACITY counters; the rest is the runtime's and the connections').
        assert!(
            rss_after.saturating_sub(rss_before) < 64 * 1024,
            "RSS grew {rss_before} -> {rss_after} KiB"
        );
        assert!(took < Duration::from_secs(60), "{took:?}");
    });
    // Before the spray's evictions: not required; after: the route ("global"), except for ann,
    // whom her own count names ("account").
    assert_eq!(counters.requirement("not_required"), 2 + 2, "{counters:#?}");
    assert_eq!(counters.requirement("global"), 2, "{counters:#?}");
    assert_eq!(
        counters.requirement("account"),
        1,
        "the victim's counter survived the spray: {counters:#?}"
    );
    assert_eq!(counters.requirement("ip"), 0, "{counters:#?}");
}

// ---------------------------------------------------------------------------------------------
// 8. Handlers still demand a verdict
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn not_required_is_no_pass() {
    let emulator = emulator().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    // A handler that demands a captcha that passed.
    let strict = post(move |_passed: CaptchaPassed| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { "transferred" }
    });
    let layer = layer_for(client_for(&emulator), risky(by_username()));
    // The same handlers outside any layer (a routing mistake).
    let demanding = post(|verified: CaptchaVerified| async move { how(&verified) });
    let optional = post(|verified: Option<CaptchaVerified>| async move {
        verified.map_or("none".to_owned(), |v| how(&v))
    });
    // An outer WhenRisky layer over an inner Always one: the inner is not satisfied by a
    // NotRequired verdict.
    let inner = CaptchaLayer::new(client_for(&emulator), scene());
    let outer = layer_for(client_for(&emulator), risky(by_username()));
    let nested = post(|verified: CaptchaVerified| async move { how(&verified) })
        .layer::<_, std::convert::Infallible>(inner)
        .layer::<_, std::convert::Infallible>(outer);
    let app = Router::new()
        .route("/login", strict.layer(layer))
        .route("/unprotected", demanding)
        .route("/optional", optional)
        .route("/nested", nested);
    let addr = serve_router(app).await;

    let me = from(2);
    let ok = Attempt::json("ann", "correct horse");
    let answer = ok.send_from(me, addr).await;
    assert_eq!(
        answer.0, 403,
        "a NotRequired verdict is not a CaptchaPassed"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let answer = ok.clone().param(&pass(&emulator)).send_from(me, addr).await;
    assert_eq!(answer.0, 200);
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    let client: Pooled = HyperClient::builder(TokioExecutor::new()).build(HttpConnector::new());
    let at = |path: &str| {
        let request = Request::post(format!("http://{addr}{path}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(r#"{"username":"ann"}"#)))
            .unwrap();
        let client = client.clone();
        async move {
            let response = client.request(request).await.unwrap();
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    assert_eq!(at("/unprotected").await.0, 500);
    assert_eq!(at("/optional").await, (200, "none".to_owned()));
    let (status, body) = at("/nested").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("captcha_required"), "{body}");
    // With a captcha, both layers let it through on the one verification.
    let answer = ok.clone().param(&pass(&emulator));
    let request = {
        let mut request = answer.request(addr);
        *request.uri_mut() = format!("http://{addr}/nested").parse().unwrap();
        request
    };
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"passed");
}

// ---------------------------------------------------------------------------------------------
// 9. Monitor
// ---------------------------------------------------------------------------------------------

#[test]
fn monitor_runs_the_handler_counts_what_it_would_refuse_and_warns_at_start() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let hooked: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&hooked);
    let counters = tracing::subscriber::with_default(subscriber, || {
        with_metrics(async || {
            let emulator = emulator().await;
            let route = Route::every_path(scene()).requirement(Requirement::Monitor);
            let layer = CaptchaLayer::builder(client_for(&emulator), route)
                .on_outcome(move |outcome: &Outcome<'_>| {
                    seen.lock()
                        .unwrap()
                        .push(format!("{} {}", outcome.kind(), outcome.code()));
                })
                .build()
                .unwrap();
            // Announced when built, before any request.
            let logs = captured.text();
            let warning: Vec<&str> = logs.lines().filter(|l| l.contains(" WARN ")).collect();
            assert_eq!(warning.len(), 1, "{logs}");
            assert!(warning[0].contains("monitor mode"), "{}", warning[0]);
            assert!(
                warning[0].contains(LOGIN),
                "names the scene: {}",
                warning[0]
            );

            let app = serve_handler(layer, handler(Wrong::Status(StatusCode::UNAUTHORIZED))).await;
            let ok = Attempt::json("ann", "correct horse");
            let me = from(2);
            let answer = ok.send_from(me, app.addr).await;
            assert_eq!(captcha(&answer), (200, "monitored:captcha_required:F002"));
            let answer = Attempt::json("ann", "wrong")
                .param(&fail(&emulator))
                .send_from(me, app.addr)
                .await;
            assert_eq!(captcha(&answer), (401, "monitored:captcha_failed:F015"));
            let answer = ok
                .clone()
                .param(&pass(&emulator))
                .send_from(me, app.addr)
                .await;
            assert_eq!(captcha(&answer), (200, "passed"));
            // Monitor never counts failures: any number of them, and nothing is required.
            for _ in 0..12 {
                assert_eq!(
                    Attempt::json("ann", "wrong")
                        .send_from(me, app.addr)
                        .await
                        .0,
                    401
                );
            }
            // A body it could not read is still refused: the handler could not read it either.
            let huge = format!(r#"{{"username":"ann","pad":"{}"}}"#, "x".repeat(100 * 1024));
            assert_eq!(Attempt::json_raw(huge).send_from(me, app.addr).await.0, 413);
            assert_eq!(app.runs(), 15);
        })
    });
    let scene = format!("scene={LOGIN}");
    let would = |reason: &str| {
        counters.get(
            "captcha_monitor_would_refuse_total",
            &format!("reason={reason},{scene}"),
        )
    };
    assert_eq!(would("captcha_required"), 13, "{counters:#?}");
    assert_eq!(would("captcha_failed"), 1, "{counters:#?}");
    let requests = |outcome: &str, code: &str| {
        counters.get(
            "captcha_requests_total",
            &format!("code={code},outcome={outcome},{scene}"),
        )
    };
    assert_eq!(requests("monitored", "F002"), 13, "{counters:#?}");
    assert_eq!(requests("monitored", "F015"), 1, "{counters:#?}");
    assert_eq!(requests("pass", "T001"), 1, "{counters:#?}");
    // No requirement is decided on a Monitor route.
    assert_eq!(
        counters
            .0
            .keys()
            .filter(|(name, _)| name == "captcha_requirement_total")
            .count(),
        0,
        "{counters:#?}"
    );
    let hooked = hooked.lock().unwrap();
    assert_eq!(
        hooked.iter().filter(|h| *h == "monitored F002").count(),
        13,
        "{hooked:?}"
    );
    assert_eq!(
        hooked.iter().filter(|h| *h == "monitored F015").count(),
        1,
        "{hooked:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 10. WhenRisky's metrics
// ---------------------------------------------------------------------------------------------

#[test]
fn when_risky_counts_each_decision_by_reason() {
    let counters = with_metrics(async || {
        let emulator = emulator().await;
        let risk = by_username()
            .per_route(15, Duration::from_secs(60))
            .unwrap();
        let app = serve(&emulator, risky(risk)).await;
        let ok = Attempt::json("ann", "correct horse");
        assert_eq!(ok.send_from(from(2), app.addr).await.0, 200);
        for _ in 0..3 {
            assert_eq!(
                Attempt::json("ann", "wrong")
                    .send_from(from(2), app.addr)
                    .await
                    .0,
                401
            );
        }
        // The account.
        assert_eq!(reason(&ok.send_from(from(3), app.addr).await), REQUIRED);
        // The address: ten accounts from one.
        for i in 0..10 {
            let answer = Attempt::json(&format!("s{i}"), "pw")
                .send_from(from(4), app.addr)
                .await;
            assert_eq!(answer.0, 401);
        }
        assert_eq!(
            reason(
                &Attempt::json("s10", "pw")
                    .send_from(from(4), app.addr)
                    .await
            ),
            REQUIRED
        );
        // The route: 13 failures so far, two more from elsewhere.
        for n in 5..7 {
            assert_eq!(
                Attempt::json(&format!("t{n}"), "pw")
                    .send_from(from(n), app.addr)
                    .await
                    .0,
                401
            );
        }
        assert_eq!(
            reason(&Attempt::json("t7", "pw").send_from(from(7), app.addr).await),
            REQUIRED
        );
        // A request with a param is verified whatever the counts, and decides no requirement.
        let with_param = Attempt::json("t8", "pw").param(&pass(&emulator));
        assert_eq!(with_param.send_from(from(8), app.addr).await.0, 401);
        assert_eq!(app.runs(), 17);
    });
    assert_eq!(counters.requirement("not_required"), 16, "{counters:#?}");
    assert_eq!(counters.requirement("account"), 1, "{counters:#?}");
    assert_eq!(counters.requirement("ip"), 1, "{counters:#?}");
    assert_eq!(counters.requirement("global"), 1, "{counters:#?}");
    assert_eq!(counters.requirement("store_down"), 0, "{counters:#?}");
    let requests = |outcome: &str, code: &str| {
        counters.get(
            "captcha_requests_total",
            &format!("code={code},outcome={outcome},scene={LOGIN}"),
        )
    };
    assert_eq!(
        requests("not_required", "not_required"),
        16,
        "{counters:#?}"
    );
    assert_eq!(requests("local_refusal", "F002"), 3, "{counters:#?}");
    assert_eq!(requests("pass", "T001"), 1, "{counters:#?}");
}

// ---------------------------------------------------------------------------------------------
// Bypasses found (ignored until fixed)
// ---------------------------------------------------------------------------------------------

/// Guesses sent at once all read the counts before any of them is counted: with a password
/// hash of 200 ms, a burst of 20 wrong passwords for one account from one address reaches the
/// handler 20 times without a captcha (the limits are 3 per account and 10 per address).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_concurrent_guesses_is_held_to_the_account_limit() {
    let emulator = emulator().await;
    let slow = Handler {
        hashing: Duration::from_millis(200),
        ..handler(Wrong::Status(StatusCode::UNAUTHORIZED))
    };
    let app = serve_handler(layer_for(client_for(&emulator), risky(by_username())), slow).await;
    let burst: Vec<_> = (0..20)
        .map(|i| {
            let addr = app.addr;
            tokio::spawn(async move {
                Attempt::json("ann", &format!("guess{i}"))
                    .send_from(from(2), addr)
                    .await
                    .0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for guess in burst {
        statuses.push(guess.await.unwrap());
    }
    let guessed = statuses.iter().filter(|&&s| s == 401).count();
    eprintln!("a burst of 20 guesses: {guessed} reached the handler ({statuses:?})");
    assert!(
        guessed <= 3,
        "{guessed} guesses without a captcha: {statuses:?}"
    );
    assert_eq!(app.runs(), guessed);
}

/// A JSON body the layer cannot read in full (a lone surrogate, or a number out of range, in a
/// field the app never reads) would have no account for the layer, while an app that
/// deserializes only its own fields (any `#[derive(Deserialize)] struct Login`: serde skips
/// unknown fields without checking their escapes) reads the name; the attacker rotating
/// addresses would guess without end. Which account it is cannot be told: the captcha is
/// required, and the handler never sees such a guess without one.
#[tokio::test]
async fn junk_in_an_unread_json_field_does_not_hide_the_account() {
    use serde_json::value::RawValue;
    let emulator = emulator().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    // What `Json<Login>` with a derived `Login { username, password }` does: read those two
    // fields, skip the rest unchecked.
    let struct_like = post(
        move |_verified: CaptchaVerified,
              axum::Json(fields): axum::Json<HashMap<String, Box<RawValue>>>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                let field = |name: &str| -> String {
                    fields
                        .get(name)
                        .and_then(|raw| serde_json::from_str(raw.get()).ok())
                        .unwrap_or_default()
                };
                if password_of(&field("username"), false) == Some(field("password").as_str()) {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }
        },
    );
    let layer = layer_for(client_for(&emulator), risky(by_username()));
    let addr = serve_router(Router::new().route("/login", struct_like.layer(layer))).await;
    for (n, junk) in [(2, r#""\ud800""#), (3, "1e400"), (4, r#""\udfff""#)] {
        let body = format!(r#"{{"username":"ann","password":"guess{n}","x":{junk}}}"#);
        let answer = Attempt::json_raw(body).send_from(from(n), addr).await;
        assert_eq!(reason(&answer), REQUIRED, "junk {junk} went through");
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        0,
        "the app read a guess without a captcha"
    );
    // The same login in plain JSON goes through while ann's count is low.
    let plain = r#"{"username":"ann","password":"guess5"}"#;
    assert_eq!(
        Attempt::json_raw(plain).send_from(from(5), addr).await.0,
        401
    );
}

/// axum's `Form` accepts any content type that starts with
/// `application/x-www-form-urlencoded`; the layer reads a form body only for that exact type.
/// A login sent as `application/x-www-form-urlencoded-x` is read by the app and never counted
/// against its account.
#[tokio::test]
async fn a_form_content_type_axum_accepts_does_not_hide_the_account() {
    let emulator = emulator().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let form_login = post(
        move |_verified: CaptchaVerified,
              axum::Form(fields): axum::Form<HashMap<String, String>>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                let user = fields.get("username").cloned().unwrap_or_default();
                let password = fields.get("password").cloned().unwrap_or_default();
                if password_of(&user, false) == Some(password.as_str()) {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }
        },
    );
    let layer = layer_for(client_for(&emulator), risky(by_username()));
    let addr = serve_router(Router::new().route("/login", form_login.layer(layer))).await;
    for n in 2..5 {
        let guess = Attempt::form(format!("username=ann&password=guess{n}"))
            .content_type("application/x-www-form-urlencoded-x");
        assert_eq!(guess.send_from(from(n), addr).await.0, 401);
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        3,
        "the app read all three guesses"
    );
    let fourth = Attempt::form("username=ann&password=guess5")
        .content_type("application/x-www-form-urlencoded-x");
    assert_eq!(
        reason(&fourth.send_from(from(5), addr).await),
        REQUIRED,
        "ann's fourth guess from a fresh address went through"
    );
}

/// Accounts are counted without case; were a success to clear the account's count by default,
/// in an app whose user names are case-sensitive the attacker's own account `ANN` logging in
/// would clear the victim `ann`'s failures (two guesses, one login of its own, two guesses, …:
/// the victim's count never reaching three). By default a success clears nothing.
#[tokio::test]
async fn a_look_alike_accounts_success_does_not_clear_the_victims_count() {
    let emulator = emulator().await;
    let case_sensitive = Handler {
        case_sensitive: true,
        ..handler(Wrong::Status(StatusCode::UNAUTHORIZED))
    };
    let layer = layer_for(client_for(&emulator), risky(by_username()));
    let app = serve_handler(layer, case_sensitive).await;
    let mut n = 2;
    let mut guesses = 0;
    for _round in 0..3 {
        for _ in 0..2 {
            let answer = Attempt::json("ann", &format!("guess{guesses}"))
                .send_from(from(n), app.addr)
                .await;
            n += 1;
            if answer.0 == 401 {
                guesses += 1;
            }
        }
        // The attacker's own account, a different one to the app.
        let own = Attempt::json("ANN", "mine")
            .send_from(from(n), app.addr)
            .await;
        n += 1;
        // Its own login goes through, or needs the captcha once the shared count is up; it
        // never resets the count.
        assert!(own.0 == 200 || reason(&own) == REQUIRED, "{own:?}");
    }
    assert!(guesses <= 3, "{guesses} guesses at ann without a captcha");
}

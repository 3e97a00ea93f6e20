//! An axum app whose `/login` and `/signup` need a captcha, each with its own scene, and pages
//! with both forms wired to Alibaba's front-end widget (`initAliyunCaptcha`): `/` follows the
//! V3 architecture guide, `/v2` the V2 one. Both share one widget instance between the forms,
//! as the client FAQ asks, and pass the `EncryptedSceneId` of V3 encryption mode for the scenes
//! that use it (emulated: signup).
//!
//! ```text
//! cargo run --example login [-- --listen 127.0.0.1:3000] [--emulate]
//!     [--when-risky [--store redis://HOST:PORT] | --monitor]
//! ```
//!
//! Without `ALIBABA_CLOUD_*` credentials in the environment (or with `--emulate`) it starts an
//! emulator in process and says so; with them it verifies with Alibaba Cloud (scenes from
//! `CAPTCHA_LOGIN_SCENE` and `CAPTCHA_SIGNUP_SCENE`, region from `CAPTCHA_REGION`, the page's
//! identity prefix from `CAPTCHA_PREFIX`, and the encrypt key of encryption mode, if the scenes
//! use it, from `CAPTCHA_EKEY`). The param may come as the `x-captcha-verify-param` header, a
//! JSON field or a form field `captchaVerifyParam` (the layer's default extractor reads all
//! three). Emulated, refusals expose their exact code so that the page can explain them; with
//! Alibaba Cloud they give the coarse reason a production app gives. The layer's metrics are
//! served to Prometheus on a separate loopback listener, never on the public one. Logs go to
//! stderr, at `info` unless `RUST_LOG` says otherwise.
//!
//! The one account is `ann`, password `correct horse`; any other answers 401
//! `{"ok": false, "reason": "wrong_password"}`. By default `/login` needs a captcha every time.
//! `--when-risky` asks for one only once failures pile up (3 wrong passwords for an account in
//! 15 minutes, 10 from an address, 30 a minute on the route): until then the page logs in
//! without the widget, and on 403 `captcha_required` it shows the widget and sends the param.
//! Failures are counted in memory, or (built with `--features redis`) with
//! `--store redis://HOST:PORT` in a Redis shared by
//! every instance given the same URL and key (`CAPTCHA_RISK_KEY`, 16 bytes or more; without it
//! a fixed demo key, fine on a laptop and nowhere else). `--monitor` verifies the param when
//! there is one but refuses no captcha: what it would have refused is logged, counted
//! (`captcha_monitor_would_refuse_total` on the metrics listener) and told to the handler.
//! `/signup` needs a captcha every time, whatever the flags.

#[path = "support/backend.rs"]
mod backend;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tower_aliyun_captcha::layer::{CaptchaPassed, DefaultResponder, Requirement, Risk, Route};
use tower_aliyun_captcha::{CaptchaLayer, CaptchaVerified, Client, SceneId, VerifyCode};

/// Alibaba's front-end script, loaded by the page when not emulating.
const ALIBABA_SCRIPT: &str = "https://o.alicdn.com/captcha-frontend/aliyunCaptcha/AliyunCaptcha.js";
const PAGE: &str = include_str!("support/login.html");
/// How long a page's `EncryptedSceneId` is good for.
const GRANT: Duration = Duration::from_secs(3600);
/// The demo's one account.
const ACCOUNT: (&str, &str) = ("ann", "correct horse");
/// Names the counters in Redis for `--store`: instances sharing a Redis must share it.
/// A DEMO VALUE, public in this repository: set `CAPTCHA_RISK_KEY` (16 bytes or more, the same
/// on every instance) for anything but a demo.
#[cfg(feature = "redis")]
const DEMO_RISK_KEY: &str = "demo-only-risk-key-not-a-secret";
const USAGE: &str = "--listen ADDR, --emulate, --when-risky (login needs a captcha only when risky), \
    --store redis://HOST:PORT (with --when-risky and --features redis: count failures in a shared Redis), \
    --monitor (login verifies the param but refuses no captcha)";

/// When `/login` asks for a captcha, from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Mode {
    #[default]
    Always,
    WhenRisky,
    Monitor,
}

impl Mode {
    /// The page's name for it.
    fn name(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::WhenRisky => "when_risky",
            Self::Monitor => "monitor",
        }
    }
}

/// The login example's own flags.
#[derive(Debug, Default)]
struct Flags {
    mode: Mode,
    /// `--store`: the Redis the risk counts live in.
    store: Option<String>,
}

impl Flags {
    /// Takes `arg` if it is one of the login example's flags.
    fn take(&mut self, arg: &str, rest: &mut dyn Iterator<Item = String>) -> Result<bool, String> {
        let mode = match arg {
            "--when-risky" => Mode::WhenRisky,
            "--monitor" => Mode::Monitor,
            "--store" => {
                self.store = Some(
                    rest.next()
                        .ok_or("--store needs a URL: redis://HOST:PORT")?,
                );
                return Ok(true);
            }
            _ => return Ok(false),
        };
        if self.mode != Mode::Always && self.mode != mode {
            return Err(
                "--when-risky and --monitor are two ways of rolling out: choose one".into(),
            );
        }
        self.mode = mode;
        Ok(true)
    }

    /// The login route's requirement; a Redis store connects on first use.
    fn requirement(&self) -> Result<Requirement, String> {
        if self.store.is_some() && self.mode != Mode::WhenRisky {
            return Err("--store shares the risk counts of --when-risky: add --when-risky".into());
        }
        Ok(match self.mode {
            Mode::Always => Requirement::Always,
            Mode::Monitor => Requirement::Monitor,
            Mode::WhenRisky => {
                // Failures of one account count wherever they come from.
                let risk = Risk::new().account_field("username");
                let risk = match &self.store {
                    None => risk,
                    Some(url) => in_redis(risk, url)?,
                };
                Requirement::WhenRisky(risk)
            }
        })
    }
}

/// The risk counts in the Redis at `url`.
#[cfg(feature = "redis")]
fn in_redis(risk: Risk, url: &str) -> Result<Risk, String> {
    let key = std::env::var("CAPTCHA_RISK_KEY").unwrap_or_else(|_| {
        eprintln!(
            "login: naming Redis counters with the demo's public key; set CAPTCHA_RISK_KEY (the same on every instance) beyond a demo"
        );
        DEMO_RISK_KEY.to_owned()
    });
    risk.redis(url, key)
        .map_err(|e| format!("--store {}: {e}", redacted(url)))
}

/// Without the `redis` feature the demo builds without a Redis client (a smaller first build).
#[cfg(not(feature = "redis"))]
fn in_redis(_risk: Risk, url: &str) -> Result<Risk, String> {
    Err(format!(
        "--store {}: this build has no Redis client; run `cargo run --example login --features redis -- …`",
        redacted(url)
    ))
}

/// `url` without the password it may hold (`redis://user:password@host`), for messages.
fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split('/').next().and_then(|a| a.rsplit_once('@')) {
            Some((_, host)) => {
                let path = &rest[rest.find('/').unwrap_or(rest.len())..];
                format!("{scheme}://…@{host}{path}")
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// What every rendering of the page shares.
struct Site {
    script_url: String,
    prefix: String,
    region: &'static str,
    login: SceneId,
    signup: SceneId,
    /// When `/login` asks for a captcha.
    mode: Mode,
    backend: backend::Backend,
}

impl Site {
    /// The page for `architecture` ("v3" or "v2"), with its configuration filled in and a
    /// fresh `EncryptedSceneId` per scene.
    fn page(&self, architecture: &str) -> String {
        let meanings: serde_json::Map<String, Value> = VerifyCode::KNOWN
            .iter()
            .map(|code| (code.as_str().to_owned(), json!(code.meaning())))
            .collect();
        let encrypted = |scene: &SceneId| self.backend.encrypted_scene_id(scene, GRANT);
        let config = json!({
            "architecture": architecture,
            "emulated": self.backend.emulator.is_some(),
            "scriptUrl": self.script_url,
            "prefix": self.prefix,
            "region": self.region,
            "scenes": {
                "login": {"id": self.login.as_str(), "encrypted": encrypted(&self.login)},
                "signup": {"id": self.signup.as_str(), "encrypted": encrypted(&self.signup)},
            },
            "requirements": {"login": self.mode.name(), "signup": Mode::Always.name()},
            "meanings": meanings,
        });
        // Inside a <script> element, `</` would end it early.
        PAGE.replace("/*DEMO_CONFIG*/", &config.to_string().replace("</", "<\\/"))
    }
}

/// The buckets of the verification latency histogram, in seconds: Alibaba answers in tens of
/// milliseconds; the client gives up at 5 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn captcha(
    client: &Client,
    scene: SceneId,
    requirement: Requirement,
    emulated: bool,
) -> Result<CaptchaLayer<Client>, String> {
    // The emulated demo explains each refusal; against Alibaba Cloud it answers as production
    // does, with coarse reasons that tell a bot nothing.
    let responder = if emulated {
        DefaultResponder::exposing_codes()
    } else {
        DefaultResponder::default()
    };
    CaptchaLayer::builder(
        client.clone(),
        Route::every_path(scene).requirement(requirement),
    )
    .responder(responder)
    .build()
    .map_err(|e| e.to_string())
}

/// What a business handler sees: the verdict, and the untouched request.
async fn outcome(action: &str, passed: Option<&CaptchaPassed>, request: Request) -> Json<Value> {
    let body = axum::body::to_bytes(request.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    Json(json!({
        "ok": true,
        "action": action,
        "captcha": passed.map(|passed| passed.code().as_str()),
        "degraded": passed.is_none(),
        "body_bytes": body.len(),
    }))
}

/// Logging in takes a degraded pass during an outage of the captcha service, as Alibaba advises,
/// and with `--when-risky` no captcha while the risk is low. A wrong password is 401, which a
/// `WhenRisky` route counts as a failure.
async fn login(verified: CaptchaVerified, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    if credentials(&parts.headers, &body) != Some((ACCOUNT.0.to_owned(), ACCOUNT.1.to_owned())) {
        let refused = json!({"ok": false, "reason": "wrong_password"});
        return (StatusCode::UNAUTHORIZED, Json(refused)).into_response();
    }
    let mut answer = json!({
        "ok": true,
        "action": "login",
        "captcha": match &verified {
            CaptchaVerified::Passed(passed) => Some(passed.code().as_str()),
            _ => None,
        },
        "degraded": matches!(verified, CaptchaVerified::Degraded(_)),
        "body_bytes": body.len(),
    });
    // `--monitor`: let in, but what the captcha would have said is worth showing.
    if let CaptchaVerified::Monitored(monitored) = &verified {
        answer["would_refuse"] = json!(monitored.would_refuse().as_str());
        answer["would_refuse_code"] = json!(monitored.code());
    }
    Json(answer).into_response()
}

/// The user name and password of a JSON or urlencoded form body, told apart by the content
/// type as the captcha layer tells them (without regard to case): were the two to read a body
/// differently, a guess could be counted against no account.
fn credentials(headers: &axum::http::HeaderMap, body: &[u8]) -> Option<(String, String)> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.starts_with("application/x-www-form-urlencoded") {
        let field = |name: &str| {
            form_urlencoded::parse(body)
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        return Some((field("username")?, field("password")?));
    }
    if essence != "application/json" {
        return None;
    }
    let json: Value = serde_json::from_slice(body).ok()?;
    let text = |name: &str| json.get(name)?.as_str().map(str::to_owned);
    Some((text("username")?, text("password")?))
}

/// Signing up is worth more to a bot: only a person who passed a captcha gets in.
async fn signup(passed: CaptchaPassed, request: Request) -> Json<Value> {
    outcome("signup", Some(&passed), request).await
}

#[tokio::main]
async fn main() -> ExitCode {
    backend::exit("login", run().await)
}

async fn run() -> Result<(), String> {
    // On stderr: stdout's first lines are the addresses other tooling reads. RUST_LOG takes
    // `level` and `target=level` entries, as env_logger's.
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|spec| spec.parse::<tracing_subscriber::filter::Targets>().ok())
        .unwrap_or_else(|| {
            tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO)
        });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .with(filter)
        .init();
    let mut flags = Flags::default();
    let args =
        backend::Args::parse_with("127.0.0.1:3000", USAGE, |arg, rest| flags.take(arg, rest))
            .await?;
    let requirement = flags.requirement()?;
    let login_scene = args.scene("CAPTCHA_LOGIN_SCENE", "login-scene");
    let signup_scene = args.scene("CAPTCHA_SIGNUP_SCENE", "signup-scene");
    // The emulator's first scene is the login scene: params minted without a scene fit /login.
    // Emulated, the signup scene is in V3 encryption mode.
    let backend = args
        .start(&[&login_scene, &signup_scene], &[&signup_scene])
        .await?;

    let (script_url, prefix) = match &backend.emulator {
        Some(emulator) => (
            format!("{}/emulator/captcha.js", emulator.url()),
            "emulator".to_owned(),
        ),
        None => {
            let prefix = std::env::var("CAPTCHA_PREFIX").unwrap_or_default();
            if prefix.is_empty() {
                eprintln!(
                    "login: set CAPTCHA_PREFIX to your Captcha 2.0 identity prefix for the page's widget"
                );
            }
            (ALIBABA_SCRIPT.to_owned(), prefix)
        }
    };
    let emulated = backend.emulator.is_some();
    let layers = (
        captcha(&backend.client, login_scene.clone(), requirement, emulated)?,
        captcha(
            &backend.client,
            signup_scene.clone(),
            Requirement::Always,
            emulated,
        )?,
    );
    let site = Arc::new(Site {
        script_url,
        prefix,
        region: backend.region.frontend_name(),
        login: login_scene,
        signup: signup_scene,
        mode: flags.mode,
        backend,
    });
    let metrics = serve_metrics().await?;
    let (v3, v2) = (Arc::clone(&site), Arc::clone(&site));
    let app = Router::new()
        .route("/", get(move || async move { Html(v3.page("v3")) }))
        .route("/v2", get(move || async move { Html(v2.page("v2")) }))
        .route("/login", post(login).layer(layers.0))
        .route("/signup", post(signup).layer(layers.1));
    let (listener, addr) = site.backend.bind(&args.listen).await?;
    match &site.backend.emulator {
        Some(emulator) => {
            backend::say(format_args!(
                "try: curl -s -H \"x-captcha-verify-param: $(curl -s -X POST {}/emulator/params -d '{{}}' | sed 's/.*:\"\\(.*\\)\"}}/\\1/')\" -H 'content-type: application/json' -d '{{\"username\": \"{}\", \"password\": \"{}\"}}' http://{addr}/login",
                emulator.url(),
                ACCOUNT.0,
                ACCOUNT.1,
            ));
            eprintln!(
                "login: captchas are checked by an embedded emulator (no ALIBABA_CLOUD_* credentials, or --emulate)"
            );
        }
        None => eprintln!("login: verifying captchas with Alibaba Cloud"),
    }
    eprintln!("login: metrics on http://{metrics}/metrics (loopback only)");
    match (flags.mode, &flags.store) {
        (Mode::Always, _) => eprintln!("login: /login needs a captcha every time"),
        (Mode::WhenRisky, store) => eprintln!(
            "login: /login needs a captcha only when risky (failures counted in {})",
            store.as_deref().map_or("memory".into(), redacted),
        ),
        (Mode::Monitor, _) => eprintln!(
            "login: /login verifies params but refuses no captcha (monitor mode: see captcha_monitor_would_refuse_total)"
        ),
    }

    // The client's address, for the risk counts per address.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())
}

/// Serves the layer's metrics, in Prometheus's text format, on a loopback listener of its own:
/// what a scraper needs, and nothing the public listener should show.
async fn serve_metrics() -> Result<std::net::SocketAddr, String> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let prometheus = PrometheusBuilder::new()
        // A histogram, as documented, rather than the exporter's default summary.
        .set_buckets_for_metric(
            Matcher::Full("captcha_verification_duration_seconds".into()),
            LATENCY_BUCKETS,
        )
        .and_then(|builder| builder.install_recorder())
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    let app = Router::new().route(
        "/metrics",
        get(move || async move {
            prometheus.run_upkeep();
            prometheus.render()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen for metrics: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot listen for metrics: {e}"))?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

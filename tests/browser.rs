//! The demo page (`cargo run --example login`) end to end in headless Chromium: pass the
//! captcha and log in, replay a param, fail the captcha, log in while the service fails (fail
//! open), sign up. Screenshots of each step go to `target/browser-screenshots/`.
//!
//! An explicit opt-in, as it needs a browser: `cargo test --all-features -- --ignored`. It
//! finds Chromium (or Chrome) and ChromeDriver on `PATH`; `CHROME_BIN` and `CHROMEDRIVER` name
//! other binaries. `.ci/run` installs Debian's `chromium` and `chromium-driver` and runs it.
//! When asked to run without a browser, it fails and says what is missing; it never passes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// Set to a browser binary to use instead of the first Chromium or Chrome on `PATH`.
const BROWSER_VARIABLE: &str = "CHROME_BIN";
const BROWSER_NAMES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "chrome",
];
/// Set to a ChromeDriver binary to use instead of the one on `PATH`.
const DRIVER_VARIABLE: &str = "CHROMEDRIVER";
const DRIVER_NAMES: &[&str] = &["chromedriver"];
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

type Http = HttpClient<HttpConnector, Full<Bytes>>;

async fn call(
    http: &Http,
    method: http::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let request = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let response = http.request(request).await.map_err(|e| e.to_string())?;
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&bytes)))
}

/// The few WebDriver commands this test needs.
struct Browser {
    http: Http,
    session: String,
    shots: PathBuf,
    _driver: Process,
}

impl Browser {
    async fn start(browser: &Path, chromedriver: &Path, shots: PathBuf) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Process(driver);
        let http: Http = HttpClient::builder(TokioExecutor::new()).build(HttpConnector::new());
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while call(&http, http::Method::GET, &format!("{base}/status"), None)
            .await
            .map(|v| v["value"]["ready"] == true)
            != Ok(true)
        {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempdir("chromium-profile");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": browser, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=900,1000",
                format!("--user-data-dir={}", profile.display()),
            ]},
        }}});
        let created = call(
            &http,
            http::Method::POST,
            &format!("{base}/session"),
            Some(capabilities),
        )
        .await;
        let session = match created {
            Ok(value) if value["value"]["sessionId"].is_string() => {
                value["value"]["sessionId"].as_str().unwrap().to_owned()
            }
            other => panic!("Chromium could not start under chromedriver: {other:?}"),
        };
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            http,
            session: format!("{base}/session/{session}"),
            shots,
            _driver: driver,
        }
    }

    async fn command(&self, method: http::Method, path: &str, body: Option<Value>) -> Value {
        let value = call(&self.http, method, &format!("{}{path}", self.session), body)
            .await
            .unwrap();
        assert!(
            value["value"]["error"].is_null(),
            "WebDriver {path}: {}",
            value["value"]
        );
        value["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.command(http::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .command(
                http::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("{css}: {found}"))
            .to_owned()
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command(
            http::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// The outcome shown for `kind` once it is `expected`, with its text.
    async fn outcome(&self, kind: &str, expected: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let element = self.find(&format!("#{kind}-outcome")).await;
            let outcome = self
                .command(
                    http::Method::GET,
                    &format!("/element/{element}/attribute/data-outcome"),
                    None,
                )
                .await;
            let text = self
                .command(http::Method::GET, &format!("/element/{element}/text"), None)
                .await;
            if outcome == expected {
                return text.as_str().unwrap_or_default().to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "{kind}: expected outcome {expected}, page shows {outcome} {text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn screenshot(&self, name: &str) {
        let data = self.command(http::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }
}

/// The binary named by `variable`, else the first of `names` on `PATH`; a clear failure
/// otherwise.
fn tool(variable: &str, names: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os(variable).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{variable}={} is not a file: point it at the binary, or unset it to search PATH",
            path.display()
        );
        return path;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).find_map(|dir| {
        names.iter().find_map(|name| {
            let candidate = dir
                .join(name)
                .with_extension(std::env::consts::EXE_EXTENSION);
            candidate.is_file().then_some(candidate)
        })
    });
    found.unwrap_or_else(|| {
        panic!(
            "none of {names:?} is on PATH: the browser test needs Chromium (or Chrome) and a \
             matching ChromeDriver. Install them (Debian: apt-get install chromium \
             chromium-driver) or set {variable} to the binary."
        )
    })
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Builds and starts `examples/login.rs` with no credentials (so it emulates); returns the
/// process and the two URLs it prints.
fn start_demo(target: &Path) -> (Process, String, String) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--example",
            "login",
            "--features",
            "emulator,axum",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the login example failed");
    let mut child = Command::new(target.join("debug/examples/login"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the login example starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().expect("a line").expect("text");
    let app = next()
        .strip_prefix("listening on ")
        .expect("first line: listening on URL")
        .to_owned();
    let emulator = next()
        .strip_prefix("emulator on ")
        .expect("second line: emulator on URL")
        .to_owned();
    // Keep reading, so that the demo never writes to a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (Process(child), app, emulator)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver: cargo test --all-features -- --ignored"]
async fn the_demo_page_works_in_a_real_browser() {
    // First, so that a missing browser fails at once rather than after building the demo.
    let browser = tool(BROWSER_VARIABLE, BROWSER_NAMES);
    let chromedriver = tool(DRIVER_VARIABLE, DRIVER_NAMES);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let (_demo, app, emulator) = start_demo(&target);
    let browser = Browser::start(&browser, &chromedriver, target.join("browser-screenshots")).await;
    let http: Http = HttpClient::builder(TokioExecutor::new()).build(HttpConnector::new());

    browser.goto(&app).await;
    browser.screenshot("01-page").await;

    // Pass the captcha and log in.
    browser.click("#login-button").await;
    browser.click("#login-captcha .captcha-verify").await;
    let text = browser.outcome("login", "ok").await;
    assert_eq!(text, "Signed in (captcha T001).");
    browser.screenshot("02-logged-in").await;

    // Replay the param that just passed: single use.
    browser.click("#login-button").await;
    browser.click("#login-captcha .captcha-replay").await;
    let text = browser.outcome("login", "failed").await;
    assert!(text.starts_with("Captcha failed: F018 — "), "{text}");
    browser.screenshot("03-param-reused").await;

    // Fail the challenge.
    browser.click("#login-captcha option[value=\"F015\"]").await;
    browser.click("#login-captcha .captcha-verify").await;
    let text = browser.outcome("login", "failed").await;
    assert_eq!(
        text,
        "Captcha failed: F015 — The person did not complete the challenge (e.g. the slider was misplaced)."
    );
    browser.screenshot("04-captcha-failed").await;

    // The service fails; the default policy lets the person in, marked degraded.
    let faults = json!({"mode": "internal_error"});
    call(
        &http,
        http::Method::POST,
        &format!("{emulator}/emulator/faults"),
        Some(faults),
    )
    .await
    .unwrap();
    browser.click("#login-captcha option[value=\"T001\"]").await;
    browser.click("#login-captcha .captcha-verify").await;
    let text = browser.outcome("login", "degraded").await;
    assert!(text.contains("degraded"), "{text}");
    browser.screenshot("05-service-degraded").await;
    call(
        &http,
        http::Method::POST,
        &format!("{emulator}/emulator/faults"),
        Some(json!({})),
    )
    .await
    .unwrap();

    // Sign up, in its own scene.
    browser.click("#signup-button").await;
    browser.click("#signup-captcha .captcha-verify").await;
    let text = browser.outcome("signup", "ok").await;
    assert_eq!(text, "Signed up (captcha T001).");
    browser.screenshot("06-signed-up").await;

    let stats = call(
        &http,
        http::Method::GET,
        &format!("{emulator}/emulator/stats"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(stats["verdicts"]["T001"], 2, "{stats}");
    assert_eq!(stats["verdicts"]["F018"], 1, "{stats}");
    assert_eq!(stats["verdicts"]["F015"], 1, "{stats}");
    browser.command(http::Method::DELETE, "", None).await;
}

//! The demo page (`cargo run --example login`) end to end in headless Chromium: pass the
//! captcha and log in, replay a param, have the widget refuse (V3) or the service (V2), log in
//! while the service fails (fail open), sign up; a page of another origin refused by the demo's
//! emulator; Alibaba's V3 guide page as written, with and without a `UserCertifyId`; the demo
//! with `--when-risky`, logging in without a captcha until three wrong passwords make the server
//! ask for one.
//! Screenshots of each step go to `target/browser-screenshots/`.
//!
//! An explicit opt-in, as it needs a browser: `cargo test --workspace --all-features -- --ignored`. It
//! finds Chromium (or Chrome) and ChromeDriver on `PATH`; `CHROME_BIN` and `CHROMEDRIVER` name
//! other binaries. `.ci/run` installs Debian's `chromium` and `chromium-driver` and runs it.
//! When asked to run without a browser, it fails and says what is missing; it never passes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aliyun_captcha_emulator::Emulator;
use base64::Engine as _;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tower_aliyun_captcha::{CaptchaVerifyParam, Client, Credentials, VerifyRequest};

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

/// The workspace's root, where `cargo run --example login` runs.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds and starts `examples/login.rs` with no credentials (so it emulates) and `flags`;
/// returns the process and the two URLs it prints.
fn start_demo(target: &Path, flags: &[&str]) -> (Process, String, String) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--package",
            "tower-aliyun-captcha",
            "--example",
            "login",
        ])
        .current_dir(workspace())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the login example failed");
    // Credentials exported globally, as on a developer's machine: --emulate stays offline.
    let mut child = Command::new(target.join("debug/examples/login"))
        .args(["--listen", "127.0.0.1:0", "--emulate"])
        .args(flags)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tNotUsedByTheDemo")
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "not-used-by-the-demo")
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

/// The `UserCertifyId` the guide page passes in its variant with one: its prefix, `_`, ten
/// letters or digits.
const USER_CERTIFY_ID: &str = "tx5ytbc_7G47iByes3";

/// Serves the V3 guide page (`tests/pages/v3-guide.html`) with the stand-in script: as the
/// guide writes it (`/guide`), without its `prefix`, and with a `UserCertifyId` in Alibaba's
/// format or not.
async fn serve_guide_page(script_url: &str, scene: &str) -> String {
    let template = include_str!("pages/v3-guide.html")
        .replace("{{SCRIPT_URL}}", script_url)
        .replace("{{SCENE_ID}}", scene);
    let page = |prefix: &str, certify_id: Option<&str>| {
        let certify_id = certify_id.map_or(String::new(), |id| format!("UserCertifyId: {id:?},"));
        axum::response::Html(
            template
                .replace("{{PREFIX_LINE}}", prefix)
                .replace("{{USER_CERTIFY_ID_LINE}}", &certify_id),
        )
    };
    let prefix = r#"prefix: "tx5ytbc""#;
    let pages = [
        ("/guide", page(prefix, None)),
        ("/guide-without-prefix", page("", None)),
        (
            "/guide-with-certify-id",
            page(prefix, Some(USER_CERTIFY_ID)),
        ),
        // Another account's prefix: not in the format.
        (
            "/guide-with-bad-certify-id",
            page(prefix, Some("abcdefg_7G47iByes3")),
        ),
    ];
    let mut app = axum::Router::new();
    for (path, html) in pages {
        app = app.route(path, axum::routing::get(move || async move { html }));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

impl Browser {
    /// Whether `css` matches an element that is shown (the widget hides with `hidden`).
    async fn shown(&self, css: &str) -> bool {
        let found = self
            .command(
                http::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        let Some(element) = found
            .as_array()
            .and_then(|all| all.first())
            .and_then(|e| e[ELEMENT_KEY].as_str())
        else {
            return false;
        };
        let shown = self
            .command(
                http::Method::GET,
                &format!("/element/{element}/displayed"),
                None,
            )
            .await;
        shown == true
    }

    /// The text of `css` once it is not empty.
    async fn text_of(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let element = self.find(css).await;
            let text = self
                .command(http::Method::GET, &format!("/element/{element}/text"), None)
                .await;
            let text = text.as_str().unwrap_or_default().to_owned();
            if !text.is_empty() {
                return text;
            }
            assert!(Instant::now() < deadline, "{css} stayed empty");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types `text` into the field `css`, in place of what it held.
    async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.command(
            http::Method::POST,
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )
        .await;
        self.command(
            http::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Opens the widget with `button`, picks `outcome`, and presses `action` (Verify or Replay).
    async fn solve(&self, button: &str, outcome: &str, action: &str) {
        self.click(button).await;
        assert!(
            self.shown("#aliyunCaptcha-window-popup").await,
            "{button} did not open the widget"
        );
        self.click(&format!("#captcha-element option[value=\"{outcome}\"]"))
            .await;
        self.click(&format!("#captcha-element .captcha-{action}"))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver: cargo test --workspace --all-features -- --ignored"]
async fn the_demo_pages_work_in_a_real_browser() {
    // First, so that a missing browser fails at once rather than after building the demo.
    let browser = tool(BROWSER_VARIABLE, BROWSER_NAMES);
    let chromedriver = tool(DRIVER_VARIABLE, DRIVER_NAMES);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let (_demo, app, emulator) = start_demo(&target, &[]);
    let browser = Browser::start(&browser, &chromedriver, target.join("browser-screenshots")).await;
    let http: Http = HttpClient::builder(TokioExecutor::new()).build(HttpConnector::new());
    let faults = |mode: Value| {
        let (http, url) = (http.clone(), format!("{emulator}/emulator/faults"));
        async move {
            call(&http, http::Method::POST, &url, Some(mode))
                .await
                .unwrap()
        }
    };

    // The V3 page: one widget for both forms; the page sends the param itself.
    browser.goto(&app).await;
    browser.screenshot("01-v3-page").await;
    browser.solve("#login-button", "T001", "verify").await;
    assert_eq!(
        browser.outcome("login", "ok").await,
        "Signed in (captcha T001)."
    );
    assert!(
        !browser.shown("#aliyunCaptcha-window-popup").await,
        "the popup stayed open"
    );
    browser.screenshot("02-v3-logged-in").await;

    // Replay the param that just passed: single use, so the page is told to verify again.
    browser.solve("#login-button", "T001", "replay").await;
    let text = browser.outcome("login", "expired").await;
    assert!(text.starts_with("Captcha expired: F018 — "), "{text}");
    browser.screenshot("03-v3-param-reused").await;

    // The widget refuses by itself, as V3's does for a risk it detects or a wrong puzzle: the
    // page hears `fail` with the code, no param reaches the service, and the widget refreshes
    // for another try.
    let requests = async || {
        call(
            &http,
            http::Method::GET,
            &format!("{emulator}/emulator/stats"),
            None,
        )
        .await
        .unwrap()["requests"]
            .clone()
    };
    let requests_before = requests().await;
    browser.solve("#login-button", "F001", "verify").await;
    let text = browser.outcome("login", "failed").await;
    assert!(
        text.starts_with("Not verified by the widget: F001 — "),
        "{text}"
    );
    browser.screenshot("04-v3-refused-by-the-widget").await;
    assert!(browser.shown("#aliyunCaptcha-window-popup").await);
    let chosen = "return document.querySelector('#captcha-element .captcha-verdict').value";
    assert_eq!(
        browser
            .command(
                http::Method::POST,
                "/execute/sync",
                Some(json!({"script": chosen, "args": []})),
            )
            .await,
        "T001",
        "the widget did not refresh"
    );
    // Another try in the widget, still open: the puzzle got wrong.
    browser
        .click("#captcha-element option[value=\"fail\"]")
        .await;
    browser.click("#captcha-element .captcha-verify").await;
    let text = browser.outcome("login", "failed").await;
    assert!(
        text.starts_with("Not verified by the widget: F015 — "),
        "{text}"
    );
    assert_eq!(
        requests().await,
        requests_before,
        "a refusal of the widget reached the service"
    );
    // The widget stays open for another try; the person closes it.
    assert!(browser.shown("#aliyunCaptcha-window-popup").await);
    browser.click("#captcha-element .captcha-close").await;

    // The service fails; the default policy lets the person in, marked degraded.
    faults(json!({"mode": "internal_error"})).await;
    browser.solve("#login-button", "T001", "verify").await;
    let text = browser.outcome("login", "degraded").await;
    assert!(text.contains("degraded"), "{text}");
    browser.screenshot("05-v3-service-degraded").await;
    faults(json!({})).await;

    // Sign up: the same widget, restarted for the signup scene, which is in encryption mode
    // (the page passes the EncryptedSceneId its server made).
    browser.solve("#signup-button", "T001", "verify").await;
    assert_eq!(
        browser.outcome("signup", "ok").await,
        "Signed up (captcha T001)."
    );
    browser.screenshot("06-v3-signed-up").await;
    assert_eq!(
        browser
            .command(
                http::Method::POST,
                "/execute/sync",
                Some(json!({"script": "return document.querySelectorAll('.emulated-captcha').length", "args": []})),
            )
            .await,
        1,
        "more than one widget on the page"
    );

    // Without a prefix, restarting the widget (for the other form's scene) fails, and the
    // page hears why.
    browser
        .command(
            http::Method::POST,
            "/execute/sync",
            Some(json!({"script": "window.AliyunCaptchaConfig.prefix = ''", "args": []})),
        )
        .await;
    browser.click("#login-button").await;
    assert_eq!(
        browser.outcome("login", "error").await,
        "The captcha could not start (IllegalUserTag)."
    );
    assert!(!browser.shown("#aliyunCaptcha-window-popup").await);

    // The V2 page: the widget waits for {captchaResult, bizResult}.
    browser.goto(&format!("{app}/v2")).await;
    browser.solve("#login-button", "T001", "verify").await;
    assert_eq!(
        browser.outcome("login", "ok").await,
        "Signed in (captcha T001)."
    );
    assert!(!browser.shown("#aliyunCaptcha-window-popup").await);
    browser.screenshot("07-v2-logged-in").await;
    browser.solve("#login-button", "T001", "replay").await;
    let text = browser.outcome("login", "expired").await;
    assert!(text.starts_with("Captcha expired: F008 — "), "{text}");
    // A refused captcha keeps the widget open for another try.
    assert!(
        browser.shown("#aliyunCaptcha-window-popup").await,
        "V2 closed the widget on failure"
    );
    browser.click("#captcha-element .captcha-close").await;
    browser.solve("#login-button", "fail", "verify").await;
    let text = browser.outcome("login", "failed").await;
    assert!(text.starts_with("Captcha failed: F015 — "), "{text}");
    browser.screenshot("08-v2-captcha-failed").await;
    browser.click("#captcha-element .captcha-close").await;
    // In V2 a risk is the service's verdict on the param.
    browser.solve("#login-button", "F001", "verify").await;
    let text = browser.outcome("login", "failed").await;
    assert!(text.starts_with("Captcha failed: F001 — "), "{text}");
    browser.click("#captcha-element .captcha-close").await;
    browser.solve("#signup-button", "T001", "verify").await;
    assert_eq!(
        browser.outcome("signup", "ok").await,
        "Signed up (captcha T001)."
    );
    // Without a prefix, restarting the widget (for the other form's scene) fails, and the
    // page hears why.
    browser
        .command(
            http::Method::POST,
            "/execute/sync",
            Some(json!({"script": "window.AliyunCaptchaConfig.prefix = ''", "args": []})),
        )
        .await;
    browser.click("#login-button").await;
    assert_eq!(
        browser.outcome("login", "error").await,
        "The captcha could not start (IllegalUserTag)."
    );
    assert!(!browser.shown("#aliyunCaptcha-window-popup").await);

    // The demo's emulator answers the demo's pages only: a page of another origin loads the
    // script (public, as Alibaba's) but cannot mint.
    let minted_before = call(
        &http,
        http::Method::GET,
        &format!("{emulator}/emulator/stats"),
        None,
    )
    .await
    .unwrap()["params_minted"]
        .clone();
    let foreign = serve_guide_page(&format!("{emulator}/emulator/captcha.js"), "login-scene").await;
    browser.goto(&format!("{foreign}/guide")).await;
    browser.solve("#button", "T001", "verify").await;
    assert_eq!(browser.text_of("#error").await, "NetworkError");
    // The widget says what to do about it.
    assert_eq!(
        browser.text_of("#captcha-element .captcha-status").await,
        format!(
            "the emulator could not be reached, or does not allow this page (--allow-origin {foreign})"
        )
    );
    browser.screenshot("09-foreign-page-refused").await;
    let stats = call(
        &http,
        http::Method::GET,
        &format!("{emulator}/emulator/stats"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        stats["params_minted"], minted_before,
        "a foreign page minted"
    );

    // A page that follows the V3 guide to the letter works unchanged against an emulator that
    // allows its origin.
    let credentials = Credentials::new("LTAI5tGuidePage", "guide-page-secret");
    let own = Emulator::builder()
        .credentials(&credentials)
        .scene("login-scene")
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let guide =
        serve_guide_page(&format!("{}/emulator/captcha.js", own.url()), "login-scene").await;
    own.allow_origin(&guide).unwrap();
    let verifier = Client::builder()
        .credentials(credentials)
        .endpoint(own.url())
        .allow_http(true)
        .build()
        .unwrap();
    let verify = async |param: String| {
        verifier
            .verify(VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap()))
            .await
            .unwrap()
    };
    browser.goto(&format!("{guide}/guide")).await;
    browser.solve("#button", "T001", "verify").await;
    let param = browser.text_of("#param").await;
    browser.screenshot("10-guide-page").await;
    assert!(
        verify(param).await.passed(),
        "the guide page's param did not verify"
    );
    // Its `fail` hears the widget's own refusals.
    browser.solve("#button", "F024", "verify").await;
    assert_eq!(browser.text_of("#failed").await, "F024");

    // With a UserCertifyId, the verdict's CertifyId is the page's.
    browser
        .goto(&format!("{guide}/guide-with-certify-id"))
        .await;
    browser.solve("#button", "T001", "verify").await;
    let verdict = verify(browser.text_of("#param").await).await;
    assert!(verdict.passed());
    assert_eq!(verdict.certify_id(), Some(USER_CERTIFY_ID));
    // One not in Alibaba's format (prefix_ and ten letters or digits) stops the widget.
    browser
        .goto(&format!("{guide}/guide-with-bad-certify-id"))
        .await;
    assert_eq!(browser.text_of("#error").await, "IllegalCertifyId");
    browser.click("#button").await;
    assert!(!browser.shown("#aliyunCaptcha-window-popup").await);

    // Without `prefix`, the widget does not start, and says why.
    browser.goto(&format!("{guide}/guide-without-prefix")).await;
    assert_eq!(browser.text_of("#error").await, "IllegalUserTag");
    browser.click("#button").await;
    assert!(
        !browser.shown("#aliyunCaptcha-window-popup").await,
        "the widget started without a prefix"
    );
    browser.screenshot("11-guide-page-without-prefix").await;

    let stats = call(
        &http,
        http::Method::GET,
        &format!("{emulator}/emulator/stats"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(stats["verdicts"]["T001"], 4, "{stats}");
    assert_eq!(stats["verdicts"]["F018"], 1, "{stats}");
    assert_eq!(stats["verdicts"]["F008"], 1, "{stats}");
    assert_eq!(stats["verdicts"]["F001"], 1, "{stats}");
    assert_eq!(stats["verdicts"]["F015"], 1, "{stats}");
    assert!(stats["verdicts"].get("F022").is_none(), "{stats}");

    // `--when-risky`: the page logs in without a captcha while the risk is low, and shows the
    // widget once the server answers `captcha_required`.
    let (_risky_demo, risky_app, risky_emulator) = start_demo(&target, &["--when-risky"]);
    let verifications = async || {
        call(
            &http,
            http::Method::GET,
            &format!("{risky_emulator}/emulator/stats"),
            None,
        )
        .await
        .unwrap()["requests"]
            .as_u64()
            .unwrap()
    };
    let popup = "#aliyunCaptcha-window-popup";
    browser.goto(&risky_app).await;
    let before = verifications().await;
    browser.click("#login-button").await;
    assert_eq!(
        browser.outcome("login", "ok").await,
        "Signed in (no captcha needed)."
    );
    assert!(
        !browser.shown(popup).await,
        "the widget opened for a low risk"
    );
    assert_eq!(verifications().await, before, "a captcha was verified");
    browser.screenshot("12-when-risky-no-captcha").await;
    // Three wrong passwords for ann raise the risk; each is the business's own refusal.
    browser
        .fill("#login-form input[name=password]", "wrong horse")
        .await;
    for attempt in 1..=3 {
        browser.click("#login-button").await;
        assert_eq!(
            browser.outcome("login", "wrong_password").await,
            "Wrong user name or password.",
            "attempt {attempt}"
        );
        assert!(
            !browser.shown(popup).await,
            "attempt {attempt}: the widget opened"
        );
    }
    browser.screenshot("13-when-risky-wrong-passwords").await;
    // Now the server asks for a captcha: the page shows the widget, the person solves it, and
    // the page sends the login again with the param.
    browser
        .fill("#login-form input[name=password]", "correct horse")
        .await;
    browser.click("#login-button").await;
    assert_eq!(
        browser.outcome("login", "required").await,
        "Please complete the captcha to go on."
    );
    assert!(
        browser.shown(popup).await,
        "captcha_required did not open the widget"
    );
    assert_eq!(verifications().await, before, "a captcha was verified");
    browser.screenshot("14-when-risky-captcha-required").await;
    browser
        .click("#captcha-element option[value=\"T001\"]")
        .await;
    browser.click("#captcha-element .captcha-verify").await;
    assert_eq!(
        browser.outcome("login", "ok").await,
        "Signed in (captcha T001)."
    );
    assert!(!browser.shown(popup).await, "the popup stayed open");
    assert_eq!(verifications().await, before + 1);
    browser.screenshot("15-when-risky-logged-in").await;

    browser.command(http::Method::DELETE, "", None).await;
}

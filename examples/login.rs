//! An axum app whose `/login` and `/signup` need a captcha, each with its own scene, and a page
//! at `/` with both forms wired to Alibaba's front-end widget (`initAliyunCaptcha`).
//!
//! ```text
//! cargo run --example login [-- --listen 127.0.0.1:3000]
//! ```
//!
//! Without `ALIBABA_CLOUD_*` credentials in the environment it starts an emulator in process
//! and says so; with them it verifies with Alibaba Cloud (scenes from `CAPTCHA_LOGIN_SCENE`
//! and `CAPTCHA_SIGNUP_SCENE`, region from `CAPTCHA_REGION`). The param may come as the
//! `x-captcha-verify-param` header, a JSON field or a form field `captchaVerifyParam`.

#[path = "support/backend.rs"]
mod backend;

use std::process::ExitCode;

use axum::Router;
use axum::extract::Request;
use axum::response::{Html, Json};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tower_aliyun_captcha::extract::{FirstOf, FormField, Header, JsonField};
use tower_aliyun_captcha::layer::{CaptchaLayer, CaptchaVerified};
use tower_aliyun_captcha::{Client, SceneId, VerifyCode};

/// Alibaba's front-end script, loaded by the page when not emulating.
const ALIBABA_SCRIPT: &str = "https://o.alicdn.com/captcha-frontend/aliyunCaptcha/AliyunCaptcha.js";
const PAGE: &str = include_str!("support/login.html");

/// The page, with its configuration filled in.
fn page(script_url: &str, prefix: &str, region: &str, login: &SceneId, signup: &SceneId) -> String {
    let meanings: serde_json::Map<String, Value> = VerifyCode::KNOWN
        .iter()
        .map(|code| (code.as_str().to_owned(), json!(code.meaning())))
        .collect();
    let config = json!({
        "emulated": script_url != ALIBABA_SCRIPT,
        "scriptUrl": script_url,
        "prefix": prefix,
        "region": region,
        "loginScene": login.as_str(),
        "signupScene": signup.as_str(),
        "meanings": meanings,
    });
    // Inside a <script> element, `</` would end it early.
    PAGE.replace("/*DEMO_CONFIG*/", &config.to_string().replace("</", "<\\/"))
}

/// The header, a JSON field, or a form field.
type AnyParam = FirstOf<FirstOf<Header, JsonField>, FormField>;

fn captcha(client: &Client, scene: SceneId) -> Result<CaptchaLayer<Client, AnyParam>, String> {
    CaptchaLayer::builder(client.clone(), scene)
        .extractor(
            Header::default()
                .or(JsonField::default())
                .or(FormField::default()),
        )
        .build()
        .map_err(|e| e.to_string())
}

/// What a business handler sees: the verdict, and the untouched request.
async fn outcome(action: &str, verified: CaptchaVerified, request: Request) -> Json<Value> {
    let body = axum::body::to_bytes(request.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    Json(json!({
        "ok": true,
        "action": action,
        "captcha": verified.code().map(|c| c.as_str()),
        "degraded": verified.is_degraded(),
        "body_bytes": body.len(),
    }))
}

async fn login(verified: CaptchaVerified, request: Request) -> Json<Value> {
    outcome("login", verified, request).await
}

async fn signup(verified: CaptchaVerified, request: Request) -> Json<Value> {
    outcome("signup", verified, request).await
}

#[tokio::main]
async fn main() -> ExitCode {
    backend::exit("login", run().await)
}

async fn run() -> Result<(), String> {
    let listen = backend::listen_arg("127.0.0.1:3000")?;
    let emulating = backend::emulating();
    let login_scene = backend::scene("CAPTCHA_LOGIN_SCENE", "login-scene", emulating);
    let signup_scene = backend::scene("CAPTCHA_SIGNUP_SCENE", "signup-scene", emulating);
    // The emulator's first scene is the login scene: params minted without a scene fit /login.
    let backend = backend::start(&[&login_scene, &signup_scene]).await?;

    let html = match &backend.emulator {
        Some(emulator) => {
            let script = format!("{}/emulator/captcha.js", emulator.url());
            page(&script, "emulator", "cn", &login_scene, &signup_scene)
        }
        None => {
            let prefix = std::env::var("CAPTCHA_PREFIX").unwrap_or_default();
            if prefix.is_empty() {
                eprintln!(
                    "login: set CAPTCHA_PREFIX to your Captcha 2.0 identity prefix for the page's widget"
                );
            }
            let singapore = std::env::var("CAPTCHA_REGION").is_ok_and(|r| r == "ap-southeast-1");
            let region = if singapore { "sgp" } else { "cn" };
            page(ALIBABA_SCRIPT, &prefix, region, &login_scene, &signup_scene)
        }
    };
    let app = Router::new()
        .route("/", get(move || async move { Html(html) }))
        .route(
            "/login",
            post(login).layer(captcha(&backend.client, login_scene)?),
        )
        .route(
            "/signup",
            post(signup).layer(captcha(&backend.client, signup_scene)?),
        );
    let (listener, addr) = backend.bind(&listen).await?;
    match &backend.emulator {
        Some(emulator) => {
            backend::say(format_args!(
                "try: curl -s -X POST {}/emulator/params -d '{{}}' | curl -s -H 'content-type: application/json' -d @- http://{addr}/login",
                emulator.url()
            ));
            eprintln!(
                "login: no ALIBABA_CLOUD_* credentials in the environment, so captchas are checked by an embedded emulator"
            );
        }
        None => eprintln!("login: verifying captchas with Alibaba Cloud"),
    }

    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())
}

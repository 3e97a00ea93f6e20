//! The smallest protected app, to read first: axum, with `POST /login` behind a captcha.
//!
//! ```text
//! cargo run --example axum    # PORT=… to listen elsewhere than 127.0.0.1:3000
//! ```

use std::process::ExitCode;

use axum::{Router, routing::post};
use tower_aliyun_captcha::{CaptchaLayer, CaptchaVerified, Client, SceneId};

// Runs only for requests the layer let through: the handler demands the verdict.
async fn login(verified: CaptchaVerified) -> &'static str {
    match verified {
        CaptchaVerified::Degraded(_) => "welcome (the captcha service was down)\n",
        _ => "welcome\n",
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // Credentials, region and endpoint from the environment; to try it offline, point
    // ALIBABA_CLOUD_CAPTCHA_ENDPOINT at `cargo run -p aliyun-captcha-emulator` (it prints how).
    let client = Client::from_env()?.build()?;
    client.check().await?; // a wrong key, region or clock stops the app here, with advice
    // Your scene's id from the Captcha 2.0 console; the emulator's is `emulator-scene`.
    let scene = SceneId::new("emulator-scene")?;
    let captcha = CaptchaLayer::new(client, scene);
    let app = Router::new().route("/login", post(login).layer(captcha));
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(error) = run().await {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

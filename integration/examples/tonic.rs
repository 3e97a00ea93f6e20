//! A tonic gRPC service whose `Signup` method needs a captcha (param in the
//! `x-captcha-verify-param` metadata); every other method passes untouched.
//!
//! ```text
//! cargo run -p integration-tests --example tonic [-- --listen 127.0.0.1:50051] [--emulate]
//! ```
//!
//! Emulates the service unless `ALIBABA_CLOUD_*` credentials are set. When emulating, it calls
//! itself once with a fresh param and once without, and prints both outcomes.

#[path = "../../examples/support/accounts.rs"]
mod accounts;
#[path = "../../examples/support/backend.rs"]
mod backend;

use std::process::ExitCode;

use aliyun_captcha_emulator::Mint;
use tonic::transport::{Channel, Server};
use tower_aliyun_captcha::CaptchaLayer;
use tower_aliyun_captcha::extract::GrpcMetadata;
use tower_aliyun_captcha::layer::Route;

#[tokio::main]
async fn main() -> ExitCode {
    backend::exit("tonic", run().await)
}

async fn run() -> Result<(), String> {
    let args = backend::Args::parse("127.0.0.1:50051").await?;
    let scene = args.scene("CAPTCHA_SIGNUP_SCENE", "signup-scene");
    let backend = args.start(&[&scene], &[]).await?;
    // gRPC reaches a method with any HTTP method: a route protects them all.
    let captcha = CaptchaLayer::builder(
        backend.client.clone(),
        Route::exact(accounts::SIGNUP_PATH, scene),
    )
    .extractor(GrpcMetadata::default())
    .build()
    .map_err(|e| e.to_string())?;

    let (listener, addr) = backend.bind(&args.listen).await?;

    let server = tokio::spawn(
        Server::builder()
            .layer(captcha)
            .add_service(accounts::AccountsServer)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = tokio::signal::ctrl_c().await;
                },
            ),
    );

    if let Some(emulator) = &backend.emulator {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let param = emulator.mint(Mint::pass()).map_err(|e| e.to_string())?;
        match accounts::call_signup(channel.clone(), "ann@example.com", Some(&param)).await {
            Ok(reply) => backend::say(format_args!("with a param: {}", reply.message)),
            Err(status) => backend::say(format_args!(
                "with a param: {:?} {}",
                status.code(),
                status.message()
            )),
        }
        match accounts::call_signup(channel, "bot@example.com", None).await {
            Ok(reply) => backend::say(format_args!("without: {}", reply.message)),
            Err(status) => backend::say(format_args!(
                "without: {:?} {}",
                status.code(),
                status.message()
            )),
        }
    }

    server
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

//! A plain hyper 1 server with a captcha in front, through `TowerToHyperService`.
//!
//! ```text
//! cargo run --example hyper [-- --listen 127.0.0.1:3001] [--emulate]
//! ```
//!
//! Emulates the service unless `ALIBABA_CLOUD_*` credentials are set. Every request needs the
//! param in the `x-captcha-verify-param` header.

#[path = "support/backend.rs"]
mod backend;

use std::convert::Infallible;
use std::process::ExitCode;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;
use tower_aliyun_captcha::extract::CaptchaBody;
use tower_aliyun_captcha::{CaptchaLayer, CaptchaVerified};

async fn handle(
    request: Request<CaptchaBody<Incoming>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // The handler demands the verdict: without one (the layer is not in front), it refuses.
    let Some(verified) = request.extensions().get::<CaptchaVerified>().cloned() else {
        let mut refused = Response::new(Full::new(Bytes::from("captcha required\n")));
        *refused.status_mut() = http::StatusCode::FORBIDDEN;
        return Ok(refused);
    };
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let text = format!(
        "hello: captcha {}, {} body bytes\n",
        match &verified {
            CaptchaVerified::Passed(passed) => passed.code().as_str(),
            _ => "degraded",
        },
        body.len()
    );
    Ok(Response::new(Full::new(Bytes::from(text))))
}

#[tokio::main]
async fn main() -> ExitCode {
    backend::exit("hyper", run().await)
}

async fn run() -> Result<(), String> {
    let args = backend::Args::parse("127.0.0.1:3001").await?;
    let scene = args.scene("CAPTCHA_SCENE", "hyper-scene");
    let backend = args.start(&[&scene], &[]).await?;
    let service = ServiceBuilder::new()
        .layer(CaptchaLayer::new(backend.client.clone(), scene))
        .service_fn(handle);

    let (listener, addr) = backend.bind(&args.listen).await?;
    if let Some(emulator) = &backend.emulator {
        backend::say(format_args!(
            "try: curl -s -H \"x-captcha-verify-param: $(curl -s -X POST {}/emulator/params -d '{{}}' | sed 's/.*:\"\\(.*\\)\"}}/\\1/')\" http://{addr}/",
            emulator.url()
        ));
    }

    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted.map_err(|e| e.to_string())?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

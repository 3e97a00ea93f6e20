//! Traces, over real sockets: the client's span nested under the layer's, and the layer's span
//! closed, with the verdict, before the handler runs.
//!
//! One test in its own binary: it installs the process-wide subscriber (a subscriber local to
//! a thread misses callsites that other tests' threads registered first).

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aliyun_captcha_emulator::Mint;
use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower_aliyun_captcha::{CaptchaLayer, CaptchaVerified, Client, SceneId};
use tracing::span;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

async fn serve(layer: CaptchaLayer<Client>) -> SocketAddr {
    let handler = post(|_verified: CaptchaVerified| async {
        tracing::info!("handler ran");
        "in"
    });
    let app = Router::new().route("/login", handler.layer(layer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn login(addr: SocketAddr, param: &str) -> u16 {
    let http: HyperClient<HttpConnector, Full<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build(HttpConnector::new());
    let request = Request::post(format!("http://{addr}/login"))
        .header("x-captcha-verify-param", param)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = http.request(request).await.unwrap();
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    status
}

/// What the subscriber saw, in order.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl<S> tracing_subscriber::Layer<S> for Seen
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, _attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        let parent = span.parent().map(|p| p.name()).unwrap_or("-");
        self.0
            .lock()
            .unwrap()
            .push(format!("new {} in {parent}", span.name()));
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        let name = ctx.span(&id).unwrap().name();
        self.0.lock().unwrap().push(format!("close {name}"));
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let scope: Vec<&str> = ctx
            .event_scope(event)
            .map(|scope| scope.from_root().map(|s| s.name()).collect())
            .unwrap_or_default();
        self.0
            .lock()
            .unwrap()
            .push(format!("event {} in [{}]", message.0, scope.join(" > ")));
    }
}

#[test]
fn the_client_span_nests_under_the_layer_span_which_closes_with_the_verdict() {
    let seen = Seen::default();
    let subscriber = tracing_subscriber::registry()
        .with(seen.clone())
        .with(tracing_subscriber::filter::LevelFilter::DEBUG);
    tracing::subscriber::set_global_default(subscriber).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let emulator = emulator().await;
            let layer = CaptchaLayer::new(client_for(&emulator), SceneId::new(LOGIN).unwrap());
            let addr = serve(layer).await;
            assert_eq!(
                login(addr, &emulator.mint(Mint::pass()).unwrap()).await,
                200
            );
        });
    let seen = seen.0.lock().unwrap().clone();
    let position = |line: &str| {
        seen.iter()
            .position(|l| l.starts_with(line))
            .unwrap_or_else(|| panic!("no {line:?} in {seen:#?}"))
    };
    position("new captcha.verify in captcha.verify_request");
    let passed = position("event captcha passed in [captcha.verify_request]");
    let closed = position("close captcha.verify_request");
    let handler = position("event handler ran in [");
    assert!(passed < closed && closed < handler, "{seen:#?}");
    assert!(
        !seen[handler].contains("captcha"),
        "the handler ran inside the layer's span: {}",
        seen[handler]
    );
}

//! The throughput scenarios: `sign`, `client`, `layer`, `layer-json` and `soak`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tower_aliyun_captcha::extract::{Header, JsonField};
use tower_aliyun_captcha::layer::Route;
use tower_aliyun_captcha::{
    CaptchaLayer, CaptchaVerifyParam, Client, Credentials, SceneId, VerifyRequest,
};

use crate::measure::{descriptor_census, drive, line, open_fds, round3, rss_kib};
use crate::upstream::{Http, Lanes, SCENE, Upstream, http_client};

/// Signing through the client's own path, `Client::signed_request`: the form body, its hash,
/// a fresh nonce and date, the canonical request, the HMAC and the headers, as `verify` sends
/// them. No I/O; `benches/sign.rs` is the criterion twin.
pub fn sign(requests: usize) -> Result<Vec<Value>, String> {
    let client = Client::builder()
        .credentials(Credentials::new(
            "LTAI5tExampleAccessKeyId",
            "ExampleAccessKeySecret0123456789",
        ))
        .build()
        .map_err(|e| e.to_string())?;
    // A V3 param of the usual size (296 bytes).
    let param = format!(
        "{}fQ==",
        "eyJjZXJ0aWZ5SWQiOiJhYmMxMjMiLCJzY2VuZUlkIjoiMWV6eDhweW4iLCJpc1NpZ24iOnRy".repeat(4)
    );
    let request = VerifyRequest::new(CaptchaVerifyParam::new(param).map_err(|e| e.to_string())?)
        .with_scene(SceneId::new(SCENE).map_err(|e| e.to_string())?);
    let started = Instant::now();
    for _ in 0..requests {
        let signed = client
            .signed_request(std::hint::black_box(&request))
            .map_err(|e| e.to_string())?;
        std::hint::black_box(signed);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(vec![json!({
        "scenario": "sign",
        "requests": requests,
        "concurrency": 1,
        "seconds": round3(seconds),
        "per_second": (requests as f64 / seconds).round(),
        "ns_per_op": (seconds * 1e9 / requests as f64).round(),
        "rss_kib": rss_kib(),
    })])
}

/// N verifications through our client at concurrency C.
pub async fn client(
    upstream: Arc<Upstream>,
    requests: usize,
    concurrency: usize,
) -> Result<Vec<Value>, String> {
    let client = upstream.client(concurrency);
    let params = Arc::new(upstream.mint_many(requests).await?);
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
                Err(error) => Err(error.label().to_owned()),
            }
        }
    })
    .await;
    // Only the connections our client opened during the run (the emulator counts all).
    let opened = upstream
        .connections()
        .await
        .saturating_sub(connections_before);
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
            CaptchaLayer::builder(client, Route::every_path(scene))
                .extractor(JsonField::default())
                .build()
                .map_err(|e| e.to_string())?,
        )
    } else {
        post(handler).layer(
            CaptchaLayer::builder(client, Route::every_path(scene))
                .extractor(Header::default())
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

/// An axum app with a protected route and an identical unprotected one, both driven at
/// concurrency C by a hyper client; one line per route, the protected one with the ratio.
/// With `json_body`, the param travels in a 1 KiB JSON body instead of a header.
pub async fn layer(
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
        let params = Arc::new(upstream.mint_many(requests).await?);
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
        let opened = upstream.connections().await.saturating_sub(before);
        let mut value = line(name, concurrency, outcome, seconds, opened);
        value["route"] = json!(path.trim_start_matches('/'));
        per_second.push(value["per_second"].as_f64().unwrap_or(0.0));
        lines.push(value);
    }
    if per_second[0] > 0.0 {
        lines[1]["ratio_to_open"] = json!(round3(per_second[1] / per_second[0]));
    }
    Ok(lines)
}

/// N protected requests at concurrency C; after a warm-up, lines at the start, middle and end
/// with RSS and open file descriptors, then a summary with errors by kind.
pub async fn soak(
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
    let connections = upstream.connections().await;
    let mut summary = line("soak", concurrency, total, seconds, connections);
    for (name, value) in [("start", &start), ("middle", &middle), ("end", &end)] {
        summary[format!("rss_kib_{name}")] = value["rss_kib"].clone();
        summary[format!("open_fds_{name}")] = value["open_fds"].clone();
        summary[format!("sockets_{name}")] = value["sockets"].clone();
    }
    Ok(vec![summary])
}

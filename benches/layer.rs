//! The layer's own cost, in process: the same handler bare and behind `CaptchaLayer`, with an
//! in-memory verifier that answers at once. The difference is the layer's overhead.

use std::convert::Infallible;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{ServiceBuilder, ServiceExt};
use tower_aliyun_captcha::extract::{CaptchaBody, JsonField};
use tower_aliyun_captcha::layer::Route;
use tower_aliyun_captcha::{CaptchaLayer, Error, SceneId, Verification, VerifyCode, VerifyRequest};

/// Passes every param at once, without I/O.
fn instant_pass(_request: VerifyRequest) -> std::future::Ready<Result<Verification, Error>> {
    std::future::ready(Ok(Verification::pass(VerifyCode::T001, "local")))
}

/// Reads the body, as a JSON handler would, and answers.
async fn handler<B>(request: Request<B>) -> Result<Response<Full<Bytes>>, Infallible>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let body = request.into_body().collect().await.unwrap().to_bytes();
    std::hint::black_box(body);
    Ok(Response::new(Full::new(Bytes::new())))
}

const PARAM: &str = "eyJjZXJ0aWZ5SWQiOiJhYmMxMjMiLCJzY2VuZUlkIjoiMWV6eDhweW4iLCJpc1NpZ24iOnRydWUsInNlY3VyaXR5VG9rZW4iOiJ4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4In0=";

fn header_request() -> Request<Full<Bytes>> {
    Request::post("/login")
        .header("x-captcha-verify-param", PARAM)
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap()
}

fn json_request(body: &Bytes) -> Request<Full<Bytes>> {
    Request::post("/login")
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(Full::new(body.clone()))
        .unwrap()
}

/// A 1 KiB JSON body with the param among other fields.
fn json_body() -> Bytes {
    let mut body = format!(
        r#"{{"username":"ann","password":"hunter2","captchaVerifyParam":"{PARAM}","note":""#
    );
    while body.len() < 1022 {
        body.push('x');
    }
    body.push_str("\"}");
    Bytes::from(body)
}

fn overhead(c: &mut Criterion) {
    // The layer bounds body reads with a timer, as any server runtime has.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let scene = SceneId::new("1ezx8pyn").unwrap();

    let bare = tower::service_fn(handler::<Full<Bytes>>);
    let with_header = ServiceBuilder::new()
        .layer(CaptchaLayer::new(instant_pass, scene.clone()))
        .service_fn(handler::<CaptchaBody<Full<Bytes>>>);
    let with_json = ServiceBuilder::new()
        .layer(
            CaptchaLayer::builder(instant_pass, Route::every_path(scene))
                .extractor(JsonField::default())
                .build()
                .unwrap(),
        )
        .service_fn(handler::<CaptchaBody<Full<Bytes>>>);
    let body = json_body();
    assert_eq!(body.len(), 1024);

    let mut group = c.benchmark_group("layer");
    group.bench_function("bare_header", |b| {
        b.to_async(&runtime).iter(|| bare.oneshot(header_request()))
    });
    group.bench_function("protected_header", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = with_header.clone().oneshot(header_request()).await.unwrap();
            assert_eq!(response.status(), 200);
        })
    });
    group.bench_function("bare_json_1k", |b| {
        b.to_async(&runtime)
            .iter(|| bare.oneshot(json_request(&body)))
    });
    group.bench_function("protected_json_1k", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = with_json
                .clone()
                .oneshot(json_request(&body))
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        })
    });
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);

//! Allocations per verification, counted rather than timed (so a busy machine does not change
//! them): `Client::verify` against the emulator over loopback, the client on one thread and the
//! emulator on another, each with a current-thread runtime; and the layer alone, in front of an
//! in-memory verifier, with the param in a header and in a 1 KiB JSON body. Prints a table.
//!
//! `cargo bench -p captcha-benches --bench allocs`

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;

use aliyun_captcha_emulator::{Emulator, Mint};
use bytes::Bytes;
use http_body_util::Full;
use tower::{Service, ServiceExt};
use tower_aliyun_captcha::extract::CaptchaBody;
use tower_aliyun_captcha::{
    CaptchaLayer, CaptchaVerifyParam, Client, Credentials, SceneId, Verification, VerifyCode,
    VerifyRequest,
};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

fn count(size: usize) {
    // `try_with`: a thread being torn down has no counters left; its allocations go uncounted.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    let _ = BYTES.try_with(|n| n.set(n.get() + size as u64));
}

// SAFETY: every call goes straight to the system allocator; counting touches only
// const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn snapshot() -> (u64, u64) {
    (ALLOCATIONS.with(Cell::get), BYTES.with(Cell::get))
}

const KEY_ID: &str = "LTAI5tBenchKeyId";
const KEY_SECRET: &str = "BenchSecret-0123456789abcdef";
const SCENE: &str = "bench-scene";
const ROUNDS: u64 = 2_000;

fn main() {
    println!("| what | allocations per request | bytes per request |");
    println!("|---|---:|---:|");
    client_and_emulator();
    layer_alone();
}

/// The emulator on a thread of its own, counting there; the client here.
fn client_and_emulator() {
    let (setup_tx, setup_rx) = std::sync::mpsc::channel::<(String, Vec<String>)>();
    let (signal_tx, mut signal_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let (counted_tx, counted_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let emulator = Emulator::builder()
                .access_key(KEY_ID, KEY_SECRET)
                .scene(SCENE)
                .start("127.0.0.1:0")
                .await
                .unwrap();
            let params = (0..ROUNDS + 200)
                .map(|_| emulator.mint(Mint::pass()).unwrap())
                .collect();
            setup_tx.send((emulator.url(), params)).unwrap();
            // Every task of this runtime (the server's connections too) runs on this thread.
            signal_rx.recv().await.unwrap();
            let before = snapshot();
            signal_rx.recv().await.unwrap();
            counted_tx.send((before, snapshot())).unwrap();
            std::future::pending::<()>().await;
        });
    });
    let (url, params) = setup_rx.recv().unwrap();
    let mut params = params.into_iter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = Client::builder()
            .credentials(Credentials::new(KEY_ID, KEY_SECRET))
            .endpoint(url)
            .allow_http(true)
            .build()
            .unwrap();
        let scene = SceneId::new(SCENE).unwrap();
        let verify = |param: String| {
            let request = VerifyRequest::new(CaptchaVerifyParam::new(param).unwrap())
                .with_scene(scene.clone());
            client.verify(request)
        };
        for _ in 0..200 {
            assert!(verify(params.next().unwrap()).await.unwrap().passed());
        }
        signal_tx.send(()).unwrap();
        let before = snapshot();
        for _ in 0..ROUNDS {
            assert!(verify(params.next().unwrap()).await.unwrap().passed());
        }
        let after = snapshot();
        signal_tx.send(()).unwrap();
        row(
            "Client::verify: the client (sign, send, parse; hyper's tasks)",
            before,
            after,
        );
    });
    let (before, after) = counted_rx.recv().unwrap();
    row(
        "Client::verify: the emulator (hyper's server, routing, checks, verdict)",
        before,
        after,
    );
}

fn row(what: &str, before: (u64, u64), after: (u64, u64)) {
    println!(
        "| {what} | {:.1} | {:.0} |",
        (after.0 - before.0) as f64 / ROUNDS as f64,
        (after.1 - before.1) as f64 / ROUNDS as f64
    );
}

/// The layer in front of a verifier that answers at once, on this thread.
fn layer_alone() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pass = |_: VerifyRequest| async { Ok(Verification::pass(VerifyCode::T001, "bench")) };
        let layer = CaptchaLayer::new(pass, SceneId::new(SCENE).unwrap());
        let mut service = tower::ServiceBuilder::new().layer(layer).service_fn(
            |_: http::Request<CaptchaBody<Full<Bytes>>>| async {
                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::new())))
            },
        );
        let param = "eyJ4IjoxfQ==".repeat(8);
        let json = format!(
            r#"{{"user":"ann","padding":"{}","captchaVerifyParam":"{param}"}}"#,
            "x".repeat(1024 - 60 - param.len())
        );
        for (what, with_header) in [
            ("layer, param in a header", true),
            ("layer, 1 KiB JSON body", false),
        ] {
            let make = || {
                let builder = http::Request::post("/login");
                if with_header {
                    builder
                        .header("x-captcha-verify-param", param.as_str())
                        .body(Full::new(Bytes::new()))
                        .unwrap()
                } else {
                    builder
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(json.clone())))
                        .unwrap()
                }
            };
            for _ in 0..100 {
                service.ready().await.unwrap().call(make()).await.unwrap();
            }
            let requests: Vec<_> = (0..ROUNDS).map(|_| make()).collect();
            let before = snapshot();
            for request in requests {
                service.ready().await.unwrap().call(request).await.unwrap();
            }
            let after = snapshot();
            row(what, before, after);
        }
    });
}

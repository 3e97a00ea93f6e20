//! Context switches, connections and CPU time per sequential verification, read from
//! `/proc/self/task/*` for the client's runtime threads only (the emulator runs on a thread of
//! its own, named apart): `Client::verify` on a current-thread runtime, and in a spawned task
//! on a two-worker multi-thread runtime (as in a server). Switch counts change little with the
//! machine's load; the CPU time does. Prints a table.
//!
//! `cargo bench -p captcha-benches --bench wakeups`

use std::time::Instant;

use aliyun_captcha_emulator::{Emulator, Mint};
use tower_aliyun_captcha::{CaptchaVerifyParam, Client, Credentials, SceneId, VerifyRequest};

const KEY_ID: &str = "LTAI5tBenchKeyId";
const KEY_SECRET: &str = "BenchSecret-0123456789abcdef";
const SCENE: &str = "bench-scene";
const ROUNDS: usize = 4_000;
const WARM_UP: usize = 200;
const CLIENT_THREADS: &str = "bench-client";

/// Switches (voluntary, involuntary) and CPU nanoseconds of the client's threads so far.
fn client_threads() -> (u64, u64, u64) {
    let (mut voluntary, mut involuntary, mut cpu) = (0, 0, 0);
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !comm.trim().starts_with(CLIENT_THREADS) {
            continue;
        }
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        for line in status.lines() {
            let number = |prefix: &str| {
                line.strip_prefix(prefix)
                    .map(|n| n.trim().parse::<u64>().unwrap())
            };
            if let Some(n) = number("voluntary_ctxt_switches:") {
                voluntary += n;
            }
            if let Some(n) = number("nonvoluntary_ctxt_switches:") {
                involuntary += n;
            }
        }
        let schedstat = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
        cpu += schedstat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
    (voluntary, involuntary, cpu)
}

fn main() {
    let (setup_tx, setup_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("bench-emulator".into())
        .spawn(move || {
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
                let emulator = std::sync::Arc::new(emulator);
                setup_tx.send(std::sync::Arc::clone(&emulator)).unwrap();
                std::future::pending::<()>().await;
            });
        })
        .unwrap();
    let emulator = setup_rx.recv().unwrap();

    println!(
        "| runtime | connections opened | switches per verification (voluntary + involuntary) | client CPU µs per verification | wall µs per verification |"
    );
    println!("|---|---:|---:|---:|---:|");
    for multi_thread in [false, true] {
        let runtime = if multi_thread {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name(CLIENT_THREADS)
                .enable_all()
                .build()
                .unwrap()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .thread_name(CLIENT_THREADS)
                .enable_all()
                .build()
                .unwrap()
        };
        let params: Vec<String> = (0..ROUNDS + WARM_UP)
            .map(|_| emulator.mint(Mint::pass()).unwrap())
            .collect();
        let emulator = std::sync::Arc::clone(&emulator);
        // The loop runs in a task on the runtime's threads (current-thread: on a thread of the
        // same name, so that block_on's thread is the client's too).
        let url = emulator.url();
        let run = async move {
            let client = Client::builder()
                .credentials(Credentials::new(KEY_ID, KEY_SECRET))
                .endpoint(url)
                .allow_http(true)
                .build()
                .unwrap();
            let scene = SceneId::new(SCENE).unwrap();
            let mut params = params.into_iter();
            let mut verify = async || {
                let request =
                    VerifyRequest::new(CaptchaVerifyParam::new(params.next().unwrap()).unwrap())
                        .with_scene(scene.clone());
                assert!(client.verify(request).await.unwrap().passed());
            };
            let connections = emulator.stats().connections;
            for _ in 0..WARM_UP {
                verify().await;
            }
            let before = client_threads();
            let started = Instant::now();
            for _ in 0..ROUNDS {
                verify().await;
            }
            let wall = started.elapsed();
            let after = client_threads();
            let opened = emulator.stats().connections - connections;
            (opened, before, after, wall)
        };
        let (opened, before, after, wall) = if multi_thread {
            runtime.block_on(async { tokio::spawn(run).await.unwrap() })
        } else {
            std::thread::Builder::new()
                .name(CLIENT_THREADS.into())
                .spawn(move || runtime.block_on(run))
                .unwrap()
                .join()
                .unwrap()
        };
        let per = |n: u64| n as f64 / ROUNDS as f64;
        println!(
            "| {} | {} ({WARM_UP} warm-up + {ROUNDS}) | {:.2} + {:.2} | {:.1} | {:.1} |",
            if multi_thread {
                "multi-thread, 2 workers, spawned task"
            } else {
                "current-thread"
            },
            opened,
            per(after.0 - before.0),
            per(after.1 - before.1),
            per(after.2 - before.2) / 1000.0,
            wall.as_secs_f64() * 1e6 / ROUNDS as f64,
        );
    }
}

//! End-to-end benchmark against the emulator (or a real endpoint). Prints one JSON object per
//! run:
//! `{"scenario", "requests", "concurrency", "seconds", "per_second", "p50_us", "p99_us",
//!   "upstream_connections", "rss_kib"}`.
//!
//! ```text
//! cargo run --release --example bench -- [--scenario client] [--requests N] [--concurrency C]
//!     [--endpoint URL]
//! ```
//!
//! Scenarios so far: `client` (N verifications through our client at concurrency C). With
//! `--endpoint`, credentials come from the `ALIBABA_CLOUD_*` variables and params are taken as
//! given by `--param` (real params are single-use, so this mode fits only the emulator).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;
use tower_aliyun_captcha::client::Client;
use tower_aliyun_captcha::emulator::{Emulator, Mint};
use tower_aliyun_captcha::{CaptchaVerifyParam, Credentials, SceneId, VerifyRequest};

struct Args {
    scenario: String,
    requests: usize,
    concurrency: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        scenario: "client".into(),
        requests: 10_000,
        concurrency: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--scenario" => args.scenario = value()?,
            "--requests" => {
                args.requests = value()?.parse().map_err(|e| format!("--requests: {e}"))?
            }
            "--concurrency" => {
                args.concurrency = value()?
                    .parse()
                    .map_err(|e| format!("--concurrency: {e}"))?
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.concurrency == 0 || args.requests < args.concurrency {
        return Err("need requests >= concurrency >= 1".into());
    }
    Ok(args)
}

/// Resident set size of this process, from /proc (0 where unavailable).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> u128 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_micros()
}

async fn client_scenario(args: &Args) -> serde_json::Value {
    let credentials = Credentials::new("LTAIbench", "bench-secret");
    let emulator = Emulator::builder()
        .credentials(&credentials)
        .scene("bench-scene")
        .start("127.0.0.1:0")
        .await
        .expect("the emulator starts");
    let client = Client::builder()
        .credentials(credentials)
        .endpoint(emulator.url())
        .allow_http(true)
        .max_connections(args.concurrency)
        .build()
        .expect("the client builds");
    let scene = SceneId::new("bench-scene").unwrap();
    let per_worker = args.requests / args.concurrency;
    // Params are minted up front so the timed loop measures verification only.
    let batches: Vec<Vec<CaptchaVerifyParam>> = (0..args.concurrency)
        .map(|_| {
            (0..per_worker)
                .map(|_| CaptchaVerifyParam::new(emulator.mint(Mint::pass()).unwrap()).unwrap())
                .collect()
        })
        .collect();
    let started = Instant::now();
    let mut workers = Vec::new();
    for batch in batches {
        let (client, scene) = (client.clone(), scene.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(batch.len());
            for param in batch {
                let begun = Instant::now();
                let verdict = client
                    .verify(VerifyRequest::new(param).with_scene(scene.clone()))
                    .await;
                assert!(verdict.expect("verification succeeds").passed());
                latencies.push(begun.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(args.requests);
    for worker in workers {
        latencies.extend(worker.await.expect("worker finished"));
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let stats = emulator.stats();
    json!({
        "scenario": "client",
        "requests": latencies.len(),
        "concurrency": args.concurrency,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "per_second": (latencies.len() as f64 / seconds).round(),
        "p50_us": percentile(&latencies, 0.50),
        "p99_us": percentile(&latencies, 0.99),
        "upstream_connections": stats.connections,
        "rss_kib": rss_kib(),
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("bench: {message}");
            return ExitCode::from(2);
        }
    };
    let line = match args.scenario.as_str() {
        "client" => client_scenario(&args).await,
        other => {
            eprintln!("bench: scenario {other:?} is not implemented yet (only \"client\")");
            return ExitCode::from(2);
        }
    };
    println!("{line}");
    ExitCode::SUCCESS
}

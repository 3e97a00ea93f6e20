//! End-to-end benchmarks over loopback sockets, printing one JSON object per line:
//! `{"scenario", "requests", "concurrency", "seconds", "per_second", "p50_us", "p99_us",
//!   "upstream_connections", "rss_kib", …}`.
//!
//! ```text
//! cargo run --release -p captcha-loadgen -- [--scenario sign|client|layer|layer-json|soak|floor]
//!     [--requests N] [--concurrency C] [--endpoint URL] [--emulator-pid PID]
//! ```
//!
//! - `sign`: N requests built and signed by `Client::signed_request` (no I/O), timed in this
//!   run; `benches/sign.rs` is the criterion twin.
//! - `client`: N verifications through our client at concurrency C.
//! - `layer`: an axum app with a protected route and an identical unprotected one, both driven
//!   at concurrency C by a hyper client; one line per route, the protected one with the ratio.
//! - `layer-json`: the same with the param in a 1 KiB JSON body.
//! - `soak`: N protected requests (default 1,000,000) at concurrency C (default 256); after a
//!   warm-up, lines at the start, middle and end with RSS and open file descriptors, then a
//!   summary with errors by kind.
//! - `floor`: the loopback floor between two processes and a ladder of steps up to a
//!   sequential verification, N round trips each (default 20,000); see `floor.rs`.
//!
//! By default the emulator runs in this process (for `floor`, in a peer process). `--endpoint
//! URL` uses an emulator started apart (`cargo run --release --example emulator`), minting
//! params over its HTTP API, with credentials from `ALIBABA_CLOUD_*`: then RSS measures only
//! the app, the layer and the client.

mod floor;
mod measure;
mod scenarios;
mod upstream;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use serde_json::Value;

use crate::upstream::Upstream;

/// Load generator, soak and loopback floor for tower-aliyun-captcha. Prints one JSON object
/// per line.
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Args {
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Scenario::Client)]
    scenario: Scenario,
    /// Requests to make [default: 1,000,000 for soak, 200,000 for sign, 20,000 round trips
    /// per step for floor, 10,000 otherwise].
    #[arg(long)]
    requests: Option<usize>,
    /// Requests in flight [default: 256 for soak, 1 otherwise; floor is always sequential].
    #[arg(long)]
    concurrency: Option<usize>,
    /// An emulator started apart, as `http://HOST:PORT`, with credentials from
    /// `ALIBABA_CLOUD_ACCESS_KEY_ID` and `ALIBABA_CLOUD_ACCESS_KEY_SECRET`.
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// The process id of the emulator at `--endpoint`, for `floor` to read its CPU time.
    #[arg(long, value_name = "PID", requires = "endpoint")]
    emulator_pid: Option<u32>,
    /// Serve as the floor's peer process (started by `--scenario floor` itself).
    #[arg(long, hide = true)]
    floor_peer: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Sign,
    Client,
    Layer,
    LayerJson,
    Soak,
    Floor,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = if args.floor_peer {
        floor::serve_peer()
    } else {
        run(args)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("loadgen: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let soak = args.scenario == Scenario::Soak;
    let requests = args.requests.unwrap_or(match args.scenario {
        Scenario::Soak => 1_000_000,
        Scenario::Sign => 200_000,
        Scenario::Floor => 20_000,
        _ => 10_000,
    });
    let concurrency = args
        .concurrency
        .unwrap_or(if soak { 256 } else { 1 })
        .max(1);
    match args.scenario {
        // Sequential and timed step by step, each step on a runtime of its own.
        Scenario::Floor => {
            return floor::run(
                requests,
                floor::Target {
                    endpoint: args.endpoint,
                    emulator_pid: args.emulator_pid,
                },
            );
        }
        Scenario::Sign => return print(scenarios::sign(requests)?),
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let lines = runtime.block_on(async {
        let upstream = Arc::new(Upstream::start(args.endpoint).await?);
        match args.scenario {
            Scenario::Client => scenarios::client(upstream, requests, concurrency).await,
            Scenario::Layer => scenarios::layer(upstream, requests, concurrency, false).await,
            Scenario::LayerJson => scenarios::layer(upstream, requests, concurrency, true).await,
            Scenario::Soak => scenarios::soak(upstream, requests, concurrency).await,
            Scenario::Sign | Scenario::Floor => unreachable!("handled above"),
        }
    })?;
    print(lines)
}

fn print(lines: Vec<Value>) -> Result<(), String> {
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

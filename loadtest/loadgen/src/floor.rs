//! The loopback floor, and a ladder from it up to a sequential verification.
//!
//! Every step is sequential: one request in flight, a fixed number of round trips after a
//! warm-up, each timed on its own. The peer is always another process, so each step crosses
//! the same loopback between two processes; what changes from one step to the next is one
//! layer of machinery on top:
//!
//! - `a`: a blocking client writes 700 bytes and reads a 300-byte answer from a blocking
//!   server (a thread per connection), `TCP_NODELAY` on both ends: the floor. Then the same
//!   with both ends pinned to one CPU (`a.1cpu`) and to two (`a.2cpu`), since where the
//!   scheduler puts the two ends decides most of it; and once more at the end (`a.again`).
//! - `b*`: the same ping-pong from a Tokio client (current-thread, then multi-thread with the
//!   loop in a spawned task, as in a server's handler), then against a Tokio server too:
//!   what the runtimes' wake-ups add.
//! - `c*`: HTTP/1 POSTs of 700 bytes to a trivial hyper server (hyper-util's `auto` builder,
//!   as the emulator uses) answering 300 bytes: hyper's connection driven in the caller's own
//!   task, then in a task of its own (the dispatch hop), then hyper-util's pooled legacy
//!   client (what the crate uses), then the same client against the emulator's own server
//!   (`GET /emulator/stats`, no verification work).
//! - `d*`: a real verification against the emulator process: the crate's signed request sent
//!   by a bare hyper-util client (`d0`), then with what the crate's transport adds around that
//!   client, one at a time (`d0y`: a `yield_now` after the answer; `d0yt`: and a deadline),
//!   then `Client::verify` itself on each kind of runtime (`d1`, `d2`).
//!
//! Each line also has the CPU time and context switches per round trip of both processes,
//! summed over their threads from `/proc/PID/task/*/sched`, and how much CPU everything else
//! on the machine used meanwhile (`others_cpu_pct`, of one CPU) and the hypervisor's steal.
//!
//! The peer process is this binary again (`--floor-peer`): a blocking echo server, a Tokio
//! echo server and the trivial hyper server on one multi-thread runtime, and, unless
//! `--endpoint` names an emulator process, an emulator on that runtime too.

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aliyun_captcha_emulator::Emulator;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_aliyun_captcha::{CaptchaVerifyParam, Credentials, SceneId, VerifyRequest};

use crate::measure::{Machine, Pinned, Usage, nanos, round3};
use crate::upstream::{SCENE, Upstream, bench_credentials};

/// What the client sends and the server answers, in every step's ping-pong or HTTP body.
const OUT: usize = 700;
const BACK: usize = 300;
static OUT_BYTES: [u8; OUT] = [b'o'; OUT];
static BACK_BYTES: [u8; BACK] = [b'b'; BACK];

/// Where the floor's verifications go: the emulator process at `--endpoint` (its id from
/// `--emulator-pid`, for its CPU time), or else the peer's own emulator.
pub struct Target {
    pub endpoint: Option<String>,
    pub emulator_pid: Option<u32>,
}

/// Runs the ladder, printing each step's line as soon as it is measured.
pub fn run(round_trips: usize, target: Target) -> Result<(), String> {
    let round_trips = round_trips.max(1);
    let warm = (round_trips / 10).clamp(200, 2_000);
    let peer = Peer::spawn()?;
    let (url, credentials, emulator_pid) = match target.endpoint {
        Some(url) => (
            url,
            Credentials::from_env().map_err(|e| e.to_string())?,
            target.emulator_pid,
        ),
        None => (peer.emulator.clone(), bench_credentials(), Some(peer.pid())),
    };
    let pid = Some(peer.pid());
    let n = round_trips;
    let print = |step: &str, what: &str, measured: Measured| {
        println!("{}", measured.line(step, what));
    };

    print(
        "a",
        "blocking client, blocking server (the floor)",
        blocking_ping(peer.blocking, None, warm, n, pid)?,
    );
    // The same with both ends held to one CPU, then to two: whether the scheduler put them
    // together or apart is most of the floor's spread from run to run.
    if let Some(&same) = peer.pinned.first() {
        print(
            "a.1cpu",
            "the floor, both ends on CPU 0",
            blocking_ping(same, Some(0), warm, n, pid)?,
        );
    }
    if let Some(&apart) = peer.pinned.get(1) {
        print(
            "a.2cpu",
            "the floor, client on CPU 0, server on CPU 1",
            blocking_ping(apart, Some(0), warm, n, pid)?,
        );
    }
    let to = peer.blocking;
    print(
        "b1",
        "Tokio current-thread client, blocking server",
        on_runtime(Flavor::Current, tokio_ping(to, warm, n, pid))?,
    );
    print(
        "b2",
        "Tokio multi-thread client (spawned task), blocking server",
        on_runtime(Flavor::Multi, tokio_ping(to, warm, n, pid))?,
    );
    let to = peer.tokio;
    print(
        "b3",
        "Tokio multi-thread client, Tokio multi-thread server",
        on_runtime(Flavor::Multi, tokio_ping(to, warm, n, pid))?,
    );
    let to = peer.hyper;
    print(
        "c1",
        "hyper HTTP/1 connection polled in the caller's task (current-thread), hyper server",
        on_runtime(Flavor::Current, hyper_inline(to, warm, n, pid))?,
    );
    print(
        "c2",
        "hyper HTTP/1 connection in a task of its own (current-thread), hyper server",
        on_runtime(Flavor::Current, hyper_spawned(to, warm, n, pid))?,
    );
    print(
        "c3",
        "hyper-util legacy pooled client (current-thread), hyper server",
        on_runtime(Flavor::Current, legacy_post(to, warm, n, pid))?,
    );
    print(
        "c4",
        "hyper-util legacy pooled client (multi-thread), hyper server",
        on_runtime(Flavor::Multi, legacy_post(to, warm, n, pid))?,
    );
    // A fresh handle per step: its pooled connections belong to that step's runtime.
    let emulator = || Arc::new(Upstream::external(url.clone(), credentials.clone()));
    print(
        "c5",
        "hyper-util legacy pooled client (multi-thread), emulator's GET /emulator/stats",
        on_runtime(
            Flavor::Multi,
            legacy_stats(emulator(), warm, n, emulator_pid),
        )?,
    );
    let by_hand = [
        (
            "d0",
            "the crate's signed request sent by that client (multi-thread), emulator verifies",
            false,
            false,
        ),
        (
            "d0y",
            "d0 + tokio::task::yield_now() after every answer (the crate now yields only when hyper spawned a task)",
            true,
            false,
        ),
        (
            "d0yt",
            "d0y + a tokio::time::timeout around the request, like the crate's deadline",
            true,
            true,
        ),
    ];
    for (step, what, yield_after, deadline) in by_hand {
        let extras = Extras {
            yield_after,
            deadline,
        };
        print(
            step,
            what,
            on_runtime(
                Flavor::Multi,
                signed_by_hand(emulator(), warm, n, emulator_pid, extras),
            )?,
        );
    }
    print(
        "d1",
        "Client::verify (current-thread), emulator",
        on_runtime(Flavor::Current, verify(emulator(), warm, n, emulator_pid))?,
    );
    print(
        "d2",
        "Client::verify (multi-thread, spawned task), emulator",
        on_runtime(Flavor::Multi, verify(emulator(), warm, n, emulator_pid))?,
    );
    print(
        "a.again",
        "the floor again, after the other steps",
        blocking_ping(peer.blocking, None, warm, n, pid)?,
    );
    drop(peer);
    Ok(())
}

/// One step's round-trip latencies and what both processes spent on them.
struct Measured {
    /// Nanoseconds.
    latencies: Histogram<u64>,
    seconds: f64,
    client: Option<Usage>,
    server: Option<Usage>,
    /// Other processes' CPU time and the hypervisor's steal, in nanoseconds.
    machine: (f64, f64),
    extra: Map<String, Value>,
}

impl Measured {
    fn line(&self, step: &str, what: &str) -> Value {
        let count = self.latencies.len();
        let us = |ns: f64| (ns / 10.0).round() / 100.0;
        let per_trip = |usage: Option<Usage>| {
            usage.map(|u| {
                (
                    us(u.cpu_ns / count as f64),
                    round3(u.switches as f64 / count as f64),
                )
            })
        };
        let client = per_trip(self.client);
        let server = per_trip(self.server);
        // What the rest of the machine did meanwhile, in % of one CPU: with a busy neighbour
        // (a build, say) or the hypervisor's steal, the step measures more than the code.
        let (others, steal) = self.machine;
        let percent = |ns: f64| (ns / (self.seconds * 1e9) * 1000.0).round() / 10.0;
        let mut line = json!({
            "scenario": "floor",
            "step": step,
            "what": what,
            "requests": count,
            "concurrency": 1,
            "seconds": round3(self.seconds),
            "per_second": (count as f64 / self.seconds).round(),
            "p50_us": us(self.latencies.value_at_quantile(0.50) as f64),
            "p99_us": us(self.latencies.value_at_quantile(0.99) as f64),
            "mean_us": us(self.latencies.mean()),
            "min_us": us(self.latencies.min() as f64),
            "client_cpu_us": client.map(|c| c.0),
            "client_switches": client.map(|c| c.1),
            "server_cpu_us": server.map(|s| s.0),
            "server_switches": server.map(|s| s.1),
            "others_cpu_pct": percent(others),
            "steal_pct": percent(steal),
        });
        for (key, value) in &self.extra {
            line[key] = value.clone();
        }
        line
    }
}

/// Reads both processes' usage, and the rest of the machine's, when the timed part of a step
/// starts and again when it ends.
struct Meter {
    started: Instant,
    client: Option<Usage>,
    server_pid: Option<u32>,
    server: Option<Usage>,
    machine: Machine,
}

impl Meter {
    fn start(server_pid: Option<u32>) -> Self {
        // The scan of every process first, so its cost falls outside our own window.
        let machine = Machine::now(server_pid);
        let server = server_pid.and_then(|pid| Usage::of(Some(pid)));
        let client = Usage::of(None);
        Self {
            started: Instant::now(),
            client,
            server_pid,
            server,
            machine,
        }
    }

    fn stop(self, latencies: Histogram<u64>) -> Measured {
        let seconds = self.started.elapsed().as_secs_f64();
        let client = Usage::of(None);
        let server = self.server_pid.and_then(|pid| Usage::of(Some(pid)));
        let machine = Machine::now(self.server_pid).since(&self.machine);
        let since = |after: Option<Usage>, before: Option<Usage>| {
            after.zip(before).map(|(after, before)| after.since(before))
        };
        Measured {
            latencies,
            seconds,
            client: since(client, self.client),
            server: since(server, self.server),
            machine,
            extra: Map::new(),
        }
    }
}

fn elapsed_ns(begun: Instant) -> u64 {
    u64::try_from(begun.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// `$warm` untimed round trips, then `$n` timed ones; `$op` is a `Result` expression, run with
/// `$i` as the round trip's index (0 to warm + n). Evaluates to a `Measured`.
macro_rules! timed {
    ($warm:expr, $n:expr, $server:expr, |$i:ident| $op:expr) => {{
        for $i in 0..$warm {
            $op?;
        }
        let mut latencies = nanos();
        let meter = Meter::start($server);
        for $i in $warm..$warm + $n {
            let begun = Instant::now();
            $op?;
            latencies.saturating_record(elapsed_ns(begun).max(1));
        }
        meter.stop(latencies)
    }};
}

fn io(error: std::io::Error) -> String {
    error.to_string()
}

/// Step a: std's blocking sockets on this thread.
fn blocking_ping(
    to: SocketAddr,
    cpu: Option<usize>,
    warm: usize,
    n: usize,
    server: Option<u32>,
) -> Result<Measured, String> {
    let _pinned = cpu.map(Pinned::to).transpose().map_err(io)?;
    let mut stream = std::net::TcpStream::connect(to).map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    let mut back = [0u8; BACK];
    let mut once = || -> Result<(), String> {
        stream.write_all(&OUT_BYTES).map_err(io)?;
        stream.read_exact(&mut back).map_err(io)
    };
    Ok(timed!(warm, n, server, |_i| once()))
}

#[derive(Clone, Copy)]
enum Flavor {
    Current,
    Multi,
}

/// Runs `future` on a new runtime of that flavor: on the current thread, or in a task spawned
/// on a multi-thread runtime with one worker per core (as `#[tokio::main]` builds), as a
/// server's handler would run it.
fn on_runtime<T: Send + 'static>(
    flavor: Flavor,
    future: impl Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, String> {
    match flavor {
        Flavor::Current => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io)?
            .block_on(future),
        Flavor::Multi => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(io)?;
            runtime.block_on(async { tokio::spawn(future).await.map_err(|e| e.to_string())? })
        }
    }
}

/// Steps b: the same ping-pong with Tokio's sockets.
async fn tokio_ping(
    to: SocketAddr,
    warm: usize,
    n: usize,
    server: Option<u32>,
) -> Result<Measured, String> {
    let mut stream = tokio::net::TcpStream::connect(to).await.map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    let mut back = [0u8; BACK];
    Ok(timed!(warm, n, server, |_i| {
        async {
            stream.write_all(&OUT_BYTES).await.map_err(io)?;
            stream.read_exact(&mut back).await.map_err(io)
        }
        .await
    }))
}

/// The 700-byte POST. hyper's bare connection sends the URI as given, so it gets the origin
/// form (`/`) that hyper-util's pool would put on the wire; the pool wants the absolute form.
fn post_700(to: SocketAddr, absolute: bool) -> Request<Full<Bytes>> {
    let uri = if absolute {
        format!("http://{to}/")
    } else {
        "/".to_owned()
    };
    Request::post(uri)
        .header(http::header::HOST, to.to_string())
        .body(Full::new(Bytes::from_static(&OUT_BYTES)))
        .expect("a valid request")
}

/// Reads an answer whole; anything but a 200 with the expected body length is an error.
async fn answer(response: Response<Incoming>, length: Option<usize>) -> Result<Bytes, String> {
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if status != StatusCode::OK {
        return Err(format!("status {status}"));
    }
    match length {
        Some(length) if body.len() != length => {
            Err(format!("{} bytes instead of {length}", body.len()))
        }
        _ => Ok(body),
    }
}

async fn hyper_handshake(
    to: SocketAddr,
) -> Result<
    (
        hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        hyper::client::conn::http1::Connection<TokioIo<tokio::net::TcpStream>, Full<Bytes>>,
    ),
    String,
> {
    let stream = tokio::net::TcpStream::connect(to).await.map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())
}

/// Step c1: hyper's HTTP/1 client connection polled in the same task as the requests, so an
/// answer wakes the caller directly.
async fn hyper_inline(
    to: SocketAddr,
    warm: usize,
    n: usize,
    server: Option<u32>,
) -> Result<Measured, String> {
    let (mut sender, connection) = hyper_handshake(to).await?;
    let requests = async {
        Ok(timed!(warm, n, server, |_i| {
            async {
                sender.ready().await.map_err(|e| e.to_string())?;
                let response = sender
                    .send_request(post_700(to, false))
                    .await
                    .map_err(|e| e.to_string())?;
                answer(response, Some(BACK)).await
            }
            .await
        }))
    };
    tokio::select! {
        measured = requests => measured,
        ended = connection => Err(format!("the connection ended: {ended:?}")),
    }
}

/// Step c2: the same with the connection in a task of its own, as hyper's examples and
/// hyper-util's pool run it: each request and each answer crosses between two tasks.
async fn hyper_spawned(
    to: SocketAddr,
    warm: usize,
    n: usize,
    server: Option<u32>,
) -> Result<Measured, String> {
    let (mut sender, connection) = hyper_handshake(to).await?;
    tokio::spawn(connection);
    Ok(timed!(warm, n, server, |_i| {
        async {
            sender.ready().await.map_err(|e| e.to_string())?;
            let response = sender
                .send_request(post_700(to, false))
                .await
                .map_err(|e| e.to_string())?;
            answer(response, Some(BACK)).await
        }
        .await
    }))
}

/// hyper-util's pooled client, set up as the crate sets up its own (`TCP_NODELAY`, Tokio
/// timers), without TLS, proxies or the crate's connection cap.
fn legacy_client() -> LegacyClient<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    LegacyClient::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .build(connector)
}

/// Steps c3 and c4: the pooled client's POSTs to the trivial hyper server. The line counts the
/// connections the server accepted, to show the pool kept one.
async fn legacy_post(
    to: SocketAddr,
    warm: usize,
    n: usize,
    server: Option<u32>,
) -> Result<Measured, String> {
    let client = legacy_client();
    let before = served_connections(&client, to).await?;
    let mut measured = timed!(warm, n, server, |_i| {
        async {
            let response = client
                .request(post_700(to, true))
                .await
                .map_err(|e| e.to_string())?;
            answer(response, Some(BACK)).await
        }
        .await
    });
    let opened = served_connections(&client, to)
        .await?
        .saturating_sub(before);
    measured
        .extra
        .insert("connections_opened".into(), json!(opened));
    Ok(measured)
}

/// How many connections the trivial server has accepted.
async fn served_connections(
    client: &LegacyClient<HttpConnector, Full<Bytes>>,
    to: SocketAddr,
) -> Result<u64, String> {
    let request = Request::get(format!("http://{to}/connections"))
        .body(Full::default())
        .expect("a valid request");
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let body = answer(response, None).await?;
    String::from_utf8_lossy(&body)
        .parse::<u64>()
        .map_err(|e| e.to_string())
}

/// Step c5: the same client against the emulator's own server, on a path that verifies
/// nothing.
async fn legacy_stats(
    emulator: Arc<Upstream>,
    warm: usize,
    n: usize,
    server: Option<u32>,
) -> Result<Measured, String> {
    let client = legacy_client();
    let url = format!("{}/emulator/stats", emulator.url());
    Ok(timed!(warm, n, server, |_i| {
        async {
            let request = Request::get(url.as_str())
                .body(Full::default())
                .expect("a valid request");
            let response = client.request(request).await.map_err(|e| e.to_string())?;
            answer(response, None).await
        }
        .await
    }))
}

fn verify_request(param: &str) -> Result<VerifyRequest, String> {
    Ok(
        VerifyRequest::new(CaptchaVerifyParam::new(param).map_err(|e| e.to_string())?)
            .with_scene(SceneId::new(SCENE).map_err(|e| e.to_string())?),
    )
}

/// Bytes of a request as HTTP/1 writes it (request line, headers, `content-length`, body).
fn wire_bytes(request: &Request<Bytes>) -> usize {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let line = request.method().as_str().len() + 1 + path.len() + " HTTP/1.1\r\n".len();
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    let length = format!("content-length: {}\r\n", request.body().len()).len();
    line + headers + length + 2 + request.body().len()
}

/// What steps d0y and d0yt add to d0, one at a time, as the crate's transport did around
/// the same pooled client: a `yield_now` once the answer is read (so the pool gets its
/// connection back before the caller's next request), and a deadline around the request.
#[derive(Clone, Copy)]
struct Extras {
    yield_after: bool,
    deadline: bool,
}

/// Step d0: a real verification without the crate's client around it: the request
/// `Client::signed_request` builds (signed in the timed part), sent by the bare pooled
/// client; the answer must be a pass.
async fn signed_by_hand(
    emulator: Arc<Upstream>,
    warm: usize,
    n: usize,
    server: Option<u32>,
    extras: Extras,
) -> Result<Measured, String> {
    let params = emulator.mint_many(warm + n).await?;
    let signer = emulator.client(1);
    let client = legacy_client();
    let sizes = signer
        .signed_request(&verify_request(&params[0])?)
        .map(|request| wire_bytes(&request))
        .map_err(|e| e.to_string())?;
    let mut answer_bytes = 0;
    let mut measured = timed!(warm, n, server, |i| {
        async {
            let request = signer
                .signed_request(&verify_request(&params[i])?)
                .map_err(|e| e.to_string())?;
            let sent = client.request(request.map(Full::new));
            let response = if extras.deadline {
                tokio::time::timeout(Duration::from_secs(10), sent)
                    .await
                    .map_err(|_| "timed out".to_owned())?
            } else {
                sent.await
            }
            .map_err(|e| e.to_string())?;
            let headers: usize = response
                .headers()
                .iter()
                .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
                .sum();
            let body = answer(response, None).await?;
            let verdict: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            if verdict["Result"]["VerifyResult"] != json!(true) {
                return Err(format!("not a pass: {verdict}"));
            }
            answer_bytes = "HTTP/1.1 200 OK\r\n".len() + headers + 2 + body.len();
            if extras.yield_after {
                tokio::task::yield_now().await;
            }
            Ok::<(), String>(())
        }
        .await
    });
    measured.extra.insert("request_bytes".into(), json!(sizes));
    measured
        .extra
        .insert("response_bytes".into(), json!(answer_bytes));
    Ok(measured)
}

/// Steps d1 and d2: `Client::verify`, as the layer calls it, one connection allowed.
async fn verify(
    emulator: Arc<Upstream>,
    warm: usize,
    n: usize,
    server: Option<u32>,
) -> Result<Measured, String> {
    let params = emulator.mint_many(warm + n).await?;
    let client = emulator.client(1);
    let before = emulator.connections().await;
    let mut measured = timed!(warm, n, server, |i| {
        async {
            let verdict = client
                .verify(verify_request(&params[i])?)
                .await
                .map_err(|e| e.label().to_owned())?;
            if verdict.passed() {
                Ok(())
            } else {
                Err(format!("not a pass: {}", verdict.code()))
            }
        }
        .await
    });
    // Connections the client opened, warm-up included: one, if it kept its connection.
    let opened = emulator.connections().await.saturating_sub(before);
    measured
        .extra
        .insert("connections_opened".into(), json!(opened));
    Ok(measured)
}

/// The peer process, started from this binary, and the addresses it serves.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    blocking: SocketAddr,
    /// Blocking servers whose connections run on CPU 0 and on CPU 1 (where there are two).
    pinned: Vec<SocketAddr>,
    tokio: SocketAddr,
    hyper: SocketAddr,
    emulator: String,
}

impl Peer {
    fn spawn() -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(io)?;
        let mut child = Command::new(exe)
            .arg("--floor-peer")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting the peer process: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped");
        let mut addresses = std::collections::HashMap::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(io)?;
            if line == "ready" {
                break;
            }
            if let Some((name, address)) = line.split_once(' ') {
                addresses.insert(name.to_owned(), address.to_owned());
            }
        }
        let address = |name: &str| -> Result<SocketAddr, String> {
            addresses
                .get(name)
                .and_then(|a| a.parse().ok())
                .ok_or(format!("the peer process did not report its {name} server"))
        };
        Ok(Self {
            blocking: address("blocking")?,
            pinned: (0..2)
                .map_while(|cpu| address(&format!("blocking@{cpu}")).ok())
                .collect(),
            tokio: address("tokio")?,
            hyper: address("hyper")?,
            emulator: addresses
                .get("emulator")
                .cloned()
                .ok_or("the peer process did not report its emulator")?,
            child,
            stdin,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // The peer exits when its standard input closes.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// The peer process (`--floor-peer`): serves until its standard input closes.
pub fn serve_peer() -> Result<(), String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for cpu in [None].into_iter().chain((0..cpus.min(2)).map(Some)) {
        let blocking = std::net::TcpListener::bind("127.0.0.1:0").map_err(io)?;
        let address = blocking.local_addr().map_err(io)?;
        match cpu {
            None => println!("blocking {address}"),
            Some(cpu) => println!("blocking@{cpu} {address}"),
        }
        std::thread::spawn(move || {
            for stream in blocking.incoming().flatten() {
                std::thread::spawn(move || {
                    let _pinned = cpu.map(Pinned::to);
                    echo_blocking(stream)
                });
            }
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io)?;
    let _emulator = runtime.block_on(async {
        let echo = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io)?;
        println!("tokio {}", echo.local_addr().map_err(io)?);
        tokio::spawn(async move {
            while let Ok((stream, _)) = echo.accept().await {
                tokio::spawn(echo_tokio(stream));
            }
        });
        let http = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io)?;
        println!("hyper {}", http.local_addr().map_err(io)?);
        tokio::spawn(serve_trivial(http));
        let emulator = Emulator::builder()
            .credentials(&bench_credentials())
            .scene(SCENE)
            .start("127.0.0.1:0")
            .await
            .map_err(io)?;
        println!("emulator {}", emulator.url());
        println!("ready");
        Ok::<_, String>(emulator)
    })?;
    // Block here until the parent closes our standard input (or exits).
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    Ok(())
}

fn echo_blocking(mut stream: std::net::TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut out = [0u8; OUT];
    while stream.read_exact(&mut out).is_ok() {
        if stream.write_all(&BACK_BYTES).is_err() {
            break;
        }
    }
}

async fn echo_tokio(mut stream: tokio::net::TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut out = [0u8; OUT];
    while stream.read_exact(&mut out).await.is_ok() {
        if stream.write_all(&BACK_BYTES).await.is_err() {
            break;
        }
    }
}

/// The trivial HTTP server: 300 bytes for any request, after reading its body; `GET
/// /connections` answers how many connections it has accepted.
async fn serve_trivial(listener: tokio::net::TcpListener) {
    let accepted = Arc::new(AtomicU64::new(0));
    while let Ok((stream, _)) = listener.accept().await {
        accepted.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let accepted = Arc::clone(&accepted);
        let service = service_fn(move |request: Request<Incoming>| {
            let accepted = Arc::clone(&accepted);
            async move {
                let body = if request.uri().path() == "/connections" {
                    Bytes::from(accepted.load(Ordering::Relaxed).to_string())
                } else {
                    request.into_body().collect().await?;
                    Bytes::from_static(&BACK_BYTES)
                };
                Ok::<_, hyper::Error>(Response::new(Full::new(body)))
            }
        });
        tokio::spawn(async move {
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

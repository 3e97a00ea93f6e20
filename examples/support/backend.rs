//! The examples' verifier: Alibaba Cloud when credentials are in the environment, otherwise
//! an emulator started in process.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use tower_aliyun_captcha::client::{Client, Region};
use tower_aliyun_captcha::emulator::Emulator;
use tower_aliyun_captcha::{Credentials, SceneId};

/// Where verifications go.
pub struct Backend {
    pub client: Client,
    /// Set when emulating; keep it alive as long as the client is used.
    pub emulator: Option<Emulator>,
}

/// A scene id from `variable`, or `default` (always when emulating).
pub fn scene(variable: &str, default: &str, emulating: bool) -> SceneId {
    let id = if emulating {
        default.to_owned()
    } else {
        std::env::var(variable).unwrap_or_else(|_| default.to_owned())
    };
    SceneId::new(id).expect("scene ids are valid")
}

/// Whether the examples will emulate: no `ALIBABA_CLOUD_*` credentials in the environment.
pub fn emulating() -> bool {
    Credentials::from_env().is_err()
}

/// The real service (region from `CAPTCHA_REGION`, default cn-shanghai), or an emulator
/// knowing `scenes` (the first is its default) with freshly generated credentials; checked
/// with one verification before anything listens, so that a wrong key, permission, region or
/// clock stops the example with advice instead of refusing every person.
pub async fn start(scenes: &[&SceneId]) -> Result<Backend, String> {
    let backend = connect(scenes).await?;
    backend.client.check().await.map_err(|error| {
        format!(
            "the captcha service check failed: {error}; {}",
            error.advice()
        )
    })?;
    Ok(backend)
}

async fn connect(scenes: &[&SceneId]) -> Result<Backend, String> {
    if let Ok(credentials) = Credentials::from_env() {
        let region: Region = std::env::var("CAPTCHA_REGION")
            .unwrap_or_else(|_| "cn-shanghai".into())
            .parse()
            .map_err(|e| format!("{e}"))?;
        let client = Client::builder()
            .credentials(credentials)
            .region(region)
            .build()
            .map_err(|e| e.to_string())?;
        return Ok(Backend {
            client,
            emulator: None,
        });
    }
    let credentials = Credentials::new(
        format!(
            "LTAIemu{}",
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        ),
        uuid::Uuid::new_v4().simple().to_string(),
    );
    let mut builder = Emulator::builder().credentials(&credentials);
    for scene in scenes {
        builder = builder.scene(scene.as_str());
    }
    let emulator = builder
        .start("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot start the emulator: {e}"))?;
    let client = Client::builder()
        .credentials(credentials)
        .endpoint(emulator.url())
        .allow_http(true)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Backend {
        client,
        emulator: Some(emulator),
    })
}

/// The value of `--listen`, or `default`.
pub fn listen_arg(default: &str) -> Result<String, String> {
    let mut listen = default.to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?,
            other => return Err(format!("unknown argument {other:?} (use --listen ADDR)")),
        }
    }
    Ok(listen)
}

/// The exit status of an example: errors go to stderr, prefixed with the example's name.
pub fn exit(name: &str, outcome: Result<(), String>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{name}: {message}");
            ExitCode::from(2)
        }
    }
}

/// Prints a line for the person running the example. A closed stdout (`… | head -2`, or a
/// test that stopped reading) is no reason for a server to stop, so write errors are ignored.
pub fn say(line: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout();
    let _ = stdout.write_fmt(format_args!("{line}\n"));
    let _ = stdout.flush();
}

impl Backend {
    /// Binds `listen` and prints the contract lines: `listening on http://HOST:PORT` first,
    /// then `emulator on http://HOST:PORT` when emulating; flushed.
    pub async fn bind(
        &self,
        listen: &str,
    ) -> Result<(tokio::net::TcpListener, SocketAddr), String> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "listening on http://{addr}");
        if let Some(emulator) = &self.emulator {
            let _ = writeln!(stdout, "emulator on {}", emulator.url());
        }
        let _ = stdout.flush();
        Ok((listener, addr))
    }
}
